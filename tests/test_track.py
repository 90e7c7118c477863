"""Tracker: association, ageing, ByteTrack's low-score rescue, EMA, hysteresis, re-infer policy, label changes."""

from __future__ import annotations

import numpy as np
import pytest

from lsa_edge.errors import ConfigError
from lsa_edge.results import Face, FrameResult
from lsa_edge.track import LabelChangeNotifier, Tracker, TrackerConfig, iou_matrix

ATTRS = ("Smiling", "Eyeglasses", "Male")
THR = (0.5, 0.4, 0.6)


def box(x: float, y: float, size: float = 60.0) -> list[float]:
    return [x, y, x + size, y + size]


def tracker(**overrides) -> Tracker:
    cfg = TrackerConfig(**{"min_hits": 1, **overrides})
    return Tracker(cfg, ATTRS, THR)


def test_iou_matrix():
    iou = iou_matrix([box(0, 0, 10)], [box(0, 0, 10), box(5, 0, 10), box(20, 20, 10), [0, 0, 0, 0]])
    np.testing.assert_allclose(iou, [[1.0, 50 / 150, 0.0, 0.0]])


def test_ids_stable_for_moving_boxes():
    tr = tracker()
    seen = []
    for k in range(20):
        boxes = np.array([box(10 + 6 * k, 50), box(400 - 5 * k, 200 + 3 * k)])
        order = [1, 0] if k % 2 else [0, 1]  # the detector's order must not matter
        ids = tr.assign(boxes[order], np.array([0.9, 0.8])[order])
        seen.append(dict(zip(order, ids.tolist())))
    assert all(s == seen[0] for s in seen)
    assert sorted(seen[0].values()) == [1, 2]
    assert set(tr.tracks) == {1, 2}


def _crossing(predict_motion: bool) -> list[dict[str, int]]:
    # A moves right, B moves left on the same row; they overlap for several frames (detector order shuffled).
    tr = tracker(predict_motion=predict_motion, iou_threshold=0.2)
    rng = np.random.default_rng(0)
    out = []
    for k in range(16):
        dets = {"A": box(0 + 22 * k, 100), "B": box(335 - 22 * k, 104)}
        names = list(rng.permutation(["A", "B"]))
        ids = tr.assign(np.array([dets[n] for n in names]), np.array([0.9, 0.9]))
        out.append(dict(zip(names, ids.tolist())))
    return out


def test_crossing_faces_keep_ids_with_velocity():
    frames = _crossing(predict_motion=True)
    assert all(f == frames[0] for f in frames), frames
    # the control: without the motion model the ids swap where the faces cross
    frames = _crossing(predict_motion=False)
    assert any(f["A"] == frames[0]["B"] for f in frames[1:]), frames


def test_missing_face_keeps_id_up_to_max_age():
    tr = tracker(max_age=5)
    (tid,) = tr.assign(np.array([box(100, 100)]), np.array([0.9]))
    for _ in range(5):  # unseen for exactly max_age frames: kept
        tr.assign(np.zeros((0, 4)), np.zeros(0))
    assert tr.tracks[tid].unseen == 5
    assert tr.assign(np.array([box(102, 101)]), np.array([0.9])).tolist() == [tid]
    for _ in range(6):  # unseen for max_age + 1 frames: gone
        tr.assign(np.zeros((0, 4)), np.zeros(0))
    assert tid not in tr.tracks
    assert tr.assign(np.array([box(102, 101)]), np.array([0.9])).tolist() == [tid + 1]


def test_tentative_track_dies_on_first_miss_confirmed_survives():
    tr = tracker(min_hits=3, max_age=10)
    (a,) = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    assert not tr.tracks[a].confirmed
    tr.assign(np.zeros((0, 4)), np.zeros(0))
    assert a not in tr.tracks  # a one-frame false positive does not linger
    for _ in range(3):
        (b,) = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    assert tr.tracks[b].confirmed and tr.tracks[b].hits == 3
    tr.assign(np.zeros((0, 4)), np.zeros(0))
    assert b in tr.tracks


