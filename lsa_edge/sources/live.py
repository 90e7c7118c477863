"""Live sources (cameras, streams): a reader thread grabs continuously and the iterator returns the newest
frame, so a slow consumer never builds up lag; a lost device reconnects with exponential backoff.

How a live source behaves:

* Opening connects once, synchronously: a wrong index/URL fails at once with :class:`DataError`.
* A reader thread owns each capture (OpenCV captures are not thread-safe; releasing one while another
  thread blocks in ``read()`` can crash): it reads, keeps only the latest frame, counts the ones it
  replaced (``stats.dropped``) and finally releases the capture.
* A supervisor thread watches the frames: none for ``read_timeout`` seconds — reads fail (False/None),
  raise, or block in the driver — means *lost*: events ``lost`` → ``reconnecting`` (attempt 1, 2, ... after
  ``reconnect_delay`` doubling up to ``reconnect_max_delay``) → ``reconnected`` once a reopened capture
  delivers a frame; the iterator carries on; frame indices keep increasing; a ``next()`` during the gap
  waits for the reconnection. A capture that opens but delivers nothing within ``read_timeout`` is a
  failed attempt, not a reconnection. A reader blocked in ``read()`` is abandoned (it releases its capture
  if the read ever returns); at most ``MAX_STUCK_READERS`` may be pending, further attempts fail.
  After ``max_reconnects`` failed attempts in a row (None: never) the source emits ``gave_up``, logs an
  error, sets :attr:`Source.error` (credentials in URLs masked), and the iterator ends.
* :meth:`close` (from any thread, any number of times) ends a waiting ``next()`` at once and waits up to
  ``read_timeout + 1`` s for the capture to be released.

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
from ._uri import redact_text
from .arrays import to_bgr_uint8

log = logging.getLogger(__name__)

# Abandoned captures whose read() or open is still blocked in the driver, at most, per source; while this
# many are stuck a reconnection attempt fails without opening another (threads must not pile up over days).
MAX_STUCK_READERS = 3


@dataclass(frozen=True)
class ReconnectPolicy:
    """When a live source counts as lost, and how it retries. Times in seconds."""

    read_timeout: float = 2.0  # failed reads for this long = lost (a healthy camera delivers every 1/fps s)
    initial_delay: float = 0.5  # wait before the first reconnection attempt
    max_delay: float = 10.0  # the backoff doubles up to this
    factor: float = 2.0  # backoff growth per attempt
    max_attempts: int | None = None  # attempts per loss before giving up; None: retry forever
    open_timeout: float = 30.0  # an open (first or reconnection) that has not returned by then has failed

    def __post_init__(self) -> None:
        for name in ("read_timeout", "initial_delay", "max_delay", "open_timeout"):
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


@dataclass
class _Loss:
    """A loss in progress: reconnection attempts count up until a reopened capture delivers a frame."""

    start: float
    delays: Iterator[float]
    attempt: int = 0


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
        self._last_frame = -math.inf  # time.monotonic() of the latest frame
        self._stuck: list[_Reader | _Opener] = []  # abandoned readers blocked in read(), openers in open
        cap = self._connect()  # LsaEdgeError (e.g. OpenCV lacks GStreamer) propagates as is
        if cap is None:
            raise DataError(f"cannot open {name}: {self._open_error}.{' ' + hint if hint else ''}")
        self._emit("connected", message=self._describe(cap))
        self._reader = _Reader(self, cap, after_loss=False)
        self._thread = threading.Thread(target=self._run, name=f"lsa-edge {name} supervisor", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------ properties
    # ------------------------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        """An opened capture, or None (reason in ``_open_error``). LsaEdgeError from the opener propagates.

        The opener runs in a helper thread, waited for at most ``policy.open_timeout`` seconds (and not
        after close()): a driver or server that never answers cannot hang the source. A late capture is
        released by the helper thread."""
        opener = _Opener(self._open_capture, self.name)
        end = time.monotonic() + self.policy.open_timeout
        while not opener.done.wait(min(0.05, max(0.0, end - time.monotonic()))):
            if self._stop.is_set() or time.monotonic() >= end:
                if opener.abandon():
                    self._stuck.append(opener)
                    self._open_error = (
                        f"opening did not finish within {self.policy.open_timeout:g} s (the device or server "
                        "does not answer)"
                    )
                    return None
                break  # it finished just now
        err, cap = opener.error, opener.cap
        if isinstance(err, LsaEdgeError):
            raise err
        if err is not None:
            self._open_error = f"{type(err).__name__}: {redact_text(str(err))}"
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

    def _reconnect(self, loss: _Loss) -> Any:
        """An opened capture after backoff, or None when stopped or out of attempts (then ``gave_up``).

        Attempts are counted per loss, not per call: a capture that opens but delivers no frame within
        ``read_timeout`` is a failed attempt too, so ``max_attempts`` bounds a device that opens but never
        sends anything."""
        for delay in loss.delays:
            loss.attempt += 1
            self._emit("reconnecting", attempt=loss.attempt, delay=delay)
            if self._stop.wait(delay):
                return None
            self._stuck = [r for r in self._stuck if r.thread.is_alive()]
            if len(self._stuck) >= MAX_STUCK_READERS:
                self._open_error = (
                    f"{len(self._stuck)} earlier captures are still blocked in read() or open; not opening "
                    "another"
                )
                continue
            try:
                cap = self._connect()
            except LsaEdgeError as err:
                cap, self._open_error = None, redact_text(str(err))
            if cap is not None:
                return cap
            log.debug("%s: reconnection attempt %d failed: %s", self.name, loss.attempt, self._open_error)
        if self._stop.is_set():
            return None
        self._error = (
            f"{self.name}: gave up after {loss.attempt} reconnection attempt(s) over "
            f"{time.monotonic() - loss.start:.1f} s (last: {self._open_error}); the source ends."
            f"{' ' + self._hint if self._hint else ''}"
        )
        self._emit("gave_up", attempt=loss.attempt, message=self._error)
        return None

    # ------------------------------------------------------------------------------ supervisor thread
    def _publish(self, reader: _Reader, image: Any, timestamp: float) -> None:
        reconnected = False
        with self._cond:
            if reader.stop.is_set():  # abandoned while reading: its frames no longer count
                return
            if reader.after_loss:
                reader.after_loss, reconnected = False, True
                self._n_reconnects += 1
            index = self._n_read
            self._n_read += 1
            if self._latest is not None:
                self._n_dropped += 1
            self._latest = Frame(image, index, timestamp, self.name)
            self._last_frame = timestamp
            if self._size is None:
                self._size = (int(image.shape[0]), int(image.shape[1]))
            self._cond.notify_all()
        if reconnected:
            self._emit("reconnected", message=self._describe(reader.cap))

    def _run(self) -> None:
        """Supervise the reader: a reader that delivers no frame for ``read_timeout`` (reads fail, raise or
        block) means lost; reconnect until a new capture delivers a frame or the attempts run out."""
        timeout = self.policy.read_timeout
        poll = min(0.05, timeout / 10)
        reader = self._reader
        loss: _Loss | None = None
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                with self._cond:
                    fresh = self._last_frame >= reader.started
                    since = max(self._last_frame, reader.started)
                if fresh:
                    loss = None  # the reader delivered: a reconnection (if any) is complete
                if now - since < timeout:
                    # until the deadline; poll while a reconnection waits for its first frame
                    self._stop.wait(poll if loss is not None else since + timeout - now)
                    continue
                blocked = reader.blocked_for(now)
                why = f"read() blocked for {blocked:.1f} s" if blocked >= timeout / 2 else reader.problem
                reader.stop.set()
                if reader.thread.is_alive() and reader.reading_since is not None:
                    self._stuck.append(reader)  # it releases its capture if the read ever returns
                if loss is None:
                    what = "since connecting" if not fresh and self._n_read == 0 else ""
                    self._emit(
                        "lost",
                        message=f"no frame for {now - since:.1f} s{' ' + what if what else ''} ({why})",
                    )
                    loss = _Loss(time.monotonic(), self.policy.delays())
                else:
                    self._open_error = f"it opened but delivered no frame within {timeout:g} s ({why})"
                    log.debug(
                        "%s: reconnection attempt %d failed: %s", self.name, loss.attempt, self._open_error
                    )
                cap = self._reconnect(loss)
                if cap is None:
                    break
                reader = self._reader = _Reader(self, cap, after_loss=True)
        except Exception:  # a bug must end the source visibly, not hang the consumer
            log.exception("%s: the reader thread failed", self.name)
            self._error = self._error or f"{self.name}: the reader thread failed (see the log)"
        finally:
            reader.stop.set()
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
        here = threading.current_thread()
        deadline = time.monotonic() + self.policy.read_timeout + 1.0
        if self._thread is not here:  # the supervisor first: it stops the reader and may replace it
            self._thread.join(max(0.0, deadline - time.monotonic()))
        self._reader.stop.set()
        if self._reader.thread is not here:
            self._reader.thread.join(max(0.0, deadline - time.monotonic()))
        if self._reader.thread.is_alive():
            log.warning(
                "%s: the capture did not stop within %.1f s (a blocking read); it is released when the "
                "read returns",
                self.name,
                self.policy.read_timeout + 1.0,
            )


# ------------------------------------------------------------------------------------------- helpers
class _Opener:
    """``open_capture()`` in its own thread, so that waiting for it can be bounded. If the waiter gives up
    (:meth:`abandon`) before it returns, this thread releases the capture it eventually gets."""

    def __init__(self, open_capture: Callable[[], Any], name: str):
        self.open_capture = open_capture
        self.cap: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        self.thread = threading.Thread(target=self._work, name=f"lsa-edge {name} open", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        try:
            self.cap = self.open_capture()
        except BaseException as err:  # handed to the waiter
            self.error = err
        with self._lock:
            self.done.set()
            late = self._abandoned
        if late and self.cap is not None:
            _release(self.cap)

    def abandon(self) -> bool:
        """Stop waiting; False when the open has already finished (then use its result)."""
        with self._lock:
            if self.done.is_set():
                return False
            self._abandoned = True
            return True


class _Reader:
    """One opened capture and the thread that reads it. After the handover only this thread touches the
    capture (reads it, then releases it), so a read that blocks in the driver can be abandoned: the
    supervisor stops waiting for it and opens a new capture, and this thread releases the old one if the
    read ever returns."""

    def __init__(self, source: LiveSource, cap: Any, after_loss: bool):
        self.source = source
        self.cap = cap
        self.after_loss = after_loss  # the first frame completes a reconnection
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.reading_since: float | None = None  # set while blocked in read()
        self.problem = "read() returned no frame"  # why the last read failed
        self.thread = threading.Thread(target=self._loop, name=f"lsa-edge {source.name}", daemon=True)
        self.thread.start()

    def blocked_for(self, now: float) -> float:
        since = self.reading_since
        return 0.0 if since is None else now - since

    def _loop(self) -> None:
        src, poll = self.source, min(0.01, self.source.policy.read_timeout / 10)
        try:
            while not self.stop.is_set():
                self.reading_since = time.monotonic()
                image = self._read()
                self.reading_since = None
                if self.stop.is_set():  # abandoned or closed meanwhile: this capture is done
                    break
                if image is None:
                    self.stop.wait(poll)
                    continue
                src._publish(self, image, time.monotonic())
        except Exception:  # a bug must end the source visibly, not hang the consumer
            log.exception("%s: the reader thread failed", src.name)
            src._error = src._error or f"{src.name}: the reader thread failed (see the log)"
            src._stop.set()
        finally:
            self.reading_since = None
            _release(self.cap)

    def _read(self) -> Any:
        try:
            ok, image = self.cap.read()
        except Exception as err:  # cv2.error from a dying device or stream
            self.problem = f"read() raised {type(err).__name__}: {redact_text(str(err))}"
            log.debug("%s: %s", self.source.name, self.problem)
            return None
        if not ok or image is None:
            self.problem = "read() returned no frame"
            return None
        try:
            return to_bgr_uint8(image, "bgr", f"{self.source.name} frame")
        except ValueError as err:
            self.source._n_skipped += 1
            self.problem = f"read() returned an unusable frame ({err})"
            log.warning("%s; skipped", err)
            return None
