"""Property tests of the constructors' arguments (issue 12, "Prove it"): any keyword values given to
``Pipeline`` or ``FaceDetector`` either construct it or raise the project's own error (an LsaEdgeError
with a message) — never a TypeError, OverflowError or anything else, and never an object that fails at
its first frame. A constructed Pipeline runs one frame.

The shipped default model, opened once (constructions stay cheap); hypothesis is a dev dependency (the
Python 3.8 stage of CI lacks it) and runs under the bounded profile of tests/conftest.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("hypothesis")

from hypothesis import given
from hypothesis import strategies as st

from lsa_edge import Pipeline, TrackerConfig
from lsa_edge.demo import scene
from lsa_edge.detector import BlazeFaceConfig, FaceDetector
from lsa_edge.errors import LsaEdgeError
from lsa_edge.package import ModelPackage
from lsa_edge.results import FrameResult

FRAME = scene(2, 0)


@pytest.fixture(scope="module")
def pkg():
    return ModelPackage.open(None)


class _Odd:
    """An object whose every use fails: comparisons, float()."""

    def __repr__(self):
        return "<odd>"

    def __float__(self):
        raise RuntimeError("no float")

    def __lt__(self, other):
        raise RuntimeError("no order")

    __gt__ = __le__ = __ge__ = __lt__


WORDS = [
    "off",
    "on",
    "auto",
    "full",
    "short",
    "cpu",
    "cuda",
    "cuda:0",
    "cuda:1",
    "tpu",
    "onnxruntime",
    "torch",
]
WORDS += ["tensorrt", "", " ", "24", "1.5", "nan", "\x00", "/nonexistent/model.onnx"]

ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**2000, -(2**2000)]),  # beyond any float
    st.integers(min_value=-2, max_value=40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from(WORDS),
    st.text(max_size=6),
    st.binary(max_size=4),
    st.sampled_from([np.int64(3), np.float32(0.6), np.float64(math.nan), np.uint8(1), np.bool_(True)]),
    st.just(TrackerConfig()),
    st.just(BlazeFaceConfig.full_range()),
    st.lists(st.sampled_from(["CPUExecutionProvider", "CUDAExecutionProvider"]), max_size=2),
    st.builds(object),
    st.builds(_Odd),
    st.just(print),  # a callable
)

PIPELINE_KEYS = [
    "backend",
    "detector",
    "min_face_size",
    "detector_threshold",
    "max_faces",
    "tracking",
    "max_batch",
    "threads",
    "device",
]
DETECTOR_KEYS = [
    "model",
    "runner",
    "config",
    "min_score",
    "iou_threshold",
    "nms",
    "min_face_size",
    "max_faces",
    "providers",
    "threads",
]


def _threads_are_small(kwargs: dict) -> dict:
    """Valid but large thread counts make ONNX Runtime start that many threads: keep them cheap."""
    t = kwargs.get("threads")
    if isinstance(t, (int, np.integer)) and not isinstance(t, bool) and 4 < t <= 2**31:
        kwargs["threads"] = 4
    return kwargs


@given(
    kwargs=st.dictionaries(st.sampled_from(PIPELINE_KEYS), ANY, max_size=4),
    use_model=st.booleans(),
    model=ANY,
)
def test_pipeline_constructs_or_raises_its_own_error(pkg, kwargs, use_model, model):
    kwargs = _threads_are_small(kwargs)
    try:
        pipe = Pipeline(model if use_model else pkg, **kwargs)
    except LsaEdgeError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return
    with pipe:  # what constructed must also run: no argument fails only at the first frame
        assert isinstance(pipe.predict(FRAME), FrameResult)


@given(kwargs=st.dictionaries(st.sampled_from(DETECTOR_KEYS), ANY, max_size=4))
def test_face_detector_constructs_or_raises_its_own_error(kwargs):
    kwargs = _threads_are_small(kwargs)
    if callable(kwargs.get("runner")):
        kwargs["runner"] = None  # a callable runner is the user's model: not what is checked here
    try:
        det = FaceDetector(**kwargs)
    except LsaEdgeError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return
    with det:
        assert isinstance(det.detect(FRAME), list)