def test_low_score_rescues_but_never_starts_a_track():
    tr = tracker(high_score=0.6, low_score=0.1)
    (tid,) = tr.assign(np.array([box(100, 100)]), np.array([0.9]))
    # the face turns away: low score, still matched to its track
    ids = tr.assign(np.array([box(103, 100), box(400, 400)]), np.array([0.3, 0.3]))
    assert ids.tolist() == [tid, -1]
    assert tr.tracks[tid].unseen == 0 and tr.tracks[tid].score == pytest.approx(0.3)
    assert set(tr.tracks) == {tid}
    # below low_score: ignored, the track is not rescued
    assert tr.assign(np.array([box(104, 100)]), np.array([0.05])).tolist() == [-1]
    assert tr.tracks[tid].unseen == 1
    # high-score detections are matched first: the low-score duplicate does not steal the track
    ids = tr.assign(np.array([box(105, 100), box(106, 100)]), np.array([0.3, 0.9]))
    assert ids.tolist() == [-1, tid]


def test_velocity_is_estimated_per_frame():
    tr = tracker(velocity_ema=1.0)
    tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    tr.assign(np.zeros((0, 4)), np.zeros(0))
    (tid,) = tr.assign(np.array([box(20, 10)]), np.array([0.9]))  # moved (20, 10) over 2 frames
    assert tr.tracks[tid].velocity == pytest.approx((10.0, 5.0))


@pytest.mark.parametrize("predict_motion", [True, False])
def test_prediction_bridges_missed_frames(predict_motion):
    tr = tracker(velocity_ema=1.0, iou_threshold=0.5, predict_motion=predict_motion)
    for b in (box(0, 0), box(10, 5), box(20, 10)):  # (10, 5) pixels per frame
        (tid,) = tr.assign(np.array([b]), np.array([0.9]))
    for _ in range(3):  # the detector misses 3 frames
        tr.assign(np.zeros((0, 4)), np.zeros(0))
    # predicted at (60, 30) with its size kept: IoU 1 with the detection there; the last seen box: 0.125
    ids = tr.assign(np.array([box(60, 30)]), np.array([0.9]))
    assert ids.tolist() == ([tid] if predict_motion else [tid + 1])


