"""The overlay's label placement (issue 12, item 9): no label block covers another block or the status bar,
every block lies inside the frame, for demo-like layouts of 1–16 faces and adversarial ones (faces at the
edges, overlapping or covering the frame, tiny frames); and the overlay keeps no state that grows."""

from __future__ import annotations

import numpy as np
import pytest

from lsa_edge.demo import face_boxes
from lsa_edge.overlay import _GAP, _SEARCH_BLOCKS, _color, _fit, _search, _style, _width, draw, layout_labels
from lsa_edge.results import Face, FrameResult

NAMES = ("Smiling", "Mouth_Slightly_Open", "No_Beard", "Young", "Male", "Eyeglasses")
KPS = ((0.0, 0.0),) * 6


def _face(box, track_id=1, labels=NAMES) -> Face:
    attrs = {a: 0.9 - 0.1 * i for i, a in enumerate(labels)}
    x0, y0, x1, y1 = box
    kps = tuple(((x0 + x1) / 2, (y0 + y1) / 2) for _ in range(6))
    return Face(tuple(float(v) for v in box), 0.9, kps, track_id, attrs, tuple(labels))


def _result(boxes, size=(480, 640)) -> FrameResult:
    return FrameResult(0, 0.0, size, tuple(_face(b, i + 1) for i, b in enumerate(boxes)), {})


def _check(result: FrameResult, shape, status: bool, max_labels: int = 4):
    blocks = layout_labels(result, shape, max_labels, status)
    h, w = shape[:2]
    top = _style(shape).status_h if status else 0
    assert len({b.face for b in blocks}) == len(blocks)
    for b in blocks:
        assert 0 <= b.face < len(result.faces)
        assert b.x >= 0 and b.x + b.w <= w and top <= b.y and b.y + b.h <= h, (b, shape)
        assert 1 <= len(b.lines) <= 1 + max_labels and all(b.lines)
    for i, a in enumerate(blocks):
        for b in blocks[i + 1 :]:
            ax0, ay0, ax1, ay1 = a.rect
            bx0, by0, bx1, by1 = b.rect
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a, b)
    return blocks


def test_the_demo_4_lower_left_face_gets_its_labels_clear_of_the_others():
    """Before: the lower-left face's labels, with no room below its box, were written above it, over the
    upper-left face's labels (boxes from `lsa-edge run --source demo:4`, frame 11)."""
    boxes = [(54, 47, 158, 151), (474, 70, 584, 179), (279, 84, 371, 176), (46, 304, 151, 408)]
    res = _result(boxes)
    blocks = _check(res, (480, 640, 3), status=True)
    assert sorted(b.face for b in blocks) == [0, 1, 2, 3]
    assert all(len(b.lines) == 5 for b in blocks)  # room for everything: nothing trimmed
    lower_left = next(b for b in blocks if b.face == 3)
    assert lower_left.lines[0] == "#4"
    for b in blocks:  # with this much room, no block covers any face's box
        for box in boxes:
            x0, y0, x1, y1 = b.rect
            assert x1 <= box[0] or box[2] <= x0 or y1 <= box[1] or box[3] <= y0


@pytest.mark.parametrize("faces", range(1, 17))
def test_demo_layouts_never_overlap(faces):
    for frame in range(0, 90, 15):
        for status in (False, True):
            blocks = _check(_result(face_boxes(faces, frame)), (480, 640, 3), status)
            if faces <= 4:
                assert len(blocks) == faces  # every face labelled while there is room


def test_adversarial_layouts_never_overlap():
    rng = np.random.default_rng(12)
    shapes = [(480, 640, 3), (120, 160, 3), (32, 32, 3), (1080, 1920, 3), (40, 900, 3), (900, 40, 3)]
    for trial in range(300):
        h, w, _ = shape = shapes[trial % len(shapes)]
        n = int(rng.integers(1, 24))
        kind = trial % 4
        if kind == 0:  # anywhere, partly outside the frame
            c = rng.uniform([-0.2 * w, -0.2 * h], [1.2 * w, 1.2 * h], (n, 2))
            s = rng.uniform(4, max(w, h) / 2, (n, 1))
            boxes = np.concatenate([c - s / 2, c + s / 2], axis=1)
        elif kind == 1:  # piled on one spot
            boxes = np.tile([w * 0.4, h * 0.4, w * 0.6, h * 0.6], (n, 1)) + rng.normal(0, 3, (n, 4))
        elif kind == 2:  # along the edges and in the corners
            e = rng.choice([0.0, 1.0], (n, 2)) * [w, h]
            boxes = np.concatenate([e - 30, e + 30], axis=1)
        else:  # bigger than the frame
            boxes = np.tile([-10.0, -10.0, w + 10.0, h + 10.0], (n, 1))
        res = _result([tuple(b) for b in boxes], size=(h, w))
        _check(res, shape, status=bool(trial % 2), max_labels=int(rng.integers(0, 6)))


def test_long_labels_on_a_narrow_frame_are_cut_to_fit():
    res = _result([(2, 2, 30, 30)], size=(200, 60))
    (block,) = _check(res, (200, 60, 3), status=False)
    assert block.lines[0] == "#1" and any(t.endswith("..") for t in block.lines[1:])


