""":class:`~lsa_edge.backends._cuda.Cuda` through pycuda (the fallback when cuda-python is missing).

pycuda works on the driver API: the instance retains the device's *primary* context (the one the CUDA
runtime and TensorRT use) and pushes/pops it around every ``with cuda.current():`` block, so any thread
may use one instance. pycuda raises its own exception types (``pycuda._driver.Error`` subclasses, which
derive from ``Exception``); all become :class:`GpuUnavailableError` or :class:`LsaEdgeError`.

Importing this module imports nothing heavy; :func:`load` imports pycuda (ImportError when it is not
installed), and every other function needs it loaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import GpuUnavailableError, LsaEdgeError
from . import _cuda
from ._cuda import Cuda, DeviceMemory

drv: Any = None  # pycuda.driver, set by load()


def load() -> Any:
    """Import pycuda.driver (ImportError when pycuda is not installed)."""
    global drv
    if drv is None:
        import pycuda.driver

        drv = pycuda.driver
    return drv


def _init() -> int:
    try:
        drv.init()
        return int(drv.Device.count())
    except Exception as err:  # pycuda._driver.RuntimeError/LogicError: no driver, no device
        raise GpuUnavailableError(
            f"no usable CUDA GPU: pycuda could not initialise CUDA ({type(err).__name__}: {err})."
            + (f" {_cuda.driver_problem()}" if _cuda.driver_problem() else "")
        ) from err


def device_info(device: int) -> tuple[str, str]:
    count = _init()
    if not count:
        raise GpuUnavailableError("no usable CUDA GPU: the driver reports no CUDA device")
    if not 0 <= device < count:
        raise GpuUnavailableError(
            f"CUDA device {device} does not exist; this machine has {count} (0..{count - 1})"
        )
    dev = drv.Device(device)
    major, minor = dev.compute_capability()
    return str(dev.name()).strip(), f"{major}.{minor}"


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """pycuda's own exceptions (pycuda._driver.Error family) → LsaEdgeError saying what failed."""
    try:
        yield
    except LsaEdgeError:
        raise
    except Exception as err:
        raise LsaEdgeError(f"CUDA error {what} (pycuda: {type(err).__name__}: {err})") from err


class _Freed:
    """pycuda allocations free themselves when collected; keep them alive until freed explicitly."""

    def __init__(self) -> None:
        self.live: dict[int, Any] = {}

    def keep(self, allocation: Any) -> int:
        ptr = int(allocation)
        self.live[ptr] = allocation
        return ptr

    def free(self, ptr: int) -> None:
        allocation = self.live.pop(ptr, None)
        if allocation is not None:
            allocation.free()


class CudaImpl(Cuda):
    binding = "pycuda"

    def __init__(self, device: int = 0) -> None:
        super().__init__(device)
        self._info = device_info(device)
        self._ctx: Any = None
        try:
            self._ctx = drv.Device(device).retain_primary_context()
        except Exception as err:
            raise GpuUnavailableError(
                f"no usable CUDA GPU: pycuda could not retain device {device}'s context ({err})"
            ) from err
        self._allocations = _Freed()
        with self.current():
            self._stream = drv.Stream()

    def device_info(self) -> tuple[str, str]:
        return self._info

    @contextlib.contextmanager
    def current(self) -> Iterator[None]:
        with _translated("pushing the CUDA context"):
            self._ctx.push()
        try:
            yield
        finally:
            with _translated("popping the CUDA context"):
                drv.Context.pop()

    @property
    def stream_handle(self) -> int:
        return int(self._stream.handle)

    def alloc(self, nbytes: int) -> DeviceMemory:
        try:
            ptr = self._allocations.keep(drv.mem_alloc(max(1, int(nbytes))))
        except Exception as err:
            raise LsaEdgeError(f"CUDA could not allocate {nbytes} bytes of device memory ({err})") from err
        return DeviceMemory(ptr, nbytes, self._allocations.free)

    def pinned(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        return drv.pagelocked_empty(tuple(shape), np.dtype(dtype))

    def to_device(self, dst: DeviceMemory, src: np.ndarray, asynchronous: bool = True) -> None:
        if src.nbytes > dst.nbytes or not src.flags.c_contiguous:
            raise LsaEdgeError(f"bad host→device copy: {src.nbytes} bytes into {dst.nbytes}")
        with _translated("copying to the GPU"):
            if asynchronous:
                drv.memcpy_htod_async(dst.ptr, src, self._stream)
            else:
                drv.memcpy_htod(dst.ptr, src)

    def to_host(self, dst: np.ndarray, src: DeviceMemory, asynchronous: bool = True) -> None:
        if dst.nbytes > src.nbytes or not dst.flags.c_contiguous:
            raise LsaEdgeError(f"bad device→host copy: {dst.nbytes} bytes from {src.nbytes}")
        with _translated("copying from the GPU"):
            if asynchronous:
                drv.memcpy_dtoh_async(dst, src.ptr, self._stream)
            else:
                drv.memcpy_dtoh(dst, src.ptr)

    def synchronize(self) -> None:
        with _translated("waiting for the CUDA stream"):
            self._stream.synchronize()

    def close(self) -> None:
        if self._ctx is None:
            return
        try:
            with self.current():
                for ptr in list(self._allocations.live):
                    self._allocations.free(ptr)
                self._stream = None
        finally:
            self._ctx.detach()
            self._ctx = None
