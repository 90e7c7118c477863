"""CUDA for the TensorRT backend and the on-device calibrators: one small interface, two bindings.

What TensorRT needs from CUDA here is little: the device's name and compute capability (engines are keyed
by them), device memory, page-locked host memory, one stream, and asynchronous copies. :class:`Cuda` is
that interface; two modules implement it:

* ``_cuda_python`` — NVIDIA's cuda-python (``cuda.bindings.runtime``; ``cuda.cudart`` before 12.6.1), the
  binding NVIDIA's own TensorRT samples use. A wheel on x86-64 and aarch64, no compiler needed. Preferred.
* ``_pycuda`` — pycuda, which builds from source on a Jetson (needs the CUDA toolkit on PATH). Fallback.

Every failure of a binding (an error code, a ``RuntimeError`` from an old cuda-python without a driver, a
pycuda ``LogicError``) becomes :class:`GpuUnavailableError` (no usable GPU, saying why) or
:class:`LsaEdgeError`; nothing from the bindings escapes. Core module: numpy only at import time.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Callable

import numpy as np

from ..errors import GpuUnavailableError, MissingDependencyError

__all__ = ["BINDINGS", "Cuda", "DeviceMemory", "device_info", "driver_problem", "open_cuda"]

log = logging.getLogger(__name__)

BINDINGS = ("cuda-python", "pycuda")  # preference order
# Which cuda-python to install where (JetPack's CUDA; cuda-python 13 needs driver 580+).
HINT_JP = (
    "'cuda-python==12.6.*' on JetPack 6 (CUDA 12.2/12.6), '==11.8.*' on JetPack 5, '==13.*' on JetPack 7"
)
_MODULES = {"cuda-python": "._cuda_python", "pycuda": "._pycuda"}


class DeviceMemory:
    """``nbytes`` of device memory at ``ptr`` (``int(mem)`` is the pointer TensorRT takes)."""

    __slots__ = ("_release", "nbytes", "ptr")

    def __init__(self, ptr: int, nbytes: int, release: Callable[[int], None]) -> None:
        self.ptr, self.nbytes, self._release = int(ptr), int(nbytes), release

    def __int__(self) -> int:
        return self.ptr

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            self._release(ptr)


class Cuda:
    """One CUDA device, its primary context and one stream, through one binding.

    Thread use: :meth:`current` makes the device (its primary context, shared with the CUDA runtime and
    TensorRT) current on the calling thread for the duration of a ``with`` block; every call below must run
    inside one. Copies and :meth:`synchronize` use this object's stream.
    """

    binding = ""  # "cuda-python" | "pycuda"

    def __init__(self, device: int = 0) -> None:
        self.device = device

    def device_info(self) -> tuple[str, str]:
        """(name, compute capability "major.minor")."""
        raise NotImplementedError

    def current(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    @property
    def stream_handle(self) -> int:
        """The stream as the integer ``IExecutionContext.execute_async_v3`` takes."""
        raise NotImplementedError

    def alloc(self, nbytes: int) -> DeviceMemory:
        raise NotImplementedError

    def pinned(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        """A page-locked host array (freed by :meth:`close`): what asynchronous copies need."""
        raise NotImplementedError

    def to_device(self, dst: DeviceMemory, src: np.ndarray, asynchronous: bool = True) -> None:
        """Copy C-contiguous ``src`` to the start of ``dst`` (on the stream when ``asynchronous``)."""
        raise NotImplementedError

    def to_host(self, dst: np.ndarray, src: DeviceMemory, asynchronous: bool = True) -> None:
        """Copy ``dst.nbytes`` from the start of ``src`` into C-contiguous ``dst``."""
        raise NotImplementedError

    def synchronize(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Free the pinned memory and the stream; device memory is freed by its owner."""


def _load(binding: str) -> Any:
    """The implementation module of ``binding`` with its binding imported; ImportError when the binding's
    Python package is missing."""
    module = importlib.import_module(_MODULES[binding], __package__)
    module.load()
    return module


def driver_problem() -> str | None:
    """Why no NVIDIA driver can be used (``libcuda.so.1`` cannot be loaded), else None. Cheap, no CUDA call."""
    import sys

    name = {"win32": "nvcuda.dll", "darwin": "libcuda.dylib"}.get(sys.platform, "libcuda.so.1")
    try:
        ctypes.CDLL(name)
    except OSError as err:
        return f"no NVIDIA driver: {name} cannot be loaded ({err})"
    return None


def _attempts(binding: str) -> Sequence[str]:
    if binding == "auto":
        return BINDINGS
    if binding not in BINDINGS:
        from ..errors import ConfigError, unknown_choice

        raise ConfigError(unknown_choice("CUDA binding", binding, (*BINDINGS, "auto")))
    return (binding,)


def _first_working(binding: str, use: Callable[[Any], Any]) -> Any:
    """``use(module)`` with the first binding that imports and works; the errors of the others say why."""
    missing: list[str] = []
    failures: list[GpuUnavailableError] = []
    for name in _attempts(binding):
        try:
            module = _load(name)
        except ImportError as err:
            missing.append(f"{name}: {err}")
            continue
        try:
            return use(module)
        except GpuUnavailableError as err:
            failures.append(err)
    if failures:
        # The driver is the same whatever the binding: the first binding's account is the clearest.
        if len(failures) > 1:
            log.debug("every CUDA binding failed: %s", "; ".join(map(str, failures)))
        raise failures[0]
    raise MissingDependencyError(
        "reading and using the GPU needs cuda-python (preferred) or pycuda, and neither imports ("
        + "; ".join(missing)
        + "). Install the cuda-python of the device's CUDA (never newer than the driver's), e.g. "
        f"pip install {HINT_JP}, "
        "or pip install 'lsa-edge[trt]'."
    )


def device_info(device: int = 0, binding: str = "auto") -> tuple[str, str]:
    """(name, compute capability) of CUDA device ``device``, e.g. ("Orin", "8.7").

    Raises :class:`GpuUnavailableError` (no driver, no GPU, a driver older than the binding) or
    :class:`MissingDependencyError` (neither binding installed).
    """
    return _first_working(binding, lambda m: m.device_info(device))


def open_cuda(device: int = 0, binding: str = "auto") -> Cuda:
    """A :class:`Cuda` for ``device`` through ``binding`` ("auto": cuda-python, else pycuda)."""
    cuda = _first_working(binding, lambda m: m.CudaImpl(device))
    log.info("CUDA device %d through %s", device, cuda.binding)
    return cuda
