"""Benchmark: the label-budget curve. LSA, LSA with the prior off and the plain global-pool head, trained on
CelebA-10k at ≈322, ≈804, ≈1,608, ≈4,020 and all 8,041 labels, with and without the rest of the training
split as unlabelled faces; each evaluated once on test.

Each budget's recipe is a file (configs/limited_<labels>.yaml, configs/full_8041.yaml); a variant changes
one thing: the head or the prior (VARIANTS), or one training choice (RECIPE_CHANGES: augmentation, schedule,
more unlabelled faces, a teacher), and is paired with the plain head changed the same way (PAIRS).
"Without unlabelled" runs the same recipe with --unlabelled off for as many steps as the run with them (an
epoch of a run with unlabelled faces is a pass over those, so the epochs are rounded up: ≤ 1 epoch more),
with the same warm-up in steps, and validates about as often (every ⌊epochs / recipe epochs⌋, and after the
last), so the two differ in the unlabelled faces alone.

Results are cached per run in OUT/<budget>/<variant>/<unlabelled on|off>/seed<k>/result.json and a run
interrupted mid-training resumes from its last epoch, so the benchmark continues where it stopped. Prints a
table (mean ± std over seeds, balanced accuracy, wall time) and writes OUT/summary.json and a PNG.

    python benchmarks/label_budget.py --data ../shared/data/celeba-10k --out runs/label_budget
    python benchmarks/label_budget.py ... --budgets 322 --variants lsa linear --unlabelled on   # one row
    python benchmarks/label_budget.py ... --import benchmarks/results/label_budget.json --report-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from lsa_edge.cli import setup_logging
from lsa_edge.evaluation import evaluate_model
from lsa_edge.io import atomic_path, write_json_atomic

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
BUDGETS = {
    322: "limited_322.yaml",
    804: "limited_804.yaml",
    1608: "limited_1608.yaml",
    4020: "limited_4020.yaml",
    8041: "full_8041.yaml",
}
VARIANTS: dict[str, dict[str, Any]] = {
    "lsa": {},  # the recipe's own head
    "lsa-prior-off": {"balance": "no_prior"},
    "linear": {"head": "linear"},
    # the few-label head: no value/output projections, no feed-forward block, half the width
    "lsa-compact": {"d_model": 128, "ffn": 0, "value_proj": False},
    # the attention path's classifier starts at zero: the model starts as the plain head, attention added
    "lsa-zero-init": {"zero_init_attention": True},
    # the learned attention off (α = 0): each attribute pools where the language prior points, nothing learned
    "lsa-prior-only": {"balance": "prior_only"},
    # a learned balance that starts near the prior (α = 0.1, β = 0.9): prior-only's start, the learned
    # attention still there to grow (α barely moves from where it starts in these runs: 0.50 → 0.48)
    "lsa-prior-first": {"balance_init": 0.1},
    # the labelled faces augmented as strongly as the unlabelled students' view in geometry, colour and
    # erasing (not its camera degradations): regularising the 322 labels, which are cycled ~120 times
    "lsa-strong-labelled": {},
    "linear-strong-labelled": {"head": "linear"},
    # both changes that helped LSA and not the plain head (pair it with linear-strong-labelled)
    "lsa-prior-only-strong-labelled": {"balance": "prior_only"},
    # the recipe's schedule made longer (LONG_EPOCHS instead of 5): most 5-epoch runs validate best at
    # their last epoch, and semi-supervised training usually gains from many more steps than 5 passes
    "lsa-long": {},
    "linear-long": {"head": "linear"},
    # LFW's 13,143 images (../shared/data/lfwa/images, beside --data) as more unlabelled faces, detected and
    # aligned as camera frames are: ~20.8k unlabelled faces, so the recipe's 5 epochs take ~2.7× the steps
    "lsa-lfw": {},
    "linear-lfw": {"head": "linear"},
    # a Noisy-Student round: a fresh student (5 epochs) whose unlabelled faces are judged, and whose labels
    # are softened, by the frozen 12-epoch model of the same seed and head (the -long variant; run it first)
    "lsa-student": {},
    "linear-student": {"head": "linear"},
}
LONG_EPOCHS = 12
# Variants that change training, not the model: recipe keys, merged over the recipe file's.
STRONG_LABELLED = {
    "hflip": 0.5,
    "scale": [0.85, 1.15],
    "rotate_deg": 15.0,
    "translate": 0.08,
    "brightness": 0.4,
    "contrast": 0.4,
    "saturation": 0.4,
    "erase": 0.5,
}
RECIPE_CHANGES: dict[str, dict[str, Any]] = {
    "lsa-strong-labelled": {"augment": STRONG_LABELLED},
    "linear-strong-labelled": {"augment": STRONG_LABELLED},
    "lsa-prior-only-strong-labelled": {"augment": STRONG_LABELLED},
    "lsa-long": {"epochs": LONG_EPOCHS},
    "linear-long": {"epochs": LONG_EPOCHS},
    "lsa-lfw": {"unlabelled_data": "lfwa/images"},  # a folder beside --data's
    "linear-lfw": {"unlabelled_data": "lfwa/images"},
}
# Noisy-Student variants: the variant whose finished run of the same budget, seed and head teaches
TEACHER_OF = {"lsa-student": "lsa-long", "linear-student": "linear-long"}
ORDER = list(BUDGETS)  # the budgets from the fewest labels up
TRAIN_SIZE = 8041  # CelebA-10k's training split
SMALL = (322, 804)  # the budgets run with --seeds (3 by default); the others with --seeds-large


def recipe(budget: int, variant: str, unlabelled: str, seed: int, args: argparse.Namespace) -> Any:
    """The TrainConfig of one run: the budget's recipe file, the variant's model change, the seed."""
    import yaml

    from lsa_edge.training.trainer import TrainConfig

    d = yaml.safe_load((CONFIGS / BUDGETS[budget]).read_text(encoding="utf-8"))
    d["model"] = {**d.get("model", {}), **VARIANTS[variant]}
    if d["model"].get("head") == "linear":
        d["model"].pop("balance", None)
    for key, change in RECIPE_CHANGES.get(variant, {}).items():
        d[key] = {**d.get(key, {}), **change} if isinstance(change, dict) else change
    d.update(data=str(args.data), seed=seed, progress=not args.no_progress, threads=args.threads)
    if "unlabelled_data" in RECIPE_CHANGES.get(variant, {}):
        d["unlabelled_data"] = str(Path(args.data).parent / d["unlabelled_data"])
    if variant in TEACHER_OF:
        d["teachers"] = [str(run_dir(args, budget, TEACHER_OF[variant], "on", seed) / "best.pt")]
    if budget < TRAIN_SIZE and unlabelled == "off":
        # the same number of steps and validations as the run with unlabelled faces
        labels = TRAIN_SIZE // d["select_rate"] + (TRAIN_SIZE % d["select_rate"] > 0)
        ratio = d.get("unlabelled_ratio", 1)
        steps_on = (TRAIN_SIZE - labels) // (d["batch_size"] * ratio) * d["epochs"]
        per_epoch = labels // d["batch_size"]
        epochs = math.ceil(steps_on / per_epoch)
        warmup_steps = d.get("warmup_epochs", 1.0) * steps_on / d["epochs"]
        d.update(
            unlabelled="off",
            epochs=epochs,
            eval_every=max(1, epochs // d["epochs"]),
            # the same warm-up in steps, not in (shorter) epochs; + ½: the trainer truncates to whole steps
            warmup_epochs=(round(warmup_steps) + 0.5) / per_epoch,
        )
    return TrainConfig.from_dict(d, where=BUDGETS[budget])


def run_dir(args: argparse.Namespace, budget: int, variant: str, unlabelled: str, seed: int) -> Path:
    return Path(args.out) / str(budget) / variant / unlabelled / f"seed{seed}"


def stale_runs(args: argparse.Namespace, runs: list[tuple[int, str, str, int]]) -> dict[Path, list[str]]:
    """The cached runs (a result or a run under way) trained with other settings than today's recipe and
    variant, each with what differs (its config.json against the recipe): a recipe file edited after they ran
    would otherwise mix two recipes under one name. Imported rows have no config.json; their recipe name,
    epochs and batch size were checked when imported."""
    from lsa_edge.training.trainer import config_differences

    stale = {}
    for run in runs:
        folder = run_dir(args, *run)
        saved = folder / "config.json"
        # config.json alone is a run killed before its first epoch: the trainer starts it afresh
        if saved.exists() and ((folder / "result.json").exists() or (folder / "last.pt").exists()):
            diff = config_differences(json.loads(saved.read_text(encoding="utf-8")), recipe(*run, args))
            if diff:
                stale[saved.parent] = diff
    return stale


def stale_message(stale: dict[Path, list[str]], outcome: str) -> str:
    listed = "\n".join(f"  {folder}: {'; '.join(diff)}" for folder, diff in stale.items())
    return (
        f"{len(stale)} cached run(s) were trained with other settings than today's recipe and variant:\n"
        f"{listed}\n{outcome}: their results no longer describe the recipe. Move those folders away (they "
        "are trained again) or choose another --out."
    )


def plan_state(
    args: argparse.Namespace, runs: list[tuple[int, str, str, int]]
) -> tuple[int, int, dict[tuple[int, str, str], list[int]]]:
    """Where the planned runs stand: how many are finished (cached) and under way (a last.pt to resume
    from), and the seeds still to finish per budget, variant and unlabelled setting."""
    todo: dict[tuple[int, str, str], list[int]] = {}
    finished = under_way = 0
    for budget, variant, unlabelled, seed in runs:
        folder = run_dir(args, budget, variant, unlabelled, seed)
        if (folder / "result.json").exists():
            finished += 1
            continue
        under_way += (folder / "last.pt").exists()
        todo.setdefault((budget, variant, unlabelled), []).append(seed)
    return finished, under_way, todo


def plan_message(args: argparse.Namespace, runs: list[tuple[int, str, str, int]], most: int = 12) -> str:
    finished, under_way, todo = plan_state(args, runs)
    head = f"{len(runs)} planned run(s): {finished} finished"
    if not todo:
        return head + "."
    lines = [
        f"{head}, {under_way} under way (resumed from their last epoch), "
        f"{len(runs) - finished - under_way} not started. Still to run:"
    ]
    for (budget, variant, unlabelled), seeds in list(todo.items())[:most]:
        lines.append(f"  {budget:5d} {variant} unlabelled {unlabelled}: seed {', '.join(map(str, seeds))}")
    if len(todo) > most:
        lines.append(f"  … and {len(todo) - most} more")
    return "\n".join(lines)


def resumed_wall(history: list[dict]) -> float:
    """The wall time of a run that resumed (no one process saw all of it), estimated from its log: each
    validated epoch's own time × the epochs since the previous validation (log.csv has a row per validation
    only; that epoch's time includes the validation, so with validations far apart it errs a little high)."""
    epochs = [0] + [h["epoch"] for h in history]
    return sum(h["epoch_s"] * (e - before) for h, e, before in zip(history, epochs[1:], epochs))


