"""Benchmark: LFWA's own protocol over seeds. The recipes of configs/lfwa.yaml (fine-tuned from a CelebA-10k
model) and configs/lfwa_imagenet.yaml (ImageNet only), each trained once per seed on LFWA's 6,263 training
images (10% of their identities held out for validation, carved per seed) and evaluated once on its 6,880
test images.

The CelebA-10k model that configs/lfwa.yaml starts from is trained here first (configs/full_8041.yaml,
seed 0), unless --init names one; every seed of the LFWA recipe starts from that one model, so the seeds
vary the LFWA fine-tuning alone. ImageNet-only runs need no CelebA model and run beside it (--jobs 2).

Results are cached per run in OUT/<recipe>/seed<k>/result.json (OUT/celeba_init/ for the CelebA model) and a
run interrupted mid-training resumes from its last epoch. Prints a table (mean ± std over seeds, each seed,
balanced accuracy, wall time) and writes OUT/summary.json.

    python benchmarks/lfwa_protocol.py --jobs 2
    python benchmarks/lfwa_protocol.py --recipes lfwa --seeds 0 1 2 --init runs/full_8041/best.pt
    python benchmarks/lfwa_protocol.py --report-only
    python benchmarks/lfwa_protocol.py --import benchmarks/results/lfwa_protocol.json --report-only

--import takes the rows of a committed summary as finished runs, so a new machine (its runs/ empty) reprints
the table, or trains only the seeds missing from it. The CelebA model is not imported (a summary holds its
figures, not its checkpoint): a fine-tuning still to run trains it again here, and the report says when the
seeds of configs/lfwa.yaml started from different CelebA models.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

from lsa_edge.evaluation import evaluate_model
from lsa_edge.io import write_json_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
# a sibling script (benchmarks/ is not a package): its text encoder per process, quiet log, mean ± std and
# the wall time of a resumed run
from label_budget import (
    _encoder,
    _quiet_logging,
    add_import_option,
    fmt,
    read_summary,
    resumed_wall,
    stale_message,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RECIPES = {"lfwa": "lfwa.yaml", "lfwa_imagenet": "lfwa_imagenet.yaml"}
INIT = "celeba_init"  # the run of configs/full_8041.yaml that configs/lfwa.yaml starts from
GOAL = 86.0  # issue "limited labels": LFWA mean test accuracy with configs/lfwa.yaml


def needs_init(recipe: str) -> bool:
    """Whether a recipe file starts from a CelebA-trained model (its ``init`` key)."""
    import yaml

    return bool(yaml.safe_load((CONFIGS / RECIPES[recipe]).read_text(encoding="utf-8")).get("init"))


def init_path(args: argparse.Namespace) -> Path:
    """The CelebA-10k checkpoint the LFWA recipe starts from: --init, or this benchmark's own run."""
    return Path(args.init) if args.init else Path(args.out) / INIT / "best.pt"


def run_dir(args: argparse.Namespace, recipe: str, seed: int) -> Path:
    return Path(args.out) / (INIT if recipe == INIT else f"{recipe}/seed{seed}")


def config(args: argparse.Namespace, recipe: str, seed: int) -> Any:
    """The TrainConfig of one run: the recipe file, its data, the seed, and (LFWA from CelebA) the init."""
    import yaml

    from lsa_edge.training.trainer import TrainConfig

    name = "full_8041.yaml" if recipe == INIT else RECIPES[recipe]
    d = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    data = args.celeba if recipe == INIT else args.lfwa
    d.update(data=str(data), seed=seed, progress=not args.no_progress, threads=args.threads)
    if d.get("init"):
        d["init"] = str(init_path(args))
    out = run_dir(args, recipe, seed)
    d.update(out=str(out), resume=(out / "last.pt").exists())
    return TrainConfig.from_dict(d, where=name)


