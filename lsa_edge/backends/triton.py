"""A remote attribute model: :class:`TritonBackend` sends each frame's aligned faces, in one request, to the
``lsa_edge_attributes`` model of a Triton Inference Server (``lsa-edge serve``, or a repository written by
``lsa-edge export triton``), so detection, alignment and tracking stay on the device and the GPU server
batches many cameras' faces together.

    lsa-edge run --source csi://0 --backend triton://gpu-server:8000
    Pipeline(backend="triton://gpu-server:8000?max_reconnects=20")

The address: ``triton://HOST[:PORT][/MODEL][?OPTION=VALUE&...]`` (HTTP; port 8000, model
``lsa_edge_attributes``). Options: ``timeout`` (seconds a request may take, default 10),
``reconnect_delay`` (0.5), ``reconnect_max_delay`` (10), ``max_reconnects`` (failed attempts in a row before
giving up; default: never give up, like a camera). A server that drops out is retried with exponential
backoff, the frame waiting meanwhile; ``lost``, ``reconnecting``, ``reconnected`` and ``gave_up`` are logged
and kept in ``events`` as a live source reports them. Where the server says which model it serves
(``lsa-edge serve``'s ``lsa_edge_card`` model), a model whose card differs from the local one (other
weights, attributes or preprocessing) is refused: the faces are aligned and normalised here with the local
card, and the labels use its thresholds.

The client library is ``tritonclient[http]`` (the ``serve`` extra), imported when a backend is created.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from .._lazy import require
from ..errors import ConfigError, LsaEdgeError
from .base import BackendBase

log = logging.getLogger(__name__)

SCHEME = "triton://"
DEFAULT_PORT = 8000
ATTRIBUTES_MODEL = "lsa_edge_attributes"  # what lsa-edge serve and lsa-edge export triton call the model
CARD_MODEL = "lsa_edge_card"  # lsa-edge serve: the served model's card, for the client's check
INPUT, OUTPUT = "faces", "probabilities"


class RemoteUnavailableError(LsaEdgeError):
    """A remote server did not answer after the reconnection attempts allowed (``max_reconnects``)."""


@dataclass(frozen=True)
class TritonAddress:
    """A parsed ``triton://`` address (see the module)."""

    host: str
    port: int = DEFAULT_PORT
    model: str = ATTRIBUTES_MODEL
    timeout: float = 10.0
    reconnect_delay: float = 0.5
    reconnect_max_delay: float = 10.0
    max_reconnects: Optional[int] = None

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{SCHEME}{self.url}/{self.model}"


_OPTIONS: dict[str, Callable[[str], Any]] = {
    "timeout": float,
    "reconnect_delay": float,
    "reconnect_max_delay": float,
    "max_reconnects": int,
}


def is_triton(backend: object) -> bool:
    """Whether a ``backend=`` value names a Triton server."""
    return isinstance(backend, str) and backend.startswith(SCHEME)


def parse_address(text: str) -> TritonAddress:
    """``triton://HOST[:PORT][/MODEL][?options]`` → :class:`TritonAddress`, or a ConfigError saying what is
    wrong and what a good one looks like."""
    example = "e.g. triton://gpu-server:8000 or triton://10.0.0.5:8000/lsa_edge_attributes?timeout=5"
    if not is_triton(text):
        raise ConfigError(f"a Triton backend is written triton://HOST[:PORT], got {text!r} ({example})")
    parts = urlsplit(text)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"{text!r}: the port must be a number from 1 to 65535 ({example})") from None
    if not parts.hostname:
        raise ConfigError(f"{text!r} names no host ({example})")
    model = parts.path.strip("/") or ATTRIBUTES_MODEL
    if "/" in model:
        raise ConfigError(f"{text!r}: after the host comes one model name, got {model!r} ({example})")
    opts: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise ConfigError(f"{text!r}: unknown option {key!r}; accepted: {', '.join(_OPTIONS)}")
        try:
            opts[key] = _OPTIONS[key](value)
        except ValueError:
            raise ConfigError(f"{text!r}: option {key}={value!r} is not a number") from None
        if opts[key] <= 0 and not (key == "max_reconnects" and opts[key] == 0):
            raise ConfigError(f"{text!r}: option {key} must be positive, got {value}")
    return TritonAddress(parts.hostname, port, model, **opts)


