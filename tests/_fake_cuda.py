"""A fake GPU behind fake cuda-python and pycuda modules, for the CUDA interface, the TensorRT backend and
the calibrators (no GPU here).

The fake ``cuda.bindings.runtime`` has cuda-python's real function names, argument order and
``(cudaError_t, *values)`` returns, with the real error values (tests/test_backends_cuda.py checks the
names against the installed cuda-python); ``old=True`` mimics cuda-python ≤ 12.6.0, which lives at
``cuda.cudart`` and raises ``RuntimeError`` when there is no driver. The fake ``pycuda.driver`` has
pycuda's names. Device memory is a dict of bytearrays at fake addresses; page-locked host memory is
real host memory (ctypes buffers), so the code under test copies real bytes.
"""

from __future__ import annotations

import ctypes
import enum
import sys
import types
from typing import Any

import numpy as np

# Real values of cudaError_t (CUDA runtime API) for the errors the fake produces.
CUDA_ERRORS = {
    "cudaSuccess": 0,
    "cudaErrorInvalidValue": 1,
    "cudaErrorMemoryAllocation": 2,
    "cudaErrorInsufficientDriver": 35,
    "cudaErrorInvalidDevice": 101,
    "cudaErrorNoDevice": 100,
}
_BASE = 0x7F00_0000_0000  # fake device addresses; never dereferenced on the host


