"""``lsa-edge eval``: accuracy of a trained model on a labelled data set split."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..package import BACKENDS
from ._common import add_data_args, add_device_args, pct, user_path, write_json

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..card import ModelCard
    from ..data import FaceDataset
    from ..evaluation import Predictions
    from ..package import ModelPackage

HELP = "evaluate a model (checkpoint, ONNX, build folder, engine): mean and balanced accuracy, per attribute"
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help=HELP,
        description=HELP + " (threshold 0.5 and the card's thresholds tuned on validation).",
        epilog="Example: lsa-edge eval runs/mnv2/best.pt --data ../shared/data/celeba-10k --split test --json test.json",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="checkpoint (best.pt or its run folder), .onnx, build folder or .engine (default: the shipped model)",
    )
    add_data_args(p)
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "val", "test", "all"],
        help="split to evaluate (default: test)",
    )
    p.add_argument("--json", metavar="OUT", type=user_path, help="write the metrics as JSON")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    p.add_argument(
        "--frame",
        default=None,
        metavar="BOX",
        help="unaligned data without a detector: auto (the data set's, e.g. LFW's; the default), full, or "
        "x0,y0,x1,y1 fractions in [0, 1]; not with --pipeline",
    )
    p.add_argument(
        "--sort", choices=["name", "accuracy", "balanced"], default="name", help="table order (default: name)"
    )
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="run the runtime's face detection + alignment on every (unaligned) image; adds detection_rate",
    )
    p.add_argument(
        "--face",
        choices=["central", "largest", "score"],
        default=None,
        help="--pipeline: which detected face the labels describe (default: the most central)",
    )
    p.add_argument("--detector", default=None, help="--pipeline: full | short | an ONNX (default: full)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="default: auto (TensorRT, then ONNX Runtime CUDA, then CPU; torch for a checkpoint)",
    )
    add_device_args(p)
    p.set_defaults(run=run)


def evaluate_model(
    model: str | None,
    data: str,
    split: str = "test",
    fmt: str | None = None,
    device: str = "auto",
    batch_size: int = 256,
    workers: int = 4,
    progress: bool = True,
    frame: str = "auto",
    backend: str = "auto",
    pipeline: bool = False,
    face: str = "central",
    detector: str = "full",
) -> dict[str, Any]:
    """Evaluate a model (checkpoint, ONNX, build folder, engine; None = the default) on a split; returns
    the JSON-ready result.

    Aligned evaluation crops each image as training did; ``frame`` is for unaligned data without a
    detector: the box (fractions) of each image that matches CelebA's aligned frame — "auto" (the data
    set's own, e.g. LFW's), "full" (the whole image) or "x0,y0,x1,y1". ``pipeline`` instead runs the
    runtime's detect + align on every image; images without a face count as misses.
    """
    from lsa_edge.data import load_dataset
    from lsa_edge.metrics import majority_accuracy
    from lsa_edge.package import ModelPackage, select_backend

    check_eval_options(batch_size, workers, device, frame, pipeline)
    package = ModelPackage.open(model)
    model_backend = select_backend(package, backend, device=None if device == "auto" else device)
    ds = load_dataset(data, fmt)
    if frame != "auto":
        ds = replace(ds, frame=parse_frame(frame))
    pred = _predict(
        package, model_backend, ds.split(split), pipeline, face, detector, batch_size, workers, progress
    )
    result = _metrics(pred, package.card)
    result.update(
        split=split,
        data=ds.name,
        layout=ds.layout,
        aligned=ds.aligned,
        frame=None if pipeline else ds.frame,
        skipped_images=len(pred.unreadable),
        model=package.card.name,
        model_path=str(package.source),
        backend=model_backend.name,
        thresholds_tuned_on=package.card.training.get("thresholds_tuned_on", "none"),
        seconds=round(pred.seconds, 2),
    )
    if pipeline:
        result.update(_pipeline_figures(pred, result, face))
    train_idx = ds.partition == 0
    if train_idx.any():
        result["majority_accuracy"] = majority_accuracy(ds.labels[train_idx], pred.labels)
    return result


def _predict(
    package: ModelPackage,
    backend: Backend,
    part: FaceDataset,
    pipeline: bool,
    face: str,
    detector: str,
    batch_size: int,
    workers: int,
    progress: bool,
) -> Predictions:
    """The model's predictions on the split ``part``: on the aligned crops, or with ``pipeline`` after the
    runtime's detect + align (the package's detector, else ``detector``); closes the backend."""
    from lsa_edge.evaluation import predict_aligned, predict_pipeline

    card = package.card
    if pipeline:
        from lsa_edge.detector import FaceDetector

        with FaceDetector(
            package.detector_onnx or detector, min_face_size=24.0
        ) as det:  # the runtime's default
            pred = predict_pipeline(backend, card, part, det, face, batch_size, workers, progress)  # type: ignore[arg-type]
    else:
        pred = predict_aligned(backend, card, part, batch_size, workers, progress)
    backend.close()
    return pred


def _metrics(pred: Predictions, card: ModelCard) -> dict[str, Any]:
    """Accuracy per attribute and on average, at threshold 0.5 and at the card's tuned thresholds."""
    from lsa_edge.metrics import attribute_metrics

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
    """--pipeline: how often a face was found, and the accuracy that counts each miss as all wrong."""
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


