"""Engine identity and the sidecar JSON that travels beside every TensorRT engine.

A serialized TensorRT engine only loads on the TensorRT version and GPU it was built for, and TensorRT's
own refusal is cryptic ("magicTag does not match", "Version tag does not match"). So every engine gets
an :class:`EngineKey` (model hash, precision, TensorRT version, GPU, batch profile, DLA core) in its file
name and a sidecar ``<engine>.json`` holding the key, the model card, the build options and the exact
commands that rebuild it. :func:`check_engine` compares the sidecar with the running machine *before*
TensorRT sees the file and names what differs and how to rebuild.

Compatibility rules (TensorRT's "Engine Compatibility" / "Version Compatibility" docs):

* TensorRT version: by default an engine loads only on the TensorRT it was built with. We compare
  major.minor.patch (the version tag TensorRT serializes); the fourth, build component is ignored. An
  engine built with the version-compatible flag (8.6 or later; sidecar ``build.version_compatible``) also
  loads on a later TensorRT of the same major version, and across the two documented major pairs
  8 → 10 and 10 → 11; never on an older one.
* GPU: the compute capability must match exactly (Jetson has no hardware-compatibility mode). A
  different GPU name with the same compute capability (Orin NX vs AGX Orin) is allowed with a warning,
  as TensorRT itself only warns about it.
* Optional checks against what the caller expects: precision and model hash.

Core module: imports nothing heavy (no tensorrt, onnx or torch).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from ._fileio import write_json_atomic
from ._manifest import PRECISIONS
from ._verify import sha256_file  # the one definition; re-exported here for engines.tensorrt and users
from .errors import ConfigError, EngineMismatchError, LsaEdgeError

__all__ = [
    "PRECISIONS",
    "SIDECAR_FORMAT",
    "EngineKey",
    "check_engine",
    "read_sidecar",
    "sha256_file",
    "sidecar_path",
    "write_sidecar",
]

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "int8"]
SIDECAR_FORMAT = "lsa-edge-engine"
SIDECAR_VERSION = 1

# Major-version pairs across which a version-compatible engine loads (TensorRT 11.4.1 support matrix).
_CROSS_MAJOR_VC = {(8, 10), (10, 11)}

# Compute capability → Jetson family, for messages when the device name alone says little.
_FAMILIES = {"7.2": "Xavier", "8.7": "Orin", "10.1": "Thor", "11.0": "Thor"}

_HEX = re.compile(r"^[0-9a-f]{12,64}$")
_CC = re.compile(r"^\d+\.\d+$")


def _release(version: str) -> tuple[int, int, int]:
    v = Version(version)
    return tuple((*v.release, 0, 0, 0)[:3])  # type: ignore[return-value]


def _short_version(version: str) -> str:
    """'10.3.0.26' → '10.3.0' (what TensorRT's version tag holds)."""
    try:
        return ".".join(str(x) for x in _release(version))
    except InvalidVersion:
        return version


def _slug(text: str, limit: int = 24) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s[:limit].rstrip("-")) or "gpu"


