"""Benchmark: ``lsa-edge bench`` of two checkouts side by side — e.g. a change against its base — on a shared
machine where single runs are too noisy to compare with remembered numbers.

Runs the bench of each checkout alternately (A, B, A, B, …) with the given Python interpreters, so load
from other users hits both alike, and prints per faces-per-frame the medians over the rounds: frames/s,
the share of frame time outside the two models, p50 stage latencies, and every round's share.

    python benchmarks/bench_ab.py --a ../base/.venv/bin/python --b .venv/bin/python --rounds 5 \\
        -- --frames 100 --faces 1,4,16

Arguments after ``--`` go to ``lsa-edge bench`` unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def bench_once(python: str, extra: list[str], out: Path) -> list[dict]:
    cmd = [python, "-m", "lsa_edge", "bench", "--json", str(out), *extra]
    # Run outside any checkout: ``-m`` puts the working directory first on sys.path, and a checkout
    # there would be imported instead of the interpreter's own install.
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=out.parent)
    return json.loads(out.read_text())["results"]


def _where(python: str, cwd: Path) -> str:
    code = "import lsa_edge, os; print(os.path.dirname(os.path.dirname(lsa_edge.__file__)))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd).stdout.strip()


def summarise(runs: dict[str, list[list[dict]]]) -> str:
    lines = [
        f"{'faces':>5} {'run':>3} {'fps':>7} {'outside':>8} {'total':>7} {'detect':>7} {'align':>6} "
        f"{'infer':>7} {'det.model':>9} {'attr.model':>10}   outside per round"
    ]
    faces = sorted({r["faces_requested"] for rounds in runs.values() for rs in rounds for r in rs})
    for n in faces:
        for name, rounds in runs.items():
            rows = [r for rs in rounds for r in rs if r["faces_requested"] == n]

            def p50(stage: str, rows=rows) -> float:
                return statistics.median(r["stages_ms"][stage]["p50"] for r in rows)

            shares = [100 * r["outside_models_share"] for r in rows]
            lines.append(
                f"{n:>5} {name:>3} {statistics.median(r['fps'] for r in rows):7.1f} "
                f"{statistics.median(shares):7.1f}% {p50('total'):7.2f} {p50('detect'):7.2f} "
                f"{p50('align'):6.2f} {p50('infer'):7.2f} {p50('detector_model'):9.2f} "
                f"{p50('attribute_model'):10.2f}   " + " ".join(f"{s:.0f}" for s in shares)
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="Python of checkout A (its venv has lsa-edge installed -e)")
    p.add_argument("--b", required=True, help="Python of checkout B")
    p.add_argument("--rounds", type=int, default=3, help="bench runs of each checkout (default: 3)")
    p.add_argument("--json", help="write every run's results as JSON")
    args = p.parse_args(own)
    # absolute (the benches run in a temporary folder), but not resolved: a venv's python is a symlink
    args.a, args.b = os.path.abspath(args.a), os.path.abspath(args.b)
    runs: dict[str, list[list[dict]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")  # neither always runs first
            for name in order:
                python = args.a if name == "A" else args.b
                if i == 0 and name == order[0]:
                    for n, py in (("A", args.a), ("B", args.b)):
                        print(f"{n}: {py} runs {_where(py, Path(tmp))}", file=sys.stderr)
                runs[name].append(bench_once(python, extra, Path(tmp) / f"{name}{i}.json"))
                print(f"round {i + 1}/{args.rounds}: {name} done", file=sys.stderr)
    print(summarise(runs))
    if args.json:
        from lsa_edge.io import write_json_atomic

        write_json_atomic(args.json, runs, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
