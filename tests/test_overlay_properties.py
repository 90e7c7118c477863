"""Property test of the overlay's label layout: for any faces (boxes anywhere, overlapping, outside the
frame, degenerate or not finite) on any frame, every block lies inside the frame and below the status
bar, no two blocks meet, and ``draw`` paints it without an error. hypothesis is a dev dependency."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import given
from hypothesis import strategies as st

from lsa_edge.overlay import _style, draw, layout_labels
from lsa_edge.results import Face, FrameResult

NAMES = ("Smiling", "Mouth_Slightly_Open", "No_Beard", "Young", "Male")
coord = st.one_of(
    st.floats(-3000, 3000, allow_nan=False), st.sampled_from([float("nan"), float("inf"), -1e300])
)


@st.composite
def results(draw_):
    h, w = draw_(st.integers(1, 700)), draw_(st.integers(1, 900))
    n = draw_(st.integers(0, 20))
    faces = []
    for i in range(n):
        x0, y0, bw, bh = (draw_(coord) for _ in range(4))
        labels = NAMES[: draw_(st.integers(0, len(NAMES)))]
        attrs = {a: 0.5 + 0.1 * k for k, a in enumerate(labels)}
        tid = draw_(st.sampled_from([-1, i + 1, 10**9]))
        faces.append(Face((x0, y0, x0 + bw, y0 + bh), 0.9, ((x0, y0),) * 6, tid, attrs, labels))
    return FrameResult(0, 0.0, (h, w), tuple(faces), {}), (h, w, 3)


@given(res=results(), max_labels=st.integers(-1, 6), status=st.booleans())
def test_label_blocks_never_meet_and_stay_inside(res, max_labels, status):
    result, shape = res
    blocks = layout_labels(result, shape, max_labels, status)
    top = _style(shape).status_h if status else 0
    for i, b in enumerate(blocks):
        x0, y0, x1, y1 = b.rect
        assert 0 <= x0 < x1 <= shape[1] and top <= y0 < y1 <= shape[0]
        for c in blocks[i + 1 :]:
            cx0, cy0, cx1, cy1 = c.rect
            assert x1 <= cx0 or cx1 <= x0 or y1 <= cy0 or cy1 <= y0
    img = draw(np.zeros(shape, np.uint8), result, max_labels, "status" if status else "")
    assert img.shape == shape