def run_one(args: argparse.Namespace, recipe: str, seed: int) -> dict:
    """Train one run (or read its cached result) and evaluate it once on its data set's test split."""
    from lsa_edge.training.trainer import short_path, train

    out = run_dir(args, recipe, seed)
    if (out / "result.json").exists():
        return json.loads((out / "result.json").read_text(encoding="utf-8"))
    cfg = config(args, recipe, seed)
    t0 = time.perf_counter()
    summary = train(cfg, encoder=_encoder())
    wall = time.perf_counter() - t0
    if cfg.resume:  # this process saw part of the run: the wall time from the epochs' own
        wall = resumed_wall(summary["history"])
    test = evaluate_model(out / "best.pt", cfg.data, split="test", fmt=cfg.format, progress=False)
    result = {
        "recipe": recipe,
        "recipe_file": "full_8041.yaml" if recipe == INIT else RECIPES[recipe],
        "seed": seed,
        "data": test["data"],
        "init": short_path(cfg.init) if cfg.init else None,  # run_folder/best.pt: no machine paths
        "init_test_mean_accuracy": init_figure(cfg.init),
        "test_mean_accuracy": test["mean_accuracy"],
        "test_balanced_accuracy": test["balanced_accuracy"],
        "test_mean_accuracy_tuned": test["mean_accuracy_tuned"],
        "majority": test.get("majority_accuracy"),
        "val_mean_accuracy": summary["val_mean_accuracy"],
        "best_epoch": summary["best_epoch"],
        "epochs": cfg.epochs,
        "wall_s": wall,
        "threads": cfg.threads,  # torch threads of this run: runs side by side (--jobs) share the cores
        "jobs": args.jobs,
    }
    write_json_atomic(out / "result.json", result)
    return result


def init_figure(init: str | None) -> float | None:
    """The CelebA-10k test accuracy of the model a fine-tuning starts from, where the checkpoint is a run of
    this benchmark (its result.json beside it): it tells the CelebA models of a recipe's seeds apart when some
    were imported from another machine and the CelebA model was trained again here."""
    cached = Path(init).parent / "result.json" if init else None
    if cached is None or not cached.exists():
        return None
    return json.loads(cached.read_text(encoding="utf-8")).get("test_mean_accuracy")


IMPORT_KEYS = ("recipe", "recipe_file", "seed", "epochs", "test_mean_accuracy", "test_balanced_accuracy")


def import_rows(args: argparse.Namespace) -> list[dict]:
    """``--import``: the rows of earlier summary.json files that this invocation chooses (recipes, seeds)
    become finished runs in the cache where that run has none (no result, no run under way). A row whose
    recipe file or epochs differ from today's recipe is skipped with a message, so one mean ± std never mixes
    recipes. Each keeps where it came from (``imported_from``) and, for a fine-tuning, its CelebA model's
    test figure (``init_test_mean_accuracy``). The CelebA model itself is not imported: a fine-tuning needs
    its checkpoint, which a summary does not hold. Returns the CelebA models the summaries name (theirs and
    those they imported), for the report."""
    models: list[dict] = []
    for path in args.imports:
        summary = read_summary(path, IMPORT_KEYS)
        rows, init = summary["rows"], summary.get("celeba_init")
        named = [m for m in (init, summary.get("celeba_init_imported")) if isinstance(m, dict)]
        source = {"file": str(path), "machine": summary.get("machine")}
        models += [m for m in named if m not in models]
        for r in rows:
            if r["recipe"] not in args.recipes or r["seed"] not in args.seeds:
                continue
            out = run_dir(args, r["recipe"], r["seed"])
            if (out / "result.json").exists() or (out / "last.pt").exists():
                continue  # a run of this machine (finished or under way) is not replaced
            now = config(args, r["recipe"], r["seed"])
            if (r["recipe_file"], r["epochs"]) != (RECIPES[r["recipe"]], now.epochs):
                print(f"not imported {out}: {r['recipe_file']}, {r['epochs']} epochs; today's {now.epochs}")
                continue
            row = {**r, "imported_from": r.get("imported_from") or source}
            if r.get("init") and "init_test_mean_accuracy" not in r:  # rows from before the field
                row["init_test_mean_accuracy"] = (init or {}).get("test_mean_accuracy")
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out / "result.json", row)
            print(f"imported {out} from {path}", flush=True)
    return models