class TritonBackend(BackendBase):
    """The attribute model on a Triton server (see the module). ``card``: the local model card, whose
    input size the server's model must take, and whose identity the server's card (when it publishes one)
    must match. ``events``: (monotonic time, kind, detail) of the connection's life, newest last."""

    name = "triton"

    def __init__(self, address: str | TritonAddress, card: Any = None) -> None:
        self.address = address if isinstance(address, TritonAddress) else parse_address(address)
        self._http = require("tritonclient.http", "the triton:// backend")
        # tritonclient's HTTP client may only be used by the thread that made it (gevent): one per thread.
        self._local = threading.local()
        self._clients: list[Any] = []  # every thread's, for close()
        self._lock = threading.Lock()
        self._open = True
        self.events: list[tuple[float, str, str]] = []
        self.label = str(self.address)
        self._card = card
        self._call(self._read_model, "connect")  # waits for the server like a camera that is not up yet
        self._check(card)

    # ------------------------------------------------------------------------------ connection
    def _client(self) -> Any:
        """This thread's client, made on first use (and again after a lost connection)."""
        client = getattr(self._local, "client", None)
        if client is None:
            a = self.address
            client = self._http.InferenceServerClient(
                a.url, connection_timeout=a.timeout, network_timeout=a.timeout
            )
            with self._lock:
                if self._open:
                    self._clients.append(client)
            if not self._open:
                _close_quietly(client)
                raise ConfigError(f"the triton backend for {self.label} was closed; create a new one")
            self._local.client = client
        return client

    def _drop_client(self) -> None:
        """Forget this thread's client after a failure: the next attempt connects afresh."""
        client, self._local.client = getattr(self._local, "client", None), None
        if client is not None:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
            _close_quietly(client)

    def _read_model(self) -> None:
        """The model's shape, outputs and batch limit, once the server has it ready."""
        a, client = self.address, self._client()
        self._ready(client)
        meta = client.get_model_metadata(a.model)
        config = client.get_model_config(a.model)
        inputs = {t["name"]: t for t in meta.get("inputs", [])}
        outputs = {t["name"]: t for t in meta.get("outputs", [])}
        # lsa-edge serve names the output "probabilities"; a repository from lsa-edge export keeps the
        # ONNX's own name: either works where the model has that one output
        self._output = OUTPUT if OUTPUT in outputs or len(outputs) != 1 else next(iter(outputs))
        if INPUT not in inputs or self._output not in outputs:
            raise ConfigError(
                f"{a} takes {sorted(inputs)} and gives {sorted(outputs)}; an lsa-edge attribute model takes "
                f"{INPUT!r} and gives {OUTPUT!r} (serve it with lsa-edge serve or lsa-edge export triton)"
            )
        dims = [int(d) for d in inputs[INPUT]["shape"]]
        self.max_batch = int(config.get("max_batch_size", 0)) or None
        self.input_shape = (None, *dims[-3:])
        self.num_outputs = int(outputs[self._output]["shape"][-1])

    def _ready(self, client: Any) -> None:
        """_NotReady (retried) while the server answers but has not loaded the model; ConfigError when
        its repository has no such model."""
        a = self.address
        if not client.is_model_ready(a.model):
            index = client.get_model_repository_index()
            served = [m.get("name") for m in index if m.get("state") == "READY"]
            if a.model not in {m.get("name") for m in index}:  # a typo, not a model still loading
                raise ConfigError(
                    f"the server at {a.url} has no model {a.model!r} (ready: {', '.join(served) or 'none'}); "
                    f"name one of them: {SCHEME}{a.url}/MODEL"
                )
            raise _NotReady(
                f"the server at {a.url} has not loaded {a.model!r} yet (ready: {served or 'none'})"
            )

    def _check(self, card: Any) -> None:
        """ConfigError when the server's model cannot be the local card's."""
        if card is None:
            return
        h, w = card.preprocessing.input_size
        if tuple(self.input_shape[1:]) != (3, h, w) or self.num_outputs != len(card.attributes):
            raise ConfigError(
                f"{self.address} takes {self.input_shape[1:]} and gives {self.num_outputs} attributes; the local "
                f"model takes (3, {h}, {w}) and gives {len(card.attributes)}. Run with the model the server "
                "serves (lsa-edge run --model PACKAGE --backend triton://...)"
            )
        served = self._served_card()
        if served is None:
            log.info(
                "%s does not publish its card (not lsa-edge serve): only the shapes were checked",
                self.address,
            )
            return
        same = (served.weights_sha256, served.attributes, served.preprocessing) == (
            card.weights_sha256,
            card.attributes,
            card.preprocessing,
        )
        if not same:
            raise ConfigError(
                f"{self.address} serves another model ({served.name}, weights {served.weights_sha256[:12]}…; "
                f"here {card.name}, weights {card.weights_sha256[:12]}…): the faces would be prepared for one "
                "model and judged by another. Run with the package the server serves "
                "(lsa-edge run --model PACKAGE --backend triton://...)"
            )

    def _served_card(self) -> Any:
        """The server's :class:`~lsa_edge.card.ModelCard`, or None where it publishes none."""
        from ..card import ModelCard

        try:
            client = self._client()
            if not client.is_model_ready(CARD_MODEL):
                return None
            x = self._http.InferInput("request", [1], "BYTES")
            x.set_data_from_numpy(np.array([b"card"], dtype=object))
            raw = client.infer(CARD_MODEL, [x]).as_numpy("card")[0]
        except self._http.InferenceServerException:
            return None
        return ModelCard.from_json(raw.decode() if isinstance(raw, bytes) else raw)

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """``fn()``, reconnecting with backoff while the server is unreachable (see the module)."""
        a, attempt, lost = self.address, 0, False
        while True:
            try:
                if lost:
                    self._ready(self._client())
                out = fn()
            except (_NotReady, OSError, HTTPException, self._http.InferenceServerException) as err:
                if not _is_connection_error(err):
                    raise ConfigError(f"{a} refused the {what} request: {_message(err)}") from None
                self._drop_client()
                if not lost:
                    self._event("lost", f"{what}: {_message(err)}", logging.WARNING)
                    lost = True
                if a.max_reconnects is not None and attempt >= a.max_reconnects:
                    self._event("gave_up", f"after {attempt} attempts", logging.ERROR)
                    raise RemoteUnavailableError(
                        f"the Triton server at {a.url} did not answer after {attempt} reconnection attempts "
                        f"({_message(err)}); check that it runs (lsa-edge serve) and is reachable from here"
                    ) from None
                delay = backoff(attempt, a.reconnect_delay, a.reconnect_max_delay)
                attempt += 1
                self._event("reconnecting", f"attempt {attempt}, after {delay:.2f} s", logging.INFO)
                time.sleep(delay)
                continue
            if attempt:
                self._event("reconnected", f"after {attempt} attempts", logging.WARNING)
                if what != "connect":  # the server may have restarted with another model: check again
                    self._read_model()
                    self._check(self._card)
            return out

    def _event(self, kind: str, detail: str, level: int) -> None:
        log.log(level, "%s: %s (%s)", self.address, kind, detail)
        self.events.append((time.monotonic(), kind, detail))
        del self.events[:-1000]  # a robot that reconnects for weeks must not grow without bound

    # ------------------------------------------------------------------------------ RunnerBase
    def _handle(self) -> Any:
        return self if self._open else None

    def _run(self, handle: Any, x: np.ndarray) -> np.ndarray:
        def infer() -> np.ndarray:
            t = self._http.InferInput(INPUT, list(x.shape), "FP32")
            t.set_data_from_numpy(x, binary_data=True)
            want = self._http.InferRequestedOutput(self._output, binary_data=True)
            return self._client().infer(self.address.model, [t], outputs=[want]).as_numpy(self._output)

        out = self._call(infer, "infer")
        return np.ascontiguousarray(out, dtype=np.float32)

    def _release(self) -> None:
        with self._lock:
            self._open, clients, self._clients = False, self._clients, []
        for client in clients:
            _close_quietly(client)

    def describe(self) -> str:
        return f"{self.address.model} on Triton at {self.address.url}"


