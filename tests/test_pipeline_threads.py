"""One Pipeline called from several threads (issue 12, item 3): untracked results equal the single-threaded
ones, tracked frames go through the tracker whole (the same results as a one-thread replay of the frames
in the order they reached it), no thread shares another's buffers, and per-run state stays bounded.

The shipped default model through ONNX Runtime: runs without torch (the Python 3.8 stage of CI)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lsa_edge import Pipeline, TrackerConfig
from lsa_edge.demo import scene
from lsa_edge.errors import ConfigError

THREADS = 4


def _hammer(pipe: Pipeline, work: dict[int, list[np.ndarray]]) -> tuple[dict[int, list], list[BaseException]]:
    """Each thread k predicts work[k] in order, all starting together; (results per thread, errors)."""
    results: dict[int, list] = {k: [] for k in work}
    errors: list[BaseException] = []
    start = threading.Barrier(len(work))

    def run(k: int) -> None:
        try:
            start.wait()
            for img in work[k]:
                results[k].append(pipe.predict(img))
        except BaseException as err:  # every thread's failure is reported
            errors.append(err)

    threads = [threading.Thread(target=run, args=(k,)) for k in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def _same_faces(a, b) -> None:
    assert len(a.faces) == len(b.faces)
    for fa, fb in zip(a.faces, b.faces):
        assert fa.track_id == fb.track_id and fa.labels == fb.labels and fa.confirmed == fb.confirmed
        np.testing.assert_allclose(fa.box, fb.box, rtol=0, atol=1e-9)
        assert fa.attributes.keys() == fb.attributes.keys()
        np.testing.assert_allclose(
            list(fa.attributes.values()), list(fb.attributes.values()), rtol=0, atol=1e-6
        )


def test_untracked_predict_from_threads_equals_one_thread():
    # Every thread on its own scenes (1–4 faces, two frame sizes: buffers of several sizes in flight).
    work = {
        k: [scene(1 + k, i, size=(480, 640) if (i + k) % 2 else (360, 500)) for i in range(6)]
        for k in range(THREADS)
    }
    with Pipeline(tracking=False) as pipe:
        expected = {k: [pipe.predict(img) for img in imgs] for k, imgs in work.items()}
        got, errors = _hammer(pipe, work)
    assert not errors, errors
    for k in work:
        assert len(got[k]) == len(work[k])
        for a, b in zip(got[k], expected[k]):
            _same_faces(a, b)
    assert sum(len(r.faces) for rs in got.values() for r in rs) >= 6 * (1 + 2 + 3 + 4) - 2


def test_tracked_predict_from_threads_is_a_replay_of_the_tracker_order():
    """Before the lock: "update: track id 6 is not live" (one thread's assign() ended a tentative track
    another thread's frame was between assign() and update() on)."""
    cfg = TrackerConfig(min_hits=2, reinfer_every=2)
    work = {k: [scene(1 + k, i) for i in range(8)] for k in range(THREADS)}
    with Pipeline(tracking=cfg) as pipe:
        order: list[int] = []  # the thread of each frame, in the order frames reached the tracker
        real = pipe.tracker.assign
        names = {}

        def assign(*a, **kw):
            order.append(names[threading.get_ident()])
            return real(*a, **kw)

        pipe.tracker.assign = assign
        real_predict = pipe.predict

        def predict(img, *a, **kw):  # which thread is which: the work key
            names.setdefault(threading.get_ident(), next(k for k in work if any(img is x for x in work[k])))
            return real_predict(img, *a, **kw)

        pipe.predict = predict
        got, errors = _hammer(pipe, work)
        assert not errors, errors
        assert pipe.tracker.frame == len(order) == THREADS * 8
    assert sorted(order) == sorted(k for k in work for _ in range(8))
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches >= THREADS, "the threads did not interleave; the test proves nothing"

    # The same frames, one thread, in the tracker's order: the same ids, attributes and labels.
    with Pipeline(tracking=cfg) as ref:
        nth = {k: 0 for k in work}
        for k in order:
            expected = ref.predict(work[k][nth[k]])
            _same_faces(got[k][nth[k]], expected)
            nth[k] += 1
    ids = [f.track_id for rs in got.values() for r in rs for f in r.faces]
    assert ids and all(i >= 1 for i in ids)
    for rs in got.values():
        for r in rs:
            frame_ids = [f.track_id for f in r.faces]
            assert len(set(frame_ids)) == len(frame_ids)  # a track at most once per frame


def test_each_thread_has_its_own_buffers():
    with Pipeline(tracking=False) as pipe:
        seen: dict[str, list[np.ndarray]] = {"batch": [], "crops": [], "detector": []}
        lock = threading.Lock()
        img = scene(2, 0)

        def grab() -> None:
            pipe.predict(img)
            crops, batch = pipe._buffers.get(2)
            with lock:
                seen["crops"].append(crops)
                seen["batch"].append(batch)
                seen["detector"].append(pipe.detector._buffers.input[1])

        threads = [threading.Thread(target=grab) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for kind, arrays in seen.items():
            assert len(arrays) == 3
            for i in range(3):
                for j in range(i + 1, 3):
                    assert not np.shares_memory(arrays[i], arrays[j]), kind


def test_index_counter_is_shared_and_unique_across_threads():
    work = {k: [scene(1, i) for i in range(5)] for k in range(THREADS)}
    with Pipeline(tracking=False) as pipe:
        got, errors = _hammer(pipe, work)
    assert not errors
    assert sorted(r.index for rs in got.values() for r in rs) == list(range(THREADS * 5))


def test_predict_after_close_is_a_config_error():
    pipe = Pipeline(tracking=True)
    pipe.close()
    with pytest.raises(ConfigError, match="closed"):
        pipe.predict(scene(1, 0))
    pipe.reset()  # harmless after close


@pytest.mark.parametrize("tracking", [False, True])
def test_close_waits_for_the_calls_under_way(tracking):
    """close() while other threads are inside predict: it used to close under them (ONNX Runtime's
    session gone: a raw AttributeError; a tracked frame waiting on the lock ran on the closed backend).
    Now close waits for every call under way, and only later calls are refused."""
    pipe = Pipeline(tracking=tracking)
    inside, release = threading.Event(), threading.Event()
    real = pipe.backend.predict

    def slow(faces, *args):
        inside.set()
        assert release.wait(10)
        return real(faces, *args)

    pipe.backend.predict = slow
    results, errors = [], []

    def call(i: int) -> None:
        try:
            results.append(pipe.predict(scene(2, i)))
        except BaseException as err:
            errors.append(err)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=call, args=(1,))  # tracked: waits on the tracker's lock
    second.start()
    deadline = time.monotonic() + 10
    while getattr(pipe, "_inflight", 2) < 2 and time.monotonic() < deadline:  # both calls under way
        time.sleep(0.01)
    closer = threading.Thread(target=pipe.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close() did not wait for the predict under way"
    release.set()
    for t in (first, second, closer):
        t.join(20)
        assert not t.is_alive()
    assert not errors, errors
    assert len(results) == 2 and all(r.faces for r in results)
    with pytest.raises(ConfigError, match="closed"):
        pipe.predict(scene(1, 0))


def test_a_closed_onnxruntime_backend_refuses_predict():
    from lsa_edge.backends import OnnxRuntimeBackend
    from lsa_edge.package import ModelPackage

    backend = OnnxRuntimeBackend(ModelPackage.open(None).cpu_onnx)
    faces = np.zeros((1, 3, *backend.input_shape[2:]), np.float32)
    assert backend.predict(faces).shape == (1, backend.num_outputs)
    backend.close()
    with pytest.raises(ConfigError, match="was closed"):
        backend.predict(faces)


def test_per_thread_state_goes_with_its_thread_and_stays_bounded():
    """Short-lived threads (a web server's, a ROS executor's) leave no buffers behind; one thread's batch
    buffer grows only to the most faces seen in a frame, however long it runs; tracks stay bounded."""
    import gc
    import weakref

    with Pipeline(tracking=TrackerConfig(min_hits=1, max_age=3)) as pipe:
        refs = []

        def once(n: int) -> None:
            pipe.predict(scene(n, n))
            refs.append(weakref.ref(pipe._buffers.batch[0]))
            refs.append(weakref.ref(pipe.detector._buffers.input[1]))

        for n in (1, 2, 3, 4, 2, 1):
            t = threading.Thread(target=once, args=(n,))
            t.start()
            t.join()
        gc.collect()
        assert len(refs) == 12 and all(r() is None for r in refs)

        sizes, tracks = [], []
        for i in range(40):  # faces come and go: 1, 4, 2, 3, 1, … faces
            pipe.predict(scene((1, 4, 2, 3)[i % 4], i))
            sizes.append(len(pipe._buffers.batch[0]))
            tracks.append(len(pipe.tracker.tracks))
        assert max(sizes) <= 8 and sizes[-1] == sizes[10]  # doubled once to hold 4 faces, then stays
        assert max(tracks) <= 4 * (3 + 1)


def test_threads_each_streaming_their_own_source():
    """Two cameras, one untracked Pipeline: each thread's stream gets its own frames' faces, in order."""
    work = {1: [scene(1, i) for i in range(5)], 3: [scene(3, i) for i in range(5)]}
    got: dict[int, list] = {}
    errors: list[BaseException] = []
    with Pipeline(tracking=False) as pipe:

        def run(k: int) -> None:
            try:
                got[k] = list(pipe.stream(iter(work[k])))
            except BaseException as err:  # every thread's failure is reported
                errors.append(err)

        threads = [threading.Thread(target=run, args=(k,)) for k in work]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    for k, results in got.items():
        assert [r.index for r in results] == list(range(5))
        assert all(len(r.faces) == k for r in results)


def test_a_failing_band_waits_for_the_other_before_the_buffer_is_reused(monkeypatch):
    """The letterbox shrink runs its lower band on the worker thread, into this thread's reused buffer:
    when the upper band raised, the error left the lower band still writing into it."""
    import time

    import lsa_edge.detector as D

    real = D.cv2.resize
    lower_done = []

    class Cv2:
        def __getattr__(self, name):
            return getattr(D.cv2_real, name)

        @staticmethod
        def resize(src, size, **kw):
            if threading.current_thread() is threading.main_thread():
                raise MemoryError("the upper band failed")
            time.sleep(0.3)
            out = real(src, size, **kw)
            lower_done.append(True)
            return out

    monkeypatch.setattr(D, "cv2_real", D.cv2, raising=False)
    monkeypatch.setattr(D, "cv2", Cv2())
    monkeypatch.setattr(D, "usable_cpus", lambda: 2)
    img = np.zeros((480, 640, 3), np.uint8)
    out = np.empty((144, 192, 3), np.uint8)
    with pytest.raises(MemoryError):
        D._resize(img, 192, 144, out=out, split=True)
    assert lower_done == [True]  # finished before the error reached the caller
