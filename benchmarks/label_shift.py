"""Benchmark: how much of a cross-data-set gap is label shift — thresholds matched to the target's label rates.

A model trained on CelebA meets LFWA's labels, whose base rates differ a lot (Narrow_Eyes: 11% of CelebA
faces, 65% of LFWA test; Young: 78% against 20%). This keeps the model and changes only its 40 decision
thresholds: each is set so that the share of a labelled split's images (``--adapt-split``, through the
pipeline) predicted positive equals that split's label rate. Only the 40 rates of that split are used — no
image's label, nothing of the evaluated split. Prints the evaluated split's mean and balanced accuracy at
0.5, at the card's thresholds (tuned on the training data's validation split) and rate-matched.

A label-free variant needs no target labels at all: EM on the adapt split's *images* (Saerens, Latinne &
Decaestecker 2002) estimates each attribute's target rate from the model's own probabilities, given the
training split's rates (``--source-data``), and shifts the card's thresholds by the change in prior odds.
That one uses nothing of LFWA but unlabelled faces, as a deployed camera could collect.

    python benchmarks/label_shift.py --data ../shared/data/lfwa          # adapt on train, evaluate test
    python benchmarks/label_shift.py --model runs/x/best.pt --limit 500  # a quick look
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def rate_matched_thresholds(probs: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Per attribute, the threshold at which the share of ``probs`` (N×C) at or above it is ``rates`` (C)."""
    return np.array([np.quantile(probs[:, i], 1.0 - rates[i]) for i in range(probs.shape[1])])


def em_priors(probs: np.ndarray, source: np.ndarray, iters: int = 200, tol: float = 1e-6) -> np.ndarray:
    """Per attribute, the target prior that EM finds for ``probs`` (N×C, calibrated for priors ``source``):
    reweight each probability by the prior ratio, average, repeat (Saerens et al. 2002)."""
    p = np.clip(probs.astype(np.float64), 1e-6, 1 - 1e-6)
    s = np.clip(source.astype(np.float64), 1e-4, 1 - 1e-4)
    pi = s.copy()
    for _ in range(iters):
        w1, w0 = pi / s, (1 - pi) / (1 - s)
        q = w1 * p / (w1 * p + w0 * (1 - p))
        new = np.clip(q.mean(axis=0), 1e-4, 1 - 1e-4)
        if np.max(np.abs(new - pi)) < tol:
            return new
        pi = new
    return pi


def prior_shifted_thresholds(thresholds: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The thresholds on the model's probabilities equivalent to thresholding the prior-corrected ones at
    ``thresholds``: the decision odds scaled by the change in prior odds."""
    s = np.clip(source, 1e-4, 1 - 1e-4)
    odds = thresholds / (1 - thresholds) * (s / (1 - s)) / (target / (1 - target))
    return odds / (1 + odds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a model (default: the shipped one)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfwa"))
    ap.add_argument("--adapt-split", default="train", help="whose label rates set the thresholds")
    ap.add_argument("--split", default="test", help="the split evaluated")
    ap.add_argument("--limit", type=int, help="only the first N images of each split")
    ap.add_argument(
        "--source-data",
        type=Path,
        default=Path("../shared/data/celeba-10k"),
        help="the training data, whose train-split label rates the model was trained at (for EM)",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.adapt_split == args.split:
        ap.error("--adapt-split and --split must differ (the evaluated split's rates would leak its labels)")

    from rich.console import Console
    from rich.table import Table

    from lsa_edge.data import load_dataset
    from lsa_edge.detector import FaceDetector
    from lsa_edge.evaluation import predict_pipeline
    from lsa_edge.io import write_json_atomic
    from lsa_edge.metrics import attribute_metrics
    from lsa_edge.package import ModelPackage, select_backend

    t0 = time.perf_counter()
    package = ModelPackage.open(args.model)
    ds = load_dataset(args.data)
    parts = {s: ds.split(s) for s in (args.adapt_split, args.split)}
    if args.limit:
        parts = {s: p.subset(np.arange(min(args.limit, len(p)))) for s, p in parts.items()}
    with select_backend(package, "auto") as backend, FaceDetector(
        package.detector_onnx or "full", min_face_size=24.0
    ) as det:
        pred = {s: predict_pipeline(backend, package.card, p, det, progress=False) for s, p in parts.items()}
    adapt, test = pred[args.adapt_split], pred[args.split]
    rates = parts[args.adapt_split].labels.mean(axis=0)  # the split's 40 label rates, nothing else
    source = load_dataset(args.source_data).split("train").labels.mean(axis=0)
    card_thr = np.asarray(package.card.thresholds, dtype=np.float64)
    estimated = em_priors(adapt.probs, source)  # from the adapt split's images alone
    print(
        f"EM's estimate of {args.adapt_split}'s 40 label rates: mean |error| "
        f"{100 * np.abs(estimated - rates).mean():.1f} points (the training rates': "
        f"{100 * np.abs(source - rates).mean():.1f})"
    )
    choices = {
        "0.5": np.full(len(rates), 0.5),
        "card (tuned on the training data's val)": np.asarray(package.card.thresholds, dtype=np.float64),
        f"EM on {args.adapt_split}'s images (no labels)": prior_shifted_thresholds(
            card_thr, source, estimated
        ),
        f"matched to {args.adapt_split}'s label rates": rate_matched_thresholds(adapt.probs, rates),
    }
    table = Table(
        title=f"{package.card.name} on {ds.name} {args.split} through the pipeline ({len(test.kept)} faces)"
    )
    for col in ("thresholds", "mean accuracy %", "balanced %"):
        table.add_column(col, justify="left" if col == "thresholds" else "right")
    out = {}
    for name, thr in choices.items():
        m = attribute_metrics(test.probs, test.labels, thr)
        out[name] = {
            "mean_accuracy": 100 * m.mean_accuracy,
            "balanced_accuracy": 100 * m.mean_balanced_accuracy,
        }
        table.add_row(name, f"{out[name]['mean_accuracy']:.2f}", f"{out[name]['balanced_accuracy']:.2f}")
    Console().print(table)
    print(f"{time.perf_counter() - t0:.0f} s on this machine")
    if args.json:
        write_json_atomic(args.json, {"model": package.card.name, "data": ds.name, "results": out})


if __name__ == "__main__":
    main()
