"""``lsa-edge run``: faces and attributes from a camera, stream, video, images or the built-in demo."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .._fileio import is_special
from .._signals import GracefulStop, signal_name
from ..errors import ConfigError
from ..package import BACKENDS
from ..sinks import VIDEO_SUFFIXES, JsonLinesSink
from ..sinks import VideoSink as VideoSink  # re-exported for scripts written against 0.1 (use lsa_edge.sinks)
from ..stats import StageStats

HELP = "run detection + attributes on a camera, stream, video, image folder or the built-in demo"
log = logging.getLogger(__name__)

EPILOG = """sources (--source):
  0 | v4l2:///dev/video0 | csi://0?width=1280&height=720 | rtsp://… | http://… | video.mp4 | photo.jpg
  | a folder of images | 'frames/*.png' | demo (a synthetic scene with the shipped portrait) | demo:4 (4 faces)

examples:
  lsa-edge run --source 0 --show
  lsa-edge run --source csi://0 --model build/fp16 --backend tensorrt --json faces.jsonl
  lsa-edge run --source clip.mp4 --save annotated.mp4 --max-frames 300
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help=HELP,
        description=HELP + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    p.add_argument("--source", default="demo", metavar="URI", help="what to read (default: demo)")
    p.add_argument("--show", action="store_true", help="show the annotated frames in a window (q quits)")
    p.add_argument(
        "--save",
        metavar="OUT",
        help="write the annotated frames: a video (.mp4/.avi/.mkv) or a folder (frames from image files "
        "keep their file names); never the source, nor over existing files without --overwrite",
    )
    p.add_argument(
        "--json",
        metavar="OUT",
        help="one JSON line per frame (frame, faces, timings_ms; file for image sources), written as it goes",
    )
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    p.add_argument(
        "--track",
        choices=["auto", "on", "off"],
        default="auto",
        help="track + smooth faces (auto: on for cameras, streams and videos; off for unrelated images)",
    )
    p.add_argument("--loop", action="store_true", help="repeat a video, folder or the demo")
    p.add_argument(
        "--recursive",
        action="store_true",
        help="with a folder --source: include images in sub-folders ('DIR/**/*.jpg' is recursive already)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --save/--json file or write into a non-empty --save folder",
    )
    p.set_defaults(run=run)


def backend_choice(text: str) -> str:
    """--backend: one of BACKENDS, or a triton:// address (checked here, so a typo is a usage error)."""
    from ..backends.triton import is_triton, parse_address

    if text in BACKENDS:
        return text
    if is_triton(text):
        try:
            parse_address(text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(BACKENDS)}, or triton://HOST:PORT)"
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model", default=None, metavar="PATH", help="build folder, .onnx, .engine or .pt (default: shipped)"
    )
    g.add_argument(
        "--backend",
        type=backend_choice,
        default="auto",
        metavar="{" + ",".join(BACKENDS) + ",triton://HOST:PORT}",
        help="auto: TensorRT, then ONNX Runtime CUDA, then CPU — the choice is logged; triton://HOST:PORT: "
        "the attribute model on a Triton server (lsa-edge serve), detection and tracking here",
    )
    g.add_argument(
        "--detector", default="full", help="face detector: full (to ~5 m) | short (to ~2 m) | an ONNX"
    )
    g.add_argument(
        "--min-face-size", type=float, default=24.0, metavar="PX", help="ignore smaller faces (default 24)"
    )
    g.add_argument(
        "--threads", type=int, default=0, help="ONNX Runtime threads for the attribute model (0 = auto)"
    )


def open_input(source: str, max_frames: int | None, loop: bool, recursive: bool = False) -> Any:
    """The source object for ``--source`` (a URI, or demo[:N] for the built-in synthetic scene): the core's
    :func:`lsa_edge.sources.open_source` with the command's options."""
    from lsa_edge.sources import open_source, parse_uri

    opts: dict[str, Any] = {}
    if max_frames:
        opts["max_frames"] = max_frames
    if loop:
        opts["loop"] = True
    src = source if not source.isdigit() else int(source)
    if recursive:
        kind = parse_uri(src).kind
        if kind == "demo":
            raise ConfigError("--recursive applies to a folder or glob --source, not the demo")
        if kind not in ("folder", "glob"):
            raise ConfigError(f"--recursive applies to a folder or glob --source, got {source!r}")
        opts["recursive"] = True
    return open_source(src, **opts)