def backoff(attempt: int, first: float, cap: float) -> float:
    """Seconds before reconnection attempt ``attempt`` + 1: ``first`` doubled per attempt, at most ``cap``
    (the exponent bounded, so a server away for days never overflows it)."""
    return min(first * 2.0 ** min(attempt, 60), cap)


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception as err:  # a dead connection, or another thread's gevent client: nothing to keep
        log.debug("closing a Triton client: %s", err)


class _NotReady(Exception):
    """The server answers, but the model is not (yet) loaded: retried like a dropped connection."""


def _message(err: BaseException) -> str:
    message = getattr(err, "message", None)  # tritonclient's InferenceServerException: a method
    msg = message() if callable(message) else str(err)
    return str(msg).strip() or type(err).__name__


def _is_connection_error(err: BaseException) -> bool:
    """A server that is not there (yet): refused, reset, timed out, or not ready — worth retrying. An error
    the server answered with (a bad request) is not."""
    if isinstance(err, (_NotReady, OSError, HTTPException)):  # HTTPException: a connection closed mid-request
        return True
    status = str(getattr(err, "status", lambda: None)() or "")
    text = _message(err).lower()
    return status in ("", "503", "StatusCode.UNAVAILABLE") and any(
        w in text
        for w in (
            "connect",
            "refused",
            "reset",
            "timed out",
            "timeout",
            "unavailable",
            "broken pipe",
            "not ready",
        )
    )
