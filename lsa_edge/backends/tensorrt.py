"""TensorRT backend: a serialized engine (checked against its sidecar first) run on a CUDA stream.

The named-tensor API (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) exists from
TensorRT 8.5 on, so one code path serves 8.5, 10 and 11. Device memory is allocated once for the
engine's largest batch; host copies go through page-locked buffers; a call enqueues H2D copy → inference
→ D2H copy on one stream and synchronises once. CUDA through pycuda (the ``trt`` extra; on Jetson
``pip install pycuda`` after JetPack). Imports tensorrt and pycuda lazily.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import require
from ..errors import ConfigError, LsaEdgeError
from ._tensorrt_env import load_engine

log = logging.getLogger(__name__)


class TensorRTBackend:
    """Runs one engine. ``run({input: array}) -> [outputs]`` for any engine (the detector too);
    ``predict(faces) -> probs`` for the attribute model (splits batches above the profile's maximum)."""

    name = "tensorrt"

    def __init__(self, engine_path: str | Path) -> None:
        trt = require("tensorrt", "the TensorRT backend")
        cuda = require("pycuda.driver", "the TensorRT backend")
        require("pycuda.autoinit", "the TensorRT backend")  # creates the CUDA context on device 0
        self._trt, self._cuda = trt, cuda
        self.path = Path(engine_path)
        self.engine = load_engine(self.path)  # raises EngineMismatchError with the rebuild command
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise LsaEdgeError(
                f"TensorRT could not create an execution context for {self.path} (out of memory?)"
            )
        self.stream = cuda.Stream()
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
        self.item_shape = shape[1:]
        self._device: dict[str, Any] = {}
        self._host: dict[str, np.ndarray] = {}
        for name in self.inputs + self.outputs:
            dims = tuple(self.engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            full = (self.max_batch, *dims[1:])
            self._host[name] = cuda.pagelocked_empty(full, dtype)
            self._device[name] = cuda.mem_alloc(self._host[name].nbytes)
            self.context.set_tensor_address(name, int(self._device[name]))
        log.info("TensorRT engine %s: batch ≤ %d, input %s", self.path.name, self.max_batch, self.item_shape)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """One call of at most ``max_batch`` items: N×… float32 → the engine's outputs for those N."""
        n = len(x)
        if not 0 < n <= self.max_batch:
            raise ConfigError(f"{self.path.name} takes 1..{self.max_batch} items per call, got {n}")
        if tuple(x.shape[1:]) != tuple(self.item_shape):
            raise ConfigError(f"{self.path.name} takes N×{self.item_shape} inputs, got {x.shape}")
        host_in = self._host[self.input_name]
        host_in[:n] = x
        self.context.set_input_shape(self.input_name, (n, *self.item_shape))
        cuda = self._cuda
        cuda.memcpy_htod_async(self._device[self.input_name], host_in, self.stream)
        if not self.context.execute_async_v3(self.stream.handle):
            raise LsaEdgeError(f"TensorRT failed to run {self.path.name} (see the TensorRT log)")
        for name in self.outputs:
            cuda.memcpy_dtoh_async(self._host[name], self._device[name], self.stream)
        self.stream.synchronize()
        return [self._host[name][:n].copy() for name in self.outputs]

    def predict(self, faces: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        step = min(batch_size or self.max_batch, self.max_batch)
        x = np.ascontiguousarray(faces, dtype=np.float32)
        return np.concatenate([self.run(x[i : i + step])[0] for i in range(0, len(x), step)]).astype(
            np.float32
        )

    def detector_runner(self):
        """This engine as a :class:`lsa_edge.detector.FaceDetector` runner (regressors, logits)."""

        def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            outs = self.run(np.ascontiguousarray(x, dtype=np.float32))
            by_last = sorted(outs, key=lambda a: -a.shape[-1])  # regressors (16 values) before logits (1)
            return by_last[0], by_last[1]

        return run

    def close(self) -> None:
        for mem in self._device.values():
            mem.free()
        self._device.clear()
        self.context = None
        self.engine = None