def test_ema_exact():
    tr = tracker(ema=0.25)
    seq = [np.array([0.8, 0.2, 0.6]), np.array([0.4, 0.0, 1.0]), np.array([0.0, 0.4, 0.2])]
    expected = seq[0]
    for k, p in enumerate(seq):
        ids = tr.assign(np.array([box(10, 10)]), np.array([0.9]))
        smoothed, _ = tr.update(ids, p[None], np.array([True]))
        if k:
            expected = 0.25 * p + 0.75 * expected
        np.testing.assert_allclose(smoothed[0], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(expected, [0.525, 0.2125, 0.575])  # worked by hand
    # a frame without inference carries the last smoothed probabilities unchanged
    ids = tr.assign(np.array([box(10, 10)]), np.array([0.9]))
    smoothed, _ = tr.update(ids, np.zeros((0, 3)), np.array([False]))
    np.testing.assert_allclose(smoothed[0], expected)


def test_hysteresis_no_flicker_then_one_flip():
    tr = tracker(ema=1.0, hysteresis_on=0.1, hysteresis_off=0.1)  # ema=1: labels see the raw probabilities
    smiling = []
    # Smiling's threshold is 0.5: oscillate ±0.08 (inside the 0.1 margin), then a real change to 0.2
    probs = [0.55, 0.42, 0.58, 0.43, 0.57, 0.45, 0.2, 0.25, 0.45, 0.58, 0.42]
    for p in probs:
        ids = tr.assign(np.array([box(10, 10)]), np.array([0.9]))
        _, labels = tr.update(ids, np.array([[p, 0.0, 0.0]]), np.array([True]))
        smiling.append("Smiling" in labels[0])
    assert smiling == [True] * 6 + [False] * 5
    # plain thresholding would have flickered on every frame of the oscillation
    assert [p >= 0.5 for p in probs[:6]] == [True, False, True, False, True, False]
    # and it turns back on only above threshold + margin
    ids = tr.assign(np.array([box(10, 10)]), np.array([0.9]))
    _, labels = tr.update(ids, np.array([[0.61, 0.0, 0.0]]), np.array([True]))
    assert labels == [("Smiling",)]
    assert tr.tracks[int(ids[0])].labels == ("Smiling",)


def test_labels_are_per_track_and_untracked_faces_use_plain_thresholds():
    tr = tracker(ema=1.0, hysteresis_on=0.2, hysteresis_off=0.2)
    ids = tr.assign(np.array([box(0, 0), box(300, 0)]), np.array([0.9, 0.9]))
    tr.update(ids, np.array([[0.9, 0.9, 0.9], [0.1, 0.1, 0.1]]), np.array([True, True]))
    ids = tr.assign(np.array([box(0, 0), box(300, 0), box(600, 0)]), np.array([0.9, 0.9, 0.3]))
    assert ids[2] == -1
    probs = np.array([[0.45, 0.45, 0.45], [0.55, 0.45, 0.65], [0.55, 0.3, 0.7]])
    smoothed, labels = tr.update(ids, probs, np.array([True, True, True]))
    assert labels[0] == ATTRS  # stays on inside the margin
    assert labels[1] == ()  # stays off inside the margin
    assert labels[2] == ("Smiling", "Male")  # no history: the plain thresholds
    np.testing.assert_allclose(smoothed[2], probs[2])


def test_reinfer_policy():
    tr = tracker(reinfer_every=3, reinfer_growth=0.2)

    def step(b, infer=None):
        ids = tr.assign(np.array([b]), np.array([0.9]))
        mask = tr.needs_inference(ids, np.array([b]))
        if infer is not None:
            mask = np.array([infer])
        tr.update(ids, np.full((int(mask.sum()), 3), 0.7), mask)
        return bool(mask[0])

    assert step(box(0, 0)) is True  # a new track is always inferred
    assert [step(box(0, 0)) for _ in range(5)] == [False, False, True, False, False]  # every 3rd frame
    assert step(box(0, 0, size=65)) is True  # area 60² → 65² (+17%) grew by less than 20%: due anyway
    assert step(box(0, 0, size=66)) is False  # +3% since the last inference
    assert step(box(0, 0, size=73)) is True  # +22% since the last inference (at 65²)
    # untracked faces have nothing to carry over and are always inferred
    assert tr.needs_inference(np.array([-1]), np.array([box(500, 500)])).tolist() == [True]
    # reinfer_every=1 means every frame
    tr = tracker()
    ids = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    tr.update(ids, np.full((1, 3), 0.7), np.array([True]))
    ids = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    assert tr.needs_inference(ids, np.array([box(0, 0)])).tolist() == [True]


def test_growth_triggers_reinference_before_due():
    tr = tracker(reinfer_every=100, reinfer_growth=0.2)
    ids = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    tr.update(ids, np.full((1, 3), 0.7), np.array([True]))
    ids = tr.assign(np.array([box(0, 0, 64)]), np.array([0.9]))
    assert tr.needs_inference(ids, np.array([box(0, 0, 64)])).tolist() == [False]  # +14%
    ids = tr.assign(np.array([box(0, 0, 67)]), np.array([0.9]))
    assert tr.needs_inference(ids, np.array([box(0, 0, 67)])).tolist() == [True]  # +25%


def test_never_inferred_track_carries_nan():
    tr = tracker()
    ids = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    smoothed, labels = tr.update(ids, np.zeros((0, 3)), np.array([False]))
    assert np.isnan(smoothed).all() and labels == [()]
    assert tr.tracks[int(ids[0])].smoothed is None


def test_reset_and_snapshot_is_a_copy():
    tr = tracker()
    ids = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    tr.update(ids, np.array([[0.9, 0.1, 0.1]]), np.array([True]))
    snap = tr.tracks[int(ids[0])]
    snap.smoothed[:] = 0.0
    assert tr.tracks[int(ids[0])].smoothed[0] == pytest.approx(0.9)
    tr.reset()
    assert tr.tracks == {} and tr.frame == 0
    assert tr.assign(np.array([box(0, 0)]), np.array([0.9])).tolist() == [1]


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"iou_threshold": 0.0}, "iou_threshold=0.0"),
        ({"iou_threshold": 1.5}, "(0, 1]"),
        ({"high_score": 0.3, "low_score": 0.5}, "at most high_score"),
        ({"max_age": -1}, "max_age=-1"),
        ({"max_age": 2.5}, "an int"),
        ({"min_hits": 0}, "min_hits=0"),
        ({"ema": 0.0}, "ema=0.0"),
        ({"ema": float("nan")}, "ema=nan"),
        ({"velocity_ema": 2}, "velocity_ema=2"),
        ({"hysteresis_on": -0.1}, "hysteresis_on"),
        ({"hysteresis_off": 0.5}, "[0, 0.5)"),
        ({"reinfer_every": 0}, "reinfer_every=0"),
        ({"reinfer_growth": -0.1}, "reinfer_growth"),
        ({"predict_motion": "yes"}, "True or False"),
    ],
)
def test_config_validation(overrides, words):
    with pytest.raises(ConfigError) as err:
        TrackerConfig(**overrides)
    assert words in str(err.value)


