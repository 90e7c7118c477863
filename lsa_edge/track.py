"""Per-face tracking and attribute smoothing: stable track ids, EMA probabilities, labels that do not flicker.

The runtime calls, once per frame::

    ids = tracker.assign(boxes, scores)               # which track each detection belongs to
    mask = tracker.needs_inference(ids, boxes)        # the re-infer policy: which faces to run the model on
    probs = model(crops[mask])                        # one batched call for those faces only
    smoothed, labels = tracker.update(ids, probs, mask)

Association is ByteTrack-style in two stages: high-score detections are matched to the tracks first and may
start new tracks; low-score detections (a face turning away, half occluded, blurred) may only *rescue* a
track that is still unmatched, never start one. Matching is greedy on IoU against each track's predicted
box: with a handful of faces per frame that rarely overlap, greedy gives the optimal assignment in practice
and needs no scipy. The prediction is a constant-velocity model of the box centre (the box keeps its last
size and moves by the smoothed per-frame displacement of its centre for every frame since it was last
seen): enough to keep two faces that cross apart, without a Kalman filter's noise models to tune. Size is
not extrapolated, so a face that was shrinking and then vanished for a while is not predicted down to
nothing.

Imports numpy and the standard library only; no scipy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .results import Face, FrameResult

__all__ = [
    "LabelChange",
    "LabelChangeNotifier",
    "TrackState",
    "Tracker",
    "TrackerConfig",
    "iou_matrix",
]

log = logging.getLogger(__name__)

# The track id of a detection that belongs to no track (a low-score detection that matched none).
UNTRACKED = -1


@dataclass(frozen=True)
class TrackerConfig:
    """How detections become tracks and how a track's attribute probabilities are smoothed.

    Defaults suit a 15–30 fps camera on a robot: a face survives one second unseen at 30 fps.
    """

    iou_threshold: float = 0.3  # min IoU (0–1) between a predicted track box and a high-score detection
    high_score: float = 0.5  # detector score (0–1) at or above which a detection may start a track
    low_score: float = 0.1  # detections scoring below this (0–1) are ignored entirely
    rescue_iou_threshold: float = 0.5  # min IoU (0–1) for a low-score detection to rescue an unmatched track
    max_age: int = 30  # frames a track survives unseen; unseen for more frames, it is removed
    min_hits: int = 3  # frames a new track must be matched in a row to be confirmed (1 = at once)
    predict_motion: bool = True  # predict each track's box centre with a constant per-frame velocity
    velocity_ema: float = 0.5  # weight (0–1] of the newest per-frame centre displacement in the velocity
    ema: float = 0.5  # weight (0–1] of the newest probabilities: s = ema·p + (1 − ema)·s_prev; 1 = none
    hysteresis_on: float = 0.05  # probability margin: a label turns on when s ≥ threshold + this
    hysteresis_off: float = 0.05  # probability margin: a label turns off when s < threshold − this
    reinfer_every: int = 1  # run the attribute model on a track at least every N frames (1 = every frame)
    reinfer_growth: float = 0.25  # also re-infer when the box area grew by more than this fraction (25%)
    max_tracks: int = 1024  # live tracks kept at most: beyond it the longest-unseen go (memory stays flat)

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, accepted: str, hint: str = "") -> None:
            if not ok:
                value = getattr(self, name)
                raise ConfigError(
                    f"TrackerConfig.{name}={value!r} is out of range; accepted: {accepted}.{hint}"
                )

        for name in ("iou_threshold", "rescue_iou_threshold"):
            v = getattr(self, name)
            check(name, _is_number(v) and 0.0 < v <= 1.0, "a float in (0, 1]")
        for name in ("high_score", "low_score"):
            v = getattr(self, name)
            check(name, _is_number(v) and 0.0 <= v <= 1.0, "a float in [0, 1]")
        check(
            "low_score",
            self.low_score <= self.high_score,
            f"at most high_score ({self.high_score})",
            " Set low_score = high_score to turn the low-score rescue stage off.",
        )
        check("max_age", _is_int(self.max_age) and self.max_age >= 0, "an int ≥ 0 (frames)")
        check("min_hits", _is_int(self.min_hits) and self.min_hits >= 1, "an int ≥ 1 (frames)")
        check("predict_motion", isinstance(self.predict_motion, bool), "True or False")
        for name in ("velocity_ema", "ema"):
            v = getattr(self, name)
            check(name, _is_number(v) and 0.0 < v <= 1.0, "a float in (0, 1]", " 1 turns smoothing off.")
        for name in ("hysteresis_on", "hysteresis_off"):
            v = getattr(self, name)
            check(
                name, _is_number(v) and 0.0 <= v < 0.5, "a probability margin in [0, 0.5)", " 0 turns it off."
            )
        check("reinfer_every", _is_int(self.reinfer_every) and self.reinfer_every >= 1, "an int ≥ 1 (frames)")
        check("max_tracks", _is_int(self.max_tracks) and self.max_tracks >= 1, "an int ≥ 1 (tracks)")
        growth = self.reinfer_growth
        check(
            "reinfer_growth",
            (_is_number(growth) or growth == float("inf")) and growth >= 0.0,
            "a fraction ≥ 0 (0.25 = re-infer when the box area grew by 25%)",
            " Use float('inf') to never re-infer on growth.",
        )


@dataclass(frozen=True)
class TrackState:
    """A snapshot of one track (``Tracker.tracks``); changing it changes nothing in the tracker.

    box: x0, y0, x1, y1 frame pixels of the last matched detection; velocity: smoothed per-frame displacement
    of the box centre (dx, dy pixels/frame); smoothed: C probabilities, None before the first inference;
    labels: attribute names currently on; frames counted by ``Tracker.assign`` calls.
    """

    track_id: int
    box: tuple[float, float, float, float]
    score: float  # detector score of the last matched detection
    velocity: tuple[float, float]
    hits: int  # frames the track was matched in
    age: int  # frames since the track started
    unseen: int  # frames since it was last matched (0 = matched this frame)
    confirmed: bool
    smoothed: np.ndarray | None = field(repr=False)
    labels: tuple[str, ...]
    last_inference_frame: int | None  # frame of the last attribute inference, None if never
    inferred_area: float  # box area (pixels²) at the last inference, 0 if never


class _Track:
    """The tracker's mutable per-track state (private; ``TrackState`` is its public snapshot)."""

    __slots__ = (
        "box",
        "first_frame",
        "hits",
        "inferred_area",
        "last_frame",
        "last_inference_frame",
        "on",
        "score",
        "smoothed",
        "track_id",
        "velocity",
    )

    def __init__(self, track_id: int, box: np.ndarray, score: float, frame: int) -> None:
        self.track_id = track_id
        self.box = box.astype(np.float64)
        self.score = score
        self.velocity: np.ndarray | None = None  # None until the second observation
        self.hits = 1
        self.first_frame = frame
        self.last_frame = frame
        self.smoothed: np.ndarray | None = None
        self.on: np.ndarray | None = None  # label state per attribute (bool C)
        self.last_inference_frame: int | None = None
        self.inferred_area = 0.0

    def predicted(self, frame: int, motion: bool) -> np.ndarray:
        if not motion or self.velocity is None:
            return self.box
        dx, dy = self.velocity * (frame - self.last_frame)
        return self.box + np.array([dx, dy, dx, dy])


