"""Attribute metrics (numpy): accuracy, balanced accuracy, threshold tuning. Used by training, eval,
calibration gates and the runtime's data-set evaluation alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .attributes import ATTRIBUTES


@dataclass(frozen=True)
class AttributeMetrics:
    """Per-attribute and mean metrics of one evaluation. Accuracies are fractions in [0, 1]."""

    names: tuple[str, ...]
    accuracy: np.ndarray  # (A,)
    balanced_accuracy: np.ndarray  # (A,) mean of true-positive and true-negative rates
    positive_rate: np.ndarray  # (A,) share of positives in the labels
    n_images: int
    thresholds: np.ndarray  # (A,) thresholds used

    @property
    def mean_accuracy(self) -> float:
        return float(self.accuracy.mean())

    @property
    def mean_balanced_accuracy(self) -> float:
        return float(self.balanced_accuracy.mean())

    def to_dict(self) -> dict:
        return {
            "mean_accuracy": self.mean_accuracy,
            "balanced_accuracy": self.mean_balanced_accuracy,
            "n_images": self.n_images,
            "per_attribute": {
                n: {
                    "accuracy": float(a),
                    "balanced_accuracy": float(b),
                    "positive_rate": float(p),
                    "threshold": float(t),
                }
                for n, a, b, p, t in zip(
                    self.names, self.accuracy, self.balanced_accuracy, self.positive_rate, self.thresholds
                )
            },
        }


def attribute_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    thresholds: float | Sequence[float] | np.ndarray = 0.5,
    names: Sequence[str] = ATTRIBUTES,
) -> AttributeMetrics:
    """probs: N×A probabilities; labels: N×A in {0, 1}; thresholds: scalar or (A,)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    a = probs.shape[1]
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (a,)).copy()
    pred = probs >= thr
    correct = pred == labels
    pos, neg = labels.sum(0), (~labels).sum(0)
    tpr = np.where(pos > 0, (pred & labels).sum(0) / np.maximum(pos, 1), np.nan)
    tnr = np.where(neg > 0, (~pred & ~labels).sum(0) / np.maximum(neg, 1), np.nan)
    # Where a split has only one class for an attribute, balanced accuracy is that class's rate.
    bal = np.where(np.isnan(tpr), tnr, np.where(np.isnan(tnr), tpr, (tpr + tnr) / 2))
    return AttributeMetrics(
        names=tuple(names),
        accuracy=correct.mean(0),
        balanced_accuracy=bal,
        positive_rate=labels.mean(0),
        n_images=int(probs.shape[0]),
        thresholds=thr,
    )


def tune_thresholds(probs: np.ndarray, labels: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Per-attribute thresholds that maximise accuracy on (validation) data; ties go to the one nearest 0.5."""
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2) if grid is None else grid
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    acc = np.stack([((probs >= t) == labels).mean(0) for t in grid])  # G×A
    best = acc.max(0, keepdims=True)
    dist = np.abs(grid - 0.5)[:, None] + np.where(acc >= best - 1e-12, 0.0, np.inf)
    return grid[np.argmin(dist, axis=0)].astype(np.float32)


def majority_accuracy(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Mean accuracy of predicting each attribute's majority class (from train) on test."""
    maj = np.asarray(train_labels).mean(0) >= 0.5
    return float((np.asarray(test_labels).astype(bool) == maj).mean())
