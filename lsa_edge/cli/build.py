"""``lsa-edge build``: export, reduce precision (accuracy-gated), and build TensorRT engines or a bundle."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from .._fileio import check_writable
from .._manifest import GENERATIONS, PRECISIONS
from ..errors import ConfigError
from ..manifest import (
    BUILD_CONFIG,
    CALIBRATION_CACHE,
    DEPLOY_MD,
    DETECTOR_DIR,
    MANIFEST,
    MODEL_FP16_ONNX,
    MODEL_INT8_CPU_ONNX,
    MODEL_INT8_TRT_ONNX,
    MODEL_ONNX,
    Manifest,
)
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


def _default(name: str) -> Any:
    """BuildConfig's default for field ``name`` (the one home of build defaults; engines.config is light)."""
    from lsa_edge.engines.config import default

    return default(name)


def _shown(name: str) -> str:
    v = _default(name)
    return ",".join(str(n) for n in v) if isinstance(v, tuple) else str(v)


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
    p.add_argument(
        "--config",
        metavar="FILE",
        type=user_path,
        help="YAML or JSON file of BuildConfig fields (flags given here override it); the resolved config is "
        f"written to {BUILD_CONFIG} in --out",
    )
    p.add_argument("--precision", choices=list(PRECISIONS), help=f"default: {_shown('precision')}")
    p.add_argument(
        "--out", metavar="DIR", type=user_path, help="output folder (default: build/<model>-<precision>)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
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
    p.add_argument("--no-progress", action="store_true", default=None, help="no progress bars")
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
        "--calib-count", type=int, metavar="N", help=f"calibration faces (default: {_shown('calib_count')})"
    )
    g.add_argument("--val-count", metavar="N|all", help=f"validation faces (default: {_shown('val_count')})")
    g.add_argument(
        "--calib-method",
        choices=["minmax", "entropy", "percentile"],  # calibration.quantize.METHODS (it imports numpy)
        help=f"activation range estimate (default: {_shown('calib_method')}, 99.99%%)",
    )
    g.add_argument(
        "--max-accuracy-drop", type=float, metavar="POINTS", help=f"default: {_shown('max_accuracy_drop')}"
    )
    g.add_argument("--exclude-nodes", metavar="A,B", help="INT8: nodes to keep in float")
    g.add_argument("--fp32-ops", metavar="OP,OP", help="FP16: more op types to keep in FP32")
    g.add_argument("--seed", type=int, help=f"sampling seed (default: {_shown('seed')})")
    g.add_argument(
        "--workers", type=int, metavar="N", help=f"image decoding threads (default: {_shown('workers')})"
    )


def _add_engine_args(e: argparse._ArgumentGroup) -> None:
    e.add_argument(
        "--opset", type=int, default=None, help="ONNX opset of the export (default: 17; 16 with --trt 8.5)"
    )
    e.add_argument("--no-simplify", action="store_true", default=None, help="skip onnxsim")
    e.add_argument(
        "--batch",
        metavar="MIN,OPT,MAX",
        help=f"faces per call (default: {_shown('batch')}; --from-bundle: the bundle's)",
    )
    e.add_argument(
        "--workspace",
        type=int,
        metavar="MIB",
        help=f"builder workspace (default: {_shown('workspace_mib')}; --from-bundle: the bundle's)",
    )
    e.add_argument(
        "--dla-core", type=int, default=None, metavar="N", help="build for DLA core N (GPU fallback)"
    )
    e.add_argument(
        "--trt", choices=list(GENERATIONS), default=None, help="target TensorRT (default: local, else 10)"
    )
    e.add_argument(
        "--no-detector",
        action="store_true",
        default=None,
        help="do not build the face detector beside the model",
    )
    e.add_argument(
        "--require-engine",
        action="store_true",
        default=None,
        help="fail (exit 1) when no engine can be built here",
    )


def parse_batch(text: str) -> tuple[int, int, int]:
    try:
        lo, opt, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--batch must be MIN,OPT,MAX (three integers), got {text!r}") from None
    from lsa_edge.engines.config import check_batch

    check_batch((lo, opt, hi))
    return lo, opt, hi


def _names(text: str) -> tuple[str, ...]:
    return tuple(n for n in text.split(",") if n)


