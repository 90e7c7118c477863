"""``lsa-edge bench``: end-to-end frames/s and per-stage latency against faces per frame, per backend.

Frames are the built-in demo scenes (640×480, N copies of the shipped portrait) so every machine measures
the same input. Every face is inferred every frame (tracking off: the worst case a re-infer policy only
improves). The two models are timed on their own too, so the table says how much of a frame is spent
outside them (letterboxing, decoding, NMS, alignment warps, normalisation).
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, unknown_choice
from ._common import user_path
from .run import add_model_args

HELP = "measure end-to-end frames/s and per-stage latency with 1, 4, 16 faces per frame"
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help=HELP, description=HELP + ".")
    add_model_args(p)
    p.add_argument("--faces", default="1,4,16", metavar="N,N,…", help="faces per frame (default: 1,4,16)")
    p.add_argument("--frames", type=int, default=60, help="measured frames per setting (default: 60)")
    p.add_argument("--warmup", type=int, default=5, help="frames before measuring (default: 5)")
    p.add_argument("--backends", default=None, metavar="A,B", help="compare backends, e.g. onnxruntime,torch")
    p.add_argument("--json", metavar="OUT", type=user_path, help="write the measurements as JSON")
    p.add_argument(
        "--plot",
        metavar="OUT.png",
        type=user_path,
        help="draw latency per stage against faces per frame (.png, .svg, .pdf, ...)",
    )
    p.set_defaults(run=run)


class _Timed:
    """Wraps a callable and accumulates the time spent in it (ms)."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.ms = fn, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.ms += (time.perf_counter() - t) * 1000


_UNSET = object()


def measure(pipe: Any, faces: int, frames: int, warmup: int) -> dict[str, Any]:
    import numpy as np

    from lsa_edge.demo import scene

    # Each frame is rendered when it is needed, outside the timed calls (only pipe.predict and the two
    # models are timed): the same scenes as rendering them all up front, in constant memory (~0.9 MB a
    # frame would make a long benchmark an OOM kill).
    clip = (scene(faces, i) for i in range(frames + warmup))
    # Both models are ModelRunners: their predict is what the pipeline calls, so that is what is timed.
    runners = (pipe.detector.runner, pipe.backend)
    det_model, attr_model = timers = [_Timed(m.predict) for m in runners]
    saved = [vars(m).get("predict", _UNSET) for m in runners]  # an instance's own predict, if it has one
    for model, timed in zip(runners, timers):
        model.predict = timed
    try:
        rows, found = [], []
        for i, img in enumerate(clip):
            det_model.ms = attr_model.ms = 0.0
            res = pipe.predict(img)
            if i >= warmup:
                rows.append(
                    {**res.timings_ms, "detector_model": det_model.ms, "attribute_model": attr_model.ms}
                )
                found.append(len(res.faces))
    finally:  # each model's predict as it was
        for model, own in zip(runners, saved):
            if own is _UNSET:
                del model.predict
            else:
                model.predict = own
    keys = list(rows[0])
    stats = {
        k: {
            "p50": float(np.percentile([r[k] for r in rows], 50)),
            "p95": float(np.percentile([r[k] for r in rows], 95)),
        }
        for k in keys
    }
    total = np.asarray([r["total"] for r in rows])
    models = np.asarray([r["detector_model"] + r["attribute_model"] for r in rows])
    return {
        "faces_requested": faces,
        "faces_found_mean": float(np.mean(found)),
        "frames": len(rows),
        "fps": float(1000.0 / np.median(total)),
        "stages_ms": stats,
        "outside_models_share": float(np.median((total - models) / total)),
    }


PLOT_FORMATS = ("png", "svg", "svgz", "pdf", "jpg", "jpeg", "tif", "tiff", "webp", "eps", "ps")


