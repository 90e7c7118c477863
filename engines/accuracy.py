"""The accuracy gate: a reduced-precision artifact against FP32 on the same labelled validation faces.

Task accuracy, not tensor error, decides whether an FP16 or INT8 artifact ships: the mean-accuracy delta
(card thresholds) and the attributes that lost most are printed, stored in the card, and the build fails
when the drop exceeds the allowed points. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lsa_edge.errors import CalibrationError, LsaEdgeError


@dataclass(frozen=True)
class AccuracyCheck:
    """One artifact against the FP32 reference on ``faces`` labelled faces (accuracies in %)."""

    artifact: str
    faces: int
    reference_accuracy: float  # FP32 mean accuracy, %, card thresholds
    accuracy: float  # this artifact's mean accuracy, %
    delta_points: float  # reference − artifact, percentage points (positive = lost)
    decision_agreement: float  # % of face×attribute decisions identical to FP32
    max_abs_diff: float  # max |p − p_fp32|
    mean_abs_diff: float
    worst: tuple[tuple[str, float], ...]  # up to 5 (attribute, points lost), most lost first

    def to_dict(self) -> dict:
        d = asdict(self)
        d["worst"] = [{"attribute": a, "delta_points": p} for a, p in self.worst]
        return d

    def describe(self) -> str:
        worst = ", ".join(f"{a} {p:+.2f}" for a, p in self.worst if p > 0) or "none"
        return (
            f"{self.artifact}: {self.accuracy:.2f}% vs FP32 {self.reference_accuracy:.2f}% "
            f"(Δ {-self.delta_points + 0.0:+.2f} points on {self.faces} faces; decisions agree "
            f"{self.decision_agreement:.2f}%; max |Δp| {self.max_abs_diff:.3g}); worst: {worst}"
        )


def compare_accuracy(
    artifact: str,
    reference_probs: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    thresholds: Sequence[float],
    attributes: Sequence[str],
    top: int = 5,
) -> AccuracyCheck:
    """Compare N×C probabilities of an artifact with the FP32 reference on N labelled faces."""
    if reference_probs.shape != probs.shape or probs.shape != labels.shape:
        raise CalibrationError(
            f"shapes differ: reference {reference_probs.shape}, artifact {probs.shape}, labels {labels.shape}"
        )
    thr = np.asarray(thresholds, dtype=np.float32)
    y = labels.astype(bool)
    ref_dec, dec = reference_probs >= thr, probs >= thr
    ref_acc = (ref_dec == y).mean(axis=0) * 100
    acc = (dec == y).mean(axis=0) * 100
    per_attr = ref_acc - acc
    order = np.argsort(-per_attr)[:top]
    diff = np.abs(probs.astype(np.float64) - reference_probs)
    return AccuracyCheck(
        artifact=artifact,
        faces=len(labels),
        reference_accuracy=float(ref_acc.mean()),
        accuracy=float(acc.mean()),
        delta_points=float(ref_acc.mean() - acc.mean()),
        decision_agreement=float((dec == ref_dec).mean() * 100),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        worst=tuple((attributes[i], round(float(per_attr[i]), 3)) for i in order),
    )


class AccuracyGateError(LsaEdgeError):
    """A reduced-precision (FP16 or INT8) artifact lost more accuracy than allowed."""


def enforce(check: AccuracyCheck, max_drop: float, precision: str) -> None:
    """Raise :class:`AccuracyGateError` with what to try when ``check`` lost more than ``max_drop`` points."""
    if check.delta_points <= max_drop:
        return
    tips = [
        "calibrate on more or other faces (--calib-data DIR, --calib-count 1024)",
        "try another method (--calib-method minmax|entropy|percentile)",
        "keep the worst layers in higher precision (--exclude-nodes NAME,...; list names with "
        "lsa-edge check MODEL.onnx --nodes)",
    ]
    if precision == "fp16":
        tips = ["keep more ops in FP32 (--fp32-ops Op,...)", "or build FP32 (--precision fp32)"]
    raise AccuracyGateError(
        f"{precision.upper()} accuracy gate failed: {check.describe()}. The allowed drop is {max_drop:g} points "
        f"(--max-accuracy-drop). Try: " + "; ".join(tips) + "."
    )