def test_config_accepts_edges():
    TrackerConfig(
        low_score=0.5, high_score=0.5, max_age=0, ema=1.0, hysteresis_on=0.0, reinfer_growth=float("inf")
    )


def test_tracker_argument_errors():
    with pytest.raises(ConfigError, match="3 attribute names but 2 thresholds"):
        Tracker(TrackerConfig(), ATTRS, (0.5, 0.5))
    with pytest.raises(ConfigError, match=r"Smiling=1\b"):
        Tracker(TrackerConfig(), ATTRS, (1.0, 0.5, 0.5))
    tr = tracker()
    with pytest.raises(ConfigError, match="2 boxes but 1 scores"):
        tr.assign(np.array([box(0, 0), box(100, 0)]), np.array([0.9]))
    ids = tr.assign(np.array([box(0, 0)]), np.array([0.9]))
    with pytest.raises(ConfigError, match=r"expected \(1, 3\)"):
        tr.update(ids, np.zeros((1, 2)), np.array([True]))
    with pytest.raises(ConfigError, match="not live"):
        tr.update(np.array([99]), np.zeros((1, 3)), np.array([True]))
    with pytest.raises(ConfigError, match="repeat"):
        tr.update(np.array([1, 1]), np.zeros((2, 3)), np.array([True, True]))


def _face(tid: int, labels: tuple[str, ...], attrs: bool = True) -> Face:
    return Face(
        box=(0.0, 0.0, 10.0, 10.0),
        score=0.9,
        keypoints=(),
        track_id=tid,
        attributes={"Smiling": 0.9} if attrs else {},
        labels=labels,
    )


def _frame(index: int, *faces: Face) -> FrameResult:
    return FrameResult(index=index, timestamp=index / 30, size=(480, 640), faces=faces, timings_ms={})