def evaluate_checkpoint(checkpoint: str, data: str, split: str = "test", **kwargs: Any) -> dict[str, Any]:
    """:func:`evaluate_model` for a checkpoint (kept for scripts written against 0.1)."""
    return evaluate_model(checkpoint, data, split, **kwargs)


def check_eval_options(batch_size: int, workers: int, device: str | None, frame: str, pipeline: bool) -> None:
    """Before the model and the data are loaded: numbers in range, a device name, a valid --frame."""
    from ._common import check_device, check_number

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


def print_result(result: dict[str, Any], sort: str = "name") -> None:
    from rich.table import Table

    from ._common import console

    rows = list(result["per_attribute"].items())
    if sort == "accuracy":
        rows.sort(key=lambda kv: kv[1]["accuracy"])
    elif sort == "balanced":
        rows.sort(key=lambda kv: kv[1]["balanced_accuracy"])
    tab = Table(
        title=f"{result['model']} on {result['data']}:{result['split']} ({result['n_images']} images)"
    )
    for col in ("attribute", "pos. rate %", "acc %", "bal. acc %", "thr", "acc % (thr)", "bal. % (thr)"):
        tab.add_column(col, justify="left" if col == "attribute" else "right", no_wrap=col == "attribute")
    for name, d in rows:
        tab.add_row(
            name,
            pct(d["positive_rate"]),
            pct(d["accuracy"]),
            pct(d["balanced_accuracy"]),
            f"{d['tuned_threshold']:.2f}",
            pct(d["accuracy_tuned"]),
            pct(d["balanced_accuracy_tuned"]),
        )
    tab.add_section()
    tab.add_row(
        "mean",
        "",
        pct(result["mean_accuracy"]),
        pct(result["balanced_accuracy"]),
        "",
        pct(result["mean_accuracy_tuned"]),
        pct(result["balanced_accuracy_tuned"]),
    )
    c = console()
    c.print(tab)
    extra = (
        f"; majority-class baseline {pct(result['majority_accuracy'])}%"
        if "majority_accuracy" in result
        else ""
    )
    skipped = f"; {result['skipped_images']} unreadable images skipped" if result["skipped_images"] else ""
    c.print(
        f"mean accuracy {pct(result['mean_accuracy'])}% (threshold 0.5), {pct(result['mean_accuracy_tuned'])}% "
        f"(thresholds tuned on {result['thresholds_tuned_on']}); balanced {pct(result['balanced_accuracy'])}%{extra}{skipped}"
    )
    if result.get("pipeline"):
        c.print(
            f"pipeline (detect + align): faces found in {pct(result['detection_rate'])}% of the images "
            f"({result['images_without_face']} without a face); counting those as wrong, mean accuracy "
            f"{pct(result['mean_accuracy_counting_misses'])}% (tuned thresholds "
            f"{pct(result['mean_accuracy_tuned_counting_misses'])}%)"
        )
    elif not result["aligned"]:
        how = "LFW's fixed frame" if result["frame"] else "the whole image"
        c.print(
            f"[yellow]note:[/] {result['data']} is not aligned; faces were cropped with {how} (no face detector)."
        )


def run(args: argparse.Namespace) -> int:
    from ._common import check_json_out, check_workers, model_inputs

    inputs = [*model_inputs(args.model, detector=args.detector), (args.data, "the data set")]
    check_json_out(args.json, inputs=inputs)  # a mistake costs a second, not the whole run; never an input
    if not args.pipeline:
        given = [f for f, v in (("--face", args.face), ("--detector", args.detector)) if v is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} choose the face that --pipeline detects; add --pipeline, or drop "
                f"{'them' if len(given) > 1 else 'it'} (without --pipeline the aligned crops are evaluated)"
            )
    workers = check_workers(args.workers)
    check_eval_options(args.batch_size, workers, args.device, args.frame or "auto", args.pipeline)
    result = evaluate_model(
        args.model,
        args.data,
        args.split,
        args.format,
        args.device or "auto",
        args.batch_size,
        workers,
        frame=args.frame or "auto",
        backend=args.backend,
        pipeline=args.pipeline,
        face=args.face or "central",
        detector=args.detector or "full",
    )
    if args.json:  # the file first: a closed stdout (| head) must not lose it
        log.info("wrote %s", write_json(args.json, result))
    print_result(result, args.sort)
    return 0
