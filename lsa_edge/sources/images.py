"""Still images: one file, a folder (sorted in natural order, ``recursive`` optional) or a glob pattern.

Files are decoded with :func:`lsa_edge.data.images.read_image` (RGB) and converted to BGR like every other
source; an unreadable or corrupt file is skipped with a warning, never a crash. Imports numpy, OpenCV and
the standard library only.
"""

from __future__ import annotations

import glob
import itertools
import logging
import re
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import read_image
from ..errors import DataError
from ._base import EventCallback, Frame, Source
from ._options import COMMON, boolean, positive_float
from ._uri import IMAGE_EXTENSIONS, SourceSpec

log = logging.getLogger(__name__)

OPTIONS = {
    **COMMON,
    "loop": boolean,  # start again after the last image, forever
    "fps": positive_float,  # timestamps become index / fps instead of the read time
}
# folders: include sub-folders (default False); globs: "**" matches any depth (default: True when the pattern
# has "**", as in a shell with globstar; recursive=False makes "**" one level like "*")
FOLDER_OPTIONS = {**OPTIONS, "recursive": boolean}


def natural_key(path: Path) -> list[Any]:
    """frame_2.png before frame_10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """The image files (by extension) in ``folder``, in natural order."""
    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted((p for p in it if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()), key=natural_key)


class ImageFilesSource(Source):
    """Frames from a list of image files. Not live: every readable image is delivered, in order."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        kind: str = "folder",
        name: str = "images",
        loop: bool = False,
        fps: float | None = None,
        max_frames: int | None = None,
        on_event: EventCallback | None = None,
    ):
        super().__init__(name, max_frames=max_frames, on_event=on_event)
        self.kind = kind
        self.paths = [Path(p) for p in paths]
        self._loop = loop
        self._fps = fps
        self._position = 0  # index into the list, over all passes
        self._read_this_pass = 0
        self._first: np.ndarray | None = None
        if kind == "image":  # one file: decode now, so a bad path fails at open, and the size is known
            self._first = self._load(self.paths[0])
            if self._first is None:
                raise DataError(f"{self.paths[0]} is not a readable image (missing, empty or corrupt)")
        self._emit("connected", message=f"{len(self.paths)} image(s)")

    @property
    def size(self) -> tuple[int, int] | None:
        return None if self._first is None else (int(self._first.shape[0]), int(self._first.shape[1]))

    @staticmethod
    def _load(path: Path) -> np.ndarray | None:
        rgb = read_image(path)  # logs a warning naming the file when it cannot be decoded
        return None if rgb is None else np.ascontiguousarray(rgb[:, :, ::-1])

    def _next_frame(self) -> Frame | None:
        n = len(self.paths)
        while True:
            k = self._position % n
            if k == 0 and self._position > 0:  # a pass is complete
                if not self._loop:
                    return None
                if self._read_this_pass == 0:
                    log.error("%s: none of the %d images could be read; stopping the loop", self.name, n)
                    return None
                self._read_this_pass = 0
            index = self._position
            self._position += 1
            path = self.paths[k]
            image: np.ndarray | None
            if self._first is not None and index == 0:
                image = self._first
            else:
                image = self._load(path)
            if image is None:
                self._n_skipped += 1
                continue
            self._read_this_pass += 1
            self._n_read += 1
            ts = index / self._fps if self._fps else time.monotonic()
            return Frame(image, index, ts, self.name, path=str(path))


def recursive_hint(folder: str | Path, ext: str = ".jpg") -> str:
    """How to include sub-folders, for the Python API and for the command line."""
    pattern = shlex.quote(str(Path(folder) / "**" / f"*{ext}"))
    return (
        f"pass recursive=True (Python), or --recursive (lsa-edge run), or the pattern {pattern} "
        f"(lsa-edge run --source {pattern})"
    )


def _first_nested_image(folder: Path, budget: int = 10000) -> Path | None:
    """An image file in a sub-folder of ``folder`` (stops at the first, or after ``budget`` entries of a big
    tree without images), or None."""
    try:
        subdirs = sorted((p for p in folder.iterdir() if p.is_dir()), key=natural_key)
        entries = itertools.islice(itertools.chain.from_iterable(d.rglob("*") for d in subdirs), budget)
        return next((p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()), None)
    except OSError:
        return None


def open_images(spec: SourceSpec, opts: dict[str, Any]) -> ImageFilesSource:
    target = Path(spec.target)
    if spec.kind == "image":
        if not target.is_file():
            raise DataError(f"image file {target} does not exist; check the path")
        paths = [target]
    elif spec.kind == "folder":
        recursive = bool(opts.get("recursive", False))
        paths = list_images(target, recursive)
        nested = None if recursive else _first_nested_image(target)
        if not paths:
            exts = ", ".join(sorted(IMAGE_EXTENSIONS))
            if nested is None:
                raise DataError(f"no image files ({exts}) in the folder {target}")
            raise DataError(
                f"no image files ({exts}) directly in the folder {target}, but its sub-folders have some "
                f"(e.g. {nested.relative_to(target)}); to read them, {recursive_hint(target, nested.suffix)}"
            )
        if nested is not None:
            log.warning(
                "%s: images in sub-folders (e.g. %s) are not included; to include them, %s",
                spec.name,
                nested.relative_to(target),
                recursive_hint(target, nested.suffix),
            )
    else:
        pattern = str(target)
        recursive = bool(opts.get("recursive", "**" in pattern))  # "**" means any depth, as in a shell
        matches = [Path(p) for p in glob.glob(pattern, recursive=recursive) if Path(p).is_file()]
        paths = sorted((p for p in matches if p.suffix.lower() in IMAGE_EXTENSIONS), key=natural_key)
        if not paths:
            what = f"{len(matches)} file(s) but no images" if matches else "nothing"
            raise DataError(
                f"the pattern {pattern!r} matched {what}; a glob source lists image files "
                "(for a video pass its path)"
            )
    return ImageFilesSource(
        paths,
        kind=spec.kind,
        name=opts.get("name", spec.name),
        loop=opts.get("loop", False),
        fps=opts.get("fps"),
        max_frames=opts.get("max_frames"),
        on_event=opts.get("on_event"),
    )