def test_label_change_notifier():
    events = []
    notifier = LabelChangeNotifier(events.append, forget_after=2)
    assert [str(c) for c in notifier.update(_frame(0, _face(3, ("Smiling", "Eyeglasses"))))] == [
        "track 3 (new): +Smiling +Eyeglasses"
    ]
    assert notifier.update(_frame(1, _face(3, ("Eyeglasses", "Smiling")))) == []  # same set, other order
    changes = notifier.update(
        _frame(2, _face(3, ("Smiling", "Male")), _face(-1, ("Male",)), _face(4, (), False))
    )
    assert [str(c) for c in changes] == ["track 3: +Male −Eyeglasses"]
    assert changes[0].added == ("Male",) and changes[0].removed == ("Eyeglasses",) and not changes[0].new
    assert [str(c) for c in notifier.update(_frame(3, _face(4, ())))] == ["track 4 (new)"]
    notifier.update(_frame(6, _face(4, ())))  # track 3 unseen for 4 frames > forget_after: forgotten
    assert [c.new for c in notifier.update(_frame(7, _face(3, ("Smiling", "Male"))))] == [True]
    assert [str(c) for c in events][-1] == "track 3 (new): +Smiling +Male"
    assert len(events) == 4
    with pytest.raises(ConfigError, match="forget_after"):
        LabelChangeNotifier(forget_after=-1)


# ----------------------------------------------------------- bounded state (issue 12, item 8)


def _churn(tr: Tracker, frames: int, rng: np.random.Generator, check) -> None:
    """Faces that come and go: up to 8 per frame, each staying 1–40 frames at a random place, some
    detections missed; every frame goes through assign → needs_inference → update."""
    alive: list[list[float]] = []  # [x, y, frames left]
    for _ in range(frames):
        alive = [[x, y, n - 1] for x, y, n in alive if n > 1]
        while len(alive) < 8 and rng.random() < 0.5:
            alive.append([rng.uniform(0, 1800), rng.uniform(0, 1000), rng.integers(1, 40)])
        seen = [a for a in alive if rng.random() > 0.1]
        boxes = np.asarray([box(x, y) for x, y, _ in seen]).reshape(-1, 4)
        ids = tr.assign(boxes, np.full(len(boxes), 0.9))
        need = tr.needs_inference(ids, boxes)
        tr.update(ids, rng.random((int(need.sum()), len(ATTRS))), need)
        check(tr)


def test_tracker_state_stays_bounded_as_faces_come_and_go():
    rng = np.random.default_rng(8)
    tr = tracker(min_hits=3, max_age=30)
    sizes = []
    _churn(tr, 3000, rng, lambda t: sizes.append(len(t._tracks)))
    assert max(sizes) <= 8 * (30 + 1)  # what max_age allows: at most 8 new faces a frame live that long
    assert max(sizes[-1000:]) <= max(sizes[:1000]) * 1.5  # no drift
    assert tr._next_id > 500  # many faces did come and go


def test_max_tracks_bounds_a_tracker_that_never_forgets():
    rng = np.random.default_rng(9)
    tr = tracker(max_age=10**9, max_tracks=50)
    sizes = []
    _churn(tr, 1500, rng, lambda t: sizes.append(len(t._tracks)))
    assert max(sizes) <= 50 and tr._next_id > 200
    # The ones kept are the most recently seen: a face seen this frame is never dropped.
    ids = tr.assign(np.asarray([box(5000, 5000)]), np.asarray([0.9]))
    assert int(ids[0]) in tr.tracks and len(tr.tracks) <= 50
    with pytest.raises(ConfigError, match="max_tracks"):
        TrackerConfig(max_tracks=0)


def test_label_change_notifier_forgets_when_the_index_does_not_advance():
    """Before: tracks were forgotten by FrameResult.index only; with images (index 0 every time) or a
    source that restarts its numbering, nothing was ever forgotten."""
    notifier = LabelChangeNotifier(forget_after=10)
    for tid in range(1, 3001):
        notifier.update(_frame(0 if tid % 2 else tid % 7, _face(tid, ("Smiling",))))
        assert len(notifier._labels) <= 11 and len(notifier._last_seen) <= 11
    # A jump in the index still counts as the frames skipped.
    notifier = LabelChangeNotifier(forget_after=2)
    notifier.update(_frame(10, _face(1, ("Smiling",))))
    notifier.update(_frame(20, _face(2, ("Smiling",))))
    assert 1 not in notifier._labels and 2 in notifier._labels
