"""The options of one build (:class:`BuildConfig`): the single home of build defaults.

Light: imports the core only (calibration methods and onnx lazily, inside validation), so the CLI can
read defaults for its flags and ``--help`` without numpy, onnx or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from lsa_edge._checks import check_field_types, check_number
from lsa_edge._lazy import require
from lsa_edge._manifest import GENERATIONS, PRECISIONS
from lsa_edge.errors import ConfigError, unknown_choice

__all__ = ["DEFAULT_GENERATION", "DETECTOR_BATCH", "BuildConfig", "Precision", "check_batch", "default"]

DEFAULT_GENERATION = "10"  # JetPack 6 (Orin): the TensorRT most Jetsons in the field run today
DETECTOR_BATCH = (1, 1, 4)  # frames per detector call: one camera, up to four
Precision = Literal["fp32", "fp16", "int8"]


def check_batch(batch: Any, flag: str = "--batch") -> None:
    """A TensorRT optimisation profile: three integers with 1 ≤ MIN ≤ OPT ≤ MAX."""
    ok = (
        isinstance(batch, (tuple, list))
        and len(batch) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in batch)
        and 1 <= batch[0] <= batch[1] <= batch[2]
    )
    if not ok:
        raise ConfigError(f"{flag} must be MIN,OPT,MAX with 1 ≤ MIN ≤ OPT ≤ MAX (e.g. 1,8,16), got {batch}")


@dataclass(frozen=True)
class BuildConfig:
    """Options of one build: the one home of their defaults (``lsa-edge build``'s flags, its help text and
    ``--config`` files are derived from these fields; :class:`lsa_edge.engines.engine_spec.EngineSpec` takes
    its batch and workspace defaults from here too)."""

    precision: Precision = "fp16"
    out: Path = Path("build")
    opset: int | None = None  # ONNX opset; None = 17, or 16 for TensorRT 8.5 (no LayerNormalization)
    simplify: bool = True  # onnxsim after export
    calib_data: str | None = None  # data set or image folder: INT8 calibration faces (train split)
    val_data: str | None = None  # labelled data set for parity and the accuracy gate (val split)
    data_format: str | None = None  # layout of the data sets (default: detected)
    calib_count: int = 512  # calibration faces
    val_count: int | None = 2000  # validation faces for the gate (None = the whole split)
    calib_method: str = "percentile"  # minmax | entropy | percentile
    calib_batch: int = 16  # faces per calibration batch
    max_accuracy_drop: float = 0.5  # mean-accuracy points an FP16/INT8 artifact may lose against FP32
    batch: tuple[int, int, int] = (1, 8, 16)  # TensorRT optimisation profile: min, opt, max faces
    workspace_mib: int = 1024  # TensorRT builder workspace (Orin Nano has 8 GB shared with the CPU)
    dla_core: int | None = None  # build for this DLA core (GPU fallback on); None = GPU
    tensorrt: str | None = None  # target TensorRT generation for the manifest's `onnx`; None = local or 10
    exclude_nodes: tuple[str, ...] = ()  # INT8: nodes kept in float
    fp32_ops: tuple[str, ...] = ()  # FP16: op types kept in FP32 besides the default sensitive ones
    detector: bool = True  # build the face detector beside the model
    require_engine: bool = False  # fail when no TensorRT engine could be built here
    seed: int = 0  # sampling of calibration and validation faces
    workers: int = 4
    progress: bool = True
    overwrite: bool = False  # replace a non-empty `out` (only once the new build is complete)

    def __post_init__(self) -> None:
        from lsa_edge.calibration.quantize import METHODS

        if self.precision not in PRECISIONS:
            raise ConfigError(unknown_choice("precision", self.precision, PRECISIONS))
        if self.tensorrt is not None and self.tensorrt not in GENERATIONS:
            raise ConfigError(unknown_choice("TensorRT generation", self.tensorrt, GENERATIONS))
        if self.calib_method not in METHODS:
            raise ConfigError(unknown_choice("calibration method", self.calib_method, METHODS))
        check_batch(self.batch)
        lo, opt, hi = self.batch
        check_number(
            self.max_accuracy_drop, "max_accuracy_drop", flag="--max-accuracy-drop", lo=0, hi=100,
            hint="mean-accuracy points, e.g. 0.5",
        )  # fmt: skip
        check_number(
            self.calib_count, "calib_count", flag="--calib-count", lo=1, integer=True, hint="e.g. 512"
        )
        check_number(
            self.val_count, "val_count", flag="--val-count", lo=1, integer=True, optional=True,
            hint="a number, or 'all' for the whole split",
        )  # fmt: skip
        check_number(self.calib_batch, "calib_batch", lo=1, integer=True)
        check_number(
            self.workspace_mib, "workspace_mib", flag="--workspace", lo=1, integer=True, hint="MiB, e.g. 1024"
        )
        check_number(self.workers, "workers", flag="--workers", lo=1, hi=256, integer=True, hint="e.g. 4")
        check_number(self.seed, "seed", flag="--seed", lo=0, hi=2**32 - 1, integer=True)
        check_number(self.opset, "opset", flag="--opset", lo=13, integer=True, optional=True, hint="e.g. 17")
        check_number(self.dla_core, "dla_core", flag="--dla-core", lo=0, integer=True, optional=True)
        if self.dla_core is not None:
            if self.dla_core < 0:
                raise ConfigError(f"--dla-core must be ≥ 0, got {self.dla_core}")
            if self.precision == "fp32":
                raise ConfigError("DLA runs FP16 or INT8 only; use --precision fp16 or int8 with --dla-core")
            if not lo == opt == hi:
                raise ConfigError(
                    f"DLA has no dynamic shapes: --batch must be N,N,N with --dla-core, got {lo},{opt},{hi}"
                )
        for path, flag in ((self.calib_data, "--calib-data"), (self.val_data, "--val-data")):
            if path is not None and not Path(path).exists():
                raise ConfigError(f"{flag} {path} does not exist")
            if path is not None and not Path(path).is_dir():
                raise ConfigError(
                    f"{flag} {path} is a file; give a folder: a data set (CelebA, generic CSV or LFWA layout) "
                    "or a folder of face pictures"
                )
        if self.fp32_ops:
            onnx = require("onnx", "checking --fp32-ops")
            unknown = [op for op in self.fp32_ops if not onnx.defs.has(op)]
            if unknown:
                raise ConfigError(
                    f"--fp32-ops: {', '.join(unknown)} are not ONNX operators (e.g. Softmax, Mul)"
                )

    # -- serialised form (``--config FILE``, build_config.json) ---------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The resolved config as JSON (paths as strings, tuples as lists), as written beside a build."""
        doc: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            doc[f.name] = str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
        return doc

    @classmethod
    def check_mapping(cls, values: Any, where: str) -> dict[str, Any]:
        """``values`` (a config file's mapping) as BuildConfig keyword arguments: ConfigError naming
        ``where`` and the key for an unknown key or a value of the wrong type."""
        if not isinstance(values, dict):
            raise ConfigError(
                f"{where} must hold a mapping of BuildConfig fields, got {type(values).__name__}"
            )
        known = [f.name for f in fields(cls)]
        for key in values:
            if key not in known:
                raise ConfigError(f"{where}: {unknown_choice('BuildConfig field', str(key), known)}")
        out = dict(values)
        for key in ("batch", "exclude_nodes", "fp32_ops"):  # YAML/JSON lists
            if isinstance(out.get(key), list):
                out[key] = tuple(out[key])
        if isinstance(out.get("out"), str):
            out["out"] = Path(out["out"])
        check_field_types(cls, {k: v for k, v in out.items() if k not in ("batch", "out")}, where)
        return out


def default(name: str) -> Any:
    """The default of BuildConfig field ``name`` (for flags, help text and EngineSpec's defaults)."""
    return {f.name: f.default for f in fields(BuildConfig)}[name]
