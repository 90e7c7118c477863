"""Benchmark: training throughput on a CPU — one run on every core against N runs side by side on cores / N
threads each (what ``benchmarks/label_budget.py --jobs N`` does).

Every process times the same training step as a recipe's: the LSA model (MobileNetV2, 128×112) forward and
backward under bf16 autocast, then AdamW, on a batch of random faces. The processes of one setting start
together; the figure is images per second of the whole machine (the sum over the processes of batch / median
step time), and the table gives each setting's ratio to the first.

    python benchmarks/train_throughput.py              # 1 × all cores against 2 × half of them
    python benchmarks/train_throughput.py --jobs 1 2 4 --steps 12 --batch 64
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time
from typing import Any


def _steps(threads: int, batch: int, steps: int, start: Any, out: Any) -> None:
    """One process: ``steps`` timed training steps (after 2 untimed ones) on ``threads`` threads."""
    import torch

    from lsa_edge.training.model import LSAConfig, LSAModel
    from lsa_edge.training.prior import build_dictionary
    from lsa_edge.training.text import TextEncoder

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = LSAModel(LSAConfig(pretrained=False), build_dictionary(TextEncoder()))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, 128, 112)
    y = (torch.rand(batch, 40) > 0.5).float()
    start.wait()  # every process of the setting starts timing together
    times = []
    for k in range(steps + 2):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if k >= 2:
            times.append(time.perf_counter() - t0)
    out.put(statistics.median(times))


def measure(jobs: int, threads: int, batch: int, steps: int) -> float:
    """Images per second of ``jobs`` processes side by side, ``threads`` each."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_steps, args=(threads, batch, steps, start, out)) for _ in range(jobs)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    start.set()
    medians = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(batch / m for m in medians)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="processes side by side per setting")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="threads shared by a setting")
    p.add_argument("--batch", type=int, default=64, help="faces per step (a 322-label step: 32 + 32)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per process")
    args = p.parse_args()
    if any(j < 1 or j > args.cores for j in args.jobs) or args.steps < 1 or args.batch < 1:
        p.error(f"--jobs must lie in 1 … --cores ({args.cores}); --steps and --batch ≥ 1")
    from rich.console import Console
    from rich.table import Table

    rates = {j: measure(j, max(1, args.cores // j), args.batch, args.steps) for j in args.jobs}
    first = rates[args.jobs[0]]
    tab = Table(title=f"training throughput, batch {args.batch}, {platform.machine()} × {args.cores} cores")
    for col in ("runs side by side", "threads each", "images/s (machine)", f"× {args.jobs[0]} run(s)"):
        tab.add_column(col, justify="right")
    for j, rate in rates.items():
        tab.add_row(str(j), str(max(1, args.cores // j)), f"{rate:.1f}", f"{rate / first:.2f}")
    Console().print(tab)


if __name__ == "__main__":
    main()
