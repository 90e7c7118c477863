"""The build folder's ``manifest.json`` as a typed, frozen value: :class:`Manifest` (and its
:class:`DetectorEntry`), with the file names a build writes defined once.

``lsa-edge build`` (:mod:`lsa_edge.engines.build`) writes it; the runtime (:mod:`lsa_edge.package`), the
CLI and the benchmarks read it through :meth:`Manifest.read` / :meth:`Manifest.from_json`, which validate
the untrusted document with :mod:`._manifest`'s checks (PackageError naming the file and the key). The JSON
keys are those of every earlier lsa-edge: a manifest written before this module existed loads, keys this
version does not know are kept (:attr:`Manifest.extra`) and written back, and a key an older manifest lacks
is not invented when it is written again.

Core module: imports the standard library and :mod:`._manifest` only (never lsa_edge.engines/training/
calibration). Python 3.8 compatible.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ._manifest import GENERATIONS, MANIFEST, MANIFEST_FORMAT, PRECISIONS, check_build_keys, check_document
from ._manifest import read_manifest as _read_checked
from .errors import PackageError

__all__ = [
    "BUILD_CONFIG",
    "CALIBRATION_CACHE",
    "CPU_ONNX",
    "DEPLOY_MD",
    "DETECTOR_DIR",
    "ENGINES_DIR",
    "GENERATIONS",
    "GPU_ONNX",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "MODEL_FP16_ONNX",
    "MODEL_INT8_CPU_ONNX",
    "MODEL_INT8_TRT_ONNX",
    "MODEL_ONNX",
    "PRECISIONS",
    "TIMING_CACHE",
    "DetectorEntry",
    "Manifest",
    "opset16_name",
]

# -- the files of a build folder (one definition; the build writes them, everyone else reads these names) --
MODEL_ONNX = "model.onnx"  # FP32, the model card in metadata_props
MODEL_FP16_ONNX = "model_fp16.onnx"  # FP16 weights/activations, sensitive ops FP32 (strongly typed TensorRT)
MODEL_INT8_TRT_ONNX = "model_int8_trt.onnx"  # Q/DQ s8/s8, per-channel weights (TensorRT)
MODEL_INT8_CPU_ONNX = "model_int8_cpu.onnx"  # Q/DQ u8/s8 (ONNX Runtime on CPUs)
CALIBRATION_CACHE = "calibration.cache"  # TensorRT's implicit-quantization cache (TensorRT 8.5/10)
DEPLOY_MD = "DEPLOY.md"  # the commands to run on the device
BUILD_CONFIG = "build_config.json"  # the resolved BuildConfig of the build
DETECTOR_DIR = "detector"  # the face detector's ONNX (+ licence notice)
ENGINES_DIR = "engines"  # TensorRT engines + sidecars (only where TensorRT ran)
TIMING_CACHE = "timing.cache"  # TensorRT's measured tactic timings (on the device)

# The graph that carries each precision in its own tensor types (what ONNX Runtime's GPU providers run, and
# what a strongly typed TensorRT builds), and what ONNX Runtime on a CPU should run.
GPU_ONNX = {"fp32": MODEL_ONNX, "fp16": MODEL_FP16_ONNX, "int8": MODEL_INT8_TRT_ONNX}
CPU_ONNX = {
    "fp32": MODEL_ONNX,
    "fp16": MODEL_ONNX,  # x86 ONNX Runtime has no FP16 kernels: model_fp16.onnx runs upcast and slower
    "int8": MODEL_INT8_CPU_ONNX,
}


def opset16_name(name: str) -> str:
    """The file name of ``name``'s opset-16 rewrite (for TensorRT 8.5): model.onnx → model_opset16.onnx."""
    stem = name[: -len(".onnx")] if name.endswith(".onnx") else name
    return f"{stem}_opset16.onnx"


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _list(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


# Fields held as tuples in Python and lists in JSON.
_TUPLES = frozenset({"batch"})


def _to_json(obj: Any) -> dict[str, Any]:
    """A Manifest or DetectorEntry as its JSON object: its fields in order (None only where the document
    had an explicit null, see ``null_keys``), then the keys it did not know."""
    doc: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.name in ("extra", "null_keys"):
            continue
        v = getattr(obj, f.name)
        if v is None and f.name not in obj.null_keys:
            continue
        if isinstance(v, DetectorEntry):
            v = v.to_json()
        doc[f.name] = _list(v) if f.name in _TUPLES else copy.deepcopy(v)
    doc.update(copy.deepcopy(obj.extra))
    return doc


def _from_json(cls: Any, doc: dict[str, Any], **converted: Any) -> Any:
    names = [f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "null_keys")]
    values = {k: _tuple(doc[k]) if k in _TUPLES else copy.deepcopy(doc[k]) for k in names if k in doc}
    values.update(converted)
    extra = {k: copy.deepcopy(v) for k, v in doc.items() if k not in names}
    nulls = frozenset(k for k in names if k in doc and doc[k] is None)
    return cls(**values, extra=extra, null_keys=nulls)


