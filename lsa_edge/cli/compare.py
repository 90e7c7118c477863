"""``lsa-edge compare A B``: two artifacts of one model on the same face crops, output and per attribute."""

from __future__ import annotations

import argparse
import logging

from ._common import add_data_args, user_path, write_json

HELP = "run two artifacts (checkpoint, ONNX, Q/DQ ONNX, build folder) on the same faces and compare them"
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help=HELP,
        description=HELP + ": probability differences, decision agreement and accuracy per attribute.",
        epilog="Example: lsa-edge compare runs/mnv2/best.pt build/int8/model_int8_cpu.onnx "
        "--data ../shared/data/celeba-10k --split val",
    )
    p.add_argument("a", metavar="A", help="reference artifact")
    p.add_argument("b", metavar="B", help="artifact to compare with A")
    add_data_args(p)
    p.add_argument(
        "--split",
        default="val",
        choices=["train", "val", "test", "all"],
        help="data set split (default: val)",
    )
    p.add_argument("--count", default="500", metavar="N|all", help="faces (default: 500)")
    p.add_argument("--json", metavar="OUT", type=user_path, help="write the comparison as JSON")
    p.add_argument(
        "--all", action="store_true", help="list every attribute (default: the 10 least in agreement)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ._common import check_json_out, check_number, check_workers

    inputs = [(args.a, "the artifact A"), (args.b, "the artifact B"), (args.data, "the data set")]
    check_json_out(args.json, inputs=inputs)  # a mistake costs a second, not the whole run; never an input
    workers = check_workers(args.workers)
    if args.count == "all":
        count = None
    else:
        try:
            count = int(args.count)
        except ValueError:
            raise ConfigError(f"--count must be a number of faces or 'all', got {args.count!r}") from None
        check_number(count, "count", flag="--count", lo=1, integer=True, hint="a number of faces, or 'all'")
    from rich.table import Table

    from lsa_edge.calibration.dataset import load_faces
    from lsa_edge.engines import compare as _compare

    from ._common import console

    compare_probs, open_artifact = _compare.compare_probs, _compare.open_artifact
    same_preprocessing = _compare.same_preprocessing
    a, b = open_artifact(args.a), open_artifact(args.b)
    same_preprocessing(a.card, b.card)
    pre = a.card.preprocessing
    faces = load_faces(args.data, pre, split=args.split, count=count, fmt=args.format, workers=workers)
    x = faces.tensors(pre)
    res = compare_probs(a.label, b.label, a.predict(x), b.predict(x), a.card, faces.labels)
    if args.json:  # the file first: a closed stdout (| head) must not lose it
        log.info("wrote %s", write_json(args.json, res.to_dict()))
    c = console()
    c.print(f"A = {a.label} ({a.kind})\nB = {b.label} ({b.kind})\nfaces: {faces.source}")
    head = Table(title="outputs (probabilities)")
    for col in ("max |Δp|", "mean |Δp|", "p99 |Δp|", "decisions agree %", "acc A %", "acc B %"):
        head.add_column(col, justify="right")
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    head.add_row(
        f"{res.max_abs_diff:.2e}",
        f"{res.mean_abs_diff:.2e}",
        f"{res.p99_abs_diff:.2e}",
        f"{res.decision_agreement:.2f}",
        fmt(res.accuracy_a),
        fmt(res.accuracy_b),
    )
    c.print(head)
    rows = sorted(res.per_attribute.items(), key=lambda kv: kv[1]["agreement"])
    tab = Table(title="per attribute" + ("" if args.all else " (10 least in agreement; --all for every one)"))
    for col in ("attribute", "agree %", "mean |Δp|", "acc A %", "acc B %", "Δ acc"):
        tab.add_column(col, justify="left" if col == "attribute" else "right")
    for name, r in rows if args.all else rows[:10]:
        acc_a, acc_b = r.get("accuracy_a"), r.get("accuracy_b")
        delta = "–" if acc_a is None else f"{acc_b - acc_a:+.2f}"
        tab.add_row(name, f"{r['agreement']:.2f}", f"{r['mean_abs_diff']:.2e}", fmt(acc_a), fmt(acc_b), delta)
    c.print(tab)
    return 0
