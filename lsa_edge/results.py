"""Typed results of the runtime: one :class:`Face` per detected face, one :class:`FrameResult` per frame.

Frozen dataclasses (never dicts); coordinates are frame pixels (x right, y down), probabilities are in
[0, 1]. ``to_dict`` gives the JSON-lines form of ``lsa-edge run --json``. Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Face:
    """One face in one frame.

    box: (x0, y0, x1, y1) frame pixels; keypoints: 6×2 frame pixels in ``lsa_edge.card.KEYPOINTS`` order;
    score: detector confidence; track_id: stable across frames (-1 when tracking is off);
    attributes: name → probability (smoothed per track when tracking is on); labels: the attributes whose
    probability passed the card's per-attribute threshold (with hysteresis when smoothing is on);
    fresh: whether the attribute model ran on this face in this frame (False: carried over by the
    re-infer policy); confirmed: False while a new track has fewer matches than ``TrackerConfig.min_hits``
    (it may still be a false detection).
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: tuple[tuple[float, float], ...]
    track_id: int = -1
    attributes: dict[str, float] = field(default_factory=dict, compare=False, hash=False)
    labels: tuple[str, ...] = ()
    fresh: bool = True
    confirmed: bool = True

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def has(self, label: str) -> bool:
        return label in self.labels

    def to_dict(self, ndigits: int = 4) -> dict[str, Any]:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), ndigits),
            "track_id": int(self.track_id),
            "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in self.keypoints],
            "attributes": {k: round(float(v), ndigits) for k, v in self.attributes.items()},
            "labels": list(self.labels),
            "fresh": bool(self.fresh),
            "confirmed": bool(self.confirmed),
        }


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline found in one frame.

    index: frame number from the source (0-based); timestamp: seconds (source clock, or monotonic time for
    live sources); size: (height, width) of the frame; timings_ms: stage → milliseconds for this frame
    (read, detect, align, infer, track, total); small_faces: faces the detector found but left out as
    smaller than ``min_face_size`` (too few pixels for the attributes: counted, never mispredicted).
    """

    index: int
    timestamp: float
    size: tuple[int, int]
    faces: tuple[Face, ...]
    timings_ms: dict[str, float]
    source: str = ""
    small_faces: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": int(self.index),
            "timestamp": round(float(self.timestamp), 4),
            "size": [int(self.size[0]), int(self.size[1])],
            "faces": [f.to_dict() for f in self.faces],
            "timings_ms": {k: round(float(v), 3) for k, v in self.timings_ms.items()},
            "source": self.source,
            "small_faces": int(self.small_faces),
        }
