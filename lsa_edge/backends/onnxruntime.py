"""ONNX Runtime backend: an lsa-edge ONNX (FP32, FP16 or Q/DQ INT8) → attribute probabilities."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import _args
from .._args import integer, path_like, shown
from .._lazy import require
from ..errors import ConfigError, GpuUnavailableError

log = logging.getLogger(__name__)

_GPU = ("TensorrtExecutionProvider", "CUDAExecutionProvider")  # providers that take a device_id


class OnnxRuntimeBackend:
    """Runs one ONNX model with ONNX Runtime.

    providers: ONNX Runtime execution providers in order of preference (default: CPU only — a GPU provider
    is chosen explicitly, never by silent fallback). threads: intra-op threads (0 = ONNX Runtime's default).
    device_id: the GPU the CUDA/TensorRT providers run on (None: ONNX Runtime's, GPU 0). When GPU providers
    are asked for and ONNX Runtime loads none of them (no driver, CUDA libraries missing, no such GPU) —
    ONNX Runtime itself would quietly run on the CPU — this raises :class:`GpuUnavailableError`.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int = 0,
        device_id: int | None = None,
    ) -> None:
        w = "OnnxRuntimeBackend"
        path_like(w, "path", path, "the path of an .onnx file")
        if not isinstance(providers, (list, tuple)) or not all(isinstance(p, str) for p in providers):
            raise ConfigError(
                f"OnnxRuntimeBackend(providers=...): got {shown(providers)}; accepted: a list of ONNX "
                "Runtime provider names, e.g. ['CUDAExecutionProvider', 'CPUExecutionProvider']"
            )
        threads = _args.threads(w, threads)
        if device_id is not None:
            device_id = integer(w, "device_id", device_id, lo=0, accepted="None or a GPU index ≥ 0")
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
        asked = [
            (p, {"device_id": device_id}) if device_id is not None and p in _GPU else p for p in providers
        ]
        self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=asked)
        active = self.session.get_providers()
        gpu = [p for p in providers if p in _GPU]
        if gpu and not any(p in active for p in gpu):  # ONNX Runtime fell back to the CPU on its own
            self.session = None
            where = "" if device_id is None else f" on GPU {device_id}"
            raise GpuUnavailableError(
                f"ONNX Runtime could not start {' or '.join(gpu)}{where} for {self.path.name} (it runs "
                f"only {', '.join(active)}): no NVIDIA driver or GPU, no such GPU index, or the CUDA/cuDNN "
                "libraries onnxruntime-gpu needs are missing; run lsa-edge doctor"
            )
        for p in gpu:
            if p not in active:
                log.info("ONNX Runtime could not start %s; running on %s", p, ", ".join(active))
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
        """N×3×H×W float32 → N×C float32 probabilities, in chunks of at most ``batch_size``.

        ConfigError once :meth:`close` ran (a call already under way keeps its session to the end)."""
        session = self.session  # one reference for the whole call: close() may drop the attribute
        if session is None:
            raise ConfigError(f"the ONNX Runtime backend for {self.path.name} was closed; create a new one")
        x = np.ascontiguousarray(faces, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, self.num_outputs), np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.input_shape[1:]):
            raise ConfigError(
                f"{self.path.name} takes N×{'×'.join(map(str, self.input_shape[1:]))} faces, got {x.shape}"
            )
        step = min(batch_size, self.max_batch or batch_size)
        outs = [
            session.run([self.output_name], {self.input_name: x[i : i + step]})[0]
            for i in range(0, len(x), step)
        ]
        return np.concatenate(outs).astype(np.float32, copy=False)

    def close(self) -> None:
        self.session = None  # releases ONNX Runtime's memory
