"""Drawing results onto frames: boxes, track ids, keypoints, the labels that are on, and a status line.
OpenCV only; draws on a copy unless ``inplace``.

Each face's text is one block placed by :func:`layout_labels` so that no block covers another block or
the status line, and every block lies inside the frame: the first free spot among below / right of /
left of / above / inside the box (first clear of every face's box, then of the other faces', then
anywhere), else the nearest free spot around the face, else with fewer labels; a face with no room even
for its id line gets no block. The layout tests all faces' spots at once with numpy, and its search for
the nearest free spot is bounded (see :func:`_search`), so a crowded frame costs about what drawing it
does. Nothing is kept between frames but small bounded caches: the colour per track id, the width of a
line of text, the style per frame size.
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
    return _style_hw(int(shape[0]), int(shape[1]))


@lru_cache(maxsize=16)  # bounded: a run has one frame size, a few at most
def _style_hw(h: int, w: int) -> _Style:
    scale = max(0.8, min(h, w) / 500)
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


@lru_cache(maxsize=4096)  # bounded: lines repeat from frame to frame (ids, names with 2-digit probabilities)
def _width(text: str, font: float) -> int:
    """Pixel width of one line of label text at OpenCV font scale ``font``."""
    return int(cv2.getTextSize(text, _FONT, font, 1)[0][0])


def _fit(text: str, max_w: int, font: float) -> tuple[str, int]:
    """``text`` cut (with "..") to at most max_w pixels wide, and its width; ("", 0) when nothing fits."""
    w = _width(text, font)
    if w <= max_w:
        return text, w
    # The longest cut text[:k] + ".." that fits: widths grow with k, so a binary search over k finds it.
    lo, hi = 0, len(text) - 1  # text[:hi] + ".." may fit; text[:lo] + ".." with lo < 0 never tried
    best = None
    while lo <= hi:
        k = (lo + hi) // 2
        w = _width(text[:k] + "..", font)
        if w <= max_w:
            best, lo = (text[:k] + "..", w), k + 1
        else:
            hi = k - 1
    return best if best is not None else ("", 0)


# The five preferred spots of a block next to a face's box x0, y0, x1, y1, in order: below, right of, left
# of, above, inside the box. Top-left x of each (columns 0-4; y: 5-9) = (x0, y0, x1, y1) @ _SPOT + _SPOT_D,
# plus _SPOT_EXT × the block's width (height for y).
_SPOT = np.array(
    [
        [1, 0, 1, 1, 1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
        [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
    ],
    np.int64,
)
_SPOT_D = np.array([0, _GAP, -_GAP, 0, _GAP, _GAP, 0, 0, -_GAP, _GAP], np.int64)
_SPOT_EXT = np.array([[0, 0, -1, 0, 0], [0, 0, 0, -1, 0]], np.int64)[:, None, None, :]
_TAKEN = 3  # the rank of a spot that meets a placed block (see _Candidates)


class _Candidates:
    """The five preferred spots (see _SPOT) of each face's block with n lines (index n - 1), clamped into
    the frame: top-left ``x``, ``y`` and bottom-right ``x1``, ``y1`` (exclusive), F × N × 5 each, and
    their ``rank``: 0 clear of every face's box, 1 clear of the other faces' boxes (inside its own),
    2 on another face, _TAKEN on a block placed already (a spot to skip)."""

    def __init__(self, boxes: np.ndarray, sizes: np.ndarray, w_img: int, h_img: int, top: int) -> None:
        """boxes: F × 4 (int); sizes: F × N × 2, the w and h of each face's block with n lines."""
        n_faces = len(boxes)
        # x and y on the first axis: 2 × F × N × 5
        base = (boxes @ _SPOT + _SPOT_D).reshape(n_faces, 2, 5).transpose(1, 0, 2)[:, :, None, :]
        ext = sizes.transpose(2, 0, 1)[..., None]  # 2 × F × N × 1: the blocks' w and h
        lo = np.array([0, top]).reshape(2, 1, 1, 1)
        hi = np.array([w_img, h_img]).reshape(2, 1, 1, 1) - ext
        # clamped into the frame (sizes too big for it give spots that are never used)
        start = np.minimum(np.maximum(base + _SPOT_EXT * ext, lo), hi)
        end = start + ext
        self.x, self.y, self.x1, self.y1 = start[0], start[1], end[0], end[1]
        self.xy = start.tolist()
        self.rank = np.zeros(self.x.shape, np.int8)
        box_lo, box_hi = boxes[:, :2].T[:, None, None, None, :], boxes[:, 2:].T[:, None, None, None, :]
        for a in range(0, n_faces, 64):  # bounded memory in crowds: 64 faces' spots × all boxes at a time
            f = slice(a, a + 64)
            on_face = ((start[:, f, ..., None] < box_hi) & (box_lo < end[:, f, ..., None])).all(axis=0)
            count = on_face.sum(axis=-1)  # f × N × 5 (× F before)
            idx = np.arange(a, a + len(count))
            own = on_face[idx - a, :, :, idx]  # its own face's box (advanced indices first: f × N × 5)
            self.rank[f] = (count > 0).astype(np.int8) + (count > own)  # 0, 1 or 2

    def take(self, rect: tuple[int, int, int, int]) -> None:
        """Mark the spots that come closer than _GAP to a block placed at ``rect``."""
        x0, y0, x1, y1 = rect[0] - _GAP, rect[1] - _GAP, rect[2] + _GAP, rect[3] + _GAP
        self.rank[(self.x < x1) & (x0 < self.x1) & (self.y < y1) & (y0 < self.y1)] = _TAKEN

    def choices(self, i: int) -> list[tuple[int, int] | None]:
        """Face i's best spot per number of lines (index n - 1): the free one of the best rank, the first
        of those; None where all five meet a placed block."""
        out: list[tuple[int, int] | None] = []
        for r, x, y in zip(self.rank[i].tolist(), self.xy[0][i], self.xy[1][i]):
            j = r.index(min(r))
            out.append(None if r[j] == _TAKEN else (x[j], y[j]))
        return out