def test_draw_paints_each_block_where_the_layout_says():
    boxes = [(54, 47, 158, 151), (46, 304, 151, 408)]
    res = _result(boxes)
    img = draw(np.full((480, 640, 3), 255, np.uint8), res, status="status")
    for b in layout_labels(res, img.shape, 4, True):
        x0, y0, x1, y1 = b.rect
        patch = img[y0:y1, x0:x1]
        assert (patch == 0).all(axis=2).mean() > 0.5  # the black background of the block
        color = np.asarray(_color(res.faces[b.face].track_id))
        assert (np.abs(patch.astype(int) - color).sum(axis=2) < 60).any()  # its text in the face's colour


def test_no_state_grows_with_the_number_of_tracks():
    img = np.zeros((120, 160, 3), np.uint8)
    for tid in range(1, 3000):
        draw(img, FrameResult(tid, 0.0, (120, 160), (_face((10, 10, 50, 50), tid),), {}), inplace=True)
    assert _color.cache_info().currsize <= 256
    assert _width.cache_info().maxsize is not None  # the text widths: a bounded LRU


def test_a_cut_label_is_the_longest_that_fits():
    """_fit's binary search finds what cutting one character at a time finds."""
    font = _style((480, 640, 3)).font
    for text in ("Mouth Slightly Open 0.87", "#123456", "x", "Wearing Necktie 0.51"):
        full = _width(text, font)
        for max_w in range(0, full + 3):
            want = (text, full) if full <= max_w else ("", 0)
            if full > max_w:
                for k in range(len(text) - 1, -1, -1):
                    if _width(text[:k] + "..", font) <= max_w:
                        want = (text[:k] + "..", _width(text[:k] + "..", font))
                        break
            assert _fit(text, max_w, font) == want, (text, max_w)


def _free_positions(taken, w, h, w_img, h_img, top):
    """Every top-left (x, y) of a w×h block inside the frame, below top, _GAP clear of every taken rect."""
    ys, xs = np.mgrid[top : h_img - h + 1, 0 : w_img - w + 1]
    ok = np.ones(xs.shape, bool)
    for x0, y0, x1, y1 in taken:
        ok &= (xs >= x1 + _GAP) | (x0 >= xs + w + _GAP) | (ys >= y1 + _GAP) | (y0 >= ys + h + _GAP)
    return ok


def test_the_search_finds_a_free_spot_whenever_there_is_one():
    """Checked against every pixel position of small frames: a spot found is free, and one is found
    whenever any exists (with up to _SEARCH_BLOCKS blocks the search is exact)."""
    rng = np.random.default_rng(3)
    for _ in range(300):
        h_img, w_img = (int(v) for v in rng.integers(20, 90, 2))
        top = int(rng.integers(0, 10))
        k = int(rng.integers(0, 14))
        x0, y0 = rng.integers(-10, w_img, k), rng.integers(-10, h_img, k)
        taken = np.stack([x0, y0, x0 + rng.integers(1, 30, k), y0 + rng.integers(1, 30, k)], 1)
        w, h = int(rng.integers(1, w_img // 2 + 2)), int(rng.integers(1, (h_img - top) // 2 + 2))
        target = (int(rng.integers(0, w_img - w + 1)), int(rng.integers(top, h_img - h + 1)))
        ok = _free_positions(taken, w, h, w_img, h_img, top)
        spot = _search(taken.astype(np.int64), w, h, w_img, h_img, top, target)
        assert (spot is not None) == bool(ok.any()), (taken, w, h, w_img, h_img, top)
        if spot is not None:
            assert ok[spot[1] - top, spot[0]], (spot, taken, w, h)


def test_a_crowd_beyond_the_search_bound_keeps_every_guarantee():
    """More faces than _SEARCH_BLOCKS (the search then tries the edges of the nearest blocks only) and
    than one chunk of the face test: blocks still never meet and stay inside, below the status bar."""
    n = 2 * _SEARCH_BLOCKS + 40
    for size in ((480, 640), (1080, 1920)):
        for frame in (0, 30):
            blocks = _check(_result(face_boxes(n, frame, size), size), (*size, 3), status=True)
            assert len(blocks) > _SEARCH_BLOCKS


def test_a_lone_face_is_placed_as_in_a_crowd():
    """One face takes a shortcut (no numpy); it must place the block where the general layout does, which
    a second face far outside the frame (placed after it, near no spot) does not change."""
    rng = np.random.default_rng(5)
    far = (-1e6, -1e6, -1e6 + 10, -1e6 + 10)
    for trial in range(400):
        h, w = (int(v) for v in rng.choice([24, 60, 120, 480, 720], 2))
        c = rng.uniform([-0.2 * w, -0.2 * h], [1.2 * w, 1.2 * h])
        s = rng.uniform(2, max(w, h))
        box = (c[0] - s / 2, c[1] - s / 2, c[0] + s / 2, c[1] + s / 2)
        max_labels, status = int(rng.integers(0, 6)), bool(trial % 2)
        alone = layout_labels(_result([box], (h, w)), (h, w, 3), max_labels, status)
        crowd = layout_labels(_result([box, far], (h, w)), (h, w, 3), max_labels, status)
        assert alone == [b for b in crowd if b.face == 0], (box, (h, w))
