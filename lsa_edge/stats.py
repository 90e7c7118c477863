"""Streaming statistics in bounded memory: per-stage timing tables for runs that last for weeks.

:class:`StreamingStats` keeps count, sum, min and max exactly and the distribution in a fixed-bin
log-scale histogram (bins 2 % wide from 1 µs to ~28 h in milliseconds), so a quantile is within ~1 % of
the exact one however many values were added, in a few kilobytes. The first ``exact_until`` values are also
kept as they are, so short runs (tests, a 300-frame clip) report exact quantiles.
:class:`StageStats` holds one per stage name. Imports numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["StageStats", "StreamingStats"]


class StreamingStats:
    """Count, mean, min, max and quantiles of a stream of non-negative values (e.g. milliseconds).

    Memory is fixed (``bins`` counters + ``exact_until`` floats) whatever the number of values. Values at
    or below ``low`` share the first bin, values at or above ``high`` the last; quantiles are clamped to
    the exact min and max, so they never leave the observed range. NaN and infinite values are counted in
    ``skipped`` and left out.
    """

    def __init__(
        self, low: float = 1e-3, high: float = 1e8, ratio: float = 1.02, exact_until: int = 1024
    ) -> None:
        if not (0 < low < high and ratio > 1):
            raise ValueError(f"need 0 < low < high and ratio > 1, got {low}, {high}, {ratio}")
        self.low, self.high = float(low), float(high)
        self._log_low = math.log(self.low)
        self._log_ratio = math.log(ratio)
        self.bins = math.ceil((math.log(self.high) - self._log_low) / self._log_ratio) + 1
        self._counts = np.zeros(self.bins, dtype=np.int64)
        self._exact: list[float] | None = []
        self._exact_until = int(exact_until)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.skipped = 0  # NaN or infinite values given to add(): not in any statistic

    def _bin(self, value: float) -> int:
        if not value > self.low:  # also NaN
            return 0
        k = int((math.log(value) - self._log_low) / self._log_ratio) + 1
        return min(k, self.bins - 1)

    def add(self, value: float) -> None:
        """Add one value. NaN and ±infinity (a clock that jumped, a division by a zero duration) are left out
        of every statistic and counted in :attr:`skipped`."""
        value = float(value)
        if not math.isfinite(value):
            self.skipped += 1
            return
        self.count += 1
        self.total += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self._counts[self._bin(value)] += 1
        if self._exact is not None:
            self._exact.append(value)
            if len(self._exact) > self._exact_until:
                self._exact = None  # from here on the histogram answers

    def extend(self, values: Iterable[float]) -> None:
        for v in values:
            self.add(v)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """The q-quantile (0 ≤ q ≤ 1), like ``numpy.percentile(values, 100 * q)``: exact for the first
        ``exact_until`` values, then within one bin (±1 % at the default ratio). NaN when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"q must be in [0, 1], got {q}")
        if not self.count:
            return math.nan
        if self._exact is not None:
            return float(np.percentile(np.asarray(self._exact), 100 * q))
        rank = q * (self.count - 1)  # 0-based position of the answer in sorted order
        cum = np.cumsum(self._counts)
        k = int(np.searchsorted(cum, math.floor(rank) + 1))
        if k == 0:  # at or below low: the smallest value seen is the best answer
            return float(self.min)
        if k >= self.bins - 1:  # at or above high
            return float(self.max)
        # the geometric centre of the bin [low·r^(k-1), low·r^k)
        value = math.exp(self._log_low + (k - 0.5) * self._log_ratio)
        return float(min(max(value, self.min), self.max))

    def __repr__(self) -> str:
        if not self.count:
            return "<StreamingStats empty>"
        return (
            f"<StreamingStats n={self.count} mean={self.mean:.3g} p50={self.quantile(0.5):.3g} "
            f"p95={self.quantile(0.95):.3g} max={self.max:.3g}"
            + (f" skipped={self.skipped}>" if self.skipped else ">")
        )


class StageStats:
    """One :class:`StreamingStats` per stage name (read, detect, align, infer, track, total, ...)."""

    def __init__(self, **kwargs: Any) -> None:  # StreamingStats' low, high, ratio, exact_until
        self._kwargs = kwargs
        self.stages: dict[str, StreamingStats] = {}
        self.frames = 0

    def add(self, timings: Mapping[str, float]) -> None:
        """Add one frame's stage → value mapping (e.g. ``FrameResult.timings_ms``)."""
        self.frames += 1
        for name, value in timings.items():
            stats = self.stages.get(name)
            if stats is None:
                if len(self.stages) >= 64:  # a bug upstream, not a reason to grow without bound
                    continue
                stats = self.stages[name] = StreamingStats(**self._kwargs)
            stats.add(value)

    def __contains__(self, name: object) -> bool:
        return name in self.stages

    def __getitem__(self, name: str) -> StreamingStats:
        return self.stages[name]
