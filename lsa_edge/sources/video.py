"""Video files: anything OpenCV's backends read (.mp4, .avi, .mkv, .mov, .webm, animated .gif, ...).

Frames are delivered one by one, none dropped; timestamps are the video's own positions. ``loop`` restarts
at the end (for demos): the index keeps counting and timestamps keep increasing across passes.
Imports OpenCV and the standard library only.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

from .._opencv import cv2
from ..errors import DataError
from ._base import EventCallback, Frame, Source
from ._options import COMMON, boolean
from ._uri import SourceSpec
from .arrays import to_bgr_uint8

log = logging.getLogger(__name__)

OPTIONS = {**COMMON, "loop": boolean}  # loop: restart at the end, forever (stop with max_frames or close)


def _positive(value: float) -> float | None:
    return value if value > 0 and math.isfinite(value) else None


class VideoFileSource(Source):
    kind = "video"

    def __init__(
        self,
        path: str | Path,
        *,
        loop: bool = False,
        name: str | None = None,
        max_frames: int | None = None,
        on_event: EventCallback | None = None,
    ):
        self.path = Path(path)
        super().__init__(name or f"video:{self.path}", max_frames=max_frames, on_event=on_event)
        if not self.path.is_file():
            raise DataError(
                f"video file {self.path} does not exist. Check the path; a camera is its index (0) or "
                "v4l2:///dev/videoN, a folder of images or a glob pattern works too"
            )
        self._loop = loop
        self._lock = threading.Lock()  # a read and a release (close from another thread) never overlap
        self._released = False
        self._cap = self._open()
        self._fps = _positive(self._cap.get(cv2.CAP_PROP_FPS))
        h, w = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self._size = (h, w) if h > 0 and w > 0 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if count > 0 else None  # from the container; may be approximate
        self._index = 0  # frames delivered so far, over all passes
        self._pass_frames = 0  # frames read in the current pass
        self._offset = 0.0  # seconds of earlier passes
        self._last_ts = 0.0  # timestamp of the last frame, within the pass
        self._emit("connected", message=self._describe())

    def _open(self) -> Any:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            from .cameras import video_backends

            ffmpeg = "YES" if video_backends()["ffmpeg"] else "NO"
            raise DataError(
                f"OpenCV {cv2.__version__} cannot open the video {self.path} (its FFmpeg support: {ffmpeg}). "
                "Check that the file is complete, or convert it: ffmpeg -i IN -c:v libx264 OUT.mp4"
            )
        return cap

    def _describe(self) -> str:
        size = f"{self._size[1]}×{self._size[0]}" if self._size else "size unknown"
        fps = f"{self._fps:g} fps" if self._fps else "fps unknown"
        count = f", {self.frame_count} frames" if self.frame_count else ""
        return f"{size}, {fps}{count} ({self._cap.getBackendName()})"

    def _read(self) -> Any:
        try:
            ok, image = self._cap.read()
        except cv2.error as err:
            log.warning("%s: decoding failed after frame %d (%s); ending", self.name, self._index, err)
            return None
        return image if ok and image is not None else None

    def _next_frame(self) -> Frame | None:
        with self._lock:
            return None if self._released else self._next_locked()

    def _next_locked(self) -> Frame | None:
        image = self._read()
        if image is None and self._loop and self._pass_frames > 0:
            step = 1.0 / self._fps if self._fps else 0.0
            self._offset += self._last_ts + step
            self._cap.release()
            self._cap = self._open()  # reopening is more reliable than seeking to 0 across codecs
            self._pass_frames = 0
            log.debug("%s: looping (pass starts at %.3f s)", self.name, self._offset)
            image = self._read()
        if image is None:
            if self.frame_count and self._pass_frames < 0.95 * self.frame_count - 1:  # counts are approximate
                log.warning(
                    "%s: ended after %d of %d frames (truncated or corrupt file?)",
                    self.name,
                    self._pass_frames,
                    self.frame_count,
                )
            return None
        try:
            image = to_bgr_uint8(image, "bgr", f"{self.name} frame {self._index}")
        except ValueError as err:  # e.g. a 16-bit or single-channel video with CAP_PROP_CONVERT_RGB off
            log.warning("%s; ending", err)
            return None
        pos = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if not (math.isfinite(pos) and (pos > 0 or self._pass_frames == 0)):
            pos = self._pass_frames / self._fps if self._fps else float(self._pass_frames)
        self._last_ts = pos
        frame = Frame(image, self._index, self._offset + pos, self.name)
        self._index += 1
        self._pass_frames += 1
        self._n_read += 1
        return frame

    def _close(self) -> None:
        with self._lock:  # waits for a read in progress (one frame) to finish
            self._released = True
            self._cap.release()


def open_video(spec: SourceSpec, opts: dict[str, Any]) -> VideoFileSource:
    return VideoFileSource(
        spec.target,
        loop=opts.get("loop", False),
        name=opts.get("name"),
        max_frames=opts.get("max_frames"),
        on_event=opts.get("on_event"),
    )
