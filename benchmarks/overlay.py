"""Benchmark: ``lsa_edge.overlay.draw`` per frame, this checkout's module against earlier ones side by side.

The earlier modules are taken from git (``git show REV:lsa_edge/overlay.py``) into a temporary file and
imported as part of the installed ``lsa_edge`` package, so all of them run on the same inputs in one process.
Inputs are demo-like layouts (faces on a grid, drifting as in ``lsa_edge.demo.scene``), each face with a
track id and 5 labels whose probabilities change every round (so the text changes as it does live).
Modules take turns (A, B, C, A, B, C, …) so load from other users hits all alike; the table gives the
median milliseconds of one ``draw`` call.

    python benchmarks/overlay.py                       # ed50c5e (before issue 12), e587807 (issue 12), now
    python benchmarks/overlay.py --rev HEAD~1 --faces 1,50 --sizes 1280x720 --rounds 5
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import lsa_edge
from lsa_edge.demo import face_boxes
from lsa_edge.io import write_text_atomic
from lsa_edge.results import Face, FrameResult

NAMES = (
    "Male",
    "Smiling",
    "Eyeglasses",
    "Young",
    "Mouth_Slightly_Open",
    "No_Beard",
    "Wearing_Hat",
    "Heavy_Makeup",
)
REVS = ("ed50c5e", "e587807")  # before issue 12; issue 12's overlay (item 9)


def load_rev(rev: str, tmp: Path):
    """The overlay module as it was at ``rev``, imported as ``lsa_edge._overlay_<rev>``."""
    root = Path(__file__).resolve().parent.parent
    text = subprocess.run(
        ["git", "show", f"{rev}:lsa_edge/overlay.py"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    name = f"_overlay_{rev.replace('~', '_').replace('^', '_')}"
    path = tmp / f"{name}.py"
    write_text_atomic(path, text)  # a scratch copy, but the tree has one way to write files
    spec = importlib.util.spec_from_file_location(f"lsa_edge.{name}", path)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "lsa_edge"  # its relative imports (._opencv, .results) find the package
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def frame_result(n: int, frame: int, size: tuple[int, int], rng: np.random.Generator) -> FrameResult:
    faces = []
    for k, (x0, y0, x1, y1) in enumerate(face_boxes(n, frame, size)):
        labels = tuple(rng.choice(NAMES, 5, replace=False))
        attrs = {a: float(rng.uniform(0.5, 1.0)) for a in labels}
        kps = tuple(((x0 + x1) / 2, (y0 + y1) / 2) for _ in range(6))
        faces.append(Face((x0, y0, x1, y1), 0.9, kps, k + 1, attrs, labels))
    return FrameResult(frame, 0.0, size, tuple(faces), {})


def bench(modules: dict, faces: int, size: tuple[int, int], rounds: int, frames: int) -> dict[str, float]:
    """Median ms of one draw call per module, over ``rounds`` × ``frames`` calls each."""
    h, w = size
    img = np.full((h, w, 3), 90, np.uint8)
    status = f" 30.0 fps  {faces} face(s)  lsa-mnv2"
    times: dict[str, list[float]] = {name: [] for name in modules}
    rng = np.random.default_rng(faces)
    for mod in modules.values():  # warm-up: first calls, caches
        mod.draw(img, frame_result(faces, 0, size, rng), status=status)
    for _ in range(rounds):
        results = [frame_result(faces, f, size, rng) for f in range(frames)]
        for name, mod in modules.items():
            for res in results:
                t0 = time.perf_counter()
                mod.draw(img, res, status=status)
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--rev", action="append", help=f"git revisions to compare with (default: {' '.join(REVS)})"
    )
    ap.add_argument("--faces", default="1,4,16,50", help="faces per frame, comma-separated")
    ap.add_argument("--sizes", default="640x480,1280x720", help="frame sizes WxH, comma-separated")
    ap.add_argument("--rounds", type=int, default=7, help="rounds (each draws every frame once per module)")
    ap.add_argument("--frames", type=int, default=20, help="layouts per round (the drift of the demo)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        modules = {rev: load_rev(rev, Path(tmp)) for rev in args.rev or REVS}
        from lsa_edge import overlay

        modules["now"] = overlay
        print(
            f"lsa_edge {lsa_edge.__version__}: median ms per draw() call, {args.rounds}×{args.frames} calls"
        )
        names = list(modules)
        head = f"{'size':>9} {'faces':>5} " + " ".join(f"{n:>9}" for n in names)
        print(head + "   " + " ".join(f"{'now/' + n:>12}" for n in names[:-1]))
        for size_text in args.sizes.split(","):
            w, h = (int(v) for v in size_text.lower().split("x"))
            for n in (int(v) for v in args.faces.split(",")):
                ms = bench(modules, n, (h, w), args.rounds, args.frames)
                ratios = " ".join(f"{ms['now'] / ms[k]:12.2f}" for k in names[:-1])
                print(f"{size_text:>9} {n:>5} " + " ".join(f"{ms[k]:9.2f}" for k in names) + "   " + ratios)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
