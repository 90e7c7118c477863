"""What every source shares: the :class:`Frame` it yields, the :class:`SourceEvent` it reports, and the
:class:`Source` base class (iterator, context manager, ``max_frames``, events, counters).

Imports numpy and the standard library only.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Callable  # typing: EventCallback is subscripted at run time (Python 3.8)

import numpy as np

log = logging.getLogger(__name__)

# Event kinds, in the order a live source may report them.
EVENT_KINDS = ("connected", "lost", "reconnecting", "reconnected", "gave_up", "closed")
_EVENT_LEVEL = {
    "connected": logging.INFO,
    "lost": logging.WARNING,
    "reconnecting": logging.INFO,
    "reconnected": logging.WARNING,  # as loud as the loss, so a log reader sees both ends of the gap
    "gave_up": logging.ERROR,
    "closed": logging.DEBUG,
}
MAX_EVENTS = 1000  # kept in memory per source; a robot that reconnects for weeks must not grow without bound


@dataclass(frozen=True, eq=False)  # eq=False: comparing frames would compare pixel arrays
class Frame:
    """One frame of a source.

    image: H×W×3 uint8, **BGR** channel order (OpenCV's), C-contiguous — whatever the source delivered
    (RGB arrays, grayscale, 16-bit and RGB-decoded image files are converted).
    index: 0-based position in the source's own sequence: the frame number for video files, the item
    number for image lists and iterables (skipped bad items leave gaps), the grab counter for live sources
    (frames dropped for being stale leave gaps); it keeps increasing across ``loop`` passes and reconnections.
    timestamp: seconds — the video's own position for files (plus the length of earlier passes when
    looping), ``time.monotonic()`` at grab time for live sources, ``index / fps`` for images and iterables
    when an ``fps`` option is given, else ``time.monotonic()`` when read.
    source: the source's name (e.g. ``"camera:0"``, ``"video:clip.mp4"``).
    path: the file this frame was read from (image sources), else None.
    """

    image: np.ndarray
    index: int
    timestamp: float
    source: str
    path: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass(frozen=True)
class SourceEvent:
    """A status change of a source, for the pipeline to report drops instead of dying.

    kind: one of ``EVENT_KINDS`` — connected, lost, reconnecting (``attempt`` = 1, 2, ...; ``delay`` = seconds
    waited before this attempt), reconnected, gave_up, closed.
    time: ``time.monotonic()`` when it happened.
    """

    kind: str
    source: str
    time: float
    attempt: int = 0
    delay: float = 0.0
    message: str = ""


@dataclass(frozen=True)
class SourceStats:
    """Counters of a source. read: frames obtained from the device/file/iterable; delivered: frames the
    iterator returned; dropped: live frames replaced by a newer one before the consumer took them;
    skipped: unreadable or malformed items; reconnects: successful reconnections."""

    read: int
    delivered: int
    dropped: int
    skipped: int
    reconnects: int


EventCallback = Callable[[SourceEvent], None]


class Source(ABC):
    """An iterator of :class:`Frame` and a context manager. Iteration ends at the end of a file or list, after
    ``max_frames`` frames, after :meth:`close`, or when a live source gives up reconnecting (then
    :attr:`error` says why). Closing is idempotent and also happens when iteration ends.
    """

    kind: str = "source"
    live: bool = False  # True: a camera or stream; frames are the latest available, stale ones are dropped

    def __init__(self, name: str, *, max_frames: int | None = None, on_event: EventCallback | None = None):
        self.name = name
        self._max_frames = max_frames
        self._on_event = on_event
        self._events: deque[SourceEvent] = deque(maxlen=MAX_EVENTS)
        self._closed = False
        self._close_lock = threading.Lock()
        self._error: str | None = None
        self._n_read = 0
        self._n_delivered = 0
        self._n_dropped = 0
        self._n_skipped = 0
        self._n_reconnects = 0
        self._fps: float | None = None  # subclasses set these when the file or device tells them
        self._size: tuple[int, int] | None = None

    # -------------------------------------------------------------------------------------- description
    @property
    def fps(self) -> float | None:
        """Nominal frame rate reported by the file or device, or None when unknown."""
        return self._fps

    @property
    def size(self) -> tuple[int, int] | None:
        """(height, width) of the frames when known up front, else None (e.g. a folder of mixed images)."""
        return self._size

    @property
    def events(self) -> list[SourceEvent]:
        """The status events so far (the latest ``MAX_EVENTS``), oldest first."""
        return list(self._events)

    @property
    def error(self) -> str | None:
        """Why iteration ended early (a live source gave up), else None."""
        return self._error

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def stats(self) -> SourceStats:
        return SourceStats(
            self._n_read, self._n_delivered, self._n_dropped, self._n_skipped, self._n_reconnects
        )

    # ---------------------------------------------------------------------------------------- iteration
    def __iter__(self) -> Source:
        return self

    def __next__(self) -> Frame:
        if self._closed or (self._max_frames is not None and self._n_delivered >= self._max_frames):
            self.close()
            raise StopIteration
        frame = self._next_frame()
        if frame is None:
            self.close()
            raise StopIteration
        self._n_delivered += 1
        return frame

    @abstractmethod
    def _next_frame(self) -> Frame | None:
        """The next frame, or None at the end."""

    # -------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release the file or device; safe to call twice, also at the same time from two threads, and from
        another thread while one iterates (that iteration then ends)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._close()
        finally:
            self._emit("closed")

    def _close(self) -> None:
        """Release the file or device (subclasses); the base holds none."""
        return None

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.name!r} {state}, {self._n_delivered} frames delivered>"

    # ----------------------------------------------------------------------------------------- events
    def _emit(self, kind: str, attempt: int = 0, delay: float = 0.0, message: str = "") -> SourceEvent:
        event = SourceEvent(kind, self.name, time.monotonic(), attempt, delay, message)
        self._events.append(event)
        detail = f" (attempt {attempt}, after {delay:.2f} s)" if kind == "reconnecting" else ""
        log.log(_EVENT_LEVEL[kind], "%s: %s%s%s", self.name, kind, detail, f": {message}" if message else "")
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a buggy callback must not kill the reader thread
                log.exception("%s: the on_event callback raised for %s", self.name, kind)
        return event