def check_args(args: argparse.Namespace) -> tuple[list[int], list[str]]:
    """Every flag, before a model is loaded or a frame measured: (faces per frame, backends)."""
    from lsa_edge.package import BACKENDS

    from ._common import check_distinct, check_json_out, check_number, model_inputs

    inputs = model_inputs(args.model, detector=args.detector)
    check_json_out(args.json, inputs=inputs)  # a mistake costs a second, not the whole run; never an input
    check_json_out(args.plot, "--plot", "bench.png", inputs=inputs)
    check_distinct(("--json", args.json), ("--plot", args.plot))
    try:
        counts = [int(v) for v in args.faces.split(",")]
    except ValueError:
        raise ConfigError(f"--faces takes numbers like 1,4,16, got {args.faces!r}") from None
    for n in counts:
        check_number(n, "faces", flag="--faces", lo=1, hi=64, integer=True, hint="e.g. 1,4,16")
    check_number(
        args.frames,
        "frames",
        flag="--frames",
        lo=5,
        integer=True,
        hint="fewer make the percentiles meaningless",
    )
    check_number(args.warmup, "warmup", flag="--warmup", lo=0, integer=True, hint="e.g. 5")
    check_number(args.threads, "threads", flag="--threads", lo=0, hi=1024, integer=True, hint="0 = auto")
    check_number(args.min_face_size, "min_face_size", flag="--min-face-size", lo=0, hint="pixels, e.g. 24")
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else [args.backend]
    for b in backends:
        if b not in BACKENDS:
            raise ConfigError("--backends: " + unknown_choice("backend", b, BACKENDS))
    if args.plot:
        suffix = Path(args.plot).suffix.lower().lstrip(".")
        if suffix not in PLOT_FORMATS:
            raise ConfigError(
                f"--plot {args.plot}: the picture format comes from the file name's ending, and "
                f"{('.' + suffix) if suffix else 'no ending'} is not one of "
                f"{', '.join('.' + f for f in PLOT_FORMATS)}; e.g. --plot bench.png"
            )
        from lsa_edge._lazy import require

        require("matplotlib.pyplot", "lsa-edge bench --plot")
    return counts, backends


def run(args: argparse.Namespace) -> int:
    counts, backends = check_args(args)
    from rich.table import Table

    from lsa_edge.pipeline import Pipeline

    from ._common import console, write_json

    c = console()
    out: dict[str, Any] = {"machine": f"{platform.machine()} {platform.processor()}".strip(), "results": []}
    for backend in backends:
        with Pipeline(
            args.model,
            backend=backend,
            detector=args.detector,
            min_face_size=args.min_face_size,
            tracking=False,
            threads=args.threads,
        ) as pipe:
            name = f"{pipe.backend.name} ({pipe.package.precision})"
            tab = Table(title=f"{pipe.card.name}, {name}: 640×480 demo frames, p50 / p95 ms")
            for col in (
                "faces",
                "found",
                "frames/s",
                "detect",
                "align",
                "infer",
                "total",
                "det. model",
                "attr. model",
                "outside models",
            ):
                tab.add_column(col, justify="right")
            for n in counts:
                r = measure(pipe, n, args.frames, args.warmup)
                r["backend"] = name
                out["results"].append(r)
                st = r["stages_ms"]

                def cell(k: str, st=st) -> str:
                    return f"{st[k]['p50']:.1f} / {st[k]['p95']:.1f}"

                tab.add_row(
                    str(n),
                    f"{r['faces_found_mean']:.1f}",
                    f"{r['fps']:.1f}",
                    cell("detect"),
                    cell("align"),
                    cell("infer"),
                    cell("total"),
                    cell("detector_model"),
                    cell("attribute_model"),
                    f"{100 * r['outside_models_share']:.0f}%",
                )
            c.print(tab)
    if args.json:  # the files before the last lines: a closed stdout (| head) must not lose them
        log.info("wrote %s", write_json(args.json, out))
    if args.plot:
        _plot(out, Path(args.plot))
    c.print(f"machine: {out['machine']}; every face inferred every frame (tracking off)")
    if args.plot:
        c.print(f"wrote {args.plot}")
    return 0


def _plot(out: dict[str, Any], path: Path) -> None:
    from lsa_edge._lazy import require

    plt = require("matplotlib.pyplot", "lsa-edge bench --plot")
    fig, ax = plt.subplots(figsize=(7, 4))
    for backend in sorted({r["backend"] for r in out["results"]}):
        rows = [r for r in out["results"] if r["backend"] == backend]
        x = [r["faces_requested"] for r in rows]
        for stage, style in (("total", "-o"), ("detect", "--s"), ("infer", ":^"), ("align", "-.v")):
            ax.plot(x, [r["stages_ms"][stage]["p50"] for r in rows], style, label=f"{stage} ({backend})")
    ax.set_xlabel("faces per frame")
    ax.set_ylabel("p50 latency, ms")
    ax.set_title("lsa-edge bench: 640×480 frames")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    from .._fileio import atomic_path

    with atomic_path(path) as tmp:  # the suffix stays: matplotlib picks the format by it
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
