"""``lsa-edge build``: export, reduce precision (accuracy-gated), and build TensorRT engines or a bundle."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .._fileio import check_writable
from ..errors import ConfigError
from ._common import user_path

HELP = "export a model to ONNX, FP16/INT8 (accuracy-gated), and TensorRT engines or a device bundle"
log = logging.getLogger(__name__)

EPILOG = """examples:
  lsa-edge build --precision fp16                                               (the shipped default model → build/default-fp16)
  lsa-edge build runs/mnv2/best.pt --precision fp16 --calib-data ../shared/data/celeba-10k --out build/fp16
  lsa-edge build runs/mnv2/best.pt --precision int8 --calib-data ../shared/data/celeba-10k --calib-method entropy
  lsa-edge build build/fp16/model.onnx --precision fp32 --out build/fp32      (an exported ONNX: no torch needed)
  lsa-edge build --from-bundle build/fp16                                      (on the device, with TensorRT)

Without TensorRT the output folder is a build bundle: copy it to the device and run the command it prints.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="a checkpoint (best.pt or its run folder) or an lsa-edge ONNX (default: the shipped default model)",
    )
    p.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "int8"], help="default: fp16")
    p.add_argument(
        "--out", metavar="DIR", type=user_path, help="output folder (default: build/<model>-<precision>)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out (the old build stays until the new one is complete)",
    )
    p.add_argument(
        "--from-bundle",
        metavar="DIR",
        type=user_path,
        help="build the engines a bundle describes (on the device)",
    )
    _add_data_args(p.add_argument_group("faces for parity, calibration and the accuracy gate"))
    _add_engine_args(p.add_argument_group("ONNX and TensorRT"))
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _add_data_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--calib-data",
        metavar="DIR",
        type=user_path,
        help="data set (any layout) or folder of aligned face crops",
    )
    g.add_argument(
        "--val-data",
        metavar="DIR",
        type=user_path,
        help="labelled data set for the gate (default: --calib-data, val split)",
    )
    g.add_argument(
        "--format",
        choices=["celeba", "csv", "lfwa-mat"],
        default=None,
        help="data layout (default: detected)",
    )
    g.add_argument(
        "--calib-count", type=int, default=512, metavar="N", help="calibration faces (default: 512)"
    )
    g.add_argument("--val-count", default="2000", metavar="N|all", help="validation faces (default: 2000)")
    g.add_argument(
        "--calib-method",
        default="percentile",
        choices=["minmax", "entropy", "percentile"],
        help="activation range estimate (default: percentile, 99.99%%)",
    )
    g.add_argument("--max-accuracy-drop", type=float, default=0.5, metavar="POINTS", help="default: 0.5")
    g.add_argument("--exclude-nodes", default="", metavar="A,B", help="INT8: nodes to keep in float")
    g.add_argument("--fp32-ops", default="", metavar="OP,OP", help="FP16: more op types to keep in FP32")
    g.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    g.add_argument("--workers", type=int, default=4, metavar="N", help="image decoding threads (default: 4)")


def _add_engine_args(e: argparse._ArgumentGroup) -> None:
    e.add_argument(
        "--opset", type=int, default=None, help="ONNX opset of the export (default: 17; 16 with --trt 8.5)"
    )
    e.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    e.add_argument(
        "--batch", default="1,8,16", metavar="MIN,OPT,MAX", help="faces per call (default: 1,8,16)"
    )
    e.add_argument(
        "--workspace", type=int, default=1024, metavar="MIB", help="builder workspace (default: 1024)"
    )
    e.add_argument(
        "--dla-core", type=int, default=None, metavar="N", help="build for DLA core N (GPU fallback)"
    )
    e.add_argument(
        "--trt", choices=["8.5", "10", "11"], default=None, help="target TensorRT (default: local, else 10)"
    )
    e.add_argument(
        "--no-detector", action="store_true", help="do not build the face detector beside the model"
    )
    e.add_argument(
        "--require-engine", action="store_true", help="fail (exit 1) when no engine can be built here"
    )