@dataclass(frozen=True)
class DetectorEntry:
    """The manifest's ``"detector"``: the face detector's graphs, built beside the model."""

    onnx: Optional[str] = None  # detector/<name>.onnx, FP32
    onnx_by_tensorrt: Optional[dict[str, str]] = None  # generation → the graph it builds
    strongly_typed_by_tensorrt: Optional[dict[str, bool]] = None  # generation → built strongly typed
    input: Optional[dict[str, Any]] = None  # {"name", "shape": [batch, ·, ·, ·]}
    batch: Optional[tuple[int, int, int]] = None  # (min, opt, max) frames; None: the ONNX's batch is fixed
    precision: str = "fp32"  # fp16 wherever the model is reduced
    engine: Optional[str] = None  # engines/<file>.engine once built on the device
    extra: dict[str, Any] = field(default_factory=dict)  # keys this lsa-edge does not know, kept
    # Keys written as null when None (the others are left out, as in the document they were read from).
    null_keys: frozenset[str] = field(default=frozenset({"batch", "engine"}), compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DetectorEntry:
        """A checked manifest's ``"detector"`` object (see :meth:`Manifest.from_json`)."""
        return _from_json(cls, doc)

    def strongly_typed(self, gen: str) -> bool:
        return bool((self.strongly_typed_by_tensorrt or {}).get(gen))


_NULLABLE = frozenset({"engine", "parity_max_abs_diff", "dla_core", "detector", "tensorrt_local"})


@dataclass(frozen=True)
class Manifest:
    """What a build folder holds, how it was checked and how to build its engines (``manifest.json``).

    Field names are the JSON keys. Fields are None where a manifest (an older or a hand-made one) does not
    record them; :meth:`from_json` checks every key the runtime uses, ``for_build`` every key building
    engines reads (:data:`lsa_edge._manifest.BUILD_SCHEMA`)."""

    format: int = MANIFEST_FORMAT  # the manifest format; this lsa-edge reads up to MANIFEST_FORMAT
    created: Optional[str] = None  # ISO 8601, UTC
    lsa_edge: Optional[str] = None  # the lsa-edge version that built it
    source: Optional[str] = None  # the input's file name (checkpoint or ONNX)
    precision: str = "fp32"  # fp32 | fp16 | int8
    onnx: Optional[str] = None  # the graph the target TensorRT builds
    onnx_by_tensorrt: Optional[dict[str, str]] = None  # generation → the graph it builds
    strongly_typed_by_tensorrt: Optional[dict[str, bool]] = None  # generation → built strongly typed
    tensorrt_target: Optional[str] = None  # the generation `onnx` is for
    cpu_onnx: Optional[str] = None  # what ONNX Runtime on a CPU runs
    engine: Optional[str] = None  # engines/<file>.engine once built
    parity_max_abs_diff: Optional[float] = None  # max |Δp| of the FP32 ONNX against torch
    accuracy_delta: Optional[float] = None  # mean-accuracy points the target loses against FP32
    accuracy_by_tensorrt: Optional[dict[str, float]] = None  # generation → those points
    accuracy: Optional[dict[str, dict[str, Any]]] = None  # check name → AccuracyCheck.to_dict()
    max_accuracy_drop: Optional[float] = None  # points allowed
    validation: Optional[dict[str, Any]] = None  # {"faces", "labelled", "gate"}: what the checks ran on
    opset16: Optional[dict[str, str]] = None  # graph → its opset-16 rewrite (TensorRT 8.5)
    opset16_parity_max_abs_diff: Optional[dict[str, float]] = None  # rewrite → max |Δp| vs its source
    input: Optional[dict[str, Any]] = None  # {"name", "shape": ["batch", 3, H, W], "dtype"}
    output: Optional[dict[str, Any]] = None  # {"name", "shape": ["batch", attributes], "dtype"}
    batch: Optional[tuple[int, int, int]] = None  # TensorRT optimisation profile, faces
    workspace_mib: Optional[int] = None  # TensorRT builder workspace, MiB
    dla_core: Optional[int] = None  # DLA core, None = GPU
    timings_s: Optional[dict[str, float]] = None  # step → seconds
    calibration: Optional[dict[str, Any]] = None  # INT8: method, faces, source, caches
    detector: Optional[DetectorEntry] = None  # the face detector beside the model
    tensorrt_compatibility: Optional[dict[str, dict[str, Any]]] = None  # generation → {"ok", "errors"}
    tensorrt_commands: Optional[dict[str, Any]] = None  # {"lsa_edge", "trtexec": {gen: [...]}, ...}
    tensorrt_local: Optional[str] = None  # the TensorRT version engines were built with here
    files: Optional[dict[str, dict[str, Any]]] = None  # name → {"bytes", "sha256"}
    card: dict[str, Any] = field(default_factory=dict)  # the model card of `onnx`
    extra: dict[str, Any] = field(default_factory=dict)  # keys this lsa-edge does not know, kept
    # Keys written as null when None (the others are left out, as in the document they were read from).
    null_keys: frozenset[str] = field(default=_NULLABLE, compare=False, repr=False)

    # -- JSON ---------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The JSON object (a fresh dict; lists, not tuples), with the keys of every earlier lsa-edge."""
        return _to_json(self)

    @classmethod
    def from_json(cls, doc: Any, path: Path = Path(MANIFEST), for_build: bool = False) -> Manifest:
        """A manifest from its JSON object, validated as untrusted input: PackageError naming ``path``."""
        if not isinstance(doc, dict):
            raise PackageError(
                f"{path} is not a manifest: it holds a JSON {type(doc).__name__}, not an object"
            )
        check_document(Path(path), doc)
        if for_build:
            check_build_keys(Path(path), doc)
        return cls._from_checked(doc)

    @classmethod
    def _from_checked(cls, doc: dict[str, Any]) -> Manifest:
        det = doc.get("detector")
        converted = {"detector": DetectorEntry.from_json(det)} if isinstance(det, dict) else {}
        return _from_json(cls, doc, **converted)

    @classmethod
    def read(cls, root: Path, name: str = MANIFEST, for_build: bool = False) -> Manifest:
        """The manifest of the build folder ``root`` (checked; PackageError naming the file)."""
        return cls._from_checked(_read_checked(Path(root), name, for_build=for_build))

    def replace(self, **changes: Any) -> Manifest:
        """A copy with ``changes`` (frozen: the build and the device add to a manifest by replacing it)."""
        return dataclasses.replace(self, **changes)

    # -- what readers ask -----------------------------------------------------------------------------------
    def onnx_for(self, gen: str) -> Optional[str]:
        """The graph TensorRT generation ``gen`` builds (older manifests: the one ``onnx``)."""
        by_gen = self.onnx_by_tensorrt or {}
        name = by_gen.get(gen)
        return name if isinstance(name, str) and name else self.onnx

    def strongly_typed(self, gen: str) -> bool:
        """Whether the manifest builds generation ``gen`` strongly typed (the graph's types decide)."""
        return bool((self.strongly_typed_by_tensorrt or {}).get(gen))

    def gpu_onnx(self) -> str:
        """The graph carrying this precision in its own types, for ONNX Runtime's GPU providers: the one a
        strongly typed TensorRT generation builds (``onnx_by_tensorrt``), else the precision's own file."""
        for gen in reversed(GENERATIONS):
            name = (self.onnx_by_tensorrt or {}).get(gen)
            if self.strongly_typed(gen) and isinstance(name, str) and name:
                return name
        return GPU_ONNX.get(self.precision, MODEL_ONNX)

    @property
    def input_name(self) -> str:
        return str((self.input or {}).get("name", "faces"))

    @property
    def input_chw(self) -> tuple[int, ...]:
        return tuple((self.input or {}).get("shape", [None])[1:])