def layout_labels(
    result: FrameResult, shape: tuple[int, ...], max_labels: int = 4, status: bool = False
) -> list[LabelBlock]:
    """Non-overlapping label blocks inside a frame of ``shape`` (H, W, …) for ``result``'s faces, in face
    order (see the module docstring for the rules). status: leave the status bar at the top free."""
    st = _style(shape)
    h_img, w_img = int(shape[0]), int(shape[1])
    top = st.status_h if status else 0
    if not result.faces:
        return []
    boxes = [_box(f.box) for f in result.faces]
    texts = [
        [(t, w) for t, w in (_fit(t, w_img - 4, st.font) for t in _lines(face, max_labels)) if t]
        for face in result.faces
    ]
    sizes, usable = _sizes(texts, st.pitch, w_img, h_img - top)
    if len(texts) == 1:  # the common case on a robot: one person in view, no other block or face
        return _lone(boxes[0], texts[0], sizes[0], usable[0], w_img, h_img, top)
    cand = _Candidates(
        np.array(boxes, np.int64), np.array(sizes, np.int64).reshape(len(texts), -1, 2), w_img, h_img, top
    )
    placed: list[LabelBlock] = []
    taken = np.zeros((len(texts), 4), np.int64)  # the placed blocks' rects, the first len(placed) rows
    no_room: list[tuple[int, int]] = []  # block sizes that the search found no room for
    for i, fitted in enumerate(texts):
        choices = cand.choices(i) if usable[i] else []
        for n in range(usable[i], 0, -1):  # the last resort: fewer labels
            w, h = sizes[i][n - 1]
            spot = choices[n - 1]
            if spot is None and (n == 1 or n == len(fitted)):
                if any(w >= nw and h >= nh for nw, nh in no_room):
                    continue  # none found for a smaller block already: none for this one (blocks only add)
                target = int(cand.x[i, n - 1, 0]), int(cand.y[i, n - 1, 0])  # below the box
                spot = _search(taken[: len(placed)], w, h, w_img, h_img, top, target)
                if spot is None:
                    no_room.append((w, h))
            if spot is not None:
                placed.append(LabelBlock(i, spot[0], spot[1], w, h, tuple(t for t, _ in fitted[:n])))
                taken[len(placed) - 1] = placed[-1].rect
                if i + 1 < len(texts):
                    cand.take(placed[-1].rect)
                break
    return placed


def _lone(
    box: tuple[int, int, int, int],
    fitted: list[tuple[str, int]],
    sizes: list[tuple[int, int]],
    usable: int,
    w_img: int,
    h_img: int,
    top: int,
) -> list[LabelBlock]:
    """:func:`layout_labels` for a frame with one face, without numpy (what _Candidates finds for it, at
    a fraction of the cost): no block is placed yet, so every spot is free, and the block with all the
    lines that fit goes to the first of the five spots clear of the face's box, else below it."""
    if not usable:
        return []
    (w, h), g = sizes[usable - 1], _GAP
    x0, y0, x1, y1 = box
    spots = [
        (min(max(x, 0), w_img - w), min(max(y, top), h_img - h))
        for x, y in ((x0, y1 + g), (x1 + g, y0), (x0 - g - w, y0), (x0, y0 - g - h), (x0 + g, y0 + g))
    ]
    clear = [(x, y) for x, y in spots if x >= x1 or x0 >= x + w or y >= y1 or y0 >= y + h]
    x, y = (clear or spots)[0]
    return [LabelBlock(0, x, y, w, h, tuple(t for t, _ in fitted[:usable]))]


