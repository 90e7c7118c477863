"""Built-in demo input: synthetic 640×480 scenes with N moving faces, rendered from the shipped
public-domain portrait (``lsa_edge/assets``). For the main command, ``lsa-edge bench`` and tests: a
camera-like stream that needs no camera, download or third-party photo. numpy and OpenCV only.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._opencv import cv2
from .errors import ConfigError

if TYPE_CHECKING:
    from .sources import Source

ASSETS = Path(__file__).resolve().parent / "assets"
PORTRAIT = ASSETS / "astronaut.jpg"


@lru_cache(maxsize=1)
def portrait() -> np.ndarray:
    """The shipped portrait, 512×512×3 uint8 BGR."""
    img = cv2.imread(str(PORTRAIT), cv2.IMREAD_COLOR)
    if img is None:
        raise ConfigError(f"the shipped sample image {PORTRAIT} is missing; reinstall lsa-edge")
    return img


def _background(h: int, w: int, t: float) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 40 * np.sin(x / 97.0 + t) + 30 * np.cos(y / 61.0 - 0.5 * t)
    return np.clip(np.stack([base, base * 0.9 + 20, base * 0.8 + 30], axis=2), 0, 255).astype(np.uint8)


def _check_faces(faces: int) -> None:
    if isinstance(faces, bool) or not isinstance(faces, (int, np.integer)) or not 0 <= faces <= 64:
        raise ConfigError(f"faces must be 0..64 (a whole number), got {faces!r}")


def scene(faces: int = 1, frame: int = 0, size: tuple[int, int] = (480, 640), seed: int = 0) -> np.ndarray:
    """One H×W×3 uint8 BGR frame holding ``faces`` copies of the portrait's head, each moving slowly.

    Faces sit on a grid (so they never overlap), with per-face size and a gentle drift over ``frame``.
    Up to 16 faces fit 640×480 at a detectable size (~100 px heads at 16).
    """
    _check_faces(faces)
    h, w = size
    img = _background(h, w, frame * 0.05)
    head = portrait()[30:230, 128:328]  # the head of the portrait (200×200)
    for x0, y0, hw, hh in head_boxes(faces, frame, size, seed):
        img[y0 : y0 + hh, x0 : x0 + hw] = cv2.resize(head, (hw, hh), interpolation=cv2.INTER_AREA)
    return img


_HEAD = 200  # side of the portrait's head patch, pixels


def head_boxes(
    faces: int = 1, frame: int = 0, size: tuple[int, int] = (480, 640), seed: int = 0
) -> list[tuple[int, int, int, int]]:
    """(x0, y0, width, height) of each head :func:`scene` draws: a grid (heads never overlap), a size per
    head and a gentle drift over ``frame``. Any number of heads (crowd layouts for tests); ``scene`` draws
    at most 64."""
    if isinstance(faces, bool) or not isinstance(faces, (int, np.integer)) or faces < 0:
        raise ConfigError(f"faces must be a whole number ≥ 0, got {faces!r}")
    h, w = size
    rng = np.random.default_rng(seed)
    if faces == 0:
        return []
    cols = int(np.ceil(np.sqrt(faces * w / h)))
    rows = int(np.ceil(faces / cols))
    cell_w, cell_h = w / cols, h / rows
    out = []
    for k in range(faces):
        r, c = divmod(k, cols)
        scale = min(cell_w / _HEAD, cell_h / _HEAD) * rng.uniform(0.85, 1.0)
        hw = hh = max(8, int(_HEAD * scale))
        phase = rng.uniform(0, 2 * np.pi)
        x0 = int(c * cell_w + (cell_w - hw) * (0.5 + 0.45 * np.sin(frame * 0.07 + phase)))
        y0 = int(r * cell_h + (cell_h - hh) * (0.5 + 0.45 * np.cos(frame * 0.05 + phase)))
        out.append((x0, y0, hw, hh))
    return out


def face_boxes(
    faces: int = 1, frame: int = 0, size: tuple[int, int] = (480, 640), seed: int = 0
) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) of each face in :func:`scene`'s frame, where the detector finds it inside the head
    (for tests and benchmarks that need the faces without running the detector)."""
    return [
        (x0 + 0.23 * hw, y0 + 0.22 * hh, x0 + 0.75 * hw, y0 + 0.74 * hh)
        for x0, y0, hw, hh in head_boxes(faces, frame, size, seed)
    ]


def frames(
    n: int | None = 90, faces: int = 1, size: tuple[int, int] = (480, 640), loop: bool = False
) -> Iterator[np.ndarray]:
    """Demo frames (BGR), rendered one at a time (memory stays flat however long it runs).

    n: frames in the clip, a 3-second clip at 30 fps by default; None: endless, the faces keep drifting.
    loop: repeat the n-frame clip forever (frame n is frame 0 again), like ``loop`` for a video file.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ConfigError(f"the demo needs n ≥ 1 frames (or None: endless), got {n!r}")
    _check_faces(faces)  # here, not at the first next()
    return _render(None if n is None else int(n), faces, size, loop)


def _render(n: int | None, faces: int, size: tuple[int, int], loop: bool) -> Iterator[np.ndarray]:
    for i in itertools.count():
        if n is not None and i >= n and not loop:
            return
        yield scene(faces, i % n if n is not None else i, size)


def open_demo(
    faces: int = 1,
    *,
    n: int | None = 90,
    loop: bool = False,
    max_frames: int | None = None,
    size: tuple[int, int] = (480, 640),
    fps: float = 30.0,
    name: str | None = None,
) -> Source:
    """The demo as a :class:`lsa_edge.sources.Source` (``name``, default "demo (N faces)"; ``fps``
    timestamps): ``n`` frames, repeated forever with ``loop`` (stop with ``max_frames`` or ``close()``);
    ``n=None`` is endless. ``open_source("demo:N")`` opens it too."""
    from .sources import open_source

    label = name or f"demo ({faces} face{'s' * (faces != 1)})"
    return open_source(frames(n, faces, size, loop=loop), fps=fps, name=label, max_frames=max_frames)
