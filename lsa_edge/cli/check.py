"""``lsa-edge check``: a static TensorRT-compatibility lint of an ONNX model or a build folder, on any CPU.

A build folder is opened as the runtime opens it first (manifest validated, every file checked against
its recorded sha256), then each TensorRT generation's graph from the manifest is linted."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .._manifest import GENERATIONS  # the one list (engines.lint's table is keyed by it); no onnx import
from ._common import user_path, write_json

HELP = "lint an ONNX model for TensorRT 8.5 / 10 / 11 on the CPU: operators, opset, shapes, types, Q/DQ"
log = logging.getLogger(__name__)

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help=HELP,
        description=HELP
        + ". Reads the graph only (no TensorRT, no GPU): what the generation's ONNX parser lacks, dynamic "
        "dimensions other than the batch, INT64/DOUBLE data, Q/DQ placement, and what strong typing "
        "(TensorRT 11) builds. Exit status 1 when there is an error (or, with --strict, a warning).",
        epilog="Example: lsa-edge check model.onnx --trt all --json check.json",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="the ONNX model to check, or a build folder (its files are verified, then its graphs linted)",
    )
    p.add_argument(
        "--trt",
        choices=[*GENERATIONS, "all"],
        default="10",
        help="TensorRT generation: 8.5 (JetPack 5), 10 (JetPack 6), 11 (Thor), or all (default: 10)",
    )
    p.add_argument(
        "--json", metavar="OUT", type=user_path, help="write the findings and the model summary as JSON"
    )
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit status 1)")
    p.add_argument("--no-info", action="store_true", help="hide info findings in the table")
    p.add_argument(
        "--nodes",
        action="store_true",
        help="also list the graph's nodes (name, op, output), e.g. to pick names for --exclude-nodes",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ._common import check_json_out

    # a mistake costs a second, not the whole run; never the model it checks
    check_json_out(args.json, inputs=[(args.model, "the model")])
    from lsa_edge.engines.lint import lint_report, load_onnx

    gens = GENERATIONS if args.trt == "all" else (args.trt,)
    target = Path(args.model)
    graphs = package_graphs(target, gens) if target.is_dir() else dict.fromkeys(gens, target)
    protos = {path: load_onnx(path) for path in dict.fromkeys(graphs.values())}  # each graph once
    reports = [lint_report(protos[graphs[g]], g) for g in gens]
    for path, proto in protos.items():
        if args.nodes:
            print_nodes(proto)
        shown = [r for g, r in zip(gens, reports) if graphs[g] == path]
        print_reports(shown, str(path), show_info=not args.no_info)
    failed = any(r.failed(args.strict) for r in reports)
    if args.json:
        out: dict[str, Any] = {
            "model": str(args.model),
            "strict": bool(args.strict),
            "passed": not failed,
            "summary": reports[0].summary.to_dict(),
            "results": {r.trt: {k: v for k, v in r.to_dict().items() if k != "summary"} for r in reports},
        }
        if target.is_dir():
            out["graphs"] = {g: str(p.relative_to(target)) for g, p in graphs.items()}
        log.info("wrote %s", write_json(args.json, out))
    return 1 if failed else 0


def package_graphs(folder: Path, gens: tuple[str, ...]) -> dict[str, Path]:
    """Each generation's graph in a build folder, after the package checks of the runtime's loader."""
    from lsa_edge._manifest import member
    from lsa_edge.errors import ConfigError
    from lsa_edge.manifest import MANIFEST, Manifest
    from lsa_edge.package import ModelPackage

    if not (folder / MANIFEST).is_file():
        raise ConfigError(f"{folder} is a folder without {MANIFEST}; pass an .onnx file or a build folder")
    ModelPackage.open(folder)  # the manifest, the card, every file's sha256: a damaged package stops here
    m = Manifest.read(folder)
    out: dict[str, Path] = {}
    for g in gens:
        by_gen = m.onnx_by_tensorrt if isinstance(m.onnx_by_tensorrt, dict) else {}
        name = by_gen.get(g) if isinstance(by_gen.get(g), str) else None
        name = name or m.onnx or m.cpu_onnx
        path = member(folder, name, f'the ONNX for TensorRT {g} ("onnx_by_tensorrt")')
        if path is None:
            raise ConfigError(f"{folder / MANIFEST} names no ONNX graph to check")
        out[g] = path
    return out


def print_reports(reports: list[Any], model: str, show_info: bool = True) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ._common import console

    c = console()
    s = reports[0].summary
    c.print(
        f"[bold]{escape(str(model))}[/]: opset {s.opset}, IR {s.ir_version}, {s.n_nodes} nodes, "
        f"{s.n_parameters:,} parameters{', ' + escape(s.producer) if s.producer else ''}"
    )
    for kind, tensors in (("input", s.inputs), ("output", s.outputs)):
        for t in tensors:
            shape = "×".join(str(d) for d in t.shape) if t.shape is not None else "unknown rank"
            c.print(f"  {kind} {escape(t.name)}: {t.dtype} " + escape(f"[{shape}]"))
    qdq = f"{s.qdq_nodes} Q/DQ nodes" if s.qdq_nodes else "no Q/DQ"
    fp16 = f"{s.fp16_tensors} float16 tensors" if s.fp16_tensors else "no float16 tensors"
    c.print(f"  {qdq}; {fp16}; types {', '.join(s.dtypes) or '-'}")
    c.print("  ops: " + escape(", ".join(f"{op}×{k}" for op, k in s.op_counts)))
    many = len(reports) > 1
    tab = Table(title="TensorRT compatibility", show_lines=False)
    if many:
        tab.add_column("TensorRT", no_wrap=True)
    for col in ("severity", "rule", "where"):
        tab.add_column(col, no_wrap=col != "where", overflow="fold")
    tab.add_column("message", ratio=1, overflow="fold")
    rows = 0
    for r in reports:
        for f in r.findings:
            if f.severity == "info" and not show_info:
                continue
            cells = [f"[{_STYLE[f.severity]}]{f.severity}[/]", f.rule, escape(f.location), escape(f.message)]
            tab.add_row(*([r.trt] if many else []), *cells)
            rows += 1
    if rows:
        c.print(tab)
    for r in reports:
        verdict = "[bold red]fails[/]" if r.errors else "[green]passes[/]"
        c.print(
            f"TensorRT {escape(r.baseline)}: {verdict} — {r.errors} error(s), {r.warnings} warning(s), "
            f"{len(r.findings) - r.errors - r.warnings} note(s)"
        )


def print_nodes(proto: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ._common import console

    tab = Table(title=f"{len(proto.graph.node)} nodes (main graph, in execution order)")
    for col in ("#", "name", "op", "first output"):
        tab.add_column(col, justify="right" if col == "#" else "left", overflow="fold")
    for k, n in enumerate(proto.graph.node):
        tab.add_row(str(k), escape(n.name or "-"), n.op_type, escape(n.output[0] if n.output else "-"))
    console().print(tab)