def run_one(args: argparse.Namespace, budget: int, variant: str, unlabelled: str, seed: int) -> dict:
    from lsa_edge.training.checkpoint import read_checkpoint
    from lsa_edge.training.trainer import train

    out = run_dir(args, budget, variant, unlabelled, seed)
    cached = out / "result.json"
    if cached.exists():
        return json.loads(cached.read_text())
    cfg = recipe(budget, variant, unlabelled, seed, args)
    # a teacher is a finished run of this machine: an imported row has its figures, not its checkpoint
    missing = [
        t for t in cfg.teachers if not (Path(t).exists() and (Path(t).parent / "result.json").exists())
    ]
    if missing:
        teacher, folder = TEACHER_OF[variant], Path(missing[0]).parent
        imported = (folder / "result.json").exists()  # its figures without its checkpoint
        raise SystemExit(
            f"{variant} (seed {seed}) learns from the model of a finished {teacher} run, and {folder} holds "
            + (
                "only an imported result, no checkpoint; remove its result.json and "
                if imported
                else "none; "
            )
            + f"run it first: python benchmarks/label_budget.py --budgets {budget} --variants {teacher} "
            f"--unlabelled on --seeds {seed}"
        )
    cfg = dataclasses.replace(cfg, out=str(out), resume=(out / "last.pt").exists())
    t0 = time.perf_counter()
    summary = train(cfg, encoder=_encoder())
    wall = time.perf_counter() - t0
    hist = summary["history"]
    if cfg.resume:  # this process saw part of the run: the wall time from the epochs' own
        wall = resumed_wall(hist)
    test = evaluate_model(out / "best.pt", args.data, split="test", progress=False)
    meta = read_checkpoint(out / "best.pt")["meta"]
    result = {
        "budget": budget,
        "variant": variant,
        "unlabelled": unlabelled,
        "seed": seed,
        "recipe": BUDGETS[budget],
        "labelled": meta["data"]["labelled_images"],
        "unlabelled_images": meta["data"].get("unlabelled_images", 0),
        "test_mean_accuracy": test["mean_accuracy"],
        "test_balanced_accuracy": test["balanced_accuracy"],
        "test_mean_accuracy_tuned": test["mean_accuracy_tuned"],
        "majority": test.get("majority_accuracy"),
        "val_mean_accuracy": summary["val_mean_accuracy"],
        "best_epoch": summary["best_epoch"],
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "wall_s": wall,
        "alpha": hist[-1]["alpha"],
        "beta": hist[-1]["beta"],
    }
    write_json_atomic(cached, result)
    return result


