"""What :func:`.tensorrt.build_engine` builds (:class:`EngineSpec`) and what it reports (:class:`EngineResult`).

Pure: no tensorrt, torch or onnx, so a spec can be made, checked and compared anywhere (the desktop that
writes a bundle, tests). Defaults are BuildConfig's (batch, workspace) and the export's (input name); the
per-generation rules (strong typing, calibrators, flags) are :mod:`._trt_generations`' and are applied when
the local TensorRT is known, in :mod:`.tensorrt`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from lsa_edge.engine_meta import PRECISIONS, EngineKey
from lsa_edge.errors import ConfigError

from .config import Precision, default
from .export import INPUT_NAME

__all__ = ["BuilderOptions", "Calibration", "EngineResult", "EngineSpec", "Profile", "validate_options"]

PathLike = Union[str, Path]


def validate_options(
    precision: str, batch: Sequence[int] | None, dla_core: int | None, workspace_mib: int
) -> None:
    """The checks every engine build and trtexec line shares (ConfigError saying what is accepted)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if batch is not None and (len(batch) != 3 or not (1 <= batch[0] <= batch[1] <= batch[2])):
        raise ConfigError(f"batch must be (min, opt, max) with 1 <= min <= opt <= max, got {tuple(batch)}")
    if workspace_mib < 1:
        raise ConfigError(f"workspace_mib must be >= 1, got {workspace_mib}")
    if dla_core is not None:
        if dla_core < 0:
            raise ConfigError(f"dla_core must be >= 0, got {dla_core}")
        if precision == "fp32":
            raise ConfigError("DLA runs FP16 or INT8 only; use --precision fp16 or int8 with a DLA core")
        if batch is not None and not (batch[0] == batch[1] == batch[2]):
            raise ConfigError(
                "DLA has no dynamic shapes (min, opt and max batch must be equal), got batch "
                f"{tuple(batch)}; pass e.g. batch=({batch[1]}, {batch[1]}, {batch[1]})"
            )


def _path(value: PathLike | None) -> Path | None:
    return None if value is None else Path(value)


@dataclass(frozen=True)
class Profile:
    """The input the engine is built for: the ONNX input's name and its batch profile (C, H, W come from
    the ONNX)."""

    # (min, opt, max) faces per call; DLA needs min == opt == max. None: the ONNX input's shape is fixed
    # (the face detector): no profile, and the engine key's batch is the fixed one.
    batch: tuple[int, int, int] | None = default("batch")
    input_name: str = INPUT_NAME  # the ONNX input the profile applies to

    def __post_init__(self) -> None:
        if self.batch is not None:
            object.__setattr__(self, "batch", tuple(self.batch))


@dataclass(frozen=True)
class BuilderOptions:
    """The options that shape TensorRT's builder config; recorded in the sidecar and the trtexec line."""

    workspace_mib: int = default("workspace_mib")  # cap of TensorRT's scratch memory, MiB
    dla_core: int | None = None  # run on this DLA core with GPU fallback (FP16/INT8 only); None = GPU
    # int8 on 8.5/10: also allow FP16, so layers left unquantized (and DLA) run FP16 rather than FP32
    int8_fp16_fallback: bool = True
    version_compatible: bool = False  # loads on later TensorRT versions (8.6+; slower)
    # True: on TensorRT 10 build the ONNX's own types (as 11 always does). False: the FP16/INT8 flags (weak
    # typing). None: weak typing, except FP16 on 10.12+ when the ONNX carries FP16 (weak_typing_deprecated).
    strongly_typed: bool | None = None
    # file of measured tactic timings: loaded when it exists, saved after the build (fast rebuilds)
    timing_cache: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "timing_cache", _path(self.timing_cache))


@dataclass(frozen=True)
class Calibration:
    """Implicit INT8 (TensorRT 8.5/10 only; a Q/DQ ONNX needs neither): at most one of the two."""

    cache: Path | None = None  # a calibration cache written on the desktop (no data on the device)
    calibrator: Any = None  # an lsa_edge.calibration.trt_calibrator.entropy_calibrator (TensorRT's type)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache", _path(self.cache))
        if self.cache is not None and self.calibrator is not None:
            raise ConfigError("pass either calibration_cache or calibrator, not both")


@dataclass(frozen=True)
class EngineSpec:
    """One TensorRT engine to build from an ONNX: checked when made, before TensorRT is imported."""

    # for fp16 on TensorRT 11 the FP16 ONNX; for int8 the Q/DQ ONNX (or, on 8.5/10, the FP32 ONNX plus
    # a calibration cache or calibrator)
    onnx: Path
    out_dir: Path  # the engine is written here as EngineKey.file_stem() + ".engine", beside its sidecar
    precision: Precision  # "fp32" | "fp16" | "int8"
    profile: Profile = field(default_factory=Profile)
    options: BuilderOptions = field(default_factory=BuilderOptions)
    calibration: Calibration = field(default_factory=Calibration)
    # the model card (ModelCard or dict); None: read from the ONNX's metadata (a model without one, like
    # the detector, gets "card": null and a warning)
    card: Any = None
    model_sha256: str | None = None  # sha256 of the ONNX the engine is keyed by; None: the onnx file's
    rebuild_command: str | None = None  # the `lsa-edge build ...` line to store in the sidecar

    def __post_init__(self) -> None:
        object.__setattr__(self, "onnx", Path(self.onnx))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        validate_options(
            self.precision, self.profile.batch, self.options.dla_core, self.options.workspace_mib
        )
        if self.calibration.calibrator is not None and self.precision != "int8":
            raise ConfigError(f"a calibrator applies to --precision int8 only, got {self.precision}")


@dataclass(frozen=True)
class EngineResult:
    """What :func:`.tensorrt.build_engine` wrote and what the builder reported (also in the sidecar)."""

    engine: Path  # the serialized engine
    sidecar: Path  # its .engine.json: key, card, build options, rebuild commands
    key: EngineKey  # what the runtime checks before TensorRT sees the file (batch: the built profile)
    generation: str  # "8.5" | "10" | "11": the API family of the TensorRT that built it
    strongly_typed: bool  # the ONNX's types decided (no FP16/INT8 builder flags)
    int8: str  # how INT8 was obtained: "qdq", "calibrator", or "" (not int8)
    static_shape: bool  # the input's shape was fixed in the ONNX: no optimisation profile
    engine_bytes: int  # size of the engine file
