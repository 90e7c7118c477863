"""Property tests of ``Pipeline.predict`` (issue 12, "Prove it"): any array — any dtype, 0-d to 5-d, empty,
1 to 5 channels, tiny to huge, non-contiguous, reversed, read-only, an ndarray subclass — either gives a
FrameResult or raises the project's own error (an LsaEdgeError with a message), never anything else.
Frames cut from demo scenes put real faces at the frame edges, so alignment and tracking see odd input too.

Below the properties, one plain example per bug they found. The shipped default model through ONNX
Runtime, one Pipeline per module; hypothesis is a dev dependency (the Python 3.8 stage of CI lacks it)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("hypothesis")

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lsa_edge import Pipeline
from lsa_edge.demo import scene
from lsa_edge.errors import DataError, LsaEdgeError
from lsa_edge.results import FrameResult

SCENES = [scene(k, 3) for k in (1, 2, 4, 16)]
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


@pytest.fixture(scope="module")
def pipes():
    """Tracked and untracked, min_face_size 0 so faces cut by the frame edge still reach alignment."""
    with Pipeline(tracking=True, min_face_size=0.0) as tracked, Pipeline(tracking=False) as plain:
        yield {"tracked": tracked, "plain": plain}


def _check(pipe: Pipeline, frame, color_order: str = "BGR") -> FrameResult | None:
    """The property: a FrameResult that makes sense, or an LsaEdgeError with a message."""
    try:
        res = pipe.predict(frame, color_order)
    except LsaEdgeError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return None
    assert isinstance(res, FrameResult)
    shape = np.shape(frame)
    assert res.size == (shape[0], shape[1])
    for face in res.faces:
        assert all(np.isfinite(face.box)) and 0.0 <= face.score <= 1.0
        assert all(0.0 <= p <= 1.0 for p in face.attributes.values())
        assert set(face.labels) <= set(face.attributes)
    return res


DTYPES = st.one_of(
    st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.float16, np.bool_, np.int64, object]),
    hnp.scalar_dtypes(),
)


@st.composite
def arbitrary_arrays(draw):
    dtype = np.dtype(draw(DTYPES))
    ndim = draw(st.integers(0, 5))
    if ndim >= 2:  # mostly frame-like shapes, sometimes anything
        side = st.one_of(st.integers(0, 70), st.sampled_from([15, 16, 17, 2000]))
        shape = [draw(side), draw(side)]
        if ndim >= 3:
            shape.append(draw(st.integers(0, 5)))
        shape = [draw(st.integers(1, 3)) for _ in range(ndim - 3)] + shape
        if np.prod(shape) * dtype.itemsize > 8_000_000:  # within reason: a few MB per example
            shape[-2] = 16
    else:
        shape = [draw(st.integers(0, 40)) for _ in range(ndim)]
    if dtype.kind in "OSUV" or dtype.kind == "M" or dtype.kind == "m":
        arr = np.zeros(shape, dtype) if dtype.kind != "O" else np.full(shape, 0.5, dtype)
    else:
        fill = draw(
            st.sampled_from(["zeros", "ones", "random", "nan", "huge", "half"])
            if dtype.kind in "fc"
            else st.sampled_from(["zeros", "ones", "random"])
        )
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        if fill == "random" and dtype.kind in "iu":
            info = np.iinfo(dtype)
            native = dtype.newbyteorder("=")
            arr = rng.integers(info.min, info.max, size=shape, dtype=native, endpoint=True).astype(dtype)
        elif fill == "random":
            arr = rng.random(shape).astype(dtype)
        else:
            value = {"zeros": 0, "ones": 1, "nan": np.nan, "huge": 1e30, "half": 0.5}[fill]
            with np.errstate(over="ignore", invalid="ignore"):  # 1e30 as float16 is inf: fine here
                arr = np.full(shape, value).astype(dtype)
    return _layout(draw, arr)


def _layout(draw, arr: np.ndarray) -> np.ndarray:
    """The same values in another memory layout: reversed, strided, read-only, a subclass."""
    if arr.ndim >= 2 and draw(st.booleans()):
        arr = arr[::-1, ::-1]
    if arr.ndim >= 2 and arr.shape[0] > 32 and draw(st.booleans()):
        arr = arr[::2]
    if arr.ndim == 3 and draw(st.booleans()):
        arr = np.concatenate([arr, arr], axis=2)[:, :, ::2]  # a channel stride
    if draw(st.booleans()):
        arr = arr.copy()
        arr.flags.writeable = False
    if arr.ndim == 2 and draw(st.booleans()):
        arr = np.asmatrix(arr)
    return arr


@given(frame=arbitrary_arrays(), color_order=st.sampled_from(["BGR", "RGB"]))
def test_any_array_works_or_is_an_lsa_edge_error(pipes, frame, color_order):
    _check(pipes["plain"], frame, color_order)


@st.composite
def frames_with_faces(draw):
    """A window of a demo scene (faces cut by its edges), in any kind of frame the pipeline converts."""
    img = SCENES[draw(st.integers(0, len(SCENES) - 1))]
    h, w = img.shape[:2]
    y0, x0 = draw(st.integers(0, h - 8)), draw(st.integers(0, w - 8))
    y1, x1 = draw(st.integers(y0 + 1, h)), draw(st.integers(x0 + 1, w))
    sy, sx = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = img[y0:y1:sy, x0:x1:sx]
    kind = draw(
        st.sampled_from(["uint8", "gray", "gray1", "bgra", "uint16", "float32", "float64", "float16"])
    )
    if kind == "gray":
        x = x[..., 1]
    elif kind == "gray1":
        x = x[..., 1:2]
    elif kind == "bgra":
        x = np.concatenate([x, np.full((*x.shape[:2], 1), 255, np.uint8)], axis=2)
    elif kind == "uint16":
        x = x.astype(np.uint16) * 257
    elif kind.startswith("float"):
        x = (x / 255.0).astype(kind)
    return _layout(draw, x)


@given(frame=frames_with_faces(), color_order=st.sampled_from(["BGR", "RGB"]))
def test_faces_at_the_frame_edges_in_any_layout(pipes, frame, color_order):
    for pipe in pipes.values():
        res = _check(pipe, frame, color_order)
        if res is not None and pipe.tracker is not None:
            ids = [f.track_id for f in res.faces]
            assert len(set(ids)) == len(ids) and all(i >= 1 for i in ids)


# ------------------------------------------------------------------------ the bugs found, one example each


def test_a_matrix_frame_is_its_pixels(pipes):
    """np.matrix cannot be made 3-d: 'shape too large to be a matrix.' was the whole message."""
    res = pipes["plain"].predict(np.asmatrix(np.zeros((32, 32), np.uint8)))
    assert res.size == (32, 32) and res.faces == ()


def test_negative_or_enormous_floats_are_refused_with_a_readable_range(pipes):
    """-5.0 was clipped to black silently (and -1e308 overflowed in the conversion); 1e308 printed a
    309-digit number."""
    for value in (-5.0, -1e308, 1e308):
        with pytest.raises(DataError, match=r"values in \[0, 1\], got \S{1,12} to \S{1,12};") as err:
            pipes["plain"].predict(np.full((32, 32, 3), value))
        assert len(str(err.value)) < 120


def test_float16_and_long_double_frames_are_floats(pipes):
    """'unsupported dtype float16; expected uint8, uint16 or float': a float refused as not a float."""
    for dtype in (np.float16, np.longdouble):
        res = pipes["plain"].predict(np.full((32, 32, 3), 0.5, dtype))
        assert res.size == (32, 32)


def test_huge_frames_are_refused_before_any_conversion(pipes, monkeypatch):
    """The 8192×8192 limit was checked after the float → uint8 conversion of the whole frame."""
    import lsa_edge._pipeline  # the pipeline's frame check and conversion

    def boom(*a, **kw):
        raise AssertionError("converted before the size check")

    monkeypatch.setattr(lsa_edge._pipeline, "to_uint8_3ch", boom)
    big = np.broadcast_to(np.float32(0.5), (9000, 9000, 3))  # no memory behind it
    with pytest.raises(DataError, match="8192"):
        pipes["plain"].predict(big)
    with pytest.raises(DataError, match=r"shape \(16, 16, 100000\)"):
        pipes["plain"].predict(np.broadcast_to(np.float32(0.5), (16, 16, 100000)))


def test_big_endian_frames_are_their_values(pipes):
    """'unsupported dtype >u2': a 16-bit frame in big-endian byte order (as FITS or PNG store them)."""
    img = scene(1, 0)
    want = [f.box for f in pipes["plain"].predict(img).faces]
    for frame in (img.astype(">u2") * 257, (img / 255.0).astype(">f4")):
        got = [f.box for f in pipes["plain"].predict(frame).faces]
        assert len(got) == len(want) == 1
        np.testing.assert_allclose(got, want, atol=1.0)


def test_a_batch_of_frames_says_one_at_a_time(pipes):
    with pytest.raises(DataError, match="one frame of the batch at a time"):
        pipes["plain"].predict(np.zeros((2, 32, 32, 3), np.uint8))
