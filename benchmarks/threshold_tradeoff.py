"""Benchmark: mean against balanced accuracy, traded by the 40 decision thresholds.

Thresholds tuned for mean accuracy (the card's) keep rare attributes quiet: a 5%-positive attribute scores
95% by never firing. A robot that must notice eyeglasses or a hat wants them to fire. This tunes each
attribute's threshold on validation to maximise accuracy + λ × balanced accuracy, for a range of λ, and
evaluates once on test (aligned crops): the curve shows what a point of balanced accuracy costs in mean
accuracy for the model, so the choice can be made with numbers. λ = 0 is the card's objective.

    python benchmarks/threshold_tradeoff.py                         # the shipped default, CelebA-10k
    python benchmarks/threshold_tradeoff.py --model runs/x/best.pt --json out.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

GRID = np.round(np.arange(0.02, 0.981, 0.01), 2)


def accuracies(
    probs: np.ndarray, labels: np.ndarray, thr: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Per attribute: (accuracy, balanced accuracy) at thresholds ``thr``."""
    pred = probs >= thr
    y = labels.astype(bool)
    pos, neg = y.sum(0), (~y).sum(0)
    tpr = np.where(pos > 0, (pred & y).sum(0) / np.maximum(pos, 1), 1.0)
    tnr = np.where(neg > 0, (~pred & ~y).sum(0) / np.maximum(neg, 1), 1.0)
    return (pred == y).mean(0), (tpr + tnr) / 2


def tune(probs: np.ndarray, labels: np.ndarray, lam: float) -> np.ndarray:
    """Per attribute, the grid threshold maximising accuracy + lam × balanced accuracy (ties: nearest 0.5)."""
    score = np.stack(
        [np.add(*(w * a for w, a in zip((1.0, lam), accuracies(probs, labels, t)))) for t in GRID]
    )
    best = score.max(0, keepdims=True)
    dist = np.abs(GRID - 0.5)[:, None] + np.where(score >= best - 1e-12, 0.0, np.inf)
    return GRID[np.argmin(dist, axis=0)]


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from lsa_edge.data import load_dataset
    from lsa_edge.evaluation import predict_aligned
    from lsa_edge.io import write_json_atomic
    from lsa_edge.package import ModelPackage, select_backend

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model", default=None, help="a checkpoint, ONNX or build folder (default: the shipped one)"
    )
    p.add_argument("--data", type=Path, default=Path("../shared/data/celeba-10k"))
    p.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3, 0.5, 1.0])
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    package = ModelPackage.open(args.model)
    backend = select_backend(package, "auto")
    try:
        ds = load_dataset(str(args.data))
        val, test = (
            predict_aligned(backend, package.card, ds.split(s), progress=False) for s in ("val", "test")
        )
    finally:
        backend.close()
    rows = []
    for name, thr in (
        ("0.5", np.full(val.probs.shape[1], 0.5)),
        ("card", np.asarray(package.card.thresholds)),
    ):
        acc, bal = accuracies(test.probs, test.labels, thr)
        rows.append({"thresholds": name, "test_mean": 100 * acc.mean(), "test_balanced": 100 * bal.mean()})
    for lam in args.lambdas:
        thr = tune(val.probs, val.labels, lam)
        vacc, vbal = accuracies(val.probs, val.labels, thr)
        acc, bal = accuracies(test.probs, test.labels, thr)
        rows.append({
            "thresholds": f"val-tuned, λ = {lam:g}",
            "val_mean": 100 * vacc.mean(), "val_balanced": 100 * vbal.mean(),
            "test_mean": 100 * acc.mean(), "test_balanced": 100 * bal.mean(),
            "firing_more": int((thr < 0.5).sum()),
        })  # fmt: skip
    tab = Table(title=f"{package.card.name} on {ds.name}: thresholds for accuracy + λ × balanced accuracy")
    for col in ("thresholds", "val mean %", "val bal. %", "test mean %", "test bal. %", "attrs < 0.5"):
        tab.add_column(col, justify="right")
    for r in rows:
        cells = [
            f"{r[k]:.2f}" if k in r else "-"
            for k in ("val_mean", "val_balanced", "test_mean", "test_balanced")
        ]
        tab.add_row(r["thresholds"], *cells, str(r.get("firing_more", "-")))
    Console(width=None if sys.stdout.isatty() else 120).print(tab)
    if args.json:
        write_json_atomic(args.json, {"model": package.card.name, "data": ds.name, "rows": rows})


if __name__ == "__main__":
    main()