IMPORT_KEYS = (
    "budget",
    "variant",
    "unlabelled",
    "seed",
    "recipe",
    "epochs",
    "batch_size",
    "test_mean_accuracy",
)


def read_summary(path: Path, keys: tuple[str, ...]) -> dict:
    """An earlier summary.json for ``--import``, each row holding ``keys``; exits with what is wrong
    otherwise. Shared with benchmarks/lfwa_protocol.py."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        missing = {k for r in summary["rows"] for k in keys if k not in r}
    except (OSError, ValueError, KeyError, TypeError) as err:
        sys.exit(f"--import {path}: not a summary.json of this benchmark ({err!r})")
    if missing:
        sys.exit(f"--import {path}: rows without {sorted(missing)}; not a summary.json of this benchmark")
    return summary


def add_import_option(p: argparse.ArgumentParser, example: str, chosen_by: str) -> None:
    """``--import SUMMARY ...`` (``args.imports``), as both benchmarks take it."""
    p.add_argument(
        "--import",
        dest="imports",
        type=Path,
        nargs="+",
        default=[],
        metavar="SUMMARY",
        help=f"rows of earlier summary.json files (e.g. {example}) taken as finished runs where the cache "
        f"has none; {chosen_by} choose which rows",
    )


def import_rows(args: argparse.Namespace) -> None:
    """``--import``: the rows of earlier summaries that this invocation selects (budgets, variants,
    unlabelled settings, seeds) become finished runs in the cache, where that run has no result yet. A row
    whose recipe, epochs or batch size differ from today's recipe is skipped, with a message, so one mean ± std
    never mixes recipes. Each keeps where it came from (``imported_from``: the file and its machine)."""
    for path in args.imports:
        summary = read_summary(path, IMPORT_KEYS)
        for r in summary["rows"]:
            seeds = args.seeds if r["budget"] in SMALL else args.seeds_large
            chosen = r["budget"] in args.budgets and r["variant"] in args.variants and r["seed"] in seeds
            if not chosen or (r["budget"] < TRAIN_SIZE and r["unlabelled"] not in args.unlabelled):
                continue
            run = f"{r['budget']}/{r['variant']}/{r['unlabelled']}/seed{r['seed']}"
            out = Path(args.out) / run
            if (out / "result.json").exists() or (out / "last.pt").exists():
                continue  # a run of this machine (finished or under way) is not replaced
            now = recipe(r["budget"], r["variant"], r["unlabelled"], r["seed"], args)
            then = (r["recipe"], r["epochs"], r["batch_size"])
            if then != (BUDGETS[r["budget"]], now.epochs, now.batch_size):
                print(
                    f"not imported {run}: recipe, epochs, batch {then}; today's {now.epochs} × {now.batch_size}"
                )
                continue
            source = r.get("imported_from") or {"file": str(path), "machine": summary.get("machine")}
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out / "result.json", {**r, "imported_from": source})
            print(f"imported {run} from {path}", flush=True)


def planned_runs(args: argparse.Namespace) -> list[tuple[int, str, str, int]]:
    """(budget, variant, unlabelled, seed) of every run this invocation asks for, in order."""
    return [
        (budget, variant, unlabelled, seed)
        for budget in args.budgets
        for seed in (args.seeds if budget in SMALL else args.seeds_large)
        for unlabelled in (args.unlabelled if budget < TRAIN_SIZE else ["off"])
        for variant in args.variants
    ]


_ENCODER: Any = None  # one text encoder per process


def _quiet_logging() -> None:
    """The benchmark's log: warnings and errors of the trainer, not its per-epoch lines (each process)."""
    setup_logging(0, False)
    logging.getLogger("lsa_edge.training.trainer").setLevel(logging.WARNING)