def planned_runs(args: argparse.Namespace) -> list[tuple[str, int]]:
    """(recipe, seed) of every run asked for, once each; the CelebA model first where a recipe needs it and
    no --init names one."""
    runs = [(r, s) for r in dict.fromkeys(args.recipes) for s in dict.fromkeys(args.seeds)]
    if not args.init and any(needs_init(r) for r in args.recipes):
        runs.insert(0, (INIT, 0))
    return runs


def stale_runs(args: argparse.Namespace, runs: list[tuple[str, int]]) -> dict[Path, list[str]]:
    """The cached runs (a result or a run under way) whose config.json differs from today's recipe, init or
    data, each with what differs: an edited recipe or another --init would otherwise mix into one row."""
    from lsa_edge.training.trainer import config_differences

    stale = {}
    for run in runs:
        folder = run_dir(args, *run)
        saved = folder / "config.json"
        if saved.exists() and ((folder / "result.json").exists() or (folder / "last.pt").exists()):
            diff = config_differences(json.loads(saved.read_text(encoding="utf-8")), config(args, *run))
            if diff:
                stale[folder] = diff
    return stale


def schedule(
    args: argparse.Namespace, submit: Callable[[str, int], Any], wait: Callable[[list[Any]], list[Any]]
) -> tuple[list[dict], dict[tuple[str, int], str]]:
    """Run every planned run, ``--jobs`` at a time, those that start from the CelebA model only once it is
    there and then before any run still waiting for a slot: the LFWA recipe is the goal's, and its chain
    (CelebA model, then the fine-tunings) is the longest. ``submit`` starts one run and returns a future;
    ``wait`` takes the futures under way and returns finished ones. Returns the results in the order of
    :func:`planned_runs` and the runs that failed (or could not start), with why; a failure does not stop the
    other runs."""
    runs = planned_runs(args)
    waiting = [run for run in runs if (INIT, 0) in runs and run[0] != INIT and needs_init(run[0])]
    pending = [run for run in runs if run not in waiting]  # planned_runs puts the CelebA model first
    under_way: dict[Any, tuple[str, int]] = {}
    done: dict[tuple[str, int], dict] = {}
    failed: dict[tuple[str, int], str] = {}
    while pending or under_way:
        while pending and len(under_way) < max(1, args.jobs):
            run = pending.pop(0)
            under_way[submit(*run)] = run
        for handle in wait(list(under_way)):
            run = under_way.pop(handle)
            try:
                done[run] = handle.result()
            except Exception as err:  # reported with the others at the end; the rest go on
                failed[run] = f"{type(err).__name__}: {err}"
                print(f"{run[0]} seed {run[1]} failed: {failed[run]}", flush=True)
                if run[0] == INIT:
                    failed.update({r: "not started: the CelebA model it starts from failed" for r in waiting})
                continue
            report(run, done[run])
            if run[0] == INIT:
                pending[:0] = waiting
    return [done[run] for run in runs if run in done], failed


def report(run: tuple[str, int], r: dict) -> None:
    print(
        f"{run[0]:14s} seed {run[1]}: {r['data']} test {100 * r['test_mean_accuracy']:.2f}% "
        f"(bal {100 * r['test_balanced_accuracy']:.2f}%), {r['wall_s'] / 60:.1f} min",
        flush=True,
    )


def run_all(args: argparse.Namespace) -> tuple[list[dict], dict[tuple[str, int], str]]:
    """Every planned run, cached ones read back; with --jobs N, N runs at a time in their own processes."""
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    if args.init and not Path(args.init).exists():
        sys.exit(f"--init {args.init}: no such checkpoint; pass a CelebA-trained best.pt or leave --init out")
    stale = stale_runs(args, planned_runs(args))
    if stale:
        sys.exit(stale_message(stale, "Nothing was trained"))
    if args.jobs <= 1:  # one at a time, in the order submitted, each when ``wait`` reaches it
        later: dict[Future, tuple[str, int]] = {}

        def submit(recipe: str, seed: int) -> Future:
            fut: Future = Future()
            later[fut] = (recipe, seed)
            return fut

        def run_first(handles: list[Future]) -> list[Future]:
            try:
                handles[0].set_result(run_one(args, *later[handles[0]]))
            except Exception as err:  # schedule reports it
                handles[0].set_exception(err)
            return handles[:1]

        return schedule(args, submit, run_first)
    import multiprocessing
    import os

    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 2) // args.jobs)
    spawn = multiprocessing.get_context("spawn")  # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn, initializer=_quiet_logging) as pool:
        return schedule(
            args,
            lambda recipe, seed: pool.submit(run_one, args, recipe, seed),
            lambda handles: list(wait(handles, return_when=FIRST_COMPLETED).done),
        )