def _device(gpu: str, cc: str) -> str:
    """'sm_87 (Orin)'."""
    sm = "sm_" + cc.replace(".", "")
    family = _FAMILIES.get(cc)
    name = gpu if gpu else (family or "unknown GPU")
    if family and family.lower() not in name.lower():
        name = f"{name}, {family}"
    return f"{sm} ({name})"


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine is tied to. Two engines with equal keys are interchangeable."""

    model_sha256: str  # sha256 (hex) of the ONNX file the engine was built from
    precision: Precision  # "fp32" | "fp16" | "int8"
    tensorrt: str  # TensorRT version that built it, e.g. "10.3.0.26"
    gpu: str  # device name as CUDA reports it, e.g. "Orin"
    compute_capability: str  # "major.minor", e.g. "8.7"
    batch: tuple[int, int, int]  # optimisation profile of the batch dimension: (min, opt, max) faces
    dla_core: int | None = None  # DLA core the engine runs on; None = GPU

    def __post_init__(self) -> None:
        sha = self.model_sha256.lower()
        if not _HEX.match(sha):
            raise ConfigError(f"model_sha256 must be a hex sha256 digest, got {self.model_sha256!r}")
        object.__setattr__(self, "model_sha256", sha)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        try:
            Version(self.tensorrt)
        except InvalidVersion as err:
            raise ConfigError(f"tensorrt must be a version like '10.3.0.26', got {self.tensorrt!r}") from err
        if not _CC.match(self.compute_capability):
            raise ConfigError(f"compute_capability must look like '8.7', got {self.compute_capability!r}")
        batch = tuple(int(b) for b in self.batch)
        if len(batch) != 3 or not (1 <= batch[0] <= batch[1] <= batch[2]):
            raise ConfigError(
                f"batch must be (min, opt, max) with 1 <= min <= opt <= max, got {self.batch!r}"
            )
        object.__setattr__(self, "batch", batch)
        if self.dla_core is not None and int(self.dla_core) < 0:
            raise ConfigError(f"dla_core must be None or >= 0, got {self.dla_core!r}")

    def file_stem(self) -> str:
        """A readable, filesystem-safe name: ``lsa-<sha12>-fp16-trt10.3.0-sm87-orin-b1-8-16[-dla0]``."""
        lo, opt, hi = self.batch
        parts = [
            "lsa",
            self.model_sha256[:12],
            self.precision,
            "trt" + _short_version(self.tensorrt),
            "sm" + self.compute_capability.replace(".", ""),
            _slug(self.gpu),
            f"b{lo}-{opt}-{hi}",
        ]
        if self.dla_core is not None:
            parts.append(f"dla{self.dla_core}")
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_sha256": self.model_sha256,
            "precision": self.precision,
            "tensorrt": self.tensorrt,
            "gpu": self.gpu,
            "compute_capability": self.compute_capability,
            "batch": list(self.batch),
            "dla_core": self.dla_core,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineKey:
        try:
            return cls(
                model_sha256=str(d["model_sha256"]),
                precision=d["precision"],
                tensorrt=str(d["tensorrt"]),
                gpu=str(d["gpu"]),
                compute_capability=str(d["compute_capability"]),
                batch=tuple(d["batch"]),  # type: ignore[arg-type]
                dla_core=None if d.get("dla_core") is None else int(d["dla_core"]),
            )
        except KeyError as err:
            raise ConfigError(f"engine key is missing {err.args[0]!r}") from err


def sidecar_path(engine_path: str | Path) -> Path:
    """``model.engine`` → ``model.engine.json``."""
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def write_sidecar(
    engine_path: str | Path,
    key: EngineKey,
    card_dict: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
    *,
    build_options: dict[str, Any] | None = None,
    rebuild_command: dict[str, str] | None = None,
) -> Path:
    """Write ``<engine>.json`` beside ``engine_path`` (which must exist) and return its path.

    rebuild_command: {"lsa_edge": "lsa-edge build ...", "trtexec": "trtexec ..."}, the exact lines that
    rebuild this engine on the target; shown by :func:`check_engine` on a mismatch.
    build_options: workspace, timing cache, calibration cache, ... as used for the build.
    extra: further top-level fields (must not overwrite the ones above).
    """
    engine_path = Path(engine_path)
    doc: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "engine_file": engine_path.name,
        "engine_sha256": sha256_file(engine_path),
        "key": key.to_dict(),
        "card": card_dict,
        "build": dict(build_options or {}),
        "rebuild_command": dict(rebuild_command or {}),
        "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    from . import __version__

    doc["lsa_edge_version"] = __version__
    for k, v in (extra or {}).items():
        if k in doc:
            raise ConfigError(f"extra sidecar field {k!r} would overwrite a standard field")
        doc[k] = v
    out = sidecar_path(engine_path)
    write_json_atomic(out, doc)
    return out


def read_sidecar(engine_path: str | Path) -> dict[str, Any]:
    """The sidecar of ``engine_path``, validated; ``"key"`` is returned as an :class:`EngineKey`.

    Raises :class:`EngineMismatchError` when it is missing or unreadable, saying how to rebuild.
    """
    engine_path = Path(engine_path)
    path = sidecar_path(engine_path)
    if not path.exists():
        raise EngineMismatchError(
            f"{engine_path.name} has no sidecar ({path.name}), so lsa-edge cannot tell which model, TensorRT "
            "version and GPU it was built for, or which preprocessing it expects. Rebuild it on this device "
            "with 'lsa-edge build' (which writes the engine and its sidecar), or copy the sidecar that came "
            "with the engine next to it."
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"format is {doc.get('format')!r}, not {SIDECAR_FORMAT!r}")
        if int(doc.get("format_version", 0)) > SIDECAR_VERSION:
            raise ValueError(
                f"format version {doc['format_version']} is newer than this lsa-edge reads "
                f"({SIDECAR_VERSION}); upgrade lsa-edge"
            )
        doc["key"] = EngineKey.from_dict(doc["key"])
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as err:
        raise EngineMismatchError(
            f"{path} is not a valid lsa-edge engine sidecar ({err}); rebuild the engine with 'lsa-edge build'"
        ) from err
    return doc


def _tensorrt_ok(built: str, running: str, version_compatible: bool) -> bool:
    b, r = _release(built), _release(running)
    if not version_compatible:
        return b == r
    if b < (8, 6, 0) or r < b:  # version compatibility exists from 8.6 and only works forwards
        return False
    return b[0] == r[0] or (b[0], r[0]) in _CROSS_MAJOR_VC


def _rebuild_hint(doc: dict[str, Any]) -> str:
    cmds = doc.get("rebuild_command") or {}
    lines = [f"  {cmds[k]}" for k in ("lsa_edge", "trtexec") if cmds.get(k)]
    if not lines:
        return "Rebuild it on this device with 'lsa-edge build'."
    joined = "\n  or\n".join(lines)
    return f"Rebuild it on this device with:\n{joined}"


def check_engine(
    engine_path: str | Path,
    running_tensorrt: str,
    gpu: str,
    compute_capability: str,
    *,
    precision: str | None = None,
    model_sha256: str | None = None,
    verify_file: bool = True,
) -> dict[str, Any]:
    """Check that ``engine_path`` can run here, before TensorRT deserializes it; returns the sidecar.

    running_tensorrt / gpu / compute_capability describe this machine (``tensorrt.__version__`` and
    :func:`lsa_edge.backends._tensorrt_env.gpu_info`). precision / model_sha256, when given, are what the caller
    expects the engine to be. verify_file: check the engine's sha256 against the sidecar (catches an
    engine rebuilt by hand without its sidecar).

    Raises :class:`EngineMismatchError` naming every difference and the rebuild command.
    """
    engine_path = Path(engine_path)
    if not engine_path.exists():
        raise LsaEdgeError(f"engine not found: {engine_path}")
    doc = read_sidecar(engine_path)
    key: EngineKey = doc["key"]
    build = doc.get("build") or {}
    version_compatible = bool(build.get("version_compatible", False))

    problems: list[str] = []
    try:
        trt_ok = _tensorrt_ok(key.tensorrt, running_tensorrt, version_compatible)
    except InvalidVersion:
        trt_ok = False
    cc_ok = key.compute_capability == compute_capability
    if not (trt_ok and cc_ok):
        built = f"TensorRT {_short_version(key.tensorrt)} for {_device(key.gpu, key.compute_capability)}"
        here = f"TensorRT {_short_version(running_tensorrt)} on {_device(gpu, compute_capability)}"
        why = []
        if not trt_ok:
            why.append(
                "a version-compatible engine runs only on the same or a later TensorRT"
                if version_compatible
                else "engines load only on the TensorRT major.minor.patch that built them"
            )
        if not cc_ok:
            why.append("engines are specific to the GPU's compute capability")
        problems.append(f"built with {built}; this machine runs {here} ({'; '.join(why)})")
    if precision is not None and precision != key.precision:
        problems.append(f"it is a {key.precision} engine but {precision} was asked for")
    if model_sha256 is not None and model_sha256.lower() != key.model_sha256:
        problems.append(
            f"it was built from model {key.model_sha256[:12]}, not the expected {model_sha256.lower()[:12]}"
        )
    if verify_file and not problems:
        recorded = doc.get("engine_sha256")
        if recorded and sha256_file(engine_path) != recorded:
            problems.append(
                "the engine file differs from the one its sidecar describes (replaced or rebuilt without "
                "updating the sidecar)"
            )
    if problems:
        raise EngineMismatchError(
            f"{engine_path.name} cannot be used here: " + "; ".join(problems) + ".\n" + _rebuild_hint(doc)
        )
    if gpu and key.gpu and gpu != key.gpu:
        log.warning(
            "%s was built on %r and runs here on %r (same compute capability %s); TensorRT allows this but "
            "tactics were tuned for the other device: rebuild for best speed",
            engine_path.name,
            key.gpu,
            gpu,
            compute_capability,
        )
    return doc
