""":class:`~lsa_edge.backends._cuda.Cuda` through NVIDIA's cuda-python (the CUDA runtime API).

Every runtime call returns ``(cudaError_t, *values)``; :func:`_call` turns a failure into a message with the
error's name and text. cuda-python 12.6.0 and older raise ``RuntimeError`` instead ("Failed to dlopen
libcuda.so.1" where there is no driver); newer releases return ``cudaErrorInsufficientDriver``: both become
:class:`GpuUnavailableError`. The runtime API binds the device's primary context to the calling thread on
``cudaSetDevice``, which :meth:`CudaImpl.current` calls, so any thread may use one instance.

Importing this module imports nothing heavy; :func:`load` imports cuda-python (ImportError when it is not
installed), and every other function needs it loaded.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import GpuUnavailableError, LsaEdgeError
from . import _cuda
from ._cuda import Cuda, DeviceMemory

cudart: Any = None  # the binding's runtime module, set by load()


def load() -> Any:
    """Import cuda-python's runtime module (ImportError when cuda-python is not installed)."""
    global cudart
    if cudart is None:
        try:
            from cuda.bindings import runtime  # cuda-python >= 12.6.1 (the cuda-bindings package)
        except ImportError:
            from cuda import cudart as runtime  # older cuda-python; ImportError when neither
        cudart = runtime
    return cudart


# Errors that mean "no usable GPU here" rather than a bug: no device, no/old driver, GPU busy or lost.
_NO_GPU = {
    "cudaErrorNoDevice",
    "cudaErrorInsufficientDriver",
    "cudaErrorDevicesUnavailable",
    "cudaErrorCallRequiresNewerDriver",
    "cudaErrorSystemDriverMismatch",
    "cudaErrorCompatNotSupportedOnDevice",
    "cudaErrorInvalidDevice",
    "cudaErrorUnsupportedPtxVersion",
}


def _error_text(err: Any) -> str:
    name = getattr(err, "name", str(err))
    try:
        _, text = cudart.cudaGetErrorString(err)
        text = text.decode() if isinstance(text, bytes) else str(text)
    except Exception:  # the error string needs the runtime too; the name is enough
        text = ""
    return f"{name}: {text}" if text else str(name)


def _call(what: str, fn: Any, *args: Any) -> Any:
    """Run ``cudart.fn(*args)``; its values (one or a tuple), or a clear error."""
    try:
        result = fn(*args)
    except RuntimeError as err:  # cuda-python <= 12.6.0 without a driver: "Failed to dlopen libcuda.so.1"
        raise GpuUnavailableError(
            f"no usable CUDA GPU: {what} failed in cuda-python ({err}). "
            + (_cuda.driver_problem() or "Check the NVIDIA driver (nvidia-smi; tegrastats on a Jetson).")
        ) from err
    code, values = result[0], result[1:]
    if code != cudart.cudaError_t.cudaSuccess:
        name = getattr(code, "name", str(code))
        text = f"{what} failed: {_error_text(code)}"
        if name in _NO_GPU:
            hint = _cuda.driver_problem()
            if hint is None and name == "cudaErrorInsufficientDriver":
                hint = (
                    "the NVIDIA driver is older than this cuda-python's CUDA: install the cuda-python of the "
                    f"driver's CUDA (nvidia-smi shows it), e.g. pip install {_cuda.HINT_JP}"
                )
            raise GpuUnavailableError(f"no usable CUDA GPU: {text}" + (f". {hint}" if hint else ""))
        raise LsaEdgeError(f"CUDA error: {text}")
    return values[0] if len(values) == 1 else values


def device_info(device: int) -> tuple[str, str]:
    count = _call("cudaGetDeviceCount", cudart.cudaGetDeviceCount)
    if not count:
        raise GpuUnavailableError("no usable CUDA GPU: the driver reports no CUDA device")
    if not 0 <= device < count:
        raise GpuUnavailableError(
            f"CUDA device {device} does not exist; this machine has {count} (0..{count - 1})"
        )
    props = _call("cudaGetDeviceProperties", cudart.cudaGetDeviceProperties, device)
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    return name.rstrip("\x00").strip(), f"{props.major}.{props.minor}"


class CudaImpl(Cuda):
    binding = "cuda-python"

    def __init__(self, device: int = 0) -> None:
        super().__init__(device)
        self._info = device_info(device)
        self._pinned: list[int] = []
        self._stream: Any = None
        with self.current():
            self._stream = _call("cudaStreamCreate", cudart.cudaStreamCreate)

    def device_info(self) -> tuple[str, str]:
        return self._info

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        previous = _call("cudaGetDevice", cudart.cudaGetDevice)
        if previous != self.device:
            _call("cudaSetDevice", cudart.cudaSetDevice, self.device)
        try:
            yield
        finally:  # the calling thread's device as it was (torch, cupy … on a multi-GPU machine)
            if previous != self.device:
                _call("cudaSetDevice", cudart.cudaSetDevice, previous)

    @property
    def stream_handle(self) -> int:
        return int(self._stream)

    def alloc(self, nbytes: int) -> DeviceMemory:
        ptr = _call("cudaMalloc", cudart.cudaMalloc, int(nbytes))
        return DeviceMemory(int(ptr), nbytes, lambda p: _call("cudaFree", cudart.cudaFree, p))

    def pinned(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = max(1, count * dtype.itemsize)
        ptr = int(_call("cudaMallocHost", cudart.cudaMallocHost, nbytes))
        self._pinned.append(ptr)
        raw = (ctypes.c_ubyte * nbytes).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(tuple(shape))

    def _copy(self, dst: int, src: int, nbytes: int, kind: Any, asynchronous: bool) -> None:
        if asynchronous:
            _call("cudaMemcpyAsync", cudart.cudaMemcpyAsync, dst, src, nbytes, kind, self._stream)
        else:
            _call("cudaMemcpy", cudart.cudaMemcpy, dst, src, nbytes, kind)

    def to_device(self, dst: DeviceMemory, src: np.ndarray, asynchronous: bool = True) -> None:
        if src.nbytes > dst.nbytes or not src.flags.c_contiguous:
            raise LsaEdgeError(f"bad host→device copy: {src.nbytes} bytes into {dst.nbytes}")
        kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._copy(dst.ptr, src.ctypes.data, src.nbytes, kind, asynchronous)

    def to_host(self, dst: np.ndarray, src: DeviceMemory, asynchronous: bool = True) -> None:
        if dst.nbytes > src.nbytes or not dst.flags.c_contiguous:
            raise LsaEdgeError(f"bad device→host copy: {dst.nbytes} bytes from {src.nbytes}")
        kind = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._copy(dst.ctypes.data, src.ptr, dst.nbytes, kind, asynchronous)

    def synchronize(self) -> None:
        _call("cudaStreamSynchronize", cudart.cudaStreamSynchronize, self._stream)

    def close(self) -> None:
        with self.current():
            while self._pinned:
                _call("cudaFreeHost", cudart.cudaFreeHost, self._pinned.pop())
            if self._stream is not None:
                stream, self._stream = self._stream, None
                _call("cudaStreamDestroy", cudart.cudaStreamDestroy, stream)