class FakeGpu:
    """One fake device. ``error``: a cudaError_t name every call returns (no driver/GPU); ``count``: devices."""

    def __init__(
        self,
        name: bytes = b"Orin",
        cc: tuple[int, int] = (8, 7),
        count: int = 1,
        error: str | None = None,
        old: bool = False,
    ) -> None:
        self.name, self.cc, self.count, self.error, self.old = name, cc, count, error, old
        self.device: dict[int, bytearray] = {}  # base address → bytes
        self.host: dict[int, Any] = {}  # pinned host buffers (kept alive)
        self.streams: set[int] = set()
        self.log: list[Any] = []
        self.current: int | None = None
        self._allocated = 0

    # -- device memory ---------------------------------------------------------------------------------
    def _find(self, ptr: int) -> tuple[bytearray, int]:
        for base, buf in self.device.items():
            if base <= ptr < base + max(1, len(buf)):
                return buf, ptr - base
        raise KeyError(f"no device allocation at {ptr:#x}")

    def read(self, ptr: int, nbytes: int) -> bytes:
        buf, off = self._find(ptr)
        return bytes(buf[off : off + nbytes])

    def write(self, ptr: int, data: bytes) -> None:
        buf, off = self._find(ptr)
        if off + len(data) > len(buf):
            raise ValueError("write past the end of a device allocation")
        buf[off : off + len(data)] = data

    def malloc(self, nbytes: int) -> int:
        self._allocated += 1  # never reuse an address, as a freed one may still be named somewhere
        ptr = _BASE + 0x1000_0000 * self._allocated
        self.device[ptr] = bytearray(nbytes)
        return ptr

    def live(self) -> int:
        """Allocations and pinned buffers not freed yet (a leak check)."""
        return len(self.device) + len(self.host) + len(self.streams)

    # -- cuda-python -----------------------------------------------------------------------------------
    def cudart(self) -> types.ModuleType:
        gpu = self
        rt = types.ModuleType("cuda.bindings.runtime" if not self.old else "cuda.cudart")
        err_t = enum.IntEnum("cudaError_t", CUDA_ERRORS)
        kind_t = enum.IntEnum(
            "cudaMemcpyKind",
            {"cudaMemcpyHostToHost": 0, "cudaMemcpyHostToDevice": 1, "cudaMemcpyDeviceToHost": 2},
        )
        rt.cudaError_t, rt.cudaMemcpyKind = err_t, kind_t
        ok = err_t.cudaSuccess

        def call(fn: Any) -> Any:
            def wrapped(*args: Any) -> Any:
                gpu.log.append((fn.__name__, *args))
                if gpu.old and gpu.error:
                    raise RuntimeError("Failed to dlopen libcuda.so.1")
                if gpu.error and fn.__name__ not in ("cudaGetErrorString",):
                    return (err_t[gpu.error], None) if fn.__name__ != "cudaFree" else (err_t[gpu.error],)
                return fn(*args)

            wrapped.__name__ = fn.__name__
            setattr(rt, fn.__name__, wrapped)
            return wrapped

        @call
        def cudaGetDeviceCount() -> Any:
            return (ok, gpu.count)  # (a real driver answers cudaErrorNoDevice; error= covers that)

        @call
        def cudaGetDeviceProperties(device: int) -> Any:
            if not 0 <= device < gpu.count:
                return (err_t.cudaErrorInvalidDevice, None)
            props = types.SimpleNamespace(name=gpu.name + b"\x00" * 8, major=gpu.cc[0], minor=gpu.cc[1])
            return (ok, props)

        @call
        def cudaGetErrorString(error: Any) -> Any:
            texts = {"cudaErrorNoDevice": b"no CUDA-capable device is detected"}
            texts["cudaErrorInsufficientDriver"] = (
                b"CUDA driver version is insufficient for CUDA runtime version"
            )
            return (ok, texts.get(err_t(error).name, b"unknown error"))

        @call
        def cudaSetDevice(device: int) -> Any:
            if not 0 <= device < max(gpu.count, 1):
                return (err_t.cudaErrorInvalidDevice,)
            gpu.current = device
            return (ok,)

        @call
        def cudaGetDevice() -> Any:
            return (ok, 0 if gpu.current is None else gpu.current)

        @call
        def cudaStreamCreate() -> Any:
            handle = 0x5000 + len(gpu.streams) + 1
            gpu.streams.add(handle)
            return (ok, handle)

        @call
        def cudaStreamSynchronize(stream: Any) -> Any:
            return (ok,)

        @call
        def cudaStreamDestroy(stream: Any) -> Any:
            gpu.streams.discard(int(stream))
            return (ok,)

        @call
        def cudaMalloc(size: int) -> Any:
            return (ok, gpu.malloc(size))

        @call
        def cudaFree(ptr: int) -> Any:
            del gpu.device[int(ptr)]
            return (ok,)

        @call
        def cudaMallocHost(size: int) -> Any:
            buf = ctypes.create_string_buffer(size)
            gpu.host[ctypes.addressof(buf)] = buf
            return (ok, ctypes.addressof(buf))

        @call
        def cudaFreeHost(ptr: int) -> Any:
            del gpu.host[int(ptr)]
            return (ok,)

        def copy(dst: int, src: int, count: int, kind: Any) -> Any:
            if kind == kind_t.cudaMemcpyHostToDevice:
                gpu.write(int(dst), ctypes.string_at(int(src), count))
            elif kind == kind_t.cudaMemcpyDeviceToHost:
                ctypes.memmove(int(dst), gpu.read(int(src), count), count)
            else:
                return (err_t.cudaErrorInvalidValue,)
            return (ok,)

        @call
        def cudaMemcpy(dst: int, src: int, count: int, kind: Any) -> Any:
            return copy(dst, src, count, kind)

        @call
        def cudaMemcpyAsync(dst: int, src: int, count: int, kind: Any, stream: Any) -> Any:
            if int(stream) not in gpu.streams:
                return (err_t.cudaErrorInvalidValue,)
            return copy(dst, src, count, kind)

        return rt

    # -- pycuda ----------------------------------------------------------------------------------------
    def pycuda_driver(self) -> types.ModuleType:
        gpu = self
        drv = types.ModuleType("pycuda.driver")

        class Error(Exception):  # pycuda._driver.Error
            pass

        class LogicError(Error):
            pass

        def init(flags: int = 0) -> None:
            if gpu.error:
                raise LogicError("cuInit failed: no CUDA-capable device is detected")

        class DeviceAllocation:
            def __init__(self, nbytes: int) -> None:
                self.ptr = gpu.malloc(nbytes)

            def __int__(self) -> int:
                return self.ptr

            def free(self) -> None:
                gpu.device.pop(self.ptr, None)

        class Context:
            @staticmethod
            def pop() -> None:
                gpu.log.append("pop")

        class PrimaryContext:
            def push(self) -> None:
                gpu.log.append("push")

            def detach(self) -> None:
                gpu.log.append("detach")

        class Device:
            def __init__(self, i: int) -> None:
                self.i = i

            @staticmethod
            def count() -> int:
                return gpu.count

            def name(self) -> str:
                return gpu.name.decode()

            def compute_capability(self) -> tuple[int, int]:
                return gpu.cc

            def retain_primary_context(self) -> PrimaryContext:
                return PrimaryContext()

        class Stream:
            def __init__(self) -> None:
                self.handle = 0x6000 + len(gpu.streams) + 1

            def synchronize(self) -> None:
                gpu.log.append("sync")

        def htod(dst: Any, src: np.ndarray, stream: Any = None) -> None:
            gpu.write(int(dst), np.ascontiguousarray(src).tobytes())

        def dtoh(dst: np.ndarray, src: Any, stream: Any = None) -> None:
            dst[...] = np.frombuffer(gpu.read(int(src), dst.nbytes), dtype=dst.dtype).reshape(dst.shape)

        drv.Error, drv.LogicError = Error, LogicError
        drv.init, drv.Device, drv.Context, drv.Stream = init, Device, Context, Stream
        drv.mem_alloc = DeviceAllocation
        drv.pagelocked_empty = lambda shape, dtype: np.zeros(shape, dtype)
        drv.memcpy_htod, drv.memcpy_htod_async = htod, htod
        drv.memcpy_dtoh, drv.memcpy_dtoh_async = dtoh, dtoh
        return drv


_IMPLS = ("lsa_edge.backends._cuda_python", "lsa_edge.backends._pycuda")


def install(monkeypatch: Any, gpu: FakeGpu | None, *, cuda_python: bool = True, pycuda: bool = False) -> None:
    """Make ``gpu`` what cuda-python and/or pycuda see (None for either: not installed)."""
    for name in _IMPLS:  # re-import our binding modules against the fakes
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart", "pycuda", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, None)  # None: "import" raises ImportError
    if gpu is not None and cuda_python:
        rt = gpu.cudart()
        cuda = types.ModuleType("cuda")
        if gpu.old:
            cuda.cudart = rt
            monkeypatch.setitem(sys.modules, "cuda.cudart", rt)
        else:
            bindings = types.ModuleType("cuda.bindings")
            bindings.runtime = rt
            cuda.bindings = bindings
            monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
            monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", rt)
        monkeypatch.setitem(sys.modules, "cuda", cuda)
    if gpu is not None and pycuda:
        drv = gpu.pycuda_driver()
        package = types.ModuleType("pycuda")
        package.driver = drv
        monkeypatch.setitem(sys.modules, "pycuda", package)
        monkeypatch.setitem(sys.modules, "pycuda.driver", drv)
