"""Frames from any Python iterable or iterator of numpy arrays (a generator, a list, an N×H×W×C array, a ROS
image callback's queue), and the frame normalisation every source shares.

A bad item (None, empty, wrong dtype or shape, non-finite floats) is skipped with a warning naming its
index, never a crash; exceptions raised by the iterable itself propagate (they are the caller's bugs).
Imports numpy, OpenCV and the standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from types import GeneratorType
from typing import Any

import numpy as np

from ..data.images import to_uint8_3ch
from ..errors import ConfigError
from ._base import EventCallback, Frame, Source
from ._options import COMMON, boolean, choice, positive_float
from ._uri import SourceSpec

log = logging.getLogger(__name__)

OPTIONS = {
    **COMMON,
    "color": choice("bgr", "rgb"),  # channel order of the arrays given (default bgr, OpenCV's)
    "fps": positive_float,  # frames per second: timestamps become index / fps instead of the read time
    "loop": boolean,  # start again at the end, forever (a list or array; an iterator can be read only once)
}


def to_bgr_uint8(image: Any, color: str = "bgr", what: str = "frame") -> np.ndarray:
    """Any common array → H×W×3 uint8 BGR, C-contiguous.

    Accepts H×W or H×W×1 (gray, replicated), H×W×3 (in ``color`` order), H×W×4 (alpha dropped); uint8,
    uint16 (top 8 bits kept) or float32/float64 in [0, 1]. Raises ValueError saying what was received.
    """
    if image is None:
        raise ValueError(f"{what}: got None instead of an image")
    if (
        isinstance(image, np.ndarray)
        and image.dtype.kind == "f"
        and image.size
        and not np.isfinite(image).all()
    ):
        raise ValueError(f"{what}: float image with NaN or infinite values")
    out = to_uint8_3ch(image, what)  # converts dtype and channel count; keeps the channel order
    if color == "rgb":
        out = np.ascontiguousarray(out[:, :, ::-1])
    return out


class IterableSource(Source):
    """Frames from an iterable of arrays. Not live: every item is delivered, in order."""

    kind = "iterable"

    def __init__(
        self,
        frames: Iterable[Any],
        *,
        color: str = "bgr",
        fps: float | None = None,
        loop: bool = False,
        name: str = "iterable",
        max_frames: int | None = None,
        on_event: EventCallback | None = None,
    ):
        super().__init__(name, max_frames=max_frames, on_event=on_event)
        self._frames = frames
        self._it = iter(frames)
        if loop and self._it is frames:
            raise ConfigError(
                f"loop=True needs a list or array of frames; a {type(frames).__name__} can be read only once "
                "(keeping its frames would use unbounded memory): pass a list, or make the generator endless"
            )
        self._loop = loop
        self._good_this_pass = 0
        self._color = color
        self._fps = fps
        self._position = 0
        self._size = None
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            self._size = (int(frames.shape[1]), int(frames.shape[2]))

    def _next_frame(self) -> Frame | None:
        while True:
            frame = self._next_in_pass()
            if frame is not None or not self._loop or self._closed:
                return frame
            if self._good_this_pass == 0:
                log.error("%s: no usable frame in a whole pass; stopping the loop", self.name)
                return None
            self._good_this_pass = 0
            self._it = iter(self._frames)

    def _next_in_pass(self) -> Frame | None:
        for item in self._it:
            index = self._position
            self._position += 1
            self._n_read += 1
            try:
                image = to_bgr_uint8(item, self._color, f"{self.name} frame {index}")
            except ValueError as err:
                self._n_skipped += 1
                log.warning("%s; skipped", err)
                continue
            if self._closed:  # closed by another thread while the iterable produced this item
                self._close()
                return None
            self._good_this_pass += 1
            ts = index / self._fps if self._fps else time.monotonic()
            return Frame(image, index, ts, self.name)
        return None

    def _close(self) -> None:
        if isinstance(self._it, GeneratorType):  # run the generator's finally blocks now, not at GC
            # ValueError "generator already executing": another thread is inside it right now;
            # _next_frame closes it when that item arrives
            with contextlib.suppress(ValueError):
                self._it.close()


def open_iterable(spec: SourceSpec, opts: dict[str, Any]) -> IterableSource:
    return IterableSource(
        spec.target,
        color=opts.get("color", "bgr"),
        fps=opts.get("fps"),
        loop=opts.get("loop", False),
        name=opts.get("name", spec.name),
        max_frames=opts.get("max_frames"),
        on_event=opts.get("on_event"),
    )
