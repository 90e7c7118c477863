"""The TensorRT environment of the runtime: which TensorRT and GPU this machine has, TensorRT's log in
Python ``logging``, and loading an engine only after its sidecar matches them.

Core (imported by the runtime's TensorRT backend and by the build tool): ``tensorrt``, cuda-python and
pycuda are imported lazily (the GPU through :mod:`lsa_edge.backends._cuda`); nothing here builds engines
(that is ``lsa_edge.engines.tensorrt``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .._lazy import require
from ..engine_meta import check_engine
from ..errors import EngineMismatchError
from ._cuda import device_info

__all__ = ["enum_name", "gpu_info", "load_engine", "tensorrt_version", "trt_logger"]

_LOG = logging.getLogger(__name__)


def tensorrt_version() -> str | None:
    """The importable TensorRT's version ("10.3.0.26"), or None when TensorRT cannot be imported."""
    try:
        import tensorrt
    except Exception:  # ImportError, or OSError from a missing libnvinfer / a stub wheel
        return None
    return getattr(tensorrt, "__version__", None)


# --------------------------------------------------------------------------------------------------- GPU


def gpu_info(device: int = 0) -> tuple[str, str]:
    """(device name, compute capability) of CUDA device ``device``, e.g. ("Orin", "8.7").

    Through cuda-python, else pycuda (:mod:`lsa_edge.backends._cuda`). Raises
    :class:`GpuUnavailableError` when no GPU is usable (no driver, no device, a driver older than the
    binding: the message says which), :class:`MissingDependencyError` when neither binding is installed.
    """
    return device_info(device)


def enum_name(member: Any) -> str:
    """The name of a TensorRT enum member: ``ErrorCode.name`` is a *method* in TensorRT 8.5–10.15 and a
    property from 10.16 (and ``ILogger.Severity.name`` a property throughout), so read it either way."""
    name = getattr(member, "name", None)
    if callable(name):
        name = name()
    if not isinstance(name, str) or not name:
        name = str(member)
    return name.rsplit(".", 1)[-1]


# ------------------------------------------------------------------------------------ TensorRT plumbing

_SEVERITY = {
    "INTERNAL_ERROR": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "INFO": logging.INFO,
    "VERBOSE": logging.DEBUG,
}
_TRT_LOGGER: Any = None
_RUNTIMES: dict[
    tuple[int, bool, int | None], Any
] = {}  # (module, host code allowed, DLA core) → Runtime; must outlive its engines


def trt_logger(trt: Any) -> Any:
    """The process-wide TensorRT logger, forwarding to Python ``logging`` ("lsa_edge.tensorrt").

    One instance only: TensorRT keeps the first logger it is given and warns when another one follows.
    """
    global _TRT_LOGGER
    if _TRT_LOGGER is not None and isinstance(_TRT_LOGGER, trt.ILogger):
        return _TRT_LOGGER
    target = logging.getLogger("lsa_edge.tensorrt")  # TensorRT's own messages

    class _Forward(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)  # trampoline: must be called explicitly

        def log(self, severity: Any, msg: str) -> None:
            target.log(_SEVERITY.get(enum_name(severity), logging.INFO), "%s", msg)

    _TRT_LOGGER = _Forward()
    return _TRT_LOGGER


# --------------------------------------------------------------------------------------------------- load


def load_engine(path: str | Path, *, precision: str | None = None, model_sha256: str | None = None) -> Any:
    """Deserialize an engine after checking its sidecar against the running TensorRT and GPU.

    Raises :class:`EngineMismatchError` (what differs + the rebuild command) before TensorRT ever sees a
    foreign engine. The sidecar is available as ``lsa_edge.engine_meta.read_sidecar(path)``.
    """
    path = Path(path)
    trt = require("tensorrt", "running TensorRT engines")
    gpu, cc = gpu_info()
    doc = check_engine(path, str(trt.__version__), gpu, cc, precision=precision, model_sha256=model_sha256)
    host_code = bool((doc.get("build") or {}).get("version_compatible", False))
    key = doc.get("key")
    dla = getattr(key, "dla_core", None)
    runtime = _RUNTIMES.get((id(trt), host_code, dla))
    if runtime is None:
        runtime = trt.Runtime(trt_logger(trt))
        if host_code:  # version-compatible plans embed the lean runtime; trust only our own sidecar'd files
            runtime.engine_host_code_allowed = True  # TensorRT 8.6+, which alone builds such engines
        if dla is not None:  # a DLA engine runs on the core it was built for (the runtime's default is -1)
            runtime.DLA_core = int(dla)
        _RUNTIMES[(id(trt), host_code, dla)] = runtime
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        cmds = doc.get("rebuild_command") or {}
        hint = cmds.get("lsa_edge") or cmds.get("trtexec") or "lsa-edge build"
        raise EngineMismatchError(
            f"TensorRT {trt.__version__} could not deserialize {path.name} although its sidecar matches this "
            f"machine (see the TensorRT errors above; a JetPack update within the same version?). Rebuild it "
            f"with:\n  {hint}"
        )
    return engine
