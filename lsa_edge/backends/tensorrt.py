"""TensorRT backend: a serialized engine (checked against its sidecar first) run on a CUDA stream.

The named-tensor API (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``,
``get_tensor_profile_shape``) exists from TensorRT 8.5 on, so one code path serves 8.5, 10 and 11 (checked
against NVIDIA's real bindings: tests/data/tensorrt_api). Device memory is allocated once for the engine's
largest batch; host copies go through page-locked buffers and move only the rows in use; a call enqueues
H2D copy → inference → D2H copy on one stream and synchronises once. CUDA through
:mod:`lsa_edge.backends._cuda` — cuda-python (preferred) or pycuda — on the device's *primary* context,
made current around every call, so any thread (a ROS callback, a worker) may call ``predict``. Imports
tensorrt and the CUDA binding lazily.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from .._args import integer, path_like
from .._lazy import require
from ..errors import ConfigError, LsaEdgeError, MissingDependencyError, unknown_choice
from ._cuda import BINDINGS, Cuda, DeviceMemory, open_cuda
from ._tensorrt_env import load_engine
from .base import BackendBase, MultiOutputBase

log = logging.getLogger(__name__)


class TensorRTBackend(BackendBase):
    """Runs one engine. ``run(x) -> [outputs]`` for any single-input engine (the detector too);
    ``predict(faces) -> probs`` for the attribute model (a :class:`~lsa_edge.backends.base.Backend`:
    splits batches above the profile's maximum); :meth:`detector_runner` for the face detector's engine."""

    name = "tensorrt"
    max_batch: int  # an engine's profile always bounds the batch

    def __init__(self, engine_path: str | Path, device: int = 0, cuda_binding: str = "auto") -> None:
        w = "TensorRTBackend"
        path_like(w, "engine_path", engine_path, "the path of a TensorRT .engine file")
        device = integer(w, "device", device, lo=0, accepted="a CUDA device index ≥ 0")
        if not isinstance(cuda_binding, str) or cuda_binding not in ("auto", *BINDINGS):
            raise ConfigError(
                f"TensorRTBackend(cuda_binding=...): {unknown_choice('CUDA binding', cuda_binding, ('auto', *BINDINGS))}"
            )
        self.path = Path(engine_path)
        self.label = self.path.name
        self._cuda: Cuda | None = None
        self._device: dict[str, DeviceMemory] = {}
        self._lock = threading.Lock()
        try:
            self._open(device, cuda_binding)
        except (LsaEdgeError, MissingDependencyError):
            self.close()
            raise
        except Exception as err:  # TensorRT raises its own types: say what failed, keep the cause
            self.close()
            raise LsaEdgeError(
                f"TensorRT backend for {self.path.name} failed to start: {type(err).__name__}: {err}"
            ) from err

    def _open(self, device: int, cuda_binding: str) -> None:
        trt = require("tensorrt", "the TensorRT backend")
        self._cuda = cuda = open_cuda(device, cuda_binding)  # GpuUnavailableError: no driver/GPU, says why
        with cuda.current():
            self.engine = load_engine(self.path)  # raises EngineMismatchError with the rebuild command
            self.context = self.engine.create_execution_context()
            if self.context is None:
                raise LsaEdgeError(
                    f"TensorRT could not create an execution context for {self.path} (out of memory?)"
                )
            self.inputs: list[str] = []
            self.outputs: list[str] = []
            for i in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(i)
                is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                (self.inputs if is_input else self.outputs).append(name)
            if len(self.inputs) != 1:
                raise ConfigError(f"{self.path}: expected one input tensor, got {self.inputs}")
            self.input_name = self.inputs[0]
            shape = tuple(self.engine.get_tensor_shape(self.input_name))
            if shape[0] == -1:  # dynamic batch: the profile's maximum
                _, _, max_shape = self.engine.get_tensor_profile_shape(self.input_name, 0)
                self.max_batch = int(max_shape[0])
            else:
                self.max_batch = int(shape[0])
            self.item_shape = tuple(int(d) for d in shape[1:])
            self.input_shape = (None if shape[0] == -1 else self.max_batch, *self.item_shape)
            self._host: dict[str, np.ndarray] = {}
            for name in self.inputs + self.outputs:
                dims = tuple(self.engine.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
                self._host[name] = cuda.pinned((self.max_batch, *dims[1:]), dtype)
                self._device[name] = cuda.alloc(self._host[name].nbytes)
                self.context.set_tensor_address(name, int(self._device[name]))
        # The attribute model's output is "probs" (lsa-edge's export); any other engine: its first output.
        self._main = self.outputs.index("probs") if "probs" in self.outputs else 0
        self.num_outputs = int(self._host[self.outputs[self._main]].shape[-1])
        log.info(
            "TensorRT engine %s: batch ≤ %d, input %s, CUDA via %s",
            self.path.name,
            self.max_batch,
            self.item_shape,
            cuda.binding,
        )

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """One call of at most ``max_batch`` items: N×… float32 → the engine's outputs for those N."""
        n = len(x)
        if not 0 < n <= self.max_batch:
            raise ConfigError(f"{self.path.name} takes 1..{self.max_batch} items per call, got {n}")
        if tuple(x.shape[1:]) != self.item_shape:
            raise ConfigError(f"{self.path.name} takes N×{self.item_shape} inputs, got {x.shape}")
        with self._lock:  # one set of buffers: one call at a time
            return self._execute(x, n)

    def _execute(self, x: np.ndarray, n: int) -> list[np.ndarray]:
        cuda = self._cuda
        if cuda is None:  # checked under the lock close() takes: never the freed buffers
            raise ConfigError(f"the TensorRT backend for {self.path.name} was closed; create a new one")
        with cuda.current():
            host_in = self._host[self.input_name]
            host_in[:n] = x
            if self.context.set_input_shape(self.input_name, (n, *self.item_shape)) is False:
                raise LsaEdgeError(f"{self.path.name} rejected input shape {(n, *self.item_shape)}")
            cuda.to_device(self._device[self.input_name], host_in[:n])
            if not self.context.execute_async_v3(cuda.stream_handle):
                raise LsaEdgeError(f"TensorRT failed to run {self.path.name} (see the TensorRT log)")
            for name in self.outputs:
                cuda.to_host(self._host[name][:n], self._device[name])
            cuda.synchronize()
            return [self._host[name][:n].copy() for name in self.outputs]  # before another call overwrites

    def _handle(self) -> Cuda | None:
        return self._cuda

    def _run(self, handle: object, x: np.ndarray) -> np.ndarray:
        return self.run(x)[self._main].astype(np.float32, copy=False)

    def detector_runner(self) -> TensorRTDetectorRunner:
        """This engine as the face detector's runner (``predict(x) -> (regressors, logits)``)."""
        return TensorRTDetectorRunner(self)

    def close(self) -> None:
        with self._lock:  # never while a call is using the buffers
            cuda, self._cuda = self._cuda, None
            if cuda is None:
                return
            try:
                with cuda.current():
                    while self._device:
                        self._device.popitem()[1].free()
                    self.context = self.engine = None
            finally:
                cuda.close()


class TensorRTDetectorRunner(MultiOutputBase):
    """A detector engine as a :class:`~lsa_edge.backends.base.ModelRunner`: ``predict(x N×3×S×S float32)
    -> (regressors N×A×16, logits N×A×1)``, what :class:`~lsa_edge.detector.FaceDetector` runs. Closing it
    closes the engine."""

    name = "tensorrt"

    def __init__(self, engine: TensorRTBackend) -> None:
        self._trt, self.path, self.label = engine, engine.path, engine.label
        self.max_batch, self.input_shape = engine.max_batch, engine.input_shape

    def _handle(self) -> Cuda | None:
        return self._trt._cuda

    def _run(self, handle: object, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._order(self._trt.run(x))

    @staticmethod
    def _order(outs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        by_last = sorted(outs, key=lambda a: -a.shape[-1])  # regressors (16 values) before logits (1)
        return by_last[0], by_last[1]

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        host = self._trt._host
        return self._order([np.zeros((0, *host[n].shape[1:]), host[n].dtype) for n in self._trt.outputs])

    def _release(self) -> None:
        self._trt.close()


__all__ = ["TensorRTBackend", "TensorRTDetectorRunner"]
