"""``lsa-edge run``: faces and attributes from a camera, stream, video, images or the built-in demo."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..package import BACKENDS

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
        "--save", metavar="OUT", help="write the annotated frames: a video (.mp4/.avi) or a folder"
    )
    p.add_argument("--json", metavar="OUT", help="one JSON line per frame (frame, faces, timings_ms)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    p.add_argument(
        "--track",
        choices=["auto", "on", "off"],
        default="auto",
        help="track + smooth faces (auto: on for cameras, streams and videos; off for unrelated images)",
    )
    p.add_argument("--loop", action="store_true", help="repeat a video or folder (demos)")
    p.set_defaults(run=run)


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model", default=None, metavar="PATH", help="build folder, .onnx, .engine or .pt (default: shipped)"
    )
    g.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: TensorRT, then ONNX Runtime CUDA, then CPU — the choice is logged",
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


def open_input(source: str, max_frames: int | None, loop: bool) -> Any:
    """The source object for ``--source`` (a URI, or demo[:N] for the built-in synthetic scene)."""
    from lsa_edge.sources import open_source

    if source == "demo" or source.startswith("demo:"):
        from lsa_edge.demo import frames

        try:
            faces = int(source.split(":", 1)[1]) if ":" in source else 1
        except ValueError:
            raise ConfigError(f"--source demo:N takes a number of faces, got {source!r}") from None
        n = max_frames or 90
        return open_source(frames(n, faces), fps=30.0, name=f"demo ({faces} face{'s' * (faces != 1)})")
    opts: dict[str, Any] = {}
    if max_frames:
        opts["max_frames"] = max_frames
    if loop:
        opts["loop"] = True
    src = source if not source.isdigit() else int(source)
    return open_source(src, **opts)


class VideoSink:
    """Annotated frames to a video file (mp4v/MJPG by extension) or, for a folder, numbered JPEGs."""

    def __init__(self, path: str, fps: float) -> None:
        self.path, self.fps = Path(path), fps or 30.0
        self.writer: Any = None
        self.count = 0
        if self.path.suffix.lower() not in (".mp4", ".avi", ".mkv", ""):
            raise ConfigError(f"--save takes a .mp4, .avi or .mkv file or a folder, got {path}")

    def write(self, img: Any) -> None:
        from .._opencv import cv2

        if self.path.suffix == "":
            self.path.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(self.path / f"{self.count:06d}.jpg"), img)
        else:
            if self.writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
                h, w = img.shape[:2]
                self.writer = cv2.VideoWriter(
                    str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h)
                )
                if not self.writer.isOpened():
                    raise ConfigError(
                        f"OpenCV cannot write {self.path} ({fourcc}); try --save out.avi or a folder"
                    )
            self.writer.write(img)
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


def timing_table(results: list[dict[str, float]], title: str) -> Any:
    import numpy as np
    from rich.table import Table

    tab = Table(title=title)
    for col in ("stage", "p50 ms", "p95 ms", "mean ms"):
        tab.add_column(col, justify="left" if col == "stage" else "right")
    stages = [
        s for s in ("read", "detect", "track", "align", "infer", "total") if any(s in r for r in results)
    ]
    for s in stages:
        v = np.asarray([r.get(s, 0.0) for r in results])
        tab.add_row(s, f"{np.percentile(v, 50):.2f}", f"{np.percentile(v, 95):.2f}", f"{v.mean():.2f}")
    return tab


def run(args: argparse.Namespace) -> int:
    from lsa_edge.overlay import draw
    from lsa_edge.pipeline import Pipeline

    from .._opencv import cv2
    from ._common import console

    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be ≥ 1, got {args.max_frames}")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise ConfigError(f"--json {args.json}: the folder {Path(args.json).parent} does not exist")
    c = console()
    records: list[dict[str, float]] = []
    faces_seen = 0
    source_error = None
    with contextlib.ExitStack() as stack:
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
        src = stack.enter_context(open_input(args.source, args.max_frames, args.loop))
        if args.track == "auto" and src.kind in ("image", "folder", "glob"):
            pipe.tracker = None  # unrelated pictures: nothing to track
        sink = VideoSink(args.save, src.fps or 30.0) if args.save else None
        if sink is not None:
            stack.callback(sink.close)
        jsonl = stack.enter_context(open(args.json, "w")) if args.json else None
        if args.show:
            stack.callback(cv2.destroyAllWindows)
        tracking = "on" if pipe.tracker is not None else "off"
        c.print(f"[bold]lsa-edge run[/]: {pipe.describe()}; source {src.name}; tracking {tracking}")
        t_start = time.perf_counter()
        fps_ema = 0.0
        for frame_result, frame in pipe.stream_frames(src):
            image = frame.image
            records.append(frame_result.timings_ms)
            faces_seen += len(frame_result.faces)
            total = frame_result.timings_ms.get("total", 0.0) + frame_result.timings_ms.get("read", 0.0)
            rate = 1000.0 / max(total, 1e-3)
            fps_ema = 0.9 * fps_ema + 0.1 * rate if fps_ema else rate
            if jsonl is not None:
                jsonl.write(json.dumps(frame_result.to_dict()) + "\n")
            if sink is not None or args.show:
                status = f"{fps_ema:5.1f} fps  {len(frame_result.faces)} face(s)  {pipe.card.name}"
                annotated = draw(image, frame_result, status=status)
                if sink is not None:
                    sink.write(annotated)
                if args.show and _show(annotated):
                    break
        source_error = src.error
    wall = time.perf_counter() - t_start
    if source_error:
        log.error("the source ended: %s", source_error)
    if not records:
        c.print("[yellow]no frames were processed[/] (an empty source, or every frame was unreadable)")
        return 1
    c.print(timing_table(records, f"{len(records)} frames, {faces_seen} faces; per-stage time"))
    c.print(f"{len(records) / wall:.1f} frames/s end to end over {wall:.1f} s (model loading excluded)")
    for what, path in (("annotated frames", args.save), ("JSON lines", args.json)):
        if path:
            c.print(f"wrote {what}: {path}")
    return 1 if source_error else 0


def _show(img) -> bool:
    """Show a frame; True when the user asked to quit (q or Esc)."""
    from .._opencv import cv2

    try:
        cv2.imshow("lsa-edge", img)
        return cv2.waitKey(1) & 0xFF in (ord("q"), 27)
    except cv2.error as err:
        raise ConfigError(f"cannot open a window here ({err}); drop --show and use --save OUT.mp4") from None
