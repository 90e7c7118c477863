"""Benchmark: attribute accuracy through the whole pipeline (detect → align → infer) under controlled changes
of the source image, per model, side by side in one run.

CelebA-10k test (980 aligned faces, 89×109) is changed before the detector sees it: scale ×0.5 / ×0.75 of
the source, JPEG quality 90 / 50 / 20, Gaussian blur (σ 1 px) and motion blur (5 px), roll ±10° / ±20°, tight and loose framing,
darker, brighter, lower contrast, grayscale; then LFWA test (6,880 sharp 250×250 LFW photos) as it is, a
cross-data-set figure. Each cell is the mean accuracy over the 40 attributes at the card's thresholds, on
the faces the detector found (the found share is its own column; a missed face is not a misprediction).
Prints one table, the mean and the worst case over the conditions per model, and draws a bar chart.

    python benchmarks/robustness.py                                   # the shipped default, every condition
    python benchmarks/robustness.py --model OLD_DIR --model NEW_DIR --png robustness.png --json r.json
    python benchmarks/robustness.py --limit 200 --no-lfwa             # a quick look

Deterministic: each condition is a fixed function of the image (no random draws).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

Transform = Callable[[np.ndarray, int], np.ndarray]


def _scale(s: float) -> Transform:
    def f(img: np.ndarray, _: int) -> np.ndarray:
        h, w = img.shape[:2]
        return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)

    return f


def _jpeg(quality: int) -> Transform:
    def f(img: np.ndarray, _: int) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])  # codec wants BGR
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG")
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]

    return f


def _gaussian(sigma: float) -> Transform:
    return lambda img, _: cv2.GaussianBlur(img, (0, 0), sigma)


def _motion(length: int) -> Transform:
    """A straight blur of ``length`` pixels; its direction turns with the image index (0°, 45°, 90°, 135°)."""

    def f(img: np.ndarray, i: int) -> np.ndarray:
        k = np.zeros((length, length), np.float32)
        k[length // 2] = 1.0 / length
        m = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), 45.0 * (i % 4), 1.0)
        k = cv2.warpAffine(k, m, (length, length))
        return cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REPLICATE)

    return f


def _roll(degrees: float) -> Transform:
    def f(img: np.ndarray, _: int) -> np.ndarray:
        h, w = img.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return f


def _framing(keep: float) -> Transform:
    """keep < 1: the central ``keep`` share of each side (a tight crop); keep > 1: the image centred on a
    mid-grey canvas ``keep`` times its size (a loose frame, the face smaller in it)."""

    def f(img: np.ndarray, _: int) -> np.ndarray:
        h, w = img.shape[:2]
        if keep < 1:
            dh, dw = round(h * (1 - keep) / 2), round(w * (1 - keep) / 2)
            return img[dh : h - dh, dw : w - dw]
        ph, pw = round(h * (keep - 1) / 2), round(w * (keep - 1) / 2)
        return cv2.copyMakeBorder(img, ph, ph, pw, pw, cv2.BORDER_CONSTANT, value=(118, 118, 118))

    return f


def _levels(gain: float, offset: float, around: float = 0.0) -> Transform:
    """out = (in − around) × gain + around + offset, saturated to uint8."""
    lut = np.clip((np.arange(256) - around) * gain + around + offset, 0, 255).round().astype(np.uint8)
    return lambda img, _: cv2.LUT(img, lut)


def _gray(img: np.ndarray, _: int) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


CONDITIONS: dict[str, Transform | None] = {
    "as stored (×1)": None,
    "scale ×0.75": _scale(0.75),
    "scale ×0.5": _scale(0.5),
    "JPEG q90": _jpeg(90),
    "JPEG q50": _jpeg(50),
    "JPEG q20": _jpeg(20),
    "Gaussian blur σ1": _gaussian(1.0),
    "motion blur 5 px": _motion(5),
    "roll +10°": _roll(10),
    "roll −10°": _roll(-10),
    "roll +20°": _roll(20),
    "roll −20°": _roll(-20),
    "tight framing (80%)": _framing(0.8),
    "loose framing (160%)": _framing(1.6),
    "darker (×0.5)": _levels(0.5, 0.0),
    "brighter (+60)": _levels(1.0, 60.0),
    "low contrast (×0.5)": _levels(0.5, 0.0, around=128.0),
    "grayscale": _gray,
}


def _accuracy(pred: Any, card: Any) -> dict[str, float]:
    from lsa_edge.metrics import attribute_metrics

    m = attribute_metrics(pred.probs, pred.labels, card.thresholds)
    half = attribute_metrics(pred.probs, pred.labels, 0.5)
    readable = pred.total - len(pred.unreadable)
    return {
        "mean_accuracy": 100.0 * m.mean_accuracy,
        "mean_accuracy_at_0.5": 100.0 * half.mean_accuracy,
        "balanced_accuracy": 100.0 * m.mean_balanced_accuracy,
        "found": 100.0 * len(pred.kept) / max(1, readable),
        "faces": len(pred.kept),
    }


def evaluate(model: str | None, parts: dict[str, Any], conditions: list[str], workers: int) -> dict[str, Any]:
    """{condition or data set: figures} for one model (its package's detector, as the runtime uses it)."""
    from lsa_edge.detector import FaceDetector
    from lsa_edge.evaluation import predict_pipeline
    from lsa_edge.package import ModelPackage, select_backend

    package = ModelPackage.open(model)
    rows: dict[str, Any] = {}
    with select_backend(package, "auto") as backend, FaceDetector(
        package.detector_onnx or "full", min_face_size=24.0
    ) as det:
        for name in conditions:
            t = time.perf_counter()
            pred = predict_pipeline(
                backend,
                package.card,
                parts["celeba"],
                det,
                workers=workers,
                progress=False,
                transform=CONDITIONS[name],
            )
            rows[name] = {**_accuracy(pred, package.card), "seconds": time.perf_counter() - t}
            print(f"  {package.card.name}: {name}: {rows[name]['mean_accuracy']:.2f}%", flush=True)
        if "lfwa" in parts:
            pred = predict_pipeline(
                backend, package.card, parts["lfwa"], det, workers=workers, progress=False
            )
            rows["LFWA test"] = _accuracy(pred, package.card)
    over = [rows[n]["mean_accuracy"] for n in conditions]
    return {
        "model": package.card.name,
        "path": _shown_path(package.source),
        "rows": rows,
        "mean_over_conditions": float(np.mean(over)),
        "worst": min(conditions, key=lambda n: rows[n]["mean_accuracy"]),
    }


def _shown_path(path: Path) -> str:
    """A model's path as results record it: relative to the current folder when inside it (results files
    are shared; they must not carry this machine's absolute paths), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _print_table(results: list[dict[str, Any]], conditions: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mean accuracy % through detect → align → infer (faces found %)")
    table.add_column("condition")
    for r in results:
        table.add_column(r["model"], justify="right")
    for name in [*conditions, "LFWA test"]:
        if name not in results[0]["rows"]:
            continue
        cells = [f"{r['rows'][name]['mean_accuracy']:.2f} ({r['rows'][name]['found']:.0f})" for r in results]
        table.add_row(name, *cells)
    table.add_section()
    table.add_row("mean over the conditions", *[f"{r['mean_over_conditions']:.2f}" for r in results])
    table.add_row(
        "worst case",
        *[f"{r['rows'][r['worst']]['mean_accuracy']:.2f} ({r['worst']})" for r in results],
    )
    Console().print(table)


def _plot(results: list[dict[str, Any]], conditions: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lsa_edge.io import atomic_path

    names = [n for n in [*conditions, "LFWA test"] if n in results[0]["rows"]]
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(names) * len(results)), 4.5))
    width = 0.8 / len(results)
    for k, r in enumerate(results):
        x = np.arange(len(names)) + (k - (len(results) - 1) / 2) * width
        ax.bar(x, [r["rows"][n]["mean_accuracy"] for n in names], width, label=r["model"])
    values = [r["rows"][n]["mean_accuracy"] for r in results for n in names]
    ax.set_ylim(math.floor(min(values)) - 1, math.ceil(max(values)) + 0.5)
    ax.set_xticks(np.arange(len(names)), names, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("mean accuracy, %")
    ax.set_title("Attribute accuracy through the pipeline under image changes (CelebA-10k test; LFWA test)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="a model (repeat to compare); default: the shipped one")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/celeba-10k"))
    ap.add_argument("--lfwa", type=Path, default=Path("../shared/data/lfwa"))
    ap.add_argument("--no-lfwa", action="store_true", help="skip LFWA test (6,880 images)")
    ap.add_argument("--limit", type=int, help="only the first N test images of each data set")
    ap.add_argument("--conditions", help="comma-separated subset of: " + "; ".join(CONDITIONS))
    ap.add_argument("--workers", type=int, default=2, help="image decoding threads")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--png", type=Path, help="bar chart, one bar per model and condition")
    args = ap.parse_args()

    from lsa_edge.data import load_dataset
    from lsa_edge.io import write_json_atomic

    conditions = list(CONDITIONS) if not args.conditions else [c.strip() for c in args.conditions.split(",")]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        ap.error(f"unknown condition(s) {unknown}; choose from: {'; '.join(CONDITIONS)}")
    parts = {"celeba": load_dataset(args.data).split("test")}
    if not args.no_lfwa:
        parts["lfwa"] = load_dataset(args.lfwa).split("test")
    if args.limit:
        parts = {k: v.subset(np.arange(min(args.limit, len(v)))) for k, v in parts.items()}
    models = args.model or [None]
    t0 = time.perf_counter()
    results = [evaluate(m, parts, conditions, args.workers) for m in models]
    if len({r["model"] for r in results}) < len(results):  # same card name (e.g. two runs): add where from
        for r in results:
            where = Path(r["path"])
            r["model"] = f"{r['model']} ({where.parent.name if where.suffix else where.name})"
    _print_table(results, conditions)
    print(
        f"{len(parts['celeba'])} CelebA-10k test faces"
        + (f", {len(parts['lfwa'])} LFWA test faces" if "lfwa" in parts else "")
        + f"; {time.perf_counter() - t0:.0f} s on this machine; accuracy at each card's thresholds, on found faces"
    )
    if "lfwa" in parts:
        print(
            "LFWA test at threshold 0.5: "
            + ", ".join(
                f"{r['model']} {r['rows']['LFWA test']['mean_accuracy_at_0.5']:.2f}%" for r in results
            )
        )
    if args.json:
        write_json_atomic(args.json, {"conditions": conditions, "results": results})
    if args.png:
        _plot(results, conditions, args.png)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
