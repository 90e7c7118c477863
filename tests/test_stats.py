"""lsa_edge.stats: quantiles in bounded memory agree with numpy."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from lsa_edge.stats import StageStats, StreamingStats


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).lognormal(mean=2.0, sigma=0.8, size=50_000),  # skewed, like frame times
        np.random.default_rng(1).uniform(0.05, 400.0, size=20_000),
        np.concatenate([np.full(9_000, 3.0), np.full(1_000, 250.0)]),  # bimodal: a slow frame in ten
    ],
)
def test_quantiles_match_numpy_within_a_bin(values):
    s = StreamingStats()
    s.extend(values)
    for q in (0.5, 0.95, 0.99):
        exact = np.percentile(values, 100 * q)
        assert s.quantile(q) == pytest.approx(exact, rel=0.011), q
    assert s.count == len(values)
    assert s.mean == pytest.approx(values.mean())
    assert s.min == values.min() and s.max == values.max()


def test_short_runs_are_exact():
    values = [5.0, 1.0, 2.5, 9.0]
    s = StreamingStats()
    s.extend(values)
    assert s.quantile(0.5) == np.percentile(values, 50)
    assert s.quantile(0.95) == np.percentile(values, 95)


def test_memory_does_not_grow_with_the_number_of_values():
    s = StreamingStats()
    s.extend(np.full(2_000, 1.0))
    size = sys.getsizeof(s._counts) + sys.getsizeof(s._exact)
    s.extend(np.random.default_rng(2).exponential(10.0, 100_000))
    assert s._exact is None  # past exact_until only the fixed histogram remains
    assert sys.getsizeof(s._counts) + sys.getsizeof(s._exact) <= size


def test_out_of_range_values_are_clamped_to_what_was_seen():
    s = StreamingStats(exact_until=0)
    s.extend([0.0, 0.0, 0.0, 1e12])
    assert s.quantile(0.5) == 0.0 and s.quantile(1.0) == 1e12
    s.add(float("nan"))
    assert s.count == 4
    assert math.isnan(StreamingStats().quantile(0.5))
    with pytest.raises(ValueError):
        s.quantile(1.5)


def test_stage_stats_per_stage():
    st = StageStats()
    st.add({"detect": 2.0, "total": 5.0})
    st.add({"detect": 4.0, "total": 7.0, "read": 1.0})
    assert st.frames == 2 and "read" in st and "infer" not in st
    assert st["detect"].quantile(0.5) == 3.0 and st["read"].count == 1


def test_infinite_values_are_counted_apart_not_an_overflow():
    s = StreamingStats(exact_until=2)
    for v in (1.0, float("inf"), 2.0, float("-inf"), float("nan"), 3.0):
        s.add(v)
    assert s.count == 3 and s.skipped == 3 and s.max == 3.0 and s.min == 1.0 and s.mean == 2.0
    assert 1.0 <= s.quantile(0.5) <= 3.0 and "skipped=3" in repr(s)