def summarise(rows: list[dict]) -> list[dict]:
    """One entry per recipe: mean ± std over its seeds, and each seed's figure."""
    out = []
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        rs = sorted((r for r in rows if r["recipe"] == recipe), key=lambda r: r["seed"])
        acc = [r["test_mean_accuracy"] for r in rs]
        out.append(
            {
                "recipe": recipe,
                "recipe_file": rs[0]["recipe_file"],
                "data": rs[0]["data"],
                "starts_from": "a CelebA-10k model" if rs[0]["init"] else "ImageNet",
                "seeds": [r["seed"] for r in rs],
                "per_seed": [round(100 * a, 2) for a in acc],
                "mean": 100 * statistics.mean(acc),
                "std": 100 * statistics.stdev(acc) if len(acc) > 1 else 0.0,
                "test_mean_accuracy": fmt(acc),
                "test_balanced_accuracy": fmt([r["test_balanced_accuracy"] for r in rs]),
                "test_mean_accuracy_tuned": fmt([r["test_mean_accuracy_tuned"] for r in rs]),
                "wall_min": statistics.mean(r["wall_s"] for r in rs) / 60,
                "imported": [r["seed"] for r in rs if "imported_from" in r],  # wall times of another machine
                "init_per_seed": [r.get("init_test_mean_accuracy") for r in rs] if rs[0]["init"] else None,
            }
        )
    return out


def init_line(s: dict) -> str | None:
    """Which CelebA model each seed of a fine-tuned recipe started from, where they were not all one (its
    CelebA-10k test accuracy tells them apart); None where one model (or no CelebA model) served them all."""
    groups: dict[Any, list[str]] = {}
    for seed, figure in zip(s["seeds"], s.get("init_per_seed") or []):
        groups.setdefault(figure, []).append(str(seed))
    if len(groups) < 2:
        return None
    parts = [
        f"seed{'s' * (len(seeds) > 1)} {', '.join(seeds)} from one at "
        + (f"{100 * fig:.2f}%" if fig is not None else "an unknown figure")
        for fig, seeds in groups.items()
    ]
    return f"{s['recipe_file']}: the seeds start from different CelebA models (CelebA-10k test): {'; '.join(parts)}"


