"""Evaluating any model package on a labelled data set split, aligned (the training crop) or through the
runtime's own detect + align path on unaligned images. numpy and OpenCV; backends import their runtimes.

    from lsa_edge.evaluation import evaluate_model
    result = evaluate_model("runs/mnv2/best.pt", "data/celeba-10k", split="test", progress=False)
    result["mean_accuracy"], result["per_attribute"]["Smiling"]["accuracy"]

``lsa-edge eval`` is this function plus a table.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ._checks import check_device, check_number
from .card import ModelCard
from .data import FaceDataset, load_crops, read_image
from .errors import ConfigError, DataError
from .face_crops import FaceChoice, choose_face
from .preprocess import normalize

log = logging.getLogger(__name__)

__all__ = [
    "EvalOptions",
    "Predictions",
    "choose_face",
    "evaluate_model",
    "predict_aligned",
    "predict_pipeline",
]


@dataclass(frozen=True)
class EvalOptions:
    """How :func:`evaluate_model` evaluates; checked when made (before any model or data is loaded)."""

    split: str = "test"  # train | val | test | all
    fmt: str | None = None  # data layout; None = detect
    # Unaligned data without a detector: the box (fractions) of each image that matches CelebA's aligned
    # frame — "auto" (the data set's own, e.g. LFW's), "full" (the whole image) or "x0,y0,x1,y1".
    frame: str = "auto"
    pipeline: bool = False  # run the runtime's detect + align on every image; faceless images are misses
    face: FaceChoice = "central"  # pipeline: which detected face the labels describe
    detector: str = "full"  # pipeline: full | short | an ONNX (the package's own detector comes first)
    backend: str = "auto"  # auto | tensorrt | onnxruntime | torch
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 256  # images per forward pass
    workers: int = 4  # image decoding threads
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        check_eval_options(self.batch_size, self.workers, self.device, self.frame, self.pipeline)


def evaluate_model(
    model: str | Path | None, data: str | Path, options: EvalOptions | None = None, **changes: Any
) -> dict[str, Any]:
    """Evaluate a model (checkpoint, ONNX, build folder, engine; None = the default) on a data set split;
    returns the JSON-ready result (the keys of ``lsa-edge eval --json``).

    options: an :class:`EvalOptions` (default: its defaults); ``changes`` replace its fields, e.g.
    ``evaluate_model(path, data, split="val", progress=False)``. The backend it opens is closed on every
    path, errors included.
    """
    from .data import load_dataset
    from .metrics import majority_accuracy
    from .package import ModelPackage, select_backend

    opts = replace(options or EvalOptions(), **changes)
    package = ModelPackage.open(None if model is None else str(model))
    backend = select_backend(package, opts.backend, device=None if opts.device == "auto" else opts.device)
    try:
        ds = load_dataset(str(data), opts.fmt)
        if opts.frame != "auto":
            ds = replace(ds, frame=parse_frame(opts.frame))
        pred = _predict_split(package, backend, ds.split(opts.split), opts)
        backend_name = backend.name
    finally:
        backend.close()
    result = _metrics(pred, package.card)
    result.update(
        split=opts.split,
        data=ds.name,
        layout=ds.layout,
        aligned=ds.aligned,
        frame=None if opts.pipeline else ds.frame,
        skipped_images=len(pred.unreadable),
        model=package.card.name,
        model_path=str(package.source),
        backend=backend_name,
        thresholds_tuned_on=package.card.training.get("thresholds_tuned_on", "none"),
        seconds=round(pred.seconds, 2),
    )
    if opts.pipeline:
        result.update(_pipeline_figures(pred, result, opts.face))
    train_idx = ds.partition == 0
    if train_idx.any():
        result["majority_accuracy"] = majority_accuracy(ds.labels[train_idx], pred.labels)
    return result


def _predict_split(package: Any, backend: Any, part: FaceDataset, opts: EvalOptions) -> Predictions:
    """The model's predictions on the split ``part``: on the aligned crops, or with ``opts.pipeline`` after
    the runtime's detect + align (the package's detector, else ``opts.detector``)."""
    card = package.card
    if not opts.pipeline:
        return predict_aligned(backend, card, part, opts.batch_size, opts.workers, opts.progress)
    from .detector import FaceDetector

    with FaceDetector(package.detector_onnx or opts.detector, min_face_size=24.0) as det:  # the runtime's
        return predict_pipeline(
            backend, card, part, det, opts.face, opts.batch_size, opts.workers, opts.progress
        )


def _metrics(pred: Predictions, card: ModelCard) -> dict[str, Any]:
    """Accuracy per attribute and on average, at threshold 0.5 and at the card's tuned thresholds."""
    from .metrics import attribute_metrics

    m = attribute_metrics(pred.probs, pred.labels)
    mt = attribute_metrics(pred.probs, pred.labels, card.thresholds)
    result: dict[str, Any] = m.to_dict()
    for name, d in result["per_attribute"].items():
        k = card.attributes.index(name)
        d["accuracy_tuned"] = float(mt.accuracy[k])
        d["balanced_accuracy_tuned"] = float(mt.balanced_accuracy[k])
        d["tuned_threshold"] = float(card.thresholds[k])
    result.update(mean_accuracy_tuned=mt.mean_accuracy, balanced_accuracy_tuned=mt.mean_balanced_accuracy)
    return result


