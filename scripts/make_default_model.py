"""Reproduce the default model shipped in ``lsa_edge/models/default`` — one command:

    python scripts/make_default_model.py --data ../shared/data/celeba-10k

1. trains two teachers (``configs/default_teacher.yaml``, seeds 0 and 1, in RUN-teacher0/1) and then
   ``configs/default_model.yaml`` distilled from them (the same MobileNetV2 + LSA network, all CelebA-10k
   training labels, EMA weights; epoch selection and threshold tuning on validation). Finished runs are
   reused and an interrupted one resumes, so re-running only redoes what is missing,
2. evaluates it once on the test split (aligned faces),
3. writes the provenance into the model card (data, label count, recipe, validation and test metrics,
   thresholds, the detector-measured alignment template, this command, wall times), and
4. builds the FP32 package with ``lsa-edge build`` (parity-checked export, card in the ONNX, manifest),
   without a detector copy (the runtime uses the one shipped in ``lsa_edge/models``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "default_model.yaml"
TEACHER_CONFIG = ROOT / "configs" / "default_teacher.yaml"
TARGET = ROOT / "lsa_edge" / "models" / "default"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the CelebA-10k folder (CelebA layout)")
    ap.add_argument("--run", default="runs/default", help="training run folder (default: runs/default)")
    ap.add_argument(
        "--config", default=str(CONFIG), help="training recipe (default: configs/default_model.yaml)"
    )
    ap.add_argument(
        "--out", default=str(TARGET), help=f"package folder (default: {TARGET.relative_to(ROOT)})"
    )
    ap.add_argument(
        "--teacher-config",
        default=str(TEACHER_CONFIG),
        help="recipe of the teachers distilled into the model (default: configs/default_teacher.yaml)",
    )
    ap.add_argument(
        "--teacher-seeds",
        type=int,
        nargs="*",
        default=[0, 1],
        metavar="SEED",
        help="one teacher per seed, trained in RUN-teacherSEED (default: 0 1; none = no distillation)",
    )
    args = ap.parse_args()

    from lsa_edge.cli import main as cli
    from lsa_edge.cli import setup_logging
    from lsa_edge.evaluation import evaluate_model
    from lsa_edge.io import staged_dir, write_text_atomic

    setup_logging(0, False)
    run = Path(args.run)
    t0 = time.time()
    seconds: dict[str, float] = {}
    teacher_ckpts = []
    for seed in args.teacher_seeds:
        teacher = run.with_name(f"{run.name}-teacher{seed}")
        seconds[teacher.name] = train_once(
            cli, args.teacher_config, args.data, teacher, ["--seed", str(seed)]
        )
        teacher_ckpts.append(teacher / "best.pt")
    teacher_args = [a for t in teacher_ckpts for a in ("--teacher", str(t))]
    seconds[run.name] = train_once(cli, args.config, args.data, run, teacher_args)

    test = evaluate_model(run / "best.pt", args.data, split="test", progress=False)
    from lsa_edge.training.checkpoint import load_model, read_checkpoint, save_checkpoint

    model, card, ck = load_model(run / "best.pt")
    used = {t["path"]: t["weights_sha256"] for t in card.training.get("teachers", [])}
    teacher_cards = []
    for path in teacher_ckpts:
        tc = read_checkpoint(path)["card"]
        key = f"{path.parent.name}/{path.name}"
        if used and used.get(key) != tc["weights_sha256"]:
            raise SystemExit(
                f"{path} is not the teacher {run} was trained with (weights {tc['weights_sha256'][:12]}…, "
                f"trained with {str(used.get(key))[:12]}…); delete {run} to retrain the student"
            )
        teacher_cards.append(
            {
                "path": key,
                "seed": tc["training"]["seed"],
                "epoch": tc["training"]["epoch"],
                "val_mean_accuracy": tc["training"]["val_mean_accuracy"],
                "weights_sha256": tc["weights_sha256"],
            }
        )
    training = dict(card.training)
    training.update(
        test={
            "split": "celeba-10k:test",
            "images": test["n_images"],
            "mean_accuracy": test["mean_accuracy"],
            "balanced_accuracy": test["balanced_accuracy"],
            "mean_accuracy_tuned": test["mean_accuracy_tuned"],
            "balanced_accuracy_tuned": test["balanced_accuracy_tuned"],
            "majority_accuracy": test.get("majority_accuracy"),
        },
        reproduce="python scripts/make_default_model.py --data ../shared/data/celeba-10k",
        teachers=teacher_cards,
        train_seconds=round(sum(seconds.values()), 1),
        train_seconds_by_run={k: round(v, 1) for k, v in seconds.items()},
        hardware="2-core x86-64 CPU (AVX-512/AMX), bf16 autocast",
    )
    card = card.with_updates(name="lsa-mobilenet_v2-celeba10k", training=training)
    packaged = run / "default.pt"
    save_checkpoint(packaged, model, card, ck["meta"])

    out = Path(args.out)
    # The package is assembled beside the shipped one and replaces it only once complete (README included):
    # a failed or interrupted build leaves the previous package as it was.
    with staged_dir(out, overwrite=True) as stage:
        build = [
            "build",
            str(packaged),
            "--precision",
            "fp32",
            "--calib-data",
            args.data,
            "--out",
            str(stage),
        ]
        if cli([*build, "--no-detector", "--no-progress"]) != 0:
            raise SystemExit(f"building the package failed; {out} is unchanged")
        # the build's options name the staging folder, a path of this machine: the card records the recipe
        (stage / "build_config.json").unlink(missing_ok=True)
        write_text_atomic(stage / "README.md", model_card_text(card, test, out))
    size = sum(p.stat().st_size for p in out.iterdir())
    print(
        f"default model: test mean accuracy {100 * test['mean_accuracy']:.2f}% (tuned thresholds "
        f"{100 * test['mean_accuracy_tuned']:.2f}%), balanced {100 * test['balanced_accuracy']:.2f}%; "
        f"package {size / 1e6:.1f} MB in {out}; {(time.time() - t0) / 60:.1f} min"
    )
    return 0


def train_once(cli, config: str, data: str, run: Path, extra: list[str]) -> float:
    """Train ``run`` unless it has finished (resuming an interrupted run); returns its training seconds."""
    from lsa_edge.io import write_json_atomic

    if not (run / "best.pt").exists() or not (run / "result.json").exists():
        t0 = time.time()
        argv = ["train", "--config", config, "--data", data, "--out", str(run), "--no-progress", *extra]
        if (run / "last.pt").exists():
            argv.append("--resume")
        elif (run / "best.pt").exists():  # a run without last.pt cannot continue: start it again
            argv.append("--overwrite")
        if cli(argv) != 0:
            raise SystemExit(f"training {run} failed; fix the error above and re-run (it resumes)")
        write_json_atomic(run / "result.json", {"train_seconds": time.time() - t0})
    return float(json.loads((run / "result.json").read_text())["train_seconds"])


def model_card_text(card, test: dict, out: Path) -> str:
    t = card.training
    h, w = card.preprocessing.input_size
    distilled = ""
    if t.get("teachers"):
        recipe = t.get("recipe") or {}
        distilled = (
            f", learning from the labels and from the mean probabilities of {len(t['teachers'])} teachers of "
            f"the same architecture (seeds {', '.join(str(x['seed']) for x in t['teachers'])}; distillation "
            f"weight {recipe.get('distill_weight')}), with a moving average of the weights selected and "
            f"shipped (decay min({recipe.get('ema')}, (1+n)/(10+n)) at update n: "
            f"{(t.get('ema') or {}).get('decay_reached', '?')} after the selected epoch's "
            f"{(t.get('ema') or {}).get('updates', '?')} updates)"
        )
    rows = "\n".join(
        f"| {name} | {100 * d['accuracy']:.2f} | {100 * d['balanced_accuracy']:.2f} | {d['tuned_threshold']:.2f} |"
        for name, d in test["per_attribute"].items()
    )
    return f"""# {card.name}

The default model of lsa-edge: MobileNetV2 (ImageNet-initialised) with the LSA head, {h}×{w} aligned
faces, {card.model.get("macs", 0) / 1e6:.0f} M MACs, {card.model.get("params", 0) / 1e6:.1f} M parameters.
Trained on CelebA-10k ({t["data"]["labelled_images"]} labelled training faces; epoch and thresholds chosen
on its {t["data"]["val_images"]} validation faces){distilled}. `model.onnx` carries the full card in its
metadata.

Test split ({test["n_images"]} identity-disjoint faces, aligned): mean accuracy {100 * test["mean_accuracy"]:.2f}%
(threshold 0.5) / {100 * test["mean_accuracy_tuned"]:.2f}% (the card's thresholds), balanced
{100 * test["balanced_accuracy"]:.2f}%; majority class {100 * (test.get("majority_accuracy") or 0):.2f}%.

Reproduce: `{t["reproduce"]}` ({t["train_seconds"] / 60:.0f} min of training in all, teachers included, on
{t["hardware"]}).
CelebA is for non-commercial research; so is this model.

| attribute | test acc. % | balanced % | threshold |
| --- | --- | --- | --- |
{rows}
"""


if __name__ == "__main__":
    sys.exit(main())
