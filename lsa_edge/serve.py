"""``lsa-edge serve``: a model package behind NVIDIA's Triton Inference Server, for many cameras.

Three models, served by the ``tritonserver`` that NVIDIA's nvidia-pytriton wheel bundles (the ``serve``
extra), answering Triton's HTTP (8000), gRPC (8001) and Prometheus metrics (8002) endpoints, with Triton's
own health (``/v2/health/ready``) and metadata:

- ``lsa_edge`` — whole frames. Input ``frame``: UINT8 H×W×3 BGR, any size. Output ``faces``: BYTES, one
  JSON document per frame, what ``lsa-edge run --json`` writes for it (boxes, scores, keypoints,
  attributes, labels). Each request is one frame (frames of different sizes do not batch). Untracked by
  default: every face of every frame is inferred. A request parameter ``stream`` (any string, e.g. the
  camera's name: ``client.infer(..., parameters={"stream": "lobby-1"})``) gives that stream its own tracker
  on the server, so track ids and smoothed attributes follow its faces across requests; the server keeps
  up to ``max_streams`` of them and forgets the one idle longest beyond that. A ``timestamp`` parameter
  (the capture time, seconds) is used for the tracker instead of the arrival time. Frames do not go
  through Triton's batcher (``instances`` frames are answered at once).
- ``lsa_edge_attributes`` — aligned, normalised faces. Input ``faces``: FP32 N×3×H×W (the card's size and
  preprocessing). Output ``probabilities``: FP32 N×40. Triton's dynamic batcher joins the requests of many
  clients (``--max-batch``, preferred sizes from the package's batch profile, ``--queue-delay-us``). This
  is the model ``lsa-edge run --backend triton://HOST:PORT`` calls.
- ``lsa_edge_card`` — the served model's card as JSON (input ``request``: BYTES, anything), so a client
  can check that it prepares faces for the model the server runs.

Python functions answer Triton's requests in this process (pytriton's Python backend), so the package
opens here exactly as ``lsa-edge run`` opens it. :class:`ModelServer` starts and stops the server;
``lsa-edge serve`` keeps it up until SIGTERM or Ctrl-C and then stops it cleanly.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import check_number
from ._lazy import require
from .backends.base import Backend
from .backends.triton import ATTRIBUTES_MODEL, CARD_MODEL, INPUT, OUTPUT
from .errors import ConfigError, LsaEdgeError
from .package import BACKENDS, ModelPackage, select_backend

log = logging.getLogger(__name__)

FRAME_MODEL = "lsa_edge"

__all__ = ["ATTRIBUTES_MODEL", "CARD_MODEL", "FRAME_MODEL", "ModelServer", "ServeConfig"]


@dataclass(frozen=True)
class ServeConfig:
    """How :class:`ModelServer` serves. Ports: Triton's HTTP, gRPC and metrics endpoints. address: the
    interface they listen on ("0.0.0.0": all). max_batch: the most faces Triton joins into one call of the
    attribute model (capped by the model's own limit). queue_delay_us: how long Triton may hold a request
    to form a larger batch. instances: copies of the attribute and frame models answering at once.
    max_streams: trackers kept for the ``stream`` request parameter. backend, device, threads: as for
    ``lsa-edge run`` (where the attribute model runs in this process)."""

    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    address: str = "0.0.0.0"
    max_batch: int = 32
    queue_delay_us: int = 2000
    instances: int = 1
    max_streams: int = 32
    backend: str = "auto"
    device: str | None = None
    threads: int = 0
    exit_timeout_s: int = 5
    log_verbose: int = 0

    def __post_init__(self) -> None:
        for name in ("http_port", "grpc_port", "metrics_port"):
            check_number(getattr(self, name), f"ServeConfig.{name}", lo=1, hi=65535, integer=True)
        ports = (self.http_port, self.grpc_port, self.metrics_port)
        if len(set(ports)) != 3:
            raise ConfigError(f"the HTTP, gRPC and metrics ports must differ, got {ports}")
        check_number(self.max_batch, "ServeConfig.max_batch", lo=1, hi=4096, integer=True)
        check_number(self.queue_delay_us, "ServeConfig.queue_delay_us", lo=0, hi=10_000_000, integer=True)
        check_number(self.instances, "ServeConfig.instances", lo=1, hi=64, integer=True)
        check_number(self.max_streams, "ServeConfig.max_streams", lo=1, hi=100_000, integer=True)
        check_number(self.exit_timeout_s, "ServeConfig.exit_timeout_s", lo=1, hi=3600, integer=True)
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"ServeConfig.backend must be one of {', '.join(BACKENDS)} (where the server runs the "
                f"model), got {self.backend!r}"
            )


def preferred_batch_sizes(package: ModelPackage, max_batch: int) -> list[int]:
    """The batch sizes Triton should aim for: the package's optimisation profile (opt and max faces, from
    manifest.json) within ``max_batch``, and ``max_batch`` itself."""
    sizes = {max_batch}
    root = package.source if package.source.is_dir() else package.source.parent
    if (root / "manifest.json").exists():
        from .manifest import Manifest

        try:
            batch = Manifest.read(root).batch
        except LsaEdgeError:  # the package opened, so this cannot fail; a hint is not worth an error
            batch = None
        if batch:
            sizes.update(b for b in batch[1:] if 1 < b <= max_batch)
    return sorted(sizes)


class ModelServer:
    """A model package served by Triton (see the module). ``model``: what :class:`~lsa_edge.Pipeline`
    takes (None: the shipped default). Use as a context manager, or :meth:`start` / :meth:`stop`."""

    def __init__(
        self, model: str | Path | ModelPackage | None = None, config: ServeConfig | None = None
    ) -> None:
        self.config = config or ServeConfig()
        if not isinstance(self.config, ServeConfig):
            raise ConfigError(
                f"ModelServer(config=...): got {type(config).__name__}; accepted: a ServeConfig"
            )
        self.package = model if isinstance(model, ModelPackage) else ModelPackage.open(model)
        self._triton: Any = None
        self._frames: FrameModel | None = None
        self.backend: Backend = select_backend(
            self.package, self.config.backend, self.config.threads, self.config.device
        )
        self.max_batch = min(self.config.max_batch, self.backend.max_batch or self.config.max_batch)
        self.batches: list[int] = []  # sizes of the attribute-model calls Triton formed (the last 10,000)

    # --------------------------------------------------------------------------------- models
    def _attributes(self, requests: list[Any]) -> list[dict[str, np.ndarray]]:
        """Triton's batch of requests → one call of the attribute model, split back per request."""
        parts = [np.asarray(r[INPUT], dtype=np.float32) for r in requests]
        faces = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self.batches.append(len(faces))
        del self.batches[:-10_000]
        probs = self.backend.predict(faces, self.max_batch)
        out, start = [], 0
        for p in parts:
            out.append({OUTPUT: probs[start : start + len(p)]})
            start += len(p)
        return out

    def _card(self, requests: list[Any]) -> list[dict[str, np.ndarray]]:
        doc = self.package.card.to_json(indent=None).encode()
        return [{"card": np.array([doc], dtype=object)} for _ in requests]

    def _bind(self, triton: Any) -> None:
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

        cfg, card = self.config, self.package.card
        h, w = card.preprocessing.input_size
        triton.bind(
            model_name=ATTRIBUTES_MODEL,
            infer_func=[self._attributes] * cfg.instances,
            inputs=[Tensor(name=INPUT, dtype=np.float32, shape=(3, h, w))],
            outputs=[Tensor(name=OUTPUT, dtype=np.float32, shape=(len(card.attributes),))],
            config=ModelConfig(
                max_batch_size=self.max_batch,
                batcher=DynamicBatcher(
                    max_queue_delay_microseconds=cfg.queue_delay_us,
                    preferred_batch_size=preferred_batch_sizes(self.package, self.max_batch),
                ),
            ),
            strict=True,
        )
        self._frames = FrameModel(self.package, self.backend, cfg, self.max_batch)
        triton.bind(
            model_name=FRAME_MODEL,
            infer_func=[self._frames] * cfg.instances,
            inputs=[Tensor(name="frame", dtype=np.uint8, shape=(-1, -1, 3))],
            outputs=[Tensor(name="faces", dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False),
            strict=True,
        )
        triton.bind(
            model_name=CARD_MODEL,
            infer_func=self._card,
            inputs=[Tensor(name="request", dtype=bytes, shape=(1,))],
            outputs=[Tensor(name="card", dtype=bytes, shape=(1,))],
            config=ModelConfig(batching=False),
            strict=True,
        )

    # --------------------------------------------------------------------------------- lifetime
    def start(self) -> ModelServer:
        """Start Triton with the three models; returns once they are ready (MissingDependencyError without
        the serve extra, LsaEdgeError when the server cannot start, e.g. a port in use)."""
        require("pytriton", "lsa-edge serve")
        from pytriton.triton import Triton, TritonConfig

        c = self.config
        triton = Triton(
            config=TritonConfig(
                http_address=c.address,
                http_port=c.http_port,
                grpc_address=c.address,
                grpc_port=c.grpc_port,
                metrics_port=c.metrics_port,
                metrics_address=c.address,
                exit_timeout_secs=c.exit_timeout_s,
                log_verbose=c.log_verbose,
            )
        )
        try:
            self._bind(triton)
            triton.run()
        except BaseException as err:  # Ctrl-C/SIGTERM during start-up too: no half-started server left
            _stop_quietly(triton)
            if not isinstance(err, Exception):
                raise
            raise LsaEdgeError(
                f"Triton did not start ({type(err).__name__}: {err}); check that ports {c.http_port}, "
                f"{c.grpc_port} and {c.metrics_port} are free (--http-port, --grpc-port, --metrics-port) and "
                "that this Python has a shared libpython (see README, 'Many cameras')"
            ) from err
        self._triton = triton
        return self

    def stop(self) -> None:
        """Stop Triton (waits up to ``exit_timeout_s`` for requests under way) and close the models;
        idempotent."""
        triton, self._triton = self._triton, None
        if triton is not None:
            _stop_quietly(triton)
        if self._frames is not None:
            self._frames.close()
        self.backend.close()

    @property
    def running(self) -> bool:
        return self._triton is not None and bool(self._triton.is_alive())

    def __enter__(self) -> ModelServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_quietly(triton: Any) -> None:
    try:
        triton.stop()
    except Exception as err:  # a server that already went away
        log.debug("stopping Triton: %s", err)


class FrameModel:
    """The ``lsa_edge`` model: a frame → its faces as JSON. An untracked Pipeline answers frames without a
    ``stream`` parameter; each stream gets its own tracked Pipeline (its own tracker and face detector; the
    attribute backend is shared). Frames call the attribute model directly, not through Triton's batcher:
    ``--instances`` sets how many frames are answered at once."""

    def __init__(self, package: ModelPackage, backend: Backend, config: ServeConfig, max_batch: int) -> None:
        from .pipeline import Pipeline

        self._make = lambda tracking: Pipeline(
            package, backend=backend, tracking=tracking, max_batch=max_batch, device=config.device
        )
        self._untracked = self._make(False)
        self._streams: OrderedDict[str, Any] = OrderedDict()
        self._max_streams = config.max_streams
        self._lock = threading.Lock()

    def _pipeline(self, stream: str | None) -> Any:
        if stream is None:
            return self._untracked
        with self._lock:
            pipe = self._streams.get(stream)
            if pipe is not None:
                self._streams.move_to_end(stream)  # the most recently used last
                return pipe
        fresh = self._make(True)  # outside the lock: opening a detector takes a while
        with self._lock:
            pipe = self._streams.setdefault(stream, fresh)
            self._streams.move_to_end(stream)
            gone = [self._streams.popitem(last=False) for _ in range(len(self._streams) - self._max_streams)]
        if pipe is not fresh:  # another request of this stream made one first
            fresh.close()
        for name, old in gone:
            log.info(
                "stream %r: idle longest, its tracks forgotten (%d streams kept)", name, self._max_streams
            )
            old.close()  # waits for a frame of it still under way
        return pipe

    def _predict(self, stream: str | None, frame: np.ndarray, timestamp: float) -> Any:
        try:
            return self._pipeline(stream).predict(frame, timestamp=timestamp)
        except ConfigError as err:  # its stream was forgotten while this request waited: start it again
            if stream is None or "closed" not in str(err):
                raise
            with self._lock:
                self._streams.pop(stream, None)
            return self._pipeline(stream).predict(frame, timestamp=timestamp)

    def __call__(self, requests: list[Any]) -> list[dict[str, np.ndarray]]:
        out = []
        for r in requests:
            params = r.parameters or {}
            stream = None if params.get("stream") is None else str(params["stream"])
            # the capture time, when the client sends one (seconds), keeps network jitter out of the tracker
            stamp = float(params["timestamp"]) if "timestamp" in params else time.time()
            result = self._predict(stream, np.asarray(r["frame"]), stamp)
            doc = {**result.to_dict(), **({"stream": stream} if stream is not None else {})}
            out.append({"faces": np.array([json.dumps(doc).encode()], dtype=object)})
        return out

    def close(self) -> None:
        with self._lock:
            pipes, self._streams = [self._untracked, *self._streams.values()], OrderedDict()
        for p in pipes:
            p.close()