def _source_paths(source: str) -> list[tuple[Path, str, str | None]]:
    """The files and folders ``--source`` reads: (path, what, glob pattern or None). Cameras, streams and
    the demo read none."""
    import glob as globlib

    from lsa_edge.sources import parse_uri

    if source == "demo" or source.startswith("demo:"):
        return []
    try:
        spec = parse_uri(source if not source.isdigit() else int(source))
    except ConfigError:
        return []  # open_input reports it after the checks
    if spec.kind in ("image", "video"):
        return [(Path(spec.target), "the source file", None)]
    if spec.kind == "folder":
        return [(Path(spec.target), "the source folder", None)]
    if spec.kind == "glob":
        parts = Path(str(spec.target)).parts
        fixed = list(parts[: next(i for i, p in enumerate(parts) if globlib.has_magic(p))])
        return [(Path(*fixed) if fixed else Path("."), "the folder of the source pattern", str(spec.target))]
    return []


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before the model loads, outputs that would replace what the user has: the source itself
    (or a file in the source folder), the model, an existing file or a non-empty folder (unless
    --overwrite), or a place this process cannot write. ``--json /dev/stdout`` (``| jq``) is written
    directly."""
    from ._common import check_distinct, check_output, model_inputs

    overwrite = bool(getattr(args, "overwrite", False))
    check_distinct(("--save", args.save), ("--json", args.json))
    sources = _source_paths(args.source)
    models = model_inputs(getattr(args, "model", None), detector=getattr(args, "detector", None))
    for flag, path in (("--save", args.save), ("--json", args.json)):
        if not path:
            continue
        out = Path(path)
        folder = flag == "--save" and out.suffix == ""
        inputs = list(models)
        for src, what, pattern in sources:
            if pattern is None or folder:
                inputs.append((src, what))
            else:  # a file beside the pattern's images is harmless, unless the pattern matches it
                _refuse_pattern_match(flag, out, pattern)
        if flag == "--save":
            _check_save_kind(out)
        elif not is_special(out) and not out.resolve().parent.is_dir():
            raise ConfigError(f"--json {path}: the folder {out.parent} does not exist; create it first")
        check_output(flag, out, inputs, overwrite=overwrite, example="faces.jsonl", folder=folder)


def _refuse_pattern_match(flag: str, out: Path, pattern: str) -> None:
    import fnmatch

    # fnmatch reads '**/' as one folder or more; the source reads it as zero or more too
    variants = {pattern, pattern.replace("**/", "")}
    if any(
        fnmatch.fnmatch(str(out), v) or fnmatch.fnmatch(str(out.resolve()), str(Path(v).resolve()))
        for v in variants
    ):
        raise ConfigError(
            f"{flag} {out} matches the source pattern {pattern!r}: writing there would replace what is being "
            "read. Choose an output the pattern does not match"
        )


def _check_save_kind(out: Path) -> None:
    if out.suffix.lower() not in (*VIDEO_SUFFIXES, ""):
        raise ConfigError(f"--save takes a .mp4, .avi or .mkv file or a folder, got {out}")
    if out.suffix == "" and out.exists() and not out.is_dir():
        raise ConfigError(f"--save {out} is a file; a --save without .mp4/.avi/.mkv is a folder of images")
    if out.suffix != "" and out.is_dir():
        raise ConfigError(f"--save {out} is a folder; give a video file name (.mp4, .avi, .mkv) or a folder")


def timing_table(stats: StageStats, title: str) -> Any:
    from rich.table import Table

    tab = Table(title=title)
    for col in ("stage", "p50 ms", "p95 ms", "mean ms"):
        tab.add_column(col, justify="left" if col == "stage" else "right")
    for s in ("read", "detect", "track", "align", "infer", "total"):
        if s in stats:
            st = stats[s]
            tab.add_row(s, f"{st.quantile(0.5):.2f}", f"{st.quantile(0.95):.2f}", f"{st.mean:.2f}")
    return tab


def run(args: argparse.Namespace) -> int:
    from lsa_edge.pipeline import Pipeline

    from ._common import console

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be ≥ 1, got {args.max_frames}")
    check_outputs(args)  # before the model loads: a mistake costs a second
    c = console()  # stderr when --json is stdout (| jq): the stream holds only JSON
    stats = StageStats()  # bounded: a camera left running for weeks keeps a fixed-size table
    # SIGTERM/SIGHUP/SIGINT: during start-up they stop at once; in the frame loop the current frame is
    # finished and the writers are closed (the video renamed into place); a second signal ends at once.
    with GracefulStop() as stop, contextlib.ExitStack() as stack:
        # The model first: a model that fails to load leaves no camera or file open behind it.
        pipe = stack.enter_context(
            Pipeline(
                args.model,
                backend=args.backend,
                detector=args.detector,
                min_face_size=args.min_face_size,
                tracking=args.track != "off",
                threads=args.threads,
            )
        )
        src = stack.enter_context(open_input(args.source, args.max_frames, args.loop, args.recursive))
        stack.enter_context(stop.frames())  # from here a signal sets stop.requested (closing included)
        if src.live:  # a camera that is reconnecting would keep the loop waiting: wake it
            stop.add_callback(lambda: threading.Thread(target=src.close, daemon=True).start())
        if args.track == "auto" and src.kind in ("image", "folder", "glob"):
            pipe.tracker = None  # unrelated pictures: nothing to track
        sink, jsonl = _open_outputs(args, stack, src.fps)
        tracking = "on" if pipe.tracker is not None else "off"
        c.print(f"[bold]lsa-edge run[/]: {pipe.describe()}; source {src.name}; tracking {tracking}")
        t_start = time.perf_counter()
        faces_seen, small_seen = _frame_loop(args, pipe, src, stop, stats, sink, jsonl)
        source_error = src.error
    if small_seen:
        c.print(
            f"{small_seen} face(s) smaller than --min-face-size {args.min_face_size:g} px were skipped, not "
            "predicted (each frame's small_faces counts them); lower it, or bring the camera closer"
        )
    return _report(args, c, stats, stop, faces_seen, source_error, time.perf_counter() - t_start)


def _open_outputs(
    args: argparse.Namespace, stack: contextlib.ExitStack, fps: float | None
) -> tuple[Any, Any]:
    """The --save and --json writers (None where not asked for), closed by ``stack``; the --show window."""
    from .._opencv import cv2

    sink = stack.enter_context(VideoSink(args.save, fps or 30.0)) if args.save else None
    jsonl = stack.enter_context(JsonLinesSink(args.json)) if args.json else None
    if args.show:
        stack.callback(cv2.destroyAllWindows)
    return sink, jsonl


def _frame_loop(
    args: argparse.Namespace, pipe: Any, src: Any, stop: Any, stats: StageStats, sink: Any, jsonl: Any
) -> tuple[int, int]:
    """Every frame of ``src`` through ``pipe`` into the outputs, until the source ends, q is pressed or a
    signal asks to stop (the current frame finished). Returns the faces seen and those skipped as small."""
    from lsa_edge.overlay import draw

    faces_seen = small_seen = 0
    fps_ema = 0.0
    for frame_result, frame in pipe.stream_frames(src):
        stats.add(frame_result.timings_ms)
        faces_seen += len(frame_result.faces)
        small_seen += frame_result.small_faces
        total = frame_result.timings_ms.get("total", 0.0) + frame_result.timings_ms.get("read", 0.0)
        rate = 1000.0 / max(total, 1e-3)
        fps_ema = 0.9 * fps_ema + 0.1 * rate if fps_ema else rate
        if jsonl is not None:
            record = frame_result.to_dict()
            if frame.path is not None:  # image files: which one (frames skip unreadable files)
                record["file"] = frame.path
            jsonl.write(record)
        if sink is not None or args.show:
            status = f"{fps_ema:5.1f} fps  {len(frame_result.faces)} face(s)  {pipe.card.name}"
            annotated = draw(frame.image, frame_result, status=status)
            if sink is not None:
                sink.write(annotated, frame.path)
            if args.show and _show(annotated):
                break
        if stop.requested:
            break
    return faces_seen, small_seen


def _report(
    args: argparse.Namespace,
    c: Any,
    stats: StageStats,
    stop: Any,
    faces_seen: int,
    source_error: Any,
    wall: float,
) -> int:
    """The closing lines (timing table, files written) and the exit status."""
    if stop.requested:
        how = signal_name(stop.signum) if stop.signum is not None else "a signal"
        log.warning("stopped by %s after %d frame(s); the outputs are complete", how, stats.frames)
    if source_error:
        log.error("the source ended: %s", source_error)
    if not stats.frames:
        c.print("[yellow]no frames were processed[/] (an empty source, or every frame was unreadable)")
        return stop.exit_code or 1
    c.print(timing_table(stats, f"{stats.frames} frames, {faces_seen} faces; per-stage time"))
    c.print(f"{stats.frames / wall:.1f} frames/s end to end over {wall:.1f} s (model loading excluded)")
    for what, path in (("annotated frames", args.save), ("JSON lines", args.json)):
        if path:
            c.print(f"wrote {what}: {path}")
    if stop.requested:
        if stop.signum == signal.SIGINT:
            print("interrupted", file=sys.stderr)
        return stop.exit_code
    return 1 if source_error else 0


def _show(img) -> bool:
    """Show a frame; True when the user asked to quit (q or Esc)."""
    from .._opencv import cv2

    try:
        cv2.imshow("lsa-edge", img)
        return cv2.waitKey(1) & 0xFF in (ord("q"), 27)
    except cv2.error as err:
        raise ConfigError(f"cannot open a window here ({err}); drop --show and use --save OUT.mp4") from None