def _encoder() -> Any:
    """The text encoder of the correlation dictionary, loaded once per process when a run trains."""
    global _ENCODER
    if _ENCODER is None:
        from lsa_edge.training.text import TextEncoder

        _ENCODER = TextEncoder()
    return _ENCODER


def run_all(args: argparse.Namespace) -> list[dict]:
    """Every planned run, cached ones read back; with --jobs N, N runs at a time in their own processes,
    each on cores / N threads (small convolutions use few threads well, so side by side can finish sooner:
    ``benchmarks/train_throughput.py`` measures it on a machine)."""
    runs = planned_runs(args)
    stale = stale_runs(args, runs)
    if stale:
        sys.exit(stale_message(stale, "Nothing was trained"))
    print(plan_message(args, runs), flush=True)
    done: dict[tuple[int, str, str, int], dict] = {}

    def report(run: tuple[int, str, str, int], r: dict) -> None:
        budget, variant, unlabelled, seed = run
        done[run] = r
        print(
            f"{budget:5d} {variant:14s} unlabelled {unlabelled:3s} seed {seed}: test "
            f"{100 * r['test_mean_accuracy']:.2f}% (bal {100 * r['test_balanced_accuracy']:.2f}%),"
            f" {r['wall_s'] / 60:.1f} min",
            flush=True,
        )

    if args.jobs <= 1:
        for run in runs:
            report(run, run_one(args, *run))
        return [done[run] for run in runs]
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 2) // args.jobs)
    spawn = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn, initializer=_quiet_logging) as pool:
        futures = {pool.submit(run_one, args, *run): run for run in runs}
        for fut in as_completed(futures):
            report(futures[fut], fut.result())
    return [done[run] for run in runs]


