"""``lsa-edge export triton|deepstream``: a model package as a Triton model repository, or as a DeepStream
nvinfer secondary-GIE config. The writers live in the build stage (lsa_edge.engines.triton_repo and
lsa_edge.engines.deepstream), imported inside ``run``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._common import user_path

HELP = "export a model package for fleet serving: a Triton model repository or a DeepStream SGIE config"
EPILOG = """examples:
  lsa-edge export triton --out triton_repo                     (the shipped default model)
  lsa-edge export triton --out repo build/int8 --trt-cache-path /models/lsa_edge_attributes/1
  lsa-edge export triton --out repo build/fp16 --platform onnxruntime --instances 2
  lsa-edge export deepstream --out ds build/fp16 --operate-on-gie-id 1 --operate-on-class-ids 0
"""


def _common(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="a build folder (from lsa-edge build) or an lsa-edge ONNX (default: the shipped default model)",
    )
    p.add_argument("--out", metavar="DIR", type=user_path, required=True, help=f"the {what} folder to write")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out (the old one stays until the new is complete)",
    )


def _ids(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(";" if ";" in text else ","))
    except ValueError:
        raise ConfigError(
            f"--operate-on-class-ids must be whole numbers like 0 or 0,2; got {text!r}"
        ) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    targets = p.add_subparsers(dest="target", metavar="TARGET")
    t = targets.add_parser(
        "triton", help="a Triton Inference Server model repository (attributes + detector)"
    )
    _common(t, "model repository")
    t.add_argument(
        "--platform",
        choices=["auto", "onnxruntime", "tensorrt"],
        default="auto",
        help="attribute model as ONNX Runtime (+ its TensorRT accelerator) or the package's TensorRT engine "
        "(default auto: the engine where the package has one)",
    )
    t.add_argument(
        "--instances", type=int, default=1, metavar="N", help="model instances per device (default 1)"
    )
    t.add_argument(
        "--instance-kind", choices=["gpu", "cpu"], default="gpu", help="KIND_GPU (default) or KIND_CPU"
    )
    t.add_argument(
        "--queue-delay-us",
        type=int,
        default=100,
        metavar="US",
        help="how long Triton may hold a request to form a larger batch, µs (default 100: a GPU server; "
        "lsa-edge serve's CPU default is 2000)",
    )
    t.add_argument(
        "--trt-cache-path",
        metavar="PATH",
        help="the attribute model's version folder as the server sees it (ONNX Runtime's TensorRT caches and "
        "INT8 table), e.g. /models/lsa_edge_attributes/1",
    )
    t.add_argument("--no-detector", action="store_true", help="leave out the face detector model")
    t.set_defaults(run=run)
    d = targets.add_parser("deepstream", help="an nvinfer secondary-GIE config for the attribute model")
    _common(d, "DeepStream")
    d.add_argument(
        "--operate-on-gie-id",
        type=int,
        default=1,
        metavar="ID",
        help="the face detector's GIE id (default 1)",
    )
    d.add_argument(
        "--operate-on-class-ids",
        type=_ids,
        default=(0,),
        metavar="IDS",
        help="its face class ids (default 0)",
    )
    d.add_argument("--gie-unique-id", type=int, default=2, metavar="ID", help="this GIE's id (default 2)")
    d.add_argument("--gpu-id", type=int, default=0, metavar="N", help="default 0")
    d.set_defaults(run=run)
    p.set_defaults(run=_no_target, export_parser=p)


def _no_target(args: argparse.Namespace) -> int:
    args.export_parser.print_help()
    return 2


def _model(args: argparse.Namespace) -> str:
    if args.model:
        return str(args.model)
    from ..package import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "manifest.json").is_file():
        raise ConfigError(
            "no MODEL given and no default model is installed with this lsa-edge; pass a build folder"
        )
    return str(DEFAULT_MODEL_DIR)


def _write(args: argparse.Namespace, model: str) -> Any:
    if args.target == "triton":
        from lsa_edge.engines.triton_repo import TritonOptions, write_repository

        opts = TritonOptions(
            platform=args.platform,
            instances=args.instances,
            instance_kind=args.instance_kind,
            max_queue_delay_us=args.queue_delay_us,
            trt_cache_path=args.trt_cache_path,
            detector=not args.no_detector,
        )
        return write_repository(model, args.out, opts, overwrite=args.overwrite)
    from lsa_edge.engines.deepstream import DeepStreamOptions, write_deepstream

    ds = DeepStreamOptions(
        operate_on_gie_id=args.operate_on_gie_id,
        operate_on_class_ids=args.operate_on_class_ids,
        gie_unique_id=args.gie_unique_id,
        gpu_id=args.gpu_id,
    )
    return write_deepstream(model, args.out, ds, overwrite=args.overwrite)


def run(args: argparse.Namespace) -> int:
    from .._lazy import require
    from ._common import check_output, console, model_inputs

    model = _model(args)
    check_output("--out", args.out, model_inputs(model), overwrite=args.overwrite, folder=True)
    require("onnx", f"lsa-edge export {args.target}")
    res = _write(args, model)
    from rich.table import Table

    c = console()
    tab = Table(title=f"lsa-edge export {args.target}: {model} → {res.out}")
    tab.add_column("file")
    tab.add_column("KB", justify="right")
    tab.add_column("what")
    for name, what in res.files:
        tab.add_row(name, f"{(Path(res.out) / name).stat().st_size / 1e3:.1f}", what)
    c.print(tab)
    for note in res.notes:
        c.print(f"  {note}")
    c.print(f"see {Path(res.out) / 'README.md'}")
    return 0