def _pipeline_figures(pred: Predictions, result: dict[str, Any], face: str) -> dict[str, Any]:
    """pipeline: how often a face was found, and the accuracy that counts each miss as all wrong."""
    readable = pred.total - len(pred.unreadable)
    detected = len(pred.kept)
    return dict(
        pipeline=True,
        face_choice=face,
        detection_rate=detected / max(1, readable),
        images_without_face=len(pred.no_face),
        images_without_face_examples=pred.no_face[:10],
        # A missed face gets no attribute right: the strict figure for a deployed system.
        mean_accuracy_counting_misses=result["mean_accuracy"] * detected / max(1, readable),
        mean_accuracy_tuned_counting_misses=result["mean_accuracy_tuned"] * detected / max(1, readable),
    )


def check_eval_options(batch_size: int, workers: int, device: str | None, frame: str, pipeline: bool) -> None:
    """Before the model and the data are loaded: numbers in range, a device name, a valid frame."""
    check_number(batch_size, "batch_size", flag="--batch-size", lo=1, hi=65536, integer=True, hint="e.g. 256")
    check_number(workers, "workers", flag="--workers", lo=1, hi=256, integer=True, hint="leave it out for 4")
    check_device(device)
    if frame != "auto":
        if pipeline:
            raise ConfigError(
                f"--frame {frame} is for evaluation without a detector; --pipeline finds and aligns each face "
                "itself: give one of them"
            )
        parse_frame(frame)


def parse_frame(text: str) -> tuple[float, float, float, float] | None:
    """--frame's box: "full" (None: the whole image) or "x0,y0,x1,y1" fractions in [0, 1]."""
    if text == "full":
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--frame must be auto, full or x0,y0,x1,y1 (fractions), got {text!r}") from None
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):  # also refuses nan
        raise ConfigError(
            f"--frame takes fractions of the image in [0, 1] (e.g. 0.1,0.05,0.9,0.95), got {text!r}"
        )
    if not (x1 > x0 and y1 > y0):
        raise ConfigError(f"--frame needs x1 > x0 and y1 > y0, got {text!r}")
    return (x0, y0, x1, y1)


@dataclass(frozen=True)
class Predictions:
    """Probabilities for the images of a split that produced a face (``kept`` indexes ``ds``)."""

    probs: np.ndarray  # K×C
    labels: np.ndarray  # K×C ground truth of those images
    kept: np.ndarray  # K positions in the data set split
    total: int  # images in the split
    unreadable: list[str]  # ids of images that could not be decoded
    no_face: list[str]  # ids of readable images where the detector found no face (pipeline only)
    seconds: float


def predict_aligned(
    backend: Any,
    card: ModelCard,
    ds: FaceDataset,
    batch_size: int = 64,
    workers: int = 4,
    progress: bool = True,
) -> Predictions:
    """The training crop of every image (the data set's frame for unaligned data), no detector."""
    _check_sizes(batch_size, workers)
    t0 = time.perf_counter()
    crops = load_crops(ds, card.preprocessing, ds.frame, workers, progress)
    probs = _predict(backend, crops.images, card, batch_size)
    return Predictions(probs, crops.labels, crops.index, len(ds), crops.skipped, [], time.perf_counter() - t0)


def predict_pipeline(
    backend: Any,
    card: ModelCard,
    ds: FaceDataset,
    detector: Any,
    face: FaceChoice = "central",
    batch_size: int = 64,
    workers: int = 4,
    progress: bool = True,
    transform: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> Predictions:
    """Detect + align + predict on every (unaligned) image, as the runtime does; no face = a miss.

    transform: ``transform(image, i)`` changes each decoded H×W×3 uint8 RGB image (of data set position
    ``i``) before detection, e.g. the controlled degradations of ``benchmarks/robustness.py``."""
    from tqdm.auto import tqdm

    from .face_crops import detect_and_align

    _check_sizes(batch_size, workers)
    t0 = time.perf_counter()
    probs, kept, unreadable, no_face = [], [], [], []
    with tqdm(total=len(ds), desc=f"detect+align {ds.name}", disable=not progress) as bar:
        for chunk in detect_and_align(
            lambda i: read_image(ds.path(i)), len(ds), detector, card.preprocessing, face, workers, transform,
            on_image=bar.update,
        ):  # fmt: skip
            if len(chunk.kept):
                probs.append(_predict(backend, chunk.crops, card, batch_size))
            kept += chunk.kept
            unreadable += [ds.image_ids[i] for i in chunk.unreadable]
            no_face += [ds.image_ids[i] for i in chunk.faceless]
    if not kept:
        raise DataError(f"the detector found no face in any of the {len(ds)} images of {ds.name}")
    kept_arr = np.asarray(kept)
    return Predictions(
        np.concatenate(probs),
        ds.labels[kept_arr],
        kept_arr,
        len(ds),
        unreadable,
        no_face,
        time.perf_counter() - t0,
    )


def _check_sizes(batch_size: int, workers: int) -> None:
    """Before any image is decoded (not as a ``range()`` error after minutes of decoding)."""
    check_number(batch_size, "batch_size", flag="--batch-size", lo=1, integer=True, hint="e.g. 256")
    check_number(workers, "workers", flag="--workers", lo=1, integer=True, hint="e.g. 4")


def _predict(backend: Any, crops: np.ndarray, card: ModelCard, batch_size: int) -> np.ndarray:
    out = [
        backend.predict(normalize(crops[i : i + batch_size], card.preprocessing), batch_size)
        for i in range(0, len(crops), batch_size)
    ]
    return np.concatenate(out)