def fmt(values: list[float]) -> str:
    m = 100 * statistics.mean(values)
    return f"{m:.2f} ± {100 * statistics.stdev(values):.2f}" if len(values) > 1 else f"{m:.2f}"


def summarise(rows: list[dict]) -> list[dict]:
    """One entry per (budget, variant, unlabelled): mean ± std over the seeds run."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["budget"], r["variant"], r["unlabelled"]), []).append(r)
    out = []
    for (budget, variant, unlabelled), rs in sorted(groups.items(), key=lambda kv: kv[0]):
        acc = [r["test_mean_accuracy"] for r in rs]
        out.append(
            {
                "budget": budget,
                "variant": variant,
                "unlabelled": unlabelled,
                "labelled": rs[0]["labelled"],
                "seeds": [r["seed"] for r in rs],
                "mean": 100 * statistics.mean(acc),
                "std": 100 * statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "test_mean_accuracy": fmt(acc),
                "test_balanced_accuracy": fmt([r["test_balanced_accuracy"] for r in rs]),
                "test_mean_accuracy_tuned": fmt([r["test_mean_accuracy_tuned"] for r in rs]),
                "epochs": rs[0]["epochs"],
                "wall_min": statistics.mean(r["wall_s"] for r in rs) / 60,
                "imported": [r["imported_from"] for r in rs if "imported_from" in r],
            }
        )
    return out


# The issue's per-seed goals: LSA ahead of the plain head, and never behind prior-off (same seed, same budget);
# then the candidate LSA heads and training changes against the plain head trained the same way.
PAIRS = (
    ("lsa", "linear"),
    ("lsa", "lsa-prior-off"),
    ("lsa-prior-only", "linear"),
    ("lsa-prior-first", "linear"),
    ("lsa-zero-init", "linear"),
    ("lsa-strong-labelled", "linear-strong-labelled"),
    ("lsa-prior-only-strong-labelled", "linear-strong-labelled"),
    ("lsa-long", "linear-long"),
    ("lsa-lfw", "linear-lfw"),
    ("lsa-student", "linear-student"),
)


def paired(rows: list[dict], pairs: tuple[tuple[str, str], ...] = PAIRS) -> list[dict]:
    """Per budget and unlabelled setting, ``a − b`` in test mean accuracy (points) for every seed both ran;
    a pair's seeds share the labelled subset and the order of the batches, so the difference is the model's."""
    acc = {(r["budget"], r["variant"], r["unlabelled"], r["seed"]): r["test_mean_accuracy"] for r in rows}
    out = []
    for a, b in pairs:
        for budget, unlabelled in sorted({(k[0], k[2]) for k in acc}):
            seeds = sorted(
                k[3] for k in acc if k[:3] == (budget, a, unlabelled) and (budget, b, unlabelled, k[3]) in acc
            )
            if seeds:
                diffs = [100 * (acc[budget, a, unlabelled, s] - acc[budget, b, unlabelled, s]) for s in seeds]
                out.append(
                    {
                        "budget": budget,
                        "unlabelled": unlabelled,
                        "a": a,
                        "b": b,
                        "seeds": seeds,
                        "diff": diffs,
                    }
                )
    return out


def print_paired(pairs: list[dict]) -> None:
    for p in pairs:
        seeds = ", ".join(f"{d:+.2f} (seed {s})" for s, d in zip(p["seeds"], p["diff"]))
        print(f"{p['budget']:5d} unlabelled {p['unlabelled']:3s} {p['a']} − {p['b']}: {seeds} points")


def print_table(summary: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=title)
    for col in (
        "labels",
        "model",
        "unlabelled",
        "seeds",
        "test acc %",
        "bal. acc %",
        "acc % (tuned thr)",
        "epochs",
        "wall min",
    ):
        tab.add_column(col, justify="right")
    for s in summary:
        tab.add_row(
            str(s["labelled"]),
            s["variant"],
            s["unlabelled"] if s["budget"] < TRAIN_SIZE else "-",
            str(len(s["seeds"])),
            s["test_mean_accuracy"],
            s["test_balanced_accuracy"],
            s["test_mean_accuracy_tuned"],
            str(s["epochs"]),
            f"{s['wall_min']:.1f}{'*' if s.get('imported') else ''}",
        )
    if any(s.get("imported") for s in summary):
        tab.caption = (
            "* with runs imported from an earlier summary (--import): their wall time was measured on that "
            "machine; wall times compare only within one machine"
        )
    Console(width=None if sys.stdout.isatty() else 160).print(tab)


CURVE = ("lsa", "lsa-prior-off", "linear")  # the issue's three models: the lines of the curve
CURVE_COLOURS = {"lsa": "tab:green", "lsa-prior-off": "tab:red", "linear": "tab:blue"}


def _marker(variant: str) -> str:
    return "s" if VARIANTS.get(variant, {}).get("head") == "linear" else "o"  # plain heads: squares


def _plot_curve(ax: Any, summary: list[dict], colours: dict[str, Any]) -> None:
    """Test accuracy against labels (log axis), one line per model and unlabelled setting (solid: with
    unlabelled faces, dashed: without), ±std bars, dodged sideways ~1% of the label count apart; a line
    breaks where a budget between two of its points has not run."""
    from matplotlib.ticker import NullFormatter

    lines: dict[tuple[str, str], list[dict]] = {}
    for s in summary:
        lines.setdefault((s["variant"], s["unlabelled"]), []).append(s)
    full = [s for s in summary if s["budget"] >= TRAIN_SIZE]
    drawn = [(k, ss) for k, ss in sorted(lines.items()) if not all(s["budget"] >= TRAIN_SIZE for s in ss)]
    for i, ((variant, unlabelled), ss) in enumerate(drawn):
        # both settings end at the same all-labels run (nothing is unlabelled there)
        ss = sorted(
            [*ss, *[f for f in full if f["variant"] == variant and f not in ss]], key=lambda s: s["labelled"]
        )
        dodge = 1.0 + 0.012 * (i - (len(drawn) - 1) / 2)
        xs, ys, errs = [], [], []
        for before, s in zip([None, *ss], ss):
            if before is not None and ORDER.index(s["budget"]) > ORDER.index(before["budget"]) + 1:
                # a budget between them has not run: the line breaks there instead of inventing a trend
                xs.append(math.sqrt(before["labelled"] * s["labelled"]))
                ys.append(math.nan)
                errs.append(0.0)
            xs.append(s["labelled"] * dodge)
            ys.append(s["mean"])
            errs.append(s["std"])
        ax.errorbar(
            xs,
            ys,
            yerr=errs,
            marker=_marker(variant),
            color=colours[variant],
            capsize=3,
            linestyle="-" if unlabelled == "on" else "--",
            label=f"{variant}{' + unlabelled' if unlabelled == 'on' else ''}",
        )
    ax.set_xscale("log")
    ticks = sorted({s["labelled"] for s in summary})  # the budgets themselves, written out (not 3×10²)
    ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("labelled training images (CelebA-10k)")
    ax.set_ylabel("test mean accuracy, % (threshold 0.5)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="lower right")


def _plot_variants(ax: Any, entries: list[dict], colours: dict[str, Any]) -> None:
    """The head and training variants at one budget, one row each (best at the top): mean ± std over seeds,
    the plain head's mean (with unlabelled faces) as a dotted reference, balanced accuracy and seeds written
    beside each row."""
    entries = sorted(entries, key=lambda s: s["mean"])
    for y, s in enumerate(entries):
        ax.errorbar(
            s["mean"], y, xerr=s["std"], marker=_marker(s["variant"]), color=colours[s["variant"]], capsize=3
        )
        n = len(s.get("seeds", [])) or 1
        ax.annotate(
            f"bal. {s['test_balanced_accuracy']} ({n} seed{'s' if n > 1 else ''})",
            (s["mean"] + s["std"], y),
            xytext=(6, 0),
            textcoords="offset points",
            fontsize=6.5,
            va="center",
        )
    plain = [s["mean"] for s in entries if s["variant"] == "linear" and s["unlabelled"] == "on"]
    if plain:
        ax.axvline(
            plain[0], color=colours["linear"], linestyle=":", linewidth=1, label="plain head + unlabelled"
        )
        ax.legend(fontsize=7, loc="lower right")
    labels = [f"{s['variant']}{'' if s['unlabelled'] == 'on' else ' (no unlabelled)'}" for s in entries]
    ax.set_yticks(range(len(entries)), labels, fontsize=7)
    lo = min(s["mean"] - s["std"] for s in entries)
    hi = max(s["mean"] + s["std"] for s in entries)
    ax.set_xlim(lo - 0.1, hi + 0.45 * (hi - lo) + 0.3)  # room for the text on the right
    ax.set_xlabel("test mean accuracy, % (threshold 0.5)")
    ax.set_title(f"every variant at {entries[0]['labelled']:,} labels", fontsize=9)
    ax.grid(alpha=0.3, axis="x")


def plot(summary: list[dict], path: Path, title: str) -> None:
    """Left: the label-budget curve of the issue's three models (LSA, prior-off, plain head; any models
    chosen if none of them ran). Right, where other variants ran: every variant at the smallest budget that
    has them, as rows of mean ± std, so that variants within a few tenths of a point stay readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [s for s in summary if s["variant"] not in CURVE and s["budget"] < TRAIN_SIZE]
    curve = [s for s in summary if s["variant"] in CURVE] or summary
    tab10, dark2 = plt.get_cmap("tab10"), plt.get_cmap("Dark2")  # listed colour maps: an index is a colour
    palette = iter([tab10(i) for i in range(4, 10)] + [dark2(i) for i in range(8)])
    colours: dict[str, Any] = dict(CURVE_COLOURS)
    for variant in sorted({s["variant"] for s in summary} - set(colours)):
        colours[variant] = next(palette, "grey")
    fig, axes = plt.subplots(1, 2 if others else 1, figsize=(12.5 if others else 8, 5.2), squeeze=False)
    _plot_curve(axes[0][0], curve, colours)
    if others:
        budget = min(s["budget"] for s in others)
        _plot_variants(axes[0][1], [s for s in summary if s["budget"] == budget], colours)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data/celeba-10k"))
    p.add_argument("--out", type=Path, default=Path("runs/label_budget"))
    p.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    p.add_argument(
        "--variants", nargs="+", default=["lsa", "lsa-prior-off", "linear"], choices=list(VARIANTS)
    )
    p.add_argument("--unlabelled", nargs="+", default=["on", "off"], choices=["on", "off"])
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds at the two smallest budgets"
    )
    p.add_argument("--seeds-large", type=int, nargs="+", default=[0], help="seeds at the larger budgets")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads per run (default: all, or cores / --jobs)"
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="runs side by side, each in its own process (e.g. 2 on 2 cores)"
    )
    p.add_argument("--png", type=Path, default=None, help="the plot (default: OUT/label_budget.png)")
    p.add_argument("--no-progress", action="store_true")
    add_import_option(p, "benchmarks/results/label_budget.json", "the other options")
    p.add_argument(
        "--report-only", action="store_true", help="table and plot from the cached runs; train none"
    )
    args = p.parse_args()
    if args.jobs < 1:
        p.error(f"--jobs must be 1 or more, got {args.jobs}")
    _quiet_logging()
    rows = []
    import_rows(args)
    if args.report_only:
        rows = [json.loads(f.read_text()) for f in sorted(args.out.glob("*/*/*/seed*/result.json"))]
        rows = [r for r in rows if r["budget"] in args.budgets and r["variant"] in args.variants]
        stale = stale_runs(args, [(r["budget"], r["variant"], r["unlabelled"], r["seed"]) for r in rows])
        if stale:
            print(stale_message(stale, "Left out of the table"))
            rows = [
                r
                for r in rows
                if run_dir(args, r["budget"], r["variant"], r["unlabelled"], r["seed"]) not in stale
            ]
        planned = planned_runs(args)
        if plan_state(args, planned)[2]:
            print(plan_message(args, planned))
            print("The same command without --report-only trains them (each run resumes from its cache).")
    else:
        rows = run_all(args)
    if not rows:
        sys.exit(f"no finished runs under {args.out}; run without --report-only first")
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}"
    title = f"CelebA-10k test, MobileNetV2 128×112 ({machine})"
    summary = summarise(rows)
    print_table(summary, title)
    pairs = paired(rows)
    print_paired(pairs)
    png = args.png or args.out / "label_budget.png"
    plot(summary, png, title)
    write_json_atomic(
        args.out / "summary.json",
        {"rows": rows, "summary": summary, "paired": pairs, "machine": platform.platform()},
    )
    print(
        f"majority-class test accuracy: {100 * rows[0]['majority']:.2f}%; rows in {args.out}/summary.json, plot {png}"
    )


if __name__ == "__main__":
    main()