def print_table(summary: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    tab = Table(title=title)
    for col in ("recipe", "starts from", "test set", "seeds", "test acc %", "each seed", "bal. acc %",
                "acc % (tuned thr)", "wall min"):  # fmt: skip
        tab.add_column(col, justify="right")
    for s in summary:
        tab.add_row(
            s["recipe_file"],
            s["starts_from"],
            s["data"],
            str(len(s["seeds"])),
            s["test_mean_accuracy"],
            ", ".join(f"{a:.2f}" for a in s["per_seed"]),
            s["test_balanced_accuracy"],
            s["test_mean_accuracy_tuned"],
            f"{s['wall_min']:.1f}{'*' if s.get('imported') else ''}",
        )
    if any(s.get("imported") for s in summary):
        tab.caption = (
            "* with runs imported from an earlier summary (--import): their wall time was measured on that "
            "machine; wall times compare only within one machine"
        )
    Console(width=None if sys.stdout.isatty() else 160).print(tab)


def goal_line(summary: list[dict], seeds: list[int]) -> str | None:
    """Where configs/lfwa.yaml stands against the issue's goal: its mean test accuracy over the seeds run,
    provisional while some of the planned ``seeds`` are missing."""
    for s in summary:
        if s["recipe"] == "lfwa":
            met = "met" if round(s["mean"], 2) >= GOAL else "not met"
            missing = [k for k in dict.fromkeys(seeds) if k not in s["seeds"]]
            partial = f"; provisional: seed {', '.join(map(str, missing))} still to run" if missing else ""
            return (
                f"goal: configs/lfwa.yaml ≥ {GOAL:.1f}% mean over seeds {', '.join(map(str, s['seeds']))}: "
                f"{s['mean']:.2f}% ({met}{partial})"
            )
    return None


def cached_results(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """``--report-only``: the finished runs of the plan (stale ones left out, with a message), and what is
    missing."""
    runs = planned_runs(args)
    stale = stale_runs(args, runs)
    if stale:
        print(stale_message(stale, "Left out of the table"))
    found = [run_dir(args, *run) for run in runs if run_dir(args, *run) not in stale]
    missing = [str(f) for f in found if not (f / "result.json").exists()]
    if missing:
        print(f"{len(missing)} planned run(s) not finished: {', '.join(missing)}; the same command without "
              "--report-only trains them (each resumes from its cache)")  # fmt: skip
    rows = [
        json.loads((f / "result.json").read_text(encoding="utf-8")) for f in found if str(f) not in missing
    ]
    return rows, missing


def print_report(
    args: argparse.Namespace, rows: list[dict], missing: list[str], imported: list[dict] | None = None
) -> None:
    """The table, the goal, the CelebA model's own figure (this cache's, else an imported summary's), which
    CelebA model each seed started from where they differ, and OUT/summary.json."""
    own = next((r for r in rows if r["recipe"] == INIT), None)
    others = [m for m in imported or [] if m != own]
    init = own or next(iter(others), None)
    # an imported summary's CelebA model, where this cache trained its own: the imported seeds started there
    earlier = others[0] if own and others else None
    rows = [r for r in rows if r["recipe"] != INIT]
    if not rows:
        sys.exit(f"no finished LFWA runs under {args.out}; run without --report-only first")
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}"
    summary = summarise(rows)
    print_table(
        summary, f"LFWA protocol (6,263 train incl. validation / 6,880 test), MobileNetV2 128×112 ({machine})"
    )
    for line in [goal_line(summary, args.seeds), *map(init_line, summary)]:
        if line:
            print(line)
    for model, which in ((init, "the LFWA runs start from"), (earlier, "of the imported runs")):
        if model:
            print(
                f"the CelebA-10k model {which}: {100 * model['test_mean_accuracy']:.2f}% on CelebA-10k test, "
                f"{model['wall_s'] / 60:.1f} min"
            )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        args.out / "summary.json",
        {
            "rows": rows,
            "summary": summary,
            "celeba_init": init,
            "celeba_init_imported": earlier,
            "missing": missing,
            "machine": platform.platform(),
        },
    )
    majority = rows[0].get("majority")
    print(
        (f"majority-class test accuracy: {100 * majority:.2f}%; " if majority else "")
        + f"rows in {args.out}/summary.json"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lfwa", type=Path, default=Path("../shared/data/lfwa"))
    p.add_argument(
        "--celeba", type=Path, default=Path("../shared/data/celeba-10k"), help="for the CelebA model"
    )
    p.add_argument("--out", type=Path, default=Path("runs/lfwa_protocol"))
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--init",
        default=None,
        help="the CelebA-trained best.pt configs/lfwa.yaml starts from (default: train one)",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads per run (default: cores / --jobs)"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs side by side, each in its own process")
    p.add_argument("--no-progress", action="store_true")
    add_import_option(p, "benchmarks/results/lfwa_protocol.json", "--recipes and --seeds")
    p.add_argument("--report-only", action="store_true", help="the table from the cached runs; train none")
    args = p.parse_args()
    if args.jobs < 1:
        p.error(f"--jobs must be 1 or more, got {args.jobs}")
    _quiet_logging()
    imported = import_rows(args)
    if args.report_only:
        rows, missing = cached_results(args)
        failed: dict[tuple[str, int], str] = {}
    else:
        rows, failed = run_all(args)
        missing = [str(run_dir(args, *run)) for run in failed]
    print_report(args, rows, missing, imported)
    if failed:
        listed = "\n".join(f"  {recipe} seed {seed}: {why}" for (recipe, seed), why in failed.items())
        sys.exit(
            f"{len(failed)} run(s) did not finish:\n{listed}\nFix the cause and run the same command again."
        )


if __name__ == "__main__":
    main()
