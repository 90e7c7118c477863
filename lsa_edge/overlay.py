"""Drawing results onto frames: boxes, track ids, keypoints, the labels that are on, and a status line.
OpenCV only; draws on a copy unless ``inplace``.

Each face's text is one block placed by :func:`layout_labels` so that no block covers another block or
the status line, and every block lies inside the frame: the first free spot among below / right of /
left of / above / inside the box (first clear of every face's box, then of the other faces', then
anywhere), else the nearest free
spot around the face, else with fewer labels; a face with no room even for its id line gets no block.
Nothing is kept between frames (the colour per track id is a small bounded cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._opencv import cv2
from .results import FrameResult

__all__ = ["HEADLINE", "LabelBlock", "draw", "layout_labels"]

# Attributes people usually want to see first on a robot's screen (the rest follow by probability).
HEADLINE = ("Male", "Smiling", "Eyeglasses", "Wearing_Hat", "Young", "Mouth_Slightly_Open", "No_Beard")

_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, as a number: importing this module needs no OpenCV
_GAP = 2  # pixels kept free between a block and its box, and between two blocks
_FAR = 1 << 20  # coordinates are clipped to ±this: far outside any frame, well inside OpenCV's int


@dataclass(frozen=True)
class LabelBlock:
    """Where one face's text goes: the rectangle x, y, w, h (frame pixels, [x, x+w) × [y, y+h)) and its
    lines, top to bottom; face: the face's index in ``result.faces``."""

    face: int
    x: int
    y: int
    w: int
    h: int
    lines: tuple[str, ...]

    @property
    def rect(self) -> tuple[int, int, int, int]:
        """x0, y0, x1, y1 (x1, y1 exclusive)."""
        return self.x, self.y, self.x + self.w, self.y + self.h


@dataclass(frozen=True)
class _Style:
    scale: float  # of the whole drawing, from the frame size
    font: float  # OpenCV font scale of the labels
    thick: int  # box line thickness
    pitch: int  # pixels from one text line to the next (= a line's height)
    ascent: int  # text height above the baseline
    status_h: int  # height of the status bar


def _style(shape: tuple[int, ...]) -> _Style:
    scale = max(0.8, min(shape[:2]) / 500)
    font = 0.45 * scale
    (_, ascent), descent = cv2.getTextSize("Ag", _FONT, font, 1)
    return _Style(scale, font, max(1, round(scale * 2)), ascent + descent + 4, ascent, int(22 * scale) + 6)


@lru_cache(maxsize=256)  # bounded: track ids only grow, the colour of an id is recomputed when needed
def _color(track_id: int) -> tuple[int, int, int]:
    if track_id < 0:
        return (0, 200, 255)
    rng = np.random.default_rng(track_id * 7919)
    return tuple(int(v) for v in rng.integers(80, 255, 3))  # type: ignore[return-value]


def _lines(face, max_labels: int) -> list[str]:
    on = sorted(face.labels, key=lambda a: (a not in HEADLINE, -face.attributes.get(a, 0.0)))
    lines = [f"#{face.track_id}" if face.track_id >= 0 else f"{face.score:.2f}"]
    return lines + [
        f"{a.replace('_', ' ')} {face.attributes.get(a, 0):.2f}" for a in on[: max(0, max_labels)]
    ]


def _fit(text: str, max_w: int, font: float) -> tuple[str, int]:
    """``text`` cut (with "..") to at most max_w pixels wide, and its width; ("", 0) when nothing fits."""
    w = cv2.getTextSize(text, _FONT, font, 1)[0][0]
    cut = text
    while w > max_w and cut:
        cut = cut[:-1]
        w = cv2.getTextSize(cut + "..", _FONT, font, 1)[0][0]
        if w <= max_w:
            return cut + "..", w
    return (cut, w) if w <= max_w else ("", 0)


def _free(rects: np.ndarray, x: np.ndarray, y: np.ndarray, w: int, h: int, gap: int) -> np.ndarray:
    """For each candidate top-left (x, y) of a w×h block: whether it stays ``gap`` pixels clear of all
    ``rects`` (K×4 x0, y0, x1, y1, exclusive ends)."""
    if not len(rects):
        return np.ones(len(x), dtype=bool)
    x0, y0, x1, y1 = (rects[:, i][None, :] for i in range(4))
    hit = (
        (x[:, None] < x1 + gap)
        & (x0 < x[:, None] + w + gap)
        & (y[:, None] < y1 + gap)
        & (y0 < y[:, None] + h + gap)
    )
    return ~hit.any(axis=1)


def layout_labels(
    result: FrameResult, shape: tuple[int, ...], max_labels: int = 4, status: bool = False
) -> list[LabelBlock]:
    """Non-overlapping label blocks inside a frame of ``shape`` (H, W, …) for ``result``'s faces, in face
    order (see the module docstring for the rules). status: leave the status bar at the top free."""
    st = _style(shape)
    h_img, w_img = int(shape[0]), int(shape[1])
    top = st.status_h if status else 0
    boxes = np.asarray([f.box for f in result.faces], dtype=np.float64).reshape(-1, 4)
    boxes = np.round(np.clip(np.nan_to_num(boxes, nan=0.0), -_FAR, _FAR)).astype(np.int64)
    placed: list[LabelBlock] = []
    taken = np.zeros((0, 4), np.int64)
    for i, face in enumerate(result.faces):
        fitted = [_fit(t, w_img - 4, st.font) for t in _lines(face, max_labels)]
        fitted = [(t, w) for t, w in fitted if t]
        others = np.delete(boxes, i, axis=0)
        block = None
        for n in range(len(fitted), 0, -1):  # the last resort: fewer labels
            w = max(w for _, w in fitted[:n]) + 4
            h = n * st.pitch
            if w > w_img or h > h_img - top:
                continue
            spot = _place(boxes[i], w, h, w_img, h_img, top, taken, others, scan=n == 1 or n == len(fitted))
            if spot is not None:
                block = LabelBlock(i, spot[0], spot[1], w, h, tuple(t for t, _ in fitted[:n]))
                break
        if block is not None:
            placed.append(block)
            taken = np.concatenate([taken, np.asarray([block.rect], np.int64)])
    return placed


