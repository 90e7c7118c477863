"""Benchmark: what checking a model package's sha256 on load costs — the first load (hashing every listed
file), the second load in the same process (memory cache) and the first load of a new process (the
user's disk cache), each as the median of several fresh processes.

    python benchmarks/package_verify.py [PACKAGE] [--rounds 5]

PACKAGE defaults to the shipped default model. A temporary cache folder is used (XDG_CACHE_HOME), so the
user's own cache is neither read nor changed. LSA_EDGE_VERIFY=0 is timed too, as the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, sys, time
from lsa_edge.package import ModelPackage
path = sys.argv[1] or None
t0 = time.perf_counter(); ModelPackage.open(path); t1 = time.perf_counter(); ModelPackage.open(path)
t2 = time.perf_counter()
print(json.dumps({"first_ms": 1e3 * (t1 - t0), "second_ms": 1e3 * (t2 - t1)}))
"""


def child(package: str, cache: str, verify: str = "1") -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=cache, LSA_EDGE_VERIFY=verify)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, package], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("package", nargs="?", default="", help="build folder (default: the shipped model)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    rows: dict[str, list[float]] = {k: [] for k in ("cold", "second", "restart", "unverified")}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as cache:
            cold = child(args.package, cache)  # no cache: hashes every listed file
            warm = child(args.package, cache)  # a new process: the disk cache
        with tempfile.TemporaryDirectory() as cache:
            off = child(args.package, cache, verify="0")
        rows["cold"].append(cold["first_ms"])
        rows["second"].append(cold["second_ms"])
        rows["restart"].append(warm["first_ms"])
        rows["unverified"].append(off["first_ms"])
    labels = {
        "cold": "first load, empty cache (hashes)",
        "second": "second load, same process",
        "restart": "first load of a new process (disk cache)",
        "unverified": "first load with LSA_EDGE_VERIFY=0",
    }
    for key, values in rows.items():
        print(f"{labels[key]:<44} median {statistics.median(values):8.2f} ms  (min {min(values):.2f})")


if __name__ == "__main__":
    main()
