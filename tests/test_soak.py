"""benchmarks/soak.py: a few seconds of the real thing, and its verdict on made-up samples."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="soak.py reads /proc (Linux)")


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("soak", mod)  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_soak_runs_for_a_few_seconds(tmp_path):
    argv = [sys.executable, str(SOAK), "--minutes", "0.12", "--warmup", "2", "--warmup-frames", "5"]
    argv += ["--interval", "1"]
    res = subprocess.run(
        [*argv, "--max-growth-mib", "1000"], capture_output=True, text=True, cwd=tmp_path, timeout=180
    )
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for row in ("RSS (MiB)", "heap (MiB)", "open fds", "threads", "slope/min", "after warm-up"):
        assert row in out, out


def test_soak_verdict_on_made_up_samples():
    soak = _soak_module()
    mib = soak.MIB

    def run(rss_mib):
        return [
            soak.Sample(float(t), 10 * t, int(r * mib), int(r * mib), 8, 7) for t, r in enumerate(rss_mib)
        ]

    table, growth = soak.summarise(run([100, 150, 150, 150.2, 150.1, 150.3, 150.2, 150.1]), warmup_s=2)
    assert growth / mib == pytest.approx(0.0, abs=0.25)  # the warm-up jump does not count
    assert "RSS (MiB)" in table
    _, growth = soak.summarise(run([100, 150, 151, 152, 153, 154, 155, 156]), warmup_s=2)
    assert growth / mib == pytest.approx(3.0)  # a steady leak: median of 151..153 to median of 154..156
    leak = run([150 + t for t in range(10)])
    assert soak.slope_per_minute(leak, "rss") / mib == pytest.approx(60.0)
    # warm-up needs the frames too: a start that stalled for 100 s (3 frames) is not warmed up
    stalled = [
        soak.Sample(float(t), f, 1, 1, 8, 7) for t, f in ((0, 1), (100, 2), (101, 3), (102, 300), (103, 400))
    ]
    table, _ = soak.summarise(stalled, warmup_s=60, warmup_frames=300)
    assert "2 samples" in table