def _box(values) -> tuple[int, int, int, int]:
    """A face's box in whole pixels: NaN as 0, clipped to ±_FAR (so ±inf lies far outside the frame)."""
    return tuple(0 if v != v else round(min(max(float(v), -_FAR), _FAR)) for v in values)  # type: ignore[return-value]


def _sizes(
    texts: list[list[tuple[str, int]]], pitch: int, w_max: int, h_max: int
) -> tuple[list[list[tuple[int, int]]], list[int]]:
    """Each face's block size (w, h) with n lines of its ``texts`` (line, width), at index n - 1 (F × N,
    N: the most lines of any face, padded with 0 × 0), and how many lines fit in w_max × h_max (the first
    ones: the block only grows with n)."""
    most = max(1, *(len(f) for f in texts))
    sizes, usable = [], []
    for fitted in texts:
        w, row = 0, []
        for n, (_, line_w) in enumerate(fitted, 1):
            w = max(w, line_w + 4)
            row.append((w, n * pitch))
        usable.append(sum(1 for w, h in row if w <= w_max and h <= h_max))
        sizes.append(row + [(0, 0)] * (most - len(row)))
    return sizes, usable


_SEARCH_BLOCKS = 48  # the search tries positions next to at most this many placed blocks (nearest first)


def _search(
    taken: np.ndarray, w: int, h: int, w_img: int, h_img: int, top: int, target: tuple[int, int]
) -> tuple[int, int] | None:
    """Top-left of a w×h spot ``_GAP`` pixels clear of every rect in ``taken`` (and inside the frame, below
    ``top``), the nearest to ``target``; None if there is none.

    A block that fits somewhere also fits with its left edge on the frame's or just right of a block, and
    its top on the frame's (below the status bar) or just under a block: slide it left and up until it
    touches. So those positions (and the mirrored ones) are all there is to try: a grid of the x and y
    edges. Each rect rules out the grid points in a range of x edges times a range of y edges, so how many
    rects rule out each point is one matrix product of (y in rect i's range) and (x in it). Bounded: with
    more than ``_SEARCH_BLOCKS`` rects only the edges of the nearest ones make the grid (every rect is
    still avoided), so in a crowd a far-off free spot may be missed.
    """
    g = _GAP
    # rect i rules out lo_i <= (x, y) < hi_i (x0 - g - w < x < x1 + g, and y alike)
    lo = taken[:, :2] - (g + w - 1, g + h - 1)
    hi = taken[:, 2:] + g
    near_lo, near_hi = lo, hi
    if len(taken) > _SEARCH_BLOCKS:
        dist = (taken[:, :2] + taken[:, 2:] - (2 * target[0] + w, 2 * target[1] + h)) ** 2  # (2 × offset)²
        near = np.argpartition(dist.sum(axis=1), _SEARCH_BLOCKS)[:_SEARCH_BLOCKS]
        near_lo, near_hi = lo[near], hi[near]
    # the grid, x and y in columns: frame edges, just past a block's far side, just before its near side
    first, last = np.array([0, top]), np.array([w_img - w, h_img - h])
    grid = np.concatenate([first[None], last[None], near_hi, near_lo - 1])
    np.minimum(np.maximum(grid, first, out=grid), last, out=grid)
    grid.sort(axis=0)  # (points that repeat are harmless)
    xs, ys = grid[:, 0], grid[:, 1]
    # how many rects rule out each grid point: (y ruled out by rect i) @ (x ruled out by rect i)
    in_y = (ys[:, None] >= lo[:, 1]) & (ys[:, None] < hi[:, 1])
    in_x = (xs[:, None] >= lo[:, 0]) & (xs[:, None] < hi[:, 0])
    free = np.flatnonzero(np.matmul(in_y, in_x.T, dtype=np.float32) == 0)  # rows: ys, columns: xs
    if not len(free):
        return None
    row, col = divmod(free, len(xs))
    k = int(np.argmin((xs[col] - target[0]) ** 2 + (ys[row] - target[1]) ** 2))  # the first of the nearest
    return int(xs[col[k]]), int(ys[row[k]])


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