class Tracker:
    """Tracks faces across frames and smooths their attribute probabilities.

    attributes: the C attribute names, in the model's output order; thresholds: C per-attribute decision
    thresholds (the model card's), probabilities in (0, 1). Track ids start at 1 and are never reused
    until :meth:`reset`.
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        attributes: Sequence[str] = (),
        thresholds: Sequence[float] | np.ndarray = (),
    ) -> None:
        self.config = config if config is not None else TrackerConfig()
        if not isinstance(self.config, TrackerConfig):
            raise ConfigError(f"config must be a TrackerConfig, got {type(self.config).__name__}")
        self.attributes = tuple(str(a) for a in attributes)
        thr = np.asarray(thresholds, dtype=np.float64).reshape(-1)
        if len(self.attributes) != thr.size:
            raise ConfigError(
                f"{len(self.attributes)} attribute names but {thr.size} thresholds; pass one threshold per "
                "attribute, in the same order (the model card's attributes and thresholds)"
            )
        if thr.size and not (np.all(thr > 0.0) and np.all(thr < 1.0)):
            bad = [f"{a}={t:g}" for a, t in zip(self.attributes, thr) if not 0.0 < t < 1.0]
            raise ConfigError(f"thresholds must be probabilities in (0, 1); got {', '.join(bad[:5])}")
        self.thresholds = thr
        # Clamped so a label can always switch: on ≤ halfway to 1, off ≥ halfway to 0 (thresholds near 0/1).
        self._on_level = np.minimum(thr + self.config.hysteresis_on, (1.0 + thr) / 2)
        self._off_level = np.maximum(thr - self.config.hysteresis_off, thr / 2)
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget every track; the next frame starts from track id 1."""
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1
        self.frame = 0  # number of assign() calls since the last reset

    @property
    def tracks(self) -> dict[int, TrackState]:
        """track id → snapshot of every live track (confirmed or tentative)."""
        return {tid: self._snapshot(t) for tid, t in self._tracks.items()}

    def confirmed(self, track_ids: np.ndarray) -> list[bool]:
        """Per id: whether that live track is confirmed (``min_hits`` matches); False for -1 or an id that
        is not live. What ``tracks[i].confirmed`` says, without a snapshot of every track."""
        live, need = self._tracks, self.config.min_hits
        return [t is not None and t.hits >= need for t in (live.get(int(i)) for i in track_ids)]

    def _snapshot(self, t: _Track) -> TrackState:
        vel = (0.0, 0.0) if t.velocity is None else tuple(float(v) for v in t.velocity)
        return TrackState(
            track_id=t.track_id,
            box=tuple(float(v) for v in t.box),  # type: ignore[arg-type]
            score=t.score,
            velocity=vel,  # type: ignore[arg-type]
            hits=t.hits,
            age=self.frame - t.first_frame,
            unseen=self.frame - t.last_frame,
            confirmed=t.hits >= self.config.min_hits,
            smoothed=None if t.smoothed is None else t.smoothed.copy(),
            labels=self._names(t.on),
            last_inference_frame=t.last_inference_frame,
            inferred_area=t.inferred_area,
        )

    # ------------------------------------------------------------ association

    def assign(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Advance one frame and give each detection its track id.

        boxes: N×4 x0, y0, x1, y1 frame pixels; scores: N detector scores in [0, 1].
        Returns N int64 track ids: an existing track's id, a new id for an unmatched detection scoring at
        least ``high_score``, or -1 for one that matched no track and may not start one (score below
        ``high_score``). Tracks not matched age by one frame; tentative tracks (fewer than ``min_hits``
        matches) that miss a frame and tracks unseen for more than ``max_age`` frames are removed, and
        beyond ``max_tracks`` live tracks the longest-unseen ones (never one matched in this frame).
        """
        cfg = self.config
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.size != len(boxes):
            raise ConfigError(f"assign: {len(boxes)} boxes but {scores.size} scores; pass one score per box")
        self.frame += 1
        frame = self.frame
        ids = np.full(len(boxes), UNTRACKED, dtype=np.int64)

        track_list = list(self._tracks.values())
        predicted = np.asarray([t.predicted(frame, cfg.predict_motion) for t in track_list]).reshape(-1, 4)
        free_tracks = np.ones(len(track_list), dtype=bool)

        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        for dets, thr in ((high, cfg.iou_threshold), (low, cfg.rescue_iou_threshold)):
            rows = np.flatnonzero(free_tracks)
            if not len(rows) or not len(dets):
                continue
            iou = iou_matrix(predicted[rows], boxes[dets])
            for r, c in _greedy_match(iou, thr):
                track = track_list[rows[r]]
                self._matched(track, boxes[dets[c]], float(scores[dets[c]]), frame)
                free_tracks[rows[r]] = False
                ids[dets[c]] = track.track_id

        for d in high:
            if ids[d] == UNTRACKED:
                track = _Track(self._next_id, boxes[d], float(scores[d]), frame)
                self._tracks[track.track_id] = track
                ids[d] = track.track_id
                self._next_id += 1

        for i in np.flatnonzero(free_tracks):
            t = track_list[i]
            tentative = t.hits < cfg.min_hits
            if tentative or frame - t.last_frame > cfg.max_age:
                del self._tracks[t.track_id]
        if len(self._tracks) > cfg.max_tracks:  # a huge max_age and a stream of new faces: the oldest go
            unseen = sorted((t for t in self._tracks.values() if t.last_frame != frame), key=_last_seen)
            for t in unseen[: len(self._tracks) - cfg.max_tracks]:
                del self._tracks[t.track_id]
        return ids

    def _matched(self, t: _Track, box: np.ndarray, score: float, frame: int) -> None:
        gap = frame - t.last_frame
        step = (_centers(box[None]) - _centers(t.box[None]))[0] / gap
        if t.velocity is None:
            t.velocity = step
        else:
            a = self.config.velocity_ema
            t.velocity = a * step + (1.0 - a) * t.velocity
        t.hits += 1  # consecutive while tentative: a tentative track that misses a frame is removed
        t.box = box.astype(np.float64)
        t.score = score
        t.last_frame = frame

    # ------------------------------------------------------------- inference

    def needs_inference(self, track_ids: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Which faces of this frame the attribute model should run on (N bools), by the re-infer policy.

        track_ids: N ids from :meth:`assign` for this frame; boxes: N×4 frame pixels. True for a track
        never inferred, one inferred ``reinfer_every`` or more frames ago, one whose box area grew by more
        than ``reinfer_growth`` since its last inference, and for untracked (-1) faces, which have nothing
        to carry over. Changes no state.
        """
        cfg = self.config
        track_ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if len(boxes) != track_ids.size:
            raise ConfigError(f"needs_inference: {track_ids.size} track ids but {len(boxes)} boxes")
        areas = _areas(boxes)
        mask = np.ones(track_ids.size, dtype=bool)
        for i, tid in enumerate(track_ids):
            t = self._tracks.get(int(tid))
            if t is None or t.last_inference_frame is None:
                continue
            due = self.frame - t.last_inference_frame >= cfg.reinfer_every
            grew = areas[i] > t.inferred_area * (1.0 + cfg.reinfer_growth)
            mask[i] = due or grew
        return mask

    def update(
        self, track_ids: np.ndarray, probs: np.ndarray, inferred: np.ndarray
    ) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        """Fold this frame's attribute probabilities into the tracks; return smoothed probabilities and labels.

        track_ids: N ids from :meth:`assign`; inferred: N bools, the faces the model ran on this frame;
        probs: M×C probabilities of those faces, in the same order (M = inferred.sum()).
        Returns smoothed N×C float64 and, per face, the tuple of attribute names that are on. An inferred
        face's track gets s = ema·p + (1 − ema)·s_prev (s = p on its first inference); a face not inferred
        carries its track's last smoothed probabilities. A label turns on at s ≥ threshold + hysteresis_on
        and off at s < threshold − hysteresis_off (the plain threshold decides a track's first labels).
        An untracked (-1) face gets its raw probabilities and plain-threshold labels; a face with no
        probabilities at all (never inferred) gets NaN and no labels.
        """
        track_ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        inferred = np.asarray(inferred, dtype=bool).reshape(-1)
        n, c = track_ids.size, len(self.attributes)
        probs = np.asarray(probs, dtype=np.float64)
        if probs.size == 0:
            probs = probs.reshape(0, c)
        if inferred.size != n:
            raise ConfigError(f"update: {n} track ids but an inferred mask of {inferred.size}; pass one each")
        if probs.ndim != 2 or probs.shape != (int(inferred.sum()), c):
            raise ConfigError(
                f"update: probs has shape {probs.shape}, expected ({int(inferred.sum())}, {c}): one row of "
                f"{c} attribute probabilities per face marked in the inferred mask, in order"
            )
        tracked = track_ids[track_ids != UNTRACKED]
        if np.unique(tracked).size != tracked.size:
            raise ConfigError(f"update: track ids repeat within one frame ({track_ids.tolist()})")

        ema = self.config.ema
        smoothed = np.full((n, c), np.nan, dtype=np.float64)
        labels: list[tuple[str, ...]] = []
        rows = np.cumsum(inferred) - 1  # row of probs for each inferred face
        for i, tid in enumerate(track_ids):
            p = probs[rows[i]] if inferred[i] else None
            t = self._tracks.get(int(tid))
            if t is None:
                if tid != UNTRACKED:
                    raise ConfigError(
                        f"update: track id {int(tid)} is not live; pass the ids assign() returned"
                    )
                if p is not None:
                    smoothed[i] = p
                    labels.append(self._names(p >= self.thresholds))
                else:
                    labels.append(())
                continue
            if p is not None:
                t.smoothed = p.copy() if t.smoothed is None else ema * p + (1.0 - ema) * t.smoothed
                t.last_inference_frame = self.frame
                t.inferred_area = float(_areas(t.box[None])[0])
                if t.on is None:
                    t.on = t.smoothed >= self.thresholds
                else:
                    t.on = np.where(t.on, t.smoothed >= self._off_level, t.smoothed >= self._on_level)
            if t.smoothed is not None:
                smoothed[i] = t.smoothed
            labels.append(self._names(t.on))
        return smoothed, labels

    def _names(self, on: np.ndarray | None) -> tuple[str, ...]:
        if on is None:
            return ()
        return tuple(a for a, v in zip(self.attributes, on) if v)


# ----------------------------------------------------------------- label changes


@dataclass(frozen=True)
class LabelChange:
    """A tracked face whose labels changed (or a track seen with labels for the first time)."""

    track_id: int
    added: tuple[str, ...]  # labels that turned on
    removed: tuple[str, ...]  # labels that turned off
    new: bool  # first report for this track
    face: Face
    frame: int  # FrameResult.index

    def __str__(self) -> str:
        parts = [f"+{a}" for a in self.added] + [f"−{r}" for r in self.removed]
        head = f"track {self.track_id}" + (" (new)" if self.new else "")
        return f"{head}: {' '.join(parts)}" if parts else head


class LabelChangeNotifier:
    """Turns a stream of :class:`FrameResult` into label-change events per track.

    A track is reported when it first appears with attributes (``new=True``, ``added`` = its labels) and
    whenever its labels change. Faces without a track (-1), unconfirmed or without attributes yet are skipped. A track
    not seen for more than ``forget_after`` frames is forgotten, so the same id seen again is new again
    (the tracker never reuses ids, so that happens only after ``Tracker.reset``). Frames are counted by
    ``FrameResult.index`` where it advances (a jump counts as the frames skipped) and as one per update
    where it does not (images numbered 0, a source that restarts): what is remembered stays bounded.

    callback: called with each :class:`LabelChange`, in face order; exceptions propagate.
    """

    def __init__(
        self, callback: Callable[[LabelChange], None] | None = None, forget_after: int = 300
    ) -> None:
        if not _is_int(forget_after) or forget_after < 0:
            raise ConfigError(f"forget_after={forget_after!r}; accepted: an int ≥ 0 (frames)")
        self.callback = callback
        self.forget_after = forget_after
        self._labels: dict[int, tuple[str, ...]] = {}
        self._last_seen: dict[int, int] = {}  # track id → clock of its last update
        self._clock = 0  # frames seen, advancing at least one per update
        self._last_index: int | None = None

    def reset(self) -> None:
        self._labels.clear()
        self._last_seen.clear()

    def update(self, result: FrameResult) -> list[LabelChange]:
        """The changes in ``result`` (also passed to the callback)."""
        changes: list[LabelChange] = []
        idx = int(result.index)
        last, self._last_index = self._last_index, idx
        self._clock += idx - last if last is not None and idx > last else 1
        for face in result.faces:
            tid = int(face.track_id)
            if tid < 0 or not face.attributes or not getattr(face, "confirmed", True):
                continue
            self._last_seen[tid] = self._clock
            before = self._labels.get(tid)
            now = tuple(face.labels)
            self._labels[tid] = now
            if before is not None and set(before) == set(now):
                continue
            change = LabelChange(
                track_id=tid,
                added=tuple(a for a in now if a not in (before or ())),
                removed=tuple(a for a in (before or ()) if a not in now),
                new=before is None,
                face=face,
                frame=result.index,
            )
            changes.append(change)
        for tid in [t for t, seen in self._last_seen.items() if self._clock - seen > self.forget_after]:
            del self._last_seen[tid]
            self._labels.pop(tid, None)
        if self.callback is not None:
            for change in changes:
                self.callback(change)
        return changes


# ----------------------------------------------------------------- helpers


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """M×N intersection-over-union of boxes a (M×4) and b (N×4), x0, y0, x1, y1; 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0.0, None) * np.clip(y1 - y0, 0.0, None)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) taken in order of decreasing IoU, each row and column at most once, IoU ≥ threshold."""
    r, c = np.nonzero(iou >= threshold)
    order = np.lexsort((c, r, -iou[r, c]))  # highest IoU first; ties by row then column (deterministic)
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        i, j = int(r[k]), int(c[k])
        if i not in used_r and j not in used_c:
            pairs.append((i, j))
            used_r.add(i)
            used_c.add(j)
    return pairs


def _last_seen(t: _Track) -> int:
    return t.last_frame


def _centers(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)
