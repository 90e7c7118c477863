"""The built-in demo input: finite, looping and endless clips rendered lazily (memory stays flat), and the
demo as a Source (what ``lsa-edge run --source demo --loop`` reads)."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

from lsa_edge.demo import frames, open_demo, portrait, scene
from lsa_edge.errors import ConfigError
from lsa_edge.sources import open_source

SMALL = (48, 64)


def test_finite_clip_loop_and_endless():
    clip = list(frames(3, faces=1, size=SMALL))
    assert len(clip) == 3 and all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in clip)
    looped = list(itertools.islice(frames(3, faces=1, size=SMALL, loop=True), 8))
    assert len(looped) == 8
    for i, f in enumerate(looped):  # frame 3 is frame 0 again: the clip repeats
        assert np.array_equal(f, clip[i % 3])
    endless = list(itertools.islice(frames(None, faces=1, size=SMALL), 5))
    assert np.array_equal(endless[4], scene(1, 4, SMALL))  # keeps drifting, never repeats frame 0 here
    assert not np.array_equal(endless[3], clip[0])


@pytest.mark.parametrize(
    "bad", [dict(n=0), dict(n=-5), dict(n=2.5), dict(n=True), dict(faces=-1), dict(faces=65)]
)
def test_bad_arguments_fail_at_the_call(bad):
    with pytest.raises(ConfigError):
        frames(**bad)  # at the call, not at the first frame


def test_looping_demo_memory_stays_flat():
    portrait()  # the cached sample image is not per-frame memory
    gen = frames(4, faces=2, size=SMALL, loop=True)
    next(gen)
    tracemalloc.start()
    try:
        for _ in itertools.islice(gen, 400):  # 400 frames × 9 KB = 3.6 MB if frames were kept
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_open_demo_loops_until_max_frames():
    """What the CLI's demo branch needs: ``--loop`` repeats the 90-frame clip until --max-frames / Ctrl-C."""
    with open_demo(2, n=3, loop=True, max_frames=7, size=SMALL) as src:
        got = list(src)
    assert src.name == "demo (2 faces)" and src.closed
    assert [f.index for f in got] == list(range(7))
    assert [f.timestamp for f in got] == pytest.approx([i / 30 for i in range(7)])
    assert np.array_equal(got[3].image, got[0].image) and np.array_equal(got[6].image, got[0].image)
    assert len(list(open_demo(1, n=3, size=SMALL))) == 3  # without loop: the clip once
    with open_demo(1, n=None, max_frames=5, size=SMALL) as src:
        assert len(list(src)) == 5


def test_iterable_source_loop_needs_a_sequence():
    stack = np.stack([np.full((4, 4, 3), k, np.uint8) for k in range(3)])
    got = list(open_source(stack, loop=True, max_frames=7))
    assert [int(f.image[0, 0, 0]) for f in got] == [0, 1, 2, 0, 1, 2, 0]
    assert [f.index for f in got] == list(range(7))
    one = list(open_source(stack[0], loop=True, max_frames=3))
    assert len(one) == 3
    with pytest.raises(ConfigError, match="list or array"):
        open_source(iter(list(stack)), loop=True)
    assert list(open_source([None, None], loop=True)) == []  # nothing usable: the loop stops, no hang


def test_demo_is_a_core_source():
    """``demo`` / ``demo:N`` open through open_source (so Pipeline.stream("demo:3") works like the CLI)."""
    from lsa_edge.sources import KINDS, parse_uri

    assert "demo" in KINDS
    assert parse_uri("demo").kind == "demo" and parse_uri("demo").target == 1
    assert parse_uri("demo:3").target == 3
    assert parse_uri("./demo").kind != "demo"  # a folder called demo, by path
    with open_source("demo:2", max_frames=4) as src:
        got = list(src)
    assert len(got) == 4 and src.name == "demo (2 faces)"
    assert np.array_equal(got[1].image, scene(2, 1))
    with open_source("demo", max_frames=5, loop=True, name="cam") as src:
        assert [f.index for f in src] == [0, 1, 2, 3, 4] and src.name == "cam"
    with open_source("demo:1") as src:
        assert sum(1 for _ in src) == 90  # the 3-second clip
    with pytest.raises(ConfigError, match="demo:N takes a number of faces"):
        open_source("demo:x")
    with pytest.raises(ConfigError, match="recursive"):
        open_source("demo:1", recursive=True)


def test_pipeline_streams_the_demo():
    from lsa_edge import Pipeline

    with Pipeline() as pipe:
        results = list(pipe.stream("demo:2", max_frames=2))
    assert len(results) == 2


def test_face_boxes_are_where_the_detector_finds_the_faces():
    """demo.face_boxes (tests and benchmarks use it instead of running the detector) matches the faces
    BlazeFace finds in the same scene, and head_boxes lays out any crowd without overlap."""
    import numpy as np

    from lsa_edge.demo import face_boxes, head_boxes, scene
    from lsa_edge.detector import FaceDetector

    with FaceDetector() as det:
        for n, frame in ((1, 0), (4, 20), (9, 45)):
            found = [f.box for f in det(scene(n, frame))]
            for box in face_boxes(n, frame):
                ious = []
                for f in found:
                    ix = max(0.0, min(box[2], f[2]) - max(box[0], f[0]))
                    iy = max(0.0, min(box[3], f[3]) - max(box[1], f[1]))
                    inter = ix * iy
                    union = (box[2] - box[0]) * (box[3] - box[1]) + (f[2] - f[0]) * (f[3] - f[1]) - inter
                    ious.append(inter / union)
                assert max(ious) > 0.5, (n, frame, box, found)
    heads = np.array(head_boxes(100, 7, (1080, 1920)))
    assert len(heads) == 100 and (heads[:, 2] >= 8).all()
    x0, y0, x1, y1 = heads[:, 0], heads[:, 1], heads[:, 0] + heads[:, 2], heads[:, 1] + heads[:, 3]
    overlap = (np.minimum(x1[:, None], x1) > np.maximum(x0[:, None], x0)) & (
        np.minimum(y1[:, None], y1) > np.maximum(y0[:, None], y0)
    )
    assert overlap.sum() == len(heads)  # each head overlaps itself only
