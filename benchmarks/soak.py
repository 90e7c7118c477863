"""Soak test: the pipeline on the looping demo scene, tracking on, for N minutes; memory must stay flat.

Samples the process's resident memory (RSS), its anonymous memory (heap: RssAnon + VmSwap, what a leak
grows), open file descriptors and threads every few seconds, then prints start (the first sample after
warm-up), end and slope per minute (least squares over the samples after warm-up) and exits 1 when memory
grew more than ``--max-growth-mib`` after warm-up (start and end are medians of three samples, so one
allocator hiccup does not decide it). The verdict uses the anonymous memory: on a busy machine the kernel
may drop file-backed pages (shared libraries, the mapped model) from RSS and fault them back in later,
which moves RSS by megabytes without any allocation. Warm-up ends after ``--warmup`` seconds *and*
``--warmup-frames`` frames, so a stalled start still warms up. Linux (reads /proc/self).

    python benchmarks/soak.py                      # 10 minutes, 2 faces, the shipped model
    python benchmarks/soak.py --minutes 60 --faces 4 --model build/fp16 --backend tensorrt
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the start
    frames: int  # frames processed so far
    rss: int  # bytes, resident
    anon: int  # bytes, anonymous memory resident or swapped (RssAnon + VmSwap)
    fds: int
    threads: int


def process_sample(t: float, frames: int) -> Sample:
    """RSS, open descriptors and OS threads of this process, from /proc/self."""
    status = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)

    def kib(key: str) -> int:
        return int(fields.get(key, "0 kB").split()[0]) * 1024

    threads = int(fields["Threads"].strip())
    fds = len(os.listdir("/proc/self/fd")) - 1  # minus the descriptor listdir itself holds
    anon = kib("RssAnon") + kib("VmSwap") if "RssAnon" in fields else kib("VmRSS")  # Linux < 4.5: RSS
    return Sample(t, frames, kib("VmRSS"), anon, fds, threads)


def demo_loop(faces: int, seconds: float, period: int = 90) -> Iterator:
    """Demo frames (the built-in scene, ``period`` frames long, repeated) until ``seconds`` have passed."""
    from lsa_edge.demo import scene

    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        yield scene(faces, i % period)
        i += 1


def slope_per_minute(samples: list[Sample], attr: str) -> float:
    if len(samples) < 2:
        return 0.0
    ts = [s.t for s in samples]
    vs = [float(getattr(s, attr)) for s in samples]
    mt, mv = statistics.fmean(ts), statistics.fmean(vs)
    var = sum((t - mt) ** 2 for t in ts)
    if var == 0:
        return 0.0
    return 60.0 * sum((t - mt) * (v - mv) for t, v in zip(ts, vs)) / var


def _edge(samples: list[Sample], attr: str, first: bool) -> float:
    part = samples[:3] if first else samples[-3:]
    return float(statistics.median(getattr(s, attr) for s in part))


def summarise(samples: list[Sample], warmup_s: float, warmup_frames: int = 0) -> tuple[str, float]:
    """The table, and anonymous-memory growth after warm-up in bytes (end minus start, medians of three
    samples)."""
    after = [s for s in samples if s.t >= warmup_s and s.frames >= warmup_frames] or samples[-1:]
    rows = [
        ("RSS (MiB)", "rss", MIB),
        ("heap (MiB)", "anon", MIB),
        ("open fds", "fds", 1),
        ("threads", "threads", 1),
    ]
    lines = [
        f"{'':<10} {'start':>10} {'end':>10} {'slope/min':>10} {'max':>10}",
    ]
    for label, attr, unit in rows:
        start, end = _edge(after, attr, True) / unit, _edge(after, attr, False) / unit
        slope = slope_per_minute(after, attr) / unit
        top = max(getattr(s, attr) for s in after) / unit
        lines.append(f"{label:<10} {start:>10.2f} {end:>10.2f} {slope:>+10.3f} {top:>10.2f}")
    span = after[-1].t - after[0].t
    frames = after[-1].frames - after[0].frames
    fps = frames / span if span > 0 else 0.0
    lines.append(
        f"{len(after)} samples over {span / 60:.1f} min after warm-up ({after[0].t:.0f} s, "
        f"{after[0].frames} frames); {samples[-1].frames} frames in all, {fps:.1f} frames/s after warm-up"
    )
    growth = _edge(after, "anon", False) - _edge(after, "anon", True)
    return "\n".join(lines), growth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    ap.add_argument("--warmup", type=float, default=60.0, metavar="S", help="seconds before start (60)")
    ap.add_argument("--warmup-frames", type=int, default=300, metavar="N", help="and frames (300)")
    ap.add_argument("--interval", type=float, default=5.0, metavar="S", help="seconds between samples (5)")
    ap.add_argument("--faces", type=int, default=2, help="faces in the demo scene (default 2)")
    ap.add_argument("--model", default=None, help="build folder, .onnx or .engine (default: shipped)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = auto)")
    ap.add_argument("--max-growth-mib", type=float, default=1.0, help="allowed RSS growth after warm-up")
    args = ap.parse_args(argv)
    if not Path("/proc/self/status").exists():
        print("soak.py reads /proc/self: Linux only", file=sys.stderr)
        return 2
    if args.warmup >= args.minutes * 60:
        print(f"--warmup {args.warmup} s leaves nothing of --minutes {args.minutes}", file=sys.stderr)
        return 2

    from lsa_edge import Pipeline

    samples: list[Sample] = []
    with Pipeline(args.model, backend=args.backend, tracking=True, threads=args.threads) as pipe:
        print(f"soak: {pipe.describe()}; demo with {args.faces} face(s) for {args.minutes:g} min", flush=True)
        t0 = time.monotonic()
        next_at = 0.0
        frames = 0
        for result, _frame in pipe.stream_frames(demo_loop(args.faces, args.minutes * 60)):
            frames += 1
            now = time.monotonic() - t0
            if now >= next_at:
                samples.append(process_sample(now, frames))
                next_at += args.interval
                s = samples[-1]
                print(
                    f"  {now:7.1f} s  {frames:7d} frames  rss {s.rss / MIB:8.2f} MiB  "
                    f"heap {s.anon / MIB:8.2f} MiB  fds {s.fds:3d}  "
                    f"threads {s.threads:3d}  python threads {threading.active_count()}",
                    flush=True,
                )
            del result
        samples.append(process_sample(time.monotonic() - t0, frames))
    table, growth = summarise(samples, args.warmup, args.warmup_frames)
    print(table)
    verdict = "flat" if growth <= args.max_growth_mib * MIB else "GREW"
    print(f"heap after warm-up: {growth / MIB:+.2f} MiB ({verdict}; allowed {args.max_growth_mib:g} MiB)")
    return 0 if growth <= args.max_growth_mib * MIB else 1


if __name__ == "__main__":
    raise SystemExit(main())