def _val_count(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--val-count must be a number or 'all', got {text!r}") from None


# flag attribute → (BuildConfig field, how the flag's text becomes the field's value)
_FLAGS: dict[str, tuple[str, Any]] = {
    "precision": ("precision", None),
    "calib_data": ("calib_data", None),
    "val_data": ("val_data", None),
    "format": ("data_format", None),
    "calib_count": ("calib_count", None),
    "val_count": ("val_count", _val_count),
    "calib_method": ("calib_method", None),
    "max_accuracy_drop": ("max_accuracy_drop", None),
    "exclude_nodes": ("exclude_nodes", _names),
    "fp32_ops": ("fp32_ops", _names),
    "seed": ("seed", None),
    "workers": ("workers", None),
    "opset": ("opset", None),
    "batch": ("batch", parse_batch),
    "workspace": ("workspace_mib", None),
    "dla_core": ("dla_core", None),
    "trt": ("tensorrt", None),
    "require_engine": ("require_engine", None),
    "overwrite": ("overwrite", None),
}
_SWITCHES = {"no_simplify": "simplify", "no_detector": "detector", "no_progress": "progress"}  # flag: off


def resolved_fields(args: argparse.Namespace) -> dict[str, Any]:
    """BuildConfig's fields from ``--config FILE`` (checked: unknown keys and wrong types are errors naming
    the file and the key), then every flag given on the command line over them."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        from lsa_edge.engines.config import BuildConfig

        from .train import load_config_file

        where = f"config file {args.config}"
        values = BuildConfig.check_mapping(load_config_file(args.config, "BuildConfig"), where=where)
    for flag, (name, parse) in _FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            values[name] = parse(v) if parse else v
    for flag, name in _SWITCHES.items():
        if getattr(args, flag, None):
            values[name] = False
    return values


def config_from_args(args: argparse.Namespace) -> Any:
    from lsa_edge.engines.config import BuildConfig

    values = resolved_fields(args)
    precision = values.get("precision", _default("precision"))
    if args.out:
        values["out"] = Path(args.out)
    elif "out" not in values:
        model = Path(args.model)
        name = model.parent.name if model.name == "best.pt" else model.stem if model.suffix else model.name
        values["out"] = Path("build") / f"{name}-{precision}"
    return BuildConfig(**values)


def _file_rows(m: Manifest) -> dict[str, tuple[str, str]]:
    """What each file of the build is and how it was checked, for the summary table."""
    acc = m.accuracy or {}
    labelled = (m.validation or {}).get("labelled", True)

    def gate(key: str) -> str:
        a = acc.get(key)
        if not a:
            return ""
        if not labelled:  # built-in faces: a numerics check, not accuracy
            return f"decisions agree {a['decision_agreement']:.2f}% with FP32 ({a['faces']} built-in faces)"
        return f"Δacc {-a['delta_points'] + 0.0:+.2f} pts (FP32 {a['reference_accuracy']:.2f}%, {a['faces']} faces)"

    parity = m.parity_max_abs_diff
    what = {
        MODEL_ONNX: (
            "FP32 ONNX",
            f"max |Δp| vs torch {parity:.1e}" if parity is not None else "exported earlier",
        ),
        MODEL_FP16_ONNX: ("FP16 ONNX (TensorRT 10/11, strongly typed)", gate("fp16")),
        MODEL_INT8_TRT_ONNX: ("Q/DQ s8/s8 (TensorRT; + FP16 rest on 8.5/10)", gate("int8_trt_fp16")),
        MODEL_INT8_CPU_ONNX: ("Q/DQ u8/s8 (ONNX Runtime CPU)", gate("int8_cpu")),
        CALIBRATION_CACHE: ("TensorRT 8.5 implicit INT8 cache", ""),
    }
    for src, lowered in (m.opset16 or {}).items():
        diff = (m.opset16_parity_max_abs_diff or {}).get(lowered)
        what[lowered] = (
            f"{what.get(src, (src,))[0]} at opset 16 (TensorRT 8.5)",
            f"max |Δp| vs {src} {diff:.1e}" if diff is not None else "",
        )
    return what


def _print_checks(c: Any, m: Manifest) -> None:
    acc = m.accuracy or {}
    labelled = (m.validation or {}).get("labelled", True)
    for a in acc.values():
        worst = ", ".join(
            f"{w['attribute']} {-w['delta_points']:+.2f}" for w in a["worst"] if w["delta_points"] > 0
        )
        head = "" if not labelled else f"Δacc {-a['delta_points'] + 0.0:+.2f} pts, "
        c.print(
            f"  {a['artifact']}: {head}decisions agree {a['decision_agreement']:.2f}% with FP32; "
            f"{'most changed' if not labelled else 'worst'}: {worst or 'none'}"
        )
    drop = m.max_accuracy_drop
    if m.precision != "fp32" and labelled:
        c.print(
            f"accuracy delta of what TensorRT {m.tensorrt_target} runs: "
            f"{-(m.accuracy_delta or 0.0) + 0.0:+.2f} points (allowed: −{drop:g})"
        )
    elif m.precision != "fp32":
        c.print(
            "[yellow]the labelled accuracy gate was skipped[/] (no --calib-data): only the numerics were checked, "
            f"on built-in faces (decisions must agree on ≥ {100 - (drop or 0):g}%). "
            "For the gate: lsa-edge build ... --calib-data DIR (labelled faces)"
        )


def print_summary(manifest: Manifest | dict[str, Any], out: Path) -> None:
    from rich.table import Table

    from ._common import console

    m = manifest if isinstance(manifest, Manifest) else Manifest.from_json(manifest)
    c = console()
    tab = Table(title=f"lsa-edge build: {m.source} → {out} ({m.precision})")
    for col in ("file", "MB", "what", "checked"):
        tab.add_column(col, justify="right" if col == "MB" else "left")
    what = _file_rows(m)
    for name, info in (m.files or {}).items():
        det = "face detector (FP16: TensorRT 10/11)" if name.endswith("_fp16.onnx") else "face detector"
        desc, check = what.get(name, (det if name.startswith(f"{DETECTOR_DIR}/") else "", ""))
        if name.endswith(".json") and name.startswith("calibration_"):
            desc = "ONNX Runtime calibration ranges"
        tab.add_row(name, f"{info['bytes'] / 1e6:.2f}", desc, check)
    c.print(tab)
    _print_checks(c, m)
    if m.engine:
        c.print(f"engine: {out / m.engine} (TensorRT {m.tensorrt_local})")
    else:
        c.print(
            "[yellow]no TensorRT engine was built here[/] (TensorRT is not installed). This folder is a build bundle; "
            "on the device run:"
        )
        c.print(f"  cd {out} && {(m.tensorrt_commands or {}).get('lsa_edge')}")
        c.print(f"or see {out / DEPLOY_MD} for the trtexec commands of TensorRT 8.5, 10 and 11.")
    c.print(f"CPU inference at this precision: {out / str(m.cpu_onnx)}; manifest: {out / MANIFEST}")


def _from_bundle(args: argparse.Namespace) -> int:
    """On the device: the engines a bundle describes (TensorRT only)."""
    from lsa_edge.engines.from_bundle import build_engines, read_bundle

    bundle = Path(args.from_bundle)
    if bundle.is_dir():  # engines and the manifest are added in place (each file atomically)
        check_writable(bundle, "--from-bundle")
    from ._common import check_number

    values = resolved_fields(args)
    workspace = values.get("workspace_mib")
    check_number(
        workspace, "workspace_mib", flag="--workspace", lo=1, integer=True, optional=True, hint="MiB"
    )
    check_number(values.get("dla_core"), "dla_core", flag="--dla-core", lo=0, integer=True, optional=True)
    # Given (flags or --config) or None: None leaves batch, workspace and DLA core to the bundle's manifest,
    # which recorded the desktop build's.
    overrides = {name: values.get(name) for name in ("batch", "workspace_mib", "dla_core")}
    manifest = build_engines(bundle, read_bundle(bundle), overrides=overrides)
    print_summary(manifest, bundle)
    return 0


def _default_model(args: argparse.Namespace) -> None:
    """No MODEL: the card's own command, `lsa-edge build --precision fp16`, builds the shipped model."""
    from lsa_edge.package import DEFAULT_MODEL_DIR

    args.model = str(DEFAULT_MODEL_DIR / MODEL_ONNX)
    if not Path(args.model).is_file():
        raise ConfigError(
            f"no MODEL given and the default model is missing ({args.model}); give a checkpoint or an "
            "lsa-edge ONNX, or --from-bundle DIR on the device"
        )
    values = resolved_fields(args)
    if not args.out and "out" not in values:
        args.out = str(Path("build") / f"default-{values.get('precision', _default('precision'))}")
        out = Path(args.out)
        if not values.get("overwrite") and out.is_dir() and any(out.iterdir()):
            raise ConfigError(
                f"{out} holds an earlier build of the shipped default model; nothing was changed. Add "
                f"--overwrite to rebuild it there, or --out DIR for another folder"
            )
    log.info("no MODEL given: building the shipped default model into %s", args.out or values["out"])


def run(args: argparse.Namespace) -> int:
    from .._lazy import require

    if args.from_bundle:
        return _from_bundle(args)
    if not args.model:
        _default_model(args)
    cfg = config_from_args(args)  # the flags and --config first: a usage error needs no onnx to be said
    require("onnx", "lsa-edge build")
    require("onnxruntime", "lsa-edge build")
    from lsa_edge.engines.build import build

    manifest = build(args.model, cfg)
    print_summary(manifest, cfg.out)
    return 0
