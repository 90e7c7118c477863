"""ONNX Runtime backend: an lsa-edge ONNX (FP32, FP16 or Q/DQ INT8) → attribute probabilities."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._lazy import require
from ..errors import ConfigError

log = logging.getLogger(__name__)


class OnnxRuntimeBackend:
    """Runs one ONNX model with ONNX Runtime.

    providers: ONNX Runtime execution providers in order of preference (default: CPU only — a GPU provider
    is chosen explicitly, never by silent fallback). threads: intra-op threads (0 = ONNX Runtime's default).
    """

    name = "onnxruntime"

    def __init__(
        self, path: str | Path, providers: Sequence[str] = ("CPUExecutionProvider",), threads: int = 0
    ) -> None:
        ort = require("onnxruntime", "the ONNX Runtime backend")
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"ONNX model {self.path} does not exist")
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise ConfigError(
                f"ONNX Runtime here has no {', '.join(missing)} (available: {', '.join(available)}); "
                "install the matching onnxruntime package (onnxruntime-gpu for CUDA/TensorRT)"
            )
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # ONNX Runtime's own warnings go to stderr; keep them for errors only
        if threads:
            opts.intra_op_num_threads = threads
        # Idle pool threads keep spinning after a run by default, taking a core from the CPU work between
        # calls (letterboxing, alignment warps) on a 2–6 core board. Spinning during a run is kept.
        opts.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=list(providers))
        (inp,) = self.session.get_inputs()
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape)
        out = self.session.get_outputs()[0]
        self.output_name = out.name
        self.num_outputs = out.shape[-1] if isinstance(out.shape[-1], int) else 40
        batch = inp.shape[0]
        self.max_batch = batch if isinstance(batch, int) else None  # None: dynamic
        log.debug("ONNX Runtime session for %s on %s", self.path.name, self.session.get_providers())

    def predict(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """N×3×H×W float32 → N×C float32 probabilities, in chunks of at most ``batch_size``."""
        x = np.ascontiguousarray(faces, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, self.num_outputs), np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_shape[1:]):
            raise ConfigError(
                f"{self.path.name} takes N×{'×'.join(map(str, self.input_shape[1:]))} faces, got {x.shape}"
            )
        step = min(batch_size, self.max_batch or batch_size)
        outs = [
            self.session.run([self.output_name], {self.input_name: x[i : i + step]})[0]
            for i in range(0, len(x), step)
        ]
        return np.concatenate(outs).astype(np.float32, copy=False)

    def close(self) -> None:
        self.session = None  # releases ONNX Runtime's memory