def _place(
    box: np.ndarray,
    w: int,
    h: int,
    w_img: int,
    h_img: int,
    top: int,
    taken: np.ndarray,
    others: np.ndarray,
    scan: bool,
) -> tuple[int, int] | None:
    """Top-left of a free w×h spot for the block of the face in ``box``, or None."""
    x0, y0, x1, y1 = (int(v) for v in box)
    g = _GAP
    hi_x, hi_y = w_img - w, h_img - h
    # below, right of, left of, above, inside the box — clamped into the frame
    spots = [
        (min(max(x, 0), hi_x), min(max(y, top), hi_y))
        for x, y in ((x0, y1 + g), (x1 + g, y0), (x0 - g - w, y0), (x0, y0 - g - h), (x0 + g, y0 + g))
    ]
    blocks = taken.tolist()
    ok = [(x, y) for x, y in spots if _clear(x, y, w, h, blocks, g)]
    # Rather clear of every face (its own included: a clamped spot may slide onto it), then of the
    # others (inside its own box), then anywhere free of blocks.
    faces = others.tolist()
    for avoid in ([*faces, [x0, y0, x1, y1]], faces):
        for x, y in ok:
            if _clear(x, y, w, h, avoid, 0):
                return x, y
    if ok:
        return ok[0]
    if not scan:
        return None
    # Anywhere else, nearest to the spot below the box first. A block that fits somewhere also fits
    # with its left edge on the frame's or just right of a block, and its top on the frame's (below the
    # status bar) or just under a block: slide it left and up until it touches. So those positions
    # (and the mirrored ones) are all there is to try.
    xs = np.unique(np.clip(np.concatenate([[0, hi_x], taken[:, 2] + g, taken[:, 0] - g - w]), 0, hi_x))
    ys = np.unique(np.clip(np.concatenate([[top, hi_y], taken[:, 3] + g, taken[:, 1] - g - h]), top, hi_y))
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.ravel(), gy.ravel()
    good = _free(taken, gx, gy, w, h, g)
    if not good.any():
        return None
    gx, gy = gx[good], gy[good]
    k = int(np.argmin((gx - spots[0][0]) ** 2 + (gy - spots[0][1]) ** 2))
    return int(gx[k]), int(gy[k])


def _clear(x: int, y: int, w: int, h: int, rects: list, gap: int) -> bool:
    """Whether the w×h block at (x, y) stays ``gap`` pixels clear of every rect (x0, y0, x1, y1)."""
    return all(
        x >= rx1 + gap or rx0 >= x + w + gap or y >= ry1 + gap or ry0 >= y + h + gap
        for rx0, ry0, rx1, ry1 in rects
    )


def _pixels(values) -> tuple[int, ...] | None:
    """Frame coordinates rounded to ints OpenCV takes (clipped far outside any frame); None if not finite."""
    try:
        return tuple(round(min(max(float(v), -_FAR), _FAR)) for v in values)
    except (OverflowError, ValueError, TypeError):  # inf, NaN, not a number
        return None


def draw(
    frame: np.ndarray, result: FrameResult, max_labels: int = 4, status: str = "", inplace: bool = False
) -> np.ndarray:
    """``frame`` (H×W×3 uint8 BGR) with ``result`` drawn on it: boxes and keypoints first, then each
    face's label block (:func:`layout_labels`: never over another block, the status bar or the edge)."""
    img = frame if inplace else frame.copy()
    st = _style(img.shape)
    for face in result.faces:
        color = _color(face.track_id)
        box = _pixels(face.box)
        if box is not None:  # a box OpenCV can draw (a hand-made result may hold NaN or 1e300)
            cv2.rectangle(img, box[:2], box[2:], color, st.thick, cv2.LINE_AA)
        for point in face.keypoints[:4]:
            p = _pixels(point)
            if p is not None:
                cv2.circle(img, p, st.thick + 1, color, -1, cv2.LINE_AA)
    for block in layout_labels(result, img.shape, max_labels, bool(status)):
        color = _color(result.faces[block.face].track_id)
        bx0, by0, bx1, by1 = block.rect
        cv2.rectangle(img, (bx0, by0), (bx1 - 1, by1 - 1), (0, 0, 0), -1)
        for j, text in enumerate(block.lines):
            base = by0 + j * st.pitch + 2 + st.ascent
            cv2.putText(img, text, (bx0 + 2, base), _FONT, st.font, color, 1, cv2.LINE_AA)
    if status:
        cv2.rectangle(img, (0, 0), (img.shape[1], st.status_h), (0, 0, 0), -1)
        cv2.putText(
            img,
            status,
            (6, int(18 * st.scale)),
            _FONT,
            0.5 * st.scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return img
