"""The TensorRT environment of the runtime: which TensorRT and GPU this machine has, TensorRT's log in
Python ``logging``, and loading an engine only after its sidecar matches them.

Core (imported by the runtime's TensorRT backend and by the build tool): ``tensorrt``, cuda-python and
pycuda are imported lazily; nothing here builds engines (that is ``lsa_edge.engines.tensorrt``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .._lazy import require
from ..engine_meta import check_engine
from ..errors import EngineMismatchError, LsaEdgeError, MissingDependencyError

__all__ = ["gpu_info", "load_engine", "tensorrt_version", "trt_logger"]

_LOG = logging.getLogger(__name__)


def tensorrt_version() -> str | None:
    """The importable TensorRT's version ("10.3.0.26"), or None when TensorRT cannot be imported."""
    try:
        import tensorrt
    except Exception:  # ImportError, or OSError from a missing libnvinfer / a stub wheel
        return None
    return getattr(tensorrt, "__version__", None)


# --------------------------------------------------------------------------------------------------- GPU


def _gpu_info_cuda_python(device: int) -> tuple[str, str]:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python; ImportError propagates when neither exists
    err, count = cudart.cudaGetDeviceCount()
    ok = cudart.cudaError_t.cudaSuccess
    if err != ok or not count:
        _, text = cudart.cudaGetErrorString(err)
        detail = text.decode() if isinstance(text, bytes) else str(text)
        raise LsaEdgeError(
            f"no CUDA GPU is visible (cudaGetDeviceCount: {getattr(err, 'name', err)}: {detail})"
        )
    if device >= count:
        raise LsaEdgeError(f"CUDA device {device} does not exist; this machine has {count}")
    err, props = cudart.cudaGetDeviceProperties(device)
    if err != ok:
        raise LsaEdgeError(f"cudaGetDeviceProperties({device}) failed: {getattr(err, 'name', err)}")
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return name.rstrip("\x00").strip(), f"{props.major}.{props.minor}"


def _gpu_info_pycuda(device: int) -> tuple[str, str]:
    import importlib

    cuda = importlib.import_module("pycuda.driver")
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as err:  # pycuda raises its own LogicError/RuntimeError family
        raise LsaEdgeError(f"no CUDA GPU is visible (pycuda: {err})") from err
    if device >= count:
        raise LsaEdgeError(f"CUDA device {device} does not exist; this machine has {count}")
    dev = cuda.Device(device)
    major, minor = dev.compute_capability()
    return str(dev.name()).strip(), f"{major}.{minor}"


def gpu_info(device: int = 0) -> tuple[str, str]:
    """(device name, compute capability) of CUDA device ``device``, e.g. ("Orin", "8.7").

    Uses cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases), else pycuda.
    Raises :class:`LsaEdgeError` when no GPU is visible, :class:`MissingDependencyError` when neither
    binding is installed.
    """
    tried: list[str] = []
    failure: LsaEdgeError | None = None
    for probe, what in ((_gpu_info_cuda_python, "cuda-python"), (_gpu_info_pycuda, "pycuda")):
        try:
            return probe(device)
        except ImportError as err:
            tried.append(f"{what}: {err}")
        except LsaEdgeError as err:  # e.g. a cuda-python built for a newer CUDA than the driver: try pycuda
            failure = failure or err
            tried.append(f"{what}: {err}")
    if failure is not None:
        hint = ""
        if "InsufficientDriver" in str(failure):
            hint = (
                " The CUDA driver is older than the installed cuda-python expects (or there is no "
                "driver): on a Jetson install the cuda-python matching JetPack's CUDA, e.g. "
                "pip install 'cuda-python~=12.6' on JetPack 6."
            )
        raise LsaEdgeError("; ".join(tried) + "." + hint) from failure
    raise MissingDependencyError(
        "reading the GPU needs cuda-python or pycuda (" + "; ".join(tried) + "). Install one: "
        "pip install cuda-python (or pip install 'lsa-edge[trt]' for pycuda)."
    )


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
            name = getattr(severity, "name", str(severity)).rsplit(".", 1)[-1]
            target.log(_SEVERITY.get(name, logging.INFO), "%s", msg)

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
            runtime.engine_host_code_allowed = True
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
