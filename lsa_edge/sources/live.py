"""Live sources (cameras, streams): a reader thread grabs continuously and the iterator returns the newest
frame, so a slow consumer never builds up lag; a lost device reconnects with exponential backoff.

How a live source behaves:

* Opening connects once, synchronously: a wrong index/URL fails at once with :class:`DataError`.
* The reader thread owns the capture (OpenCV captures are not thread-safe; releasing one while another
  thread blocks in ``read()`` can crash), keeps only the latest frame and counts the ones it replaced
  (``stats.dropped``).
* Reads that fail (``read()`` returns False/None, or raises) for ``read_timeout`` seconds mean *lost*:
  events ``lost`` → ``reconnecting`` (attempt 1, 2, ... after ``reconnect_delay`` doubling up to
  ``reconnect_max_delay``) → ``reconnected``, and the iterator carries on with the next frames; frame
  indices keep increasing; a ``next()`` during the gap waits for the reconnection. After ``max_reconnects`` failed attempts (None: never) the source emits
  ``gave_up``, logs an error, sets :attr:`Source.error`, and the iterator ends.

Imports numpy, OpenCV (for property ids) and the standard library only.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._opencv import cv2
from ..errors import ConfigError, DataError, LsaEdgeError
from ._base import EventCallback, Frame, Source
from .arrays import to_bgr_uint8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconnectPolicy:
    """When a live source counts as lost, and how it retries. Times in seconds."""

    read_timeout: float = 2.0  # failed reads for this long = lost (a healthy camera delivers every 1/fps s)
    initial_delay: float = 0.5  # wait before the first reconnection attempt
    max_delay: float = 10.0  # the backoff doubles up to this
    factor: float = 2.0  # backoff growth per attempt
    max_attempts: int | None = None  # attempts per loss before giving up; None: retry forever

    def __post_init__(self) -> None:
        for name in ("read_timeout", "initial_delay", "max_delay"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"ReconnectPolicy.{name} must be > 0 seconds, got {getattr(self, name)!r}")
        if self.factor < 1:
            raise ConfigError(f"ReconnectPolicy.factor must be ≥ 1, got {self.factor!r}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(
                f"ReconnectPolicy.max_attempts must be ≥ 1 or None (forever), got {self.max_attempts!r}"
            )

    def delays(self) -> Iterator[float]:
        """The wait before each attempt: initial, ×factor, ... capped at max_delay; max_attempts of them."""
        delay, attempt = self.initial_delay, 0
        while self.max_attempts is None or attempt < self.max_attempts:
            yield delay
            attempt += 1
            delay = min(delay * self.factor, self.max_delay)


def _prop(cap: Any, prop: int) -> float:
    get = getattr(cap, "get", None)
    try:
        value = float(get(prop)) if callable(get) else 0.0
    except Exception:
        return 0.0
    return value if math.isfinite(value) else 0.0


def _release(cap: Any) -> None:
    try:
        cap.release()
    except Exception as err:  # releasing a broken device must not take the reader down
        log.debug("release failed: %s", err)


class LiveSource(Source):
    """A camera or stream read by a background thread; see the module docstring.

    open_capture: returns an opened VideoCapture-like object (``isOpened()``, ``read()``, ``release()``,
    optionally ``get(prop)``), or None / an unopened one when the device is not there. It is called for the
    first connection and for every reconnection attempt.
    hint: what to tell the user when the first connection fails (e.g. "lsa-edge doctor lists cameras").
    """

    live = True

    def __init__(
        self,
        name: str,
        open_capture: Callable[[], Any],
        *,
        kind: str = "camera",
        policy: ReconnectPolicy | None = None,
        hint: str = "",
        max_frames: int | None = None,
        on_event: EventCallback | None = None,
    ):
        super().__init__(name, max_frames=max_frames, on_event=on_event)
        self.kind = kind
        self.policy = policy or ReconnectPolicy()
        self._open_capture = open_capture
        self._hint = hint
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._done = False  # the reader thread has ended
        self._stop = threading.Event()
        self._open_error = ""
        cap = self._connect()  # LsaEdgeError (e.g. OpenCV lacks GStreamer) propagates as is
        if cap is None:
            raise DataError(f"cannot open {name}: {self._open_error}.{' ' + hint if hint else ''}")
        self._emit("connected", message=self._describe(cap))
        self._thread = threading.Thread(target=self._run, args=(cap,), name=f"lsa-edge {name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------ properties
    # ------------------------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        """An opened capture, or None (reason in ``_open_error``). LsaEdgeError from the opener propagates."""
        try:
            cap = self._open_capture()
        except LsaEdgeError:
            raise
        except Exception as err:
            self._open_error = f"{type(err).__name__}: {err}"
            return None
        opened = getattr(cap, "isOpened", None)
        if cap is None or not (callable(opened) and opened()):
            if cap is not None:
                _release(cap)
            self._open_error = "OpenCV could not open it"
            return None
        fps = _prop(cap, cv2.CAP_PROP_FPS)
        self._fps = fps if 0 < fps < 1000 else self._fps
        h, w = int(_prop(cap, cv2.CAP_PROP_FRAME_HEIGHT)), int(_prop(cap, cv2.CAP_PROP_FRAME_WIDTH))
        if h > 0 and w > 0:
            self._size = (h, w)
        return cap

    def _describe(self, cap: Any) -> str:
        size = f"{self._size[1]}×{self._size[0]}" if self._size else "size unknown"
        fps = f"{self._fps:g} fps" if self._fps else "fps unknown"
        backend = getattr(cap, "getBackendName", None)
        try:
            via = f" via {backend()}" if callable(backend) else ""
        except Exception:
            via = ""
        return f"{size}, {fps}{via}"

    def _reconnect(self) -> Any:
        """An opened capture after backoff, or None when stopped or out of attempts (then ``gave_up``)."""
        start = time.monotonic()
        attempt = 0
        for attempt, delay in enumerate(self.policy.delays(), 1):
            self._emit("reconnecting", attempt=attempt, delay=delay)
            if self._stop.wait(delay):
                return None
            try:
                cap = self._connect()
            except LsaEdgeError as err:
                cap, self._open_error = None, str(err)
            if cap is not None:
                return cap
            log.debug("%s: reconnection attempt %d failed: %s", self.name, attempt, self._open_error)
        if self._stop.is_set():
            return None
        self._error = (
            f"gave up after {attempt} reconnection attempt(s) over {time.monotonic() - start:.1f} s "
            f"(last: {self._open_error}); the source ends.{' ' + self._hint if self._hint else ''}"
        )
        self._emit("gave_up", attempt=attempt, message=self._error)
        return None

    # ---------------------------------------------------------------------------------- reader thread
    def _read(self, cap: Any) -> Any:
        try:
            ok, image = cap.read()
        except Exception as err:  # cv2.error from a dying device or stream
            log.debug("%s: read raised %s", self.name, err)
            return None
        if not ok or image is None:
            return None
        try:
            return to_bgr_uint8(image, "bgr", f"{self.name} frame")
        except ValueError as err:
            self._n_skipped += 1
            log.warning("%s; skipped", err)
            return None

    def _publish(self, image: Any, timestamp: float) -> None:
        with self._cond:
            index = self._n_read
            self._n_read += 1
            if self._latest is not None:
                self._n_dropped += 1
            self._latest = Frame(image, index, timestamp, self.name)
            if self._size is None:
                self._size = (int(image.shape[0]), int(image.shape[1]))
            self._cond.notify()

    def _run(self, cap: Any) -> None:
        poll = min(0.01, self.policy.read_timeout / 10)
        last_ok = time.monotonic()
        try:
            while not self._stop.is_set():
                image = self._read(cap)
                now = time.monotonic()
                if image is not None:
                    last_ok = now
                    self._publish(image, now)
                    continue
                if now - last_ok < self.policy.read_timeout:
                    self._stop.wait(poll)
                    continue
                self._emit("lost", message=f"no frame for {now - last_ok:.1f} s")
                _release(cap)
                cap = self._reconnect()
                if cap is None:
                    break
                self._n_reconnects += 1
                self._emit("reconnected", message=self._describe(cap))
                last_ok = time.monotonic()
        except Exception:  # a bug must end the source visibly, not hang the consumer
            log.exception("%s: the reader thread failed", self.name)
            self._error = self._error or "the reader thread failed (see the log)"
        finally:
            if cap is not None:
                _release(cap)
            with self._cond:
                self._done = True
                self._cond.notify_all()

    # ------------------------------------------------------------------------------------- consumer
    def _next_frame(self) -> Frame | None:
        with self._cond:
            while self._latest is None and not self._done and not self._stop.is_set():
                self._cond.wait(0.5)
            frame, self._latest = self._latest, None
        return frame

    def _close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            wait = self.policy.read_timeout + 1.0
            self._thread.join(wait)
            if self._thread.is_alive():
                log.warning(
                    "%s: the reader did not stop within %.1f s (a blocking read); it ends on its own",
                    self.name,
                    wait,
                )