def parse_batch(text: str) -> tuple[int, int, int]:
    try:
        lo, opt, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--batch must be MIN,OPT,MAX (three integers), got {text!r}") from None
    from lsa_edge.engines.build import check_batch

    check_batch((lo, opt, hi))
    return lo, opt, hi


def config_from_args(args: argparse.Namespace) -> Any:
    from lsa_edge.engines.build import BuildConfig

    model = Path(args.model)
    name = model.parent.name if model.name == "best.pt" else model.stem if model.suffix else model.name
    out = Path(args.out) if args.out else Path("build") / f"{name}-{args.precision}"
    if args.val_count == "all":
        val_count = None
    else:
        try:
            val_count = int(args.val_count)
        except ValueError:
            raise ConfigError(f"--val-count must be a number or 'all', got {args.val_count!r}") from None
    return BuildConfig(
        precision=args.precision,
        out=out,
        opset=args.opset,
        simplify=not args.no_simplify,
        calib_data=args.calib_data,
        val_data=args.val_data,
        data_format=args.format,
        calib_count=args.calib_count,
        val_count=val_count,
        calib_method=args.calib_method,
        max_accuracy_drop=args.max_accuracy_drop,
        batch=parse_batch(args.batch),
        workspace_mib=args.workspace,
        dla_core=args.dla_core,
        tensorrt=args.trt,
        exclude_nodes=tuple(n for n in args.exclude_nodes.split(",") if n),
        fp32_ops=tuple(n for n in args.fp32_ops.split(",") if n),
        detector=not args.no_detector,
        require_engine=args.require_engine,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )


def print_summary(manifest: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    from ._common import console

    c = console()
    files = manifest["files"]
    tab = Table(title=f"lsa-edge build: {manifest['source']} → {out} ({manifest['precision']})")
    for col in ("file", "MB", "what", "checked"):
        tab.add_column(col, justify="right" if col == "MB" else "left")
    acc = manifest.get("accuracy", {})
    labelled = manifest.get("validation", {}).get("labelled", True)

    def gate(key: str) -> str:
        a = acc.get(key)
        if not a:
            return ""
        if not labelled:  # built-in faces: a numerics check, not accuracy
            return f"decisions agree {a['decision_agreement']:.2f}% with FP32 ({a['faces']} built-in faces)"
        return f"Δacc {-a['delta_points'] + 0.0:+.2f} pts (FP32 {a['reference_accuracy']:.2f}%, {a['faces']} faces)"

    parity = manifest["parity_max_abs_diff"]
    what = {
        "model.onnx": (
            "FP32 ONNX",
            f"max |Δp| vs torch {parity:.1e}" if parity is not None else "exported earlier",
        ),
        "model_fp16.onnx": ("FP16 ONNX (TensorRT 10/11, strongly typed)", gate("fp16")),
        "model_int8_trt.onnx": ("Q/DQ s8/s8 (TensorRT; + FP16 rest on 8.5/10)", gate("int8_trt_fp16")),
        "model_int8_cpu.onnx": ("Q/DQ u8/s8 (ONNX Runtime CPU)", gate("int8_cpu")),
        "calibration.cache": ("TensorRT 8.5 implicit INT8 cache", ""),
    }
    for src, lowered in manifest.get("opset16", {}).items():
        diff = manifest.get("opset16_parity_max_abs_diff", {}).get(lowered)
        what[lowered] = (
            f"{what.get(src, (src,))[0]} at opset 16 (TensorRT 8.5)",
            f"max |Δp| vs {src} {diff:.1e}" if diff is not None else "",
        )
    for name, info in files.items():
        det = "face detector (FP16: TensorRT 10/11)" if name.endswith("_fp16.onnx") else "face detector"
        desc, check = what.get(name, (det if name.startswith("detector/") else "", ""))
        if name.endswith(".json") and name.startswith("calibration_"):
            desc = "ONNX Runtime calibration ranges"
        tab.add_row(name, f"{info['bytes'] / 1e6:.2f}", desc, check)
    c.print(tab)
    for a in acc.values():
        worst = ", ".join(
            f"{w['attribute']} {-w['delta_points']:+.2f}" for w in a["worst"] if w["delta_points"] > 0
        )
        head = "" if not labelled else f"Δacc {-a['delta_points'] + 0.0:+.2f} pts, "
        c.print(
            f"  {a['artifact']}: {head}decisions agree {a['decision_agreement']:.2f}% with FP32; "
            f"{'most changed' if not labelled else 'worst'}: {worst or 'none'}"
        )
    if manifest["precision"] != "fp32" and labelled:
        c.print(
            f"accuracy delta of what TensorRT {manifest['tensorrt_target']} runs: "
            f"{-manifest['accuracy_delta'] + 0.0:+.2f} points (allowed: −{manifest['max_accuracy_drop']:g})"
        )
    elif manifest["precision"] != "fp32":
        c.print(
            "[yellow]the labelled accuracy gate was skipped[/] (no --calib-data): only the numerics were checked, "
            f"on built-in faces (decisions must agree on ≥ {100 - manifest['max_accuracy_drop']:g}%). "
            "For the gate: lsa-edge build ... --calib-data DIR (labelled faces)"
        )
    if manifest["engine"]:
        c.print(f"engine: {out / manifest['engine']} (TensorRT {manifest['tensorrt_local']})")
    else:
        c.print(
            "[yellow]no TensorRT engine was built here[/] (TensorRT is not installed). This folder is a build bundle; "
            "on the device run:"
        )
        c.print(f"  cd {out} && {manifest['tensorrt_commands']['lsa_edge']}")
        c.print(f"or see {out / 'DEPLOY.md'} for the trtexec commands of TensorRT 8.5, 10 and 11.")
    c.print(
        f"CPU inference at this precision: {out / manifest['cpu_onnx']}; manifest: {out / 'manifest.json'}"
    )


def run(args: argparse.Namespace) -> int:
    from .._lazy import require

    if args.from_bundle:  # on the device: TensorRT only
        from lsa_edge.engines.build import build_from_manifest, read_manifest

        bundle = Path(args.from_bundle)
        if bundle.is_dir():  # engines and the manifest are added in place (each file atomically)
            check_writable(bundle, "--from-bundle")
        from ._common import check_number

        check_number(args.workspace, "workspace_mib", flag="--workspace", lo=1, integer=True, hint="MiB")
        check_number(args.dla_core, "dla_core", flag="--dla-core", lo=0, integer=True, optional=True)
        overrides = {
            "batch": parse_batch(args.batch) if args.batch else None,
            "workspace_mib": args.workspace,
            "dla_core": args.dla_core,
        }
        manifest = build_from_manifest(bundle, read_manifest(bundle), overrides=overrides)
        print_summary(manifest, bundle)
        return 0
    if not args.model:  # the card's own command: `lsa-edge build --precision fp16` builds the shipped model
        from lsa_edge.package import DEFAULT_MODEL_DIR

        args.model = str(DEFAULT_MODEL_DIR / "model.onnx")
        if not Path(args.model).is_file():
            raise ConfigError(
                f"no MODEL given and the default model is missing ({args.model}); give a checkpoint or an "
                "lsa-edge ONNX, or --from-bundle DIR on the device"
            )
        if not args.out:
            args.out = str(Path("build") / f"default-{args.precision}")
            out = Path(args.out)
            if not args.overwrite and out.is_dir() and any(out.iterdir()):
                raise ConfigError(
                    f"{out} holds an earlier build of the shipped default model; nothing was changed. Add "
                    f"--overwrite to rebuild it there, or --out DIR for another folder"
                )
        log.info("no MODEL given: building the shipped default model into %s", args.out)
    from lsa_edge.engines.build import Build

    require("onnx", "lsa-edge build")
    require("onnxruntime", "lsa-edge build")
    cfg = config_from_args(args)
    manifest = Build(args.model, cfg).run()
    print_summary(manifest, cfg.out)
    return 0
