"""Where annotated frames and results go: a video file, a folder of images, a JSON-lines file.

Each sink survives a kill at any moment:

* :class:`VideoSink` (video) writes to a hidden temporary file beside the target and renames it into place
  when closed, once it reads back with every frame, so the user's name only ever holds a complete, playable
  video (or whatever was there before). A video that does not (a full disk: OpenCV drops frames silently)
  is left as ``NAME.partial.EXT`` with an error. Frames of another size than the first are scaled and
  padded to fit. A SIGKILL leaves at most a hidden ``.lsa-edge-tmp-*`` file.
* :class:`VideoSink` (folder) writes each frame atomically (temporary name, then rename). Frames from image
  files are named after their source file; frames from videos and cameras are numbered.
* :class:`JsonLinesSink` writes each record as one complete line with one ``write`` call and no
  user-space buffer, so a consumer can ``tail -f`` it and a kill never leaves half a line.

Write failures (disk full, permissions) raise :class:`~lsa_edge.errors.LsaEdgeError` naming the output.
Imports numpy (through OpenCV) and the standard library only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ._fileio import _TMP_PREFIX, file_mode, is_special, write_bytes_atomic
from .errors import ConfigError, LsaEdgeError

__all__ = ["VIDEO_SUFFIXES", "JsonLinesSink", "VideoSink"]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # what imencode writes


def _write_error(what: str, path: Path, err: OSError) -> LsaEdgeError:
    reason = err.strerror or str(err)
    return LsaEdgeError(
        f"cannot write {what} {path}: {reason}. Free some space or choose another path "
        "(what was written so far is kept)"
    )


class VideoSink:
    """Annotated frames to a video file (mp4v for .mp4/.mkv, MJPG for .avi) or, for a path without a
    suffix, a folder of images. A context manager; :meth:`close` finishes the video (safe to call twice).

    path: the output; fps: frames per second of the video (0 or None: 30).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float | None) -> None:
        self.path, self.fps = Path(path), fps or 30.0
        self._real = Path(os.path.realpath(self.path))  # a symlinked video is written through, not replaced
        self.writer: Any = None
        self.count = 0
        self._tmp: Path | None = None
        self._names: dict[str, str] = {}  # folder mode: source file → saved name (bounded by the files)
        self._taken: set[str] = set()
        self._frames = 0  # video mode: frames given to the writer
        self._size = (0, 0)  # video mode: (width, height), the first frame's
        self._resized = False
        suffix = self.path.suffix.lower()
        if suffix not in (*VIDEO_SUFFIXES, ""):
            raise ConfigError(f"--save takes a .mp4, .avi or .mkv file or a folder, got {path}")
        self.folder = suffix == ""

    # ----------------------------------------------------------------------------------------- writing
    def write(self, img: Any, source_file: str | None = None) -> Path:
        """Add one H×W×3 uint8 BGR frame; ``source_file``: the image file it came from (folder mode names
        the saved frame after it). Returns the file written (the temporary one for a video)."""
        target = self._write_image(img, source_file) if self.folder else self._write_video(img)
        self.count += 1
        return target

    def _write_image(self, img: Any, source_file: str | None) -> Path:
        from ._opencv import cv2

        name = self._name_for(source_file) if source_file else f"{self.count:06d}.jpg"
        target = self.path / name
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            ok, buf = cv2.imencode(Path(name).suffix, img)
            if not ok:
                raise LsaEdgeError(f"OpenCV could not encode the frame for {target}")
            write_bytes_atomic(target, buf.tobytes(), fsync=False)
        except OSError as err:
            raise _write_error("the annotated frame", target, err) from err
        return target

    def _name_for(self, source_file: str) -> str:
        """The source's file name (extension kept where OpenCV can write it, else .jpg); a second source
        file of the same name (recursive folders) gets -2, -3, ..."""
        name = self._names.get(source_file)
        if name is not None:  # looping: the same file again replaces its frame
            return name
        src = Path(source_file)
        base = src.name if src.suffix.lower() in _IMAGE_SUFFIXES else src.stem + ".jpg"
        name, k = base, 2
        while name in self._taken:
            name = f"{Path(base).stem}-{k}{Path(base).suffix}"
            k += 1
        self._names[source_file] = name
        self._taken.add(name)
        return name

    def _write_video(self, img: Any) -> Path:

        if self.writer is None:
            self._open_video(img)
        self.writer.write(self._fit(img))
        self._frames += 1
        return self._tmp  # type: ignore[return-value]

    def _open_video(self, img: Any) -> None:
        from ._opencv import cv2

        try:
            self._real.parent.mkdir(parents=True, exist_ok=True)
            # The container is chosen by extension: the temporary name keeps the target's suffix.
            fd, tmp = tempfile.mkstemp(
                prefix=_TMP_PREFIX + self._real.stem + ".",
                suffix=self._real.suffix,
                dir=str(self._real.parent),
            )
            os.close(fd)
        except OSError as err:
            raise _write_error("the video", self.path, err) from err
        self._tmp = Path(tmp)
        fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
        h, w = img.shape[:2]
        self._size = (w, h)
        code = cv2.VideoWriter_fourcc(*fourcc)  # type: ignore[attr-defined]  # missing from OpenCV's stubs
        self.writer = cv2.VideoWriter(str(self._tmp), code, self.fps, (w, h))
        if not self.writer.isOpened():
            self.writer = None
            self._discard()
            problem = _disk_problem(self._real.parent)
            if problem:  # not the codec: the advice to change it would mislead
                raise LsaEdgeError(f"cannot write the video {self.path}: {problem}")
            raise ConfigError(f"OpenCV cannot write {self.path} ({fourcc}); try --save out.avi or a folder")

    def _fit(self, img: Any) -> Any:
        """A frame the size of the first (a video has one size): others are scaled, aspect kept, and padded
        with black; the first such frame is logged once."""
        from ._opencv import cv2

        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        w, h = self._size
        ih, iw = img.shape[:2]
        if (iw, ih) == (w, h):
            return img
        if not self._resized:
            self._resized = True
            log.warning(
                "frame %d is %dx%d, the video %s is %dx%d: such frames are scaled and padded to fit "
                "(save to a folder to keep each image's size)",
                self.count,
                iw,
                ih,
                self.path,
                w,
                h,
            )
        scale = min(w / iw, h / ih)
        nw, nh = max(1, min(w, round(iw * scale))), max(1, min(h, round(ih * scale)))
        import numpy as np

        out = np.zeros((h, w, 3), np.uint8)
        x, y = (w - nw) // 2, (h - nh) // 2
        out[y : y + nh, x : x + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        return out

    # --------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Finish the video and rename it into place (a video of the frames written so far) once it reads
        back whole; else keep what was there, leave the video as NAME.partial.EXT and raise
        :class:`~lsa_edge.errors.LsaEdgeError` (a full disk makes OpenCV drop frames without an error)."""
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        writer.release()
        tmp, self._tmp = self._tmp, None
        if tmp is None:
            return
        try:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            _umask_mode(tmp)
            readable = _frames_in(tmp, self._frames)
            if readable != self._frames:
                raise self._incomplete(tmp, readable)
            os.replace(tmp, self._real)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _write_error("the video", self.path, err) from err

    def _incomplete(self, tmp: Path, readable: int) -> LsaEdgeError:
        partial = self._real.with_name(f"{self._real.stem}.partial{self._real.suffix}")
        try:
            os.replace(tmp, partial)
            kept = f"what was written is in {partial}"
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            kept = "nothing could be kept"
        problem = _disk_problem(self._real.parent) or "the disk may be full or failing"
        before = "the previous file there was kept" if self.path.exists() else "it was not created"
        return LsaEdgeError(
            f"the video {self.path} could not be finished: {readable} of {self._frames} frames read back "
            f"({problem}); {before}, {kept}. Free some space or choose another path"
        )

    def _discard(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _frames_in(video: Path, expected: int) -> int:
    """The frames ``video`` holds, read back: the container's count where it matches ``expected`` (MP4 and
    AVI indexes are exact), else counted by reading (a count some containers only estimate), stopping
    after one more than ``expected``."""
    from ._opencv import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            return 0
        if int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == expected:
            return expected
        n = 0
        while n <= expected and cap.grab():
            n += 1
        return n
    finally:
        cap.release()


_LOW_SPACE = 16 << 20  # bytes: less than this free and a video cannot grow


def _disk_problem(folder: Path) -> str | None:
    """Why nothing can be written in ``folder`` (a full disk, no permission), or None."""
    try:
        free = shutil.disk_usage(str(folder)).free
    except OSError:
        free = None
    if free is not None and free < _LOW_SPACE:
        return f"the disk holding {folder} is full ({free // 1024} KiB free)"
    if not os.access(str(folder), os.W_OK):
        return f"{folder} is not writable (permission denied)"
    return None


def _umask_mode(path: Path) -> None:
    """mkstemp makes 0600 files; a video is an ordinary output (0644 under the usual umask)."""
    with contextlib.suppress(OSError):
        os.chmod(path, file_mode())


class JsonLinesSink:
    """One JSON object per line, each line written whole by one ``write`` call as soon as it is given
    (nothing is buffered: a reader can follow the file live). A context manager.

    The file is created (or truncated) when the sink is opened; a stream (``/dev/stdout``), device or FIFO
    is written to as it is.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.count = 0
        # A stream, device or FIFO (``--json /dev/stdout | jq``) is appended to, never truncated.
        flags = os.O_WRONLY | os.O_APPEND | (0 if is_special(self.path) else os.O_CREAT | os.O_TRUNC)
        try:
            self._fd: int | None = os.open(str(self.path), flags, 0o666)
        except OSError as err:
            raise _write_error("JSON lines", self.path, err) from err

    def write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path}: the JSON-lines sink is closed")
        data = memoryview((json.dumps(record) + "\n").encode("utf-8"))
        try:
            while data:  # a regular file takes it in one call; loop for the rare short write
                n = os.write(self._fd, data)
                data = data[n:]
        except OSError as err:
            raise _write_error("JSON lines", self.path, err) from err
        self.count += 1

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
