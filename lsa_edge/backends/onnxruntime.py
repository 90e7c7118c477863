"""ONNX Runtime: :func:`open_session`, the one place that turns providers, threads and a GPU index into
a session (and refuses a silent CPU fallback), and :class:`OnnxRuntimeBackend`, an lsa-edge ONNX (FP32,
FP16 or Q/DQ INT8) → attribute probabilities. The face detector's runner opens its session here too."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _args
from .._args import integer, path_like, shown
from .._lazy import require
from ..errors import ConfigError, GpuUnavailableError
from .base import BackendBase

log = logging.getLogger(__name__)

_GPU = ("TensorrtExecutionProvider", "CUDAExecutionProvider")  # providers that take a device_id


def open_session(
    path: Path,
    providers: Sequence[str],
    *,
    what: str,
    threads: int = 0,
    device_id: int | None = None,
    spin: bool = True,
    load_error: type[Exception] | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path`` on ``providers`` (in order of preference).

    what: the model in messages ("the attribute model", "the face detector"). threads: intra-op threads
    (0 = ONNX Runtime's default). device_id: the GPU of the CUDA/TensorRT providers (None: ONNX Runtime's,
    GPU 0). spin: whether the intra-op pool spins during a run (True: it stops spinning after each run;
    False: never). load_error: the error a model ONNX Runtime cannot load becomes (None: ONNX Runtime's
    own). A provider this ONNX Runtime lacks is a ConfigError; GPU providers asked for of which none
    starts (ONNX Runtime itself would quietly run on the CPU) a :class:`GpuUnavailableError`.
    """
    ort = require("onnxruntime", f"running {what} with ONNX Runtime")
    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:  # never fall back to the CPU silently
        raise ConfigError(
            f"ONNX Runtime here has no {', '.join(missing)} for {what} (available: {', '.join(available)}); "
            "install the matching onnxruntime package (onnxruntime-gpu for CUDA/TensorRT), or ask for "
            "CPUExecutionProvider"
        )
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ONNX Runtime's own warnings go to stderr; keep them for errors only
    if threads:
        opts.intra_op_num_threads = threads
    if spin:
        # Idle pool threads keep spinning after a run by default, taking a core from the CPU work between
        # calls (letterboxing, alignment warps) on a 2–6 core board. Spinning during a run is kept.
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    else:
        # A 1–2 ms model (the detector): one thread is as fast as two, and a spinning pool slows the
        # OpenCV letterboxing between calls (2.6 ms per 640×480 frame instead of 6.7 on 2 cores).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    asked = [(p, {"device_id": device_id}) if device_id is not None and p in _GPU else p for p in providers]
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=asked)
    except Exception as err:  # ONNX Runtime raises its own exception types; keep its diagnostic
        if load_error is None:
            raise
        raise load_error(f"ONNX Runtime cannot load {what} {path}: {err}") from err
    _check_started(session, providers, path, what, device_id)
    return session


def _check_started(
    session: Any, providers: Sequence[str], path: Path, what: str, device_id: int | None
) -> None:
    active = session.get_providers()
    gpu = [p for p in providers if p != "CPUExecutionProvider"]
    if gpu and not any(p in active for p in gpu):  # ONNX Runtime fell back to the CPU on its own
        where = "" if device_id is None else f" on GPU {device_id}"
        raise GpuUnavailableError(
            f"ONNX Runtime could not start {' or '.join(gpu)}{where} for {what} {path.name} (it runs "
            f"only {', '.join(active)}): no NVIDIA driver or GPU, no such GPU index, or the CUDA/cuDNN "
            "libraries onnxruntime-gpu needs are missing; run lsa-edge doctor, or ask for the CPU"
        )
    for p in gpu:
        if p not in active:
            log.info("ONNX Runtime could not start %s; running on %s", p, ", ".join(active))
    log.debug("ONNX Runtime session for %s on %s", path.name, active)


def dims(shape: Sequence[Any]) -> tuple[int | None, ...]:
    """An ONNX Runtime input/output shape with None for its symbolic (dynamic) dimensions."""
    return tuple(d if isinstance(d, int) else None for d in shape)


class OnnxRuntimeBackend(BackendBase):
    """Runs one ONNX attribute model with ONNX Runtime (a :class:`~lsa_edge.backends.base.Backend`).

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
        require("onnxruntime", "the ONNX Runtime backend")
        self.path = Path(path)
        self.label = self.path.name
        self.session: Any = None
        if not self.path.is_file():
            raise ConfigError(f"ONNX model {self.path} does not exist")
        session = open_session(
            self.path, providers, what="the attribute model", threads=threads, device_id=device_id
        )
        (inp,) = session.get_inputs()
        self.input_name = inp.name
        self.input_shape = dims(inp.shape)
        out = session.get_outputs()[0]
        self.output_name = out.name
        self.num_outputs = out.shape[-1] if isinstance(out.shape[-1], int) else 40
        self.max_batch = self.input_shape[0]  # None: dynamic
        self.session = session

    def _handle(self) -> Any:
        return self.session

    def _run(self, session: Any, x: np.ndarray) -> np.ndarray:
        return session.run([self.output_name], {self.input_name: x})[0].astype(np.float32, copy=False)

    def _release(self) -> None:
        self.session = None  # releases ONNX Runtime's memory

    def describe(self) -> str:
        session = self.session
        providers = session.get_providers() if session is not None else []
        how = f" [{', '.join(p.replace('ExecutionProvider', '') for p in providers)}]" if providers else ""
        return f"{self.path.name} on {self.name}{how}"
