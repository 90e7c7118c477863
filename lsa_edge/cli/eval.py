"""``lsa-edge eval``: accuracy of a trained model on a labelled data set split."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..errors import ConfigError
from ..package import BACKENDS
from ._common import add_data_args, add_device_args, pct, user_path, write_json

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
    from .. import evaluation

    options = evaluation.EvalOptions(  # checked here, before the model and the data are loaded
        split=args.split,
        fmt=args.format,
        frame=args.frame or "auto",
        pipeline=args.pipeline,
        face=args.face or "central",
        detector=args.detector or "full",
        backend=args.backend,
        device=args.device or "auto",
        batch_size=args.batch_size,
        workers=workers,
    )
    result = evaluation.evaluate_model(args.model, args.data, options)
    if args.json:  # the file first: a closed stdout (| head) must not lose it
        log.info("wrote %s", write_json(args.json, result))
    print_result(result, args.sort)
    return 0
