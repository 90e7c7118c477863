"""Where annotated frames and results go: a video file, a folder of images, a JSON-lines file.

Each sink survives a kill at any moment:

* :class:`VideoSink` (video) writes to a hidden temporary file beside the target and renames it into place
  when closed, so the user's name only ever holds a complete, playable video (or whatever was there
  before). A SIGKILL leaves at most a hidden ``.lsa-edge-tmp-*`` file.
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
import os
import tempfile
from pathlib import Path
from typing import Any

from ._fileio import _TMP_PREFIX, file_mode, is_special, write_bytes_atomic
from .errors import ConfigError, LsaEdgeError

__all__ = ["VIDEO_SUFFIXES", "JsonLinesSink", "VideoSink"]

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
        self.writer: Any = None
        self.count = 0
        self._tmp: Path | None = None
        self._names: dict[str, str] = {}  # folder mode: source file → saved name (bounded by the files)
        self._taken: set[str] = set()
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
        from ._opencv import cv2

        if self.writer is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # The container is chosen by extension: the temporary name keeps the target's suffix.
                fd, tmp = tempfile.mkstemp(
                    prefix=_TMP_PREFIX + self.path.stem + ".",
                    suffix=self.path.suffix,
                    dir=str(self.path.parent),
                )
                os.close(fd)
            except OSError as err:
                raise _write_error("the video", self.path, err) from err
            self._tmp = Path(tmp)
            fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            h, w = img.shape[:2]
            self.writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if not self.writer.isOpened():
                self.writer = None
                self._discard()
                raise ConfigError(
                    f"OpenCV cannot write {self.path} ({fourcc}); try --save out.avi or a folder"
                )
        self.writer.write(img)
        return self._tmp  # type: ignore[return-value]

    # --------------------------------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Finish the video and rename it into place (a video of the frames written so far)."""
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
            os.replace(tmp, self.path)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise _write_error("the video", self.path, err) from err

    def _discard(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
