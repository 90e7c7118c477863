"""``lsa-edge eval``: accuracy of a trained model on a labelled data set split."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from ._common import add_data_args, add_device_args, pct, write_json

HELP = "evaluate a checkpoint: mean and balanced accuracy, per attribute"
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help=HELP,
        description=HELP + " (threshold 0.5 and the card's thresholds tuned on validation).",
        epilog="Example: lsa-edge eval runs/mnv2/best.pt --data ../shared/data/celeba-10k --split test --json test.json",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a best.pt (or its run folder)")
    add_data_args(p)
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "val", "test", "all"],
        help="split to evaluate (default: test)",
    )
    p.add_argument("--json", metavar="OUT", help="write the metrics as JSON")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    p.add_argument(
        "--frame",
        default="auto",
        metavar="BOX",
        help="unaligned data without a detector: auto (the data set's, e.g. LFW's), full, or x0,y0,x1,y1 fractions",
    )
    p.add_argument(
        "--sort", choices=["name", "accuracy", "balanced"], default="name", help="table order (default: name)"
    )
    add_device_args(p)
    p.set_defaults(run=run)


def evaluate_checkpoint(
    checkpoint: str,
    data: str,
    split: str = "test",
    fmt: str | None = None,
    device: str = "auto",
    batch_size: int = 256,
    workers: int = 4,
    progress: bool = True,
    frame: str = "auto",
) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; returns the JSON-ready result.

    frame: for unaligned data without a detector, the box (fractions) of each image that matches CelebA's
    aligned frame — "auto" (the data set's own, e.g. LFW's), "full" (the whole image) or "x0,y0,x1,y1".
    """
    from lsa_edge.data import load_crops, load_dataset
    from lsa_edge.metrics import attribute_metrics, majority_accuracy
    from lsa_edge.training.checkpoint import load_model
    from lsa_edge.training.trainer import predict_crops, resolve_device

    dev = resolve_device(device)
    model, card, _ = load_model(checkpoint, str(dev))
    ds = load_dataset(data, fmt)
    if frame != "auto":
        ds = replace(ds, frame=parse_frame(frame))
    part = ds.split(split)
    crops = load_crops(part, card.preprocessing, ds.frame, workers, progress)
    probs = predict_crops(model, crops.images, dev, batch_size, pre=card.preprocessing)
    m = attribute_metrics(probs, crops.labels)
    mt = attribute_metrics(probs, crops.labels, card.thresholds)
    result: dict[str, Any] = m.to_dict()
    for name, d in result["per_attribute"].items():
        k = card.attributes.index(name)
        d["accuracy_tuned"] = float(mt.accuracy[k])
        d["balanced_accuracy_tuned"] = float(mt.balanced_accuracy[k])
        d["tuned_threshold"] = float(card.thresholds[k])
    result.update(
        mean_accuracy_tuned=mt.mean_accuracy,
        balanced_accuracy_tuned=mt.mean_balanced_accuracy,
        split=split,
        data=ds.name,
        layout=ds.layout,
        aligned=ds.aligned,
        frame=ds.frame,
        skipped_images=len(crops.skipped),
        checkpoint=str(checkpoint),
        model=card.name,
        thresholds_tuned_on=card.training.get("thresholds_tuned_on", "none"),
    )
    train_idx = ds.partition == 0
    if train_idx.any():
        result["majority_accuracy"] = majority_accuracy(ds.labels[train_idx], crops.labels)
    return result


def parse_frame(text: str) -> tuple[float, float, float, float] | None:
    if text == "full":
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--frame must be auto, full or x0,y0,x1,y1 (fractions), got {text!r}") from None
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
    if not result["aligned"]:
        how = "LFW's fixed frame" if result["frame"] else "the whole image"
        c.print(
            f"[yellow]note:[/] {result['data']} is not aligned; faces were cropped with {how} (no face detector)."
        )


def run(args: argparse.Namespace) -> int:
    from .._lazy import require

    require("torch", "evaluating a checkpoint")
    result = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        args.split,
        args.format,
        args.device or "auto",
        args.batch_size,
        args.workers or 4,
        frame=args.frame,
    )
    print_result(result, args.sort)
    if args.json:
        log.info("wrote %s", write_json(args.json, result))
    return 0
