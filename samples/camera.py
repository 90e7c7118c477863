"""Real-time camera demo: live overlay with boxes, track ids, attribute labels and FPS.

    python samples/camera.py                         # camera 0, the default model, a window
    python samples/camera.py csi://0 --model build/fp16 --backend tensorrt
    python samples/camera.py demo:4 --save demo.mp4  # no camera: the built-in synthetic scene

Keys: q or Esc quits, r forgets all tracks, s saves a snapshot. Without a display (over SSH), pass
--save OUT.mp4 instead of showing a window. `lsa-edge run` does the same with more options; this file is
the short version to copy into your own application.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time

import cv2

from lsa_edge import Pipeline
from lsa_edge.errors import LsaEdgeError
from lsa_edge.overlay import draw
from lsa_edge.sinks import VideoSink
from lsa_edge.sources import open_source


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", nargs="?", default="0", help="camera index, URI, video file or demo[:N]")
    ap.add_argument("--model", default=None, help="build folder, .onnx, .engine (default: the shipped model)")
    ap.add_argument("--backend", default="auto", help="auto | tensorrt | onnxruntime | torch")
    ap.add_argument("--save", default=None, help="write the annotated video here instead of a window")
    ap.add_argument("--max-frames", type=int, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        with contextlib.ExitStack() as stack:
            pipe = stack.enter_context(Pipeline(args.model, backend=args.backend))
            src = stack.enter_context(open_source(args.source, max_frames=args.max_frames))
            # A context manager: the video is renamed into place however the loop ends (q, Ctrl-C, errors).
            sink = stack.enter_context(VideoSink(args.save, src.fps or 30.0)) if args.save else None
            fps, last = 0.0, time.perf_counter()
            for result, frame in pipe.stream_frames(src):
                now = time.perf_counter()
                fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if fps else 1 / max(now - last, 1e-6)
                last = now
                t = result.timings_ms
                status = (
                    f"{fps:4.1f} fps | {len(result.faces)} face(s) | detect {t['detect']:.1f} ms  "
                    f"infer {t['infer']:.1f} ms | {pipe.backend.name}"
                )
                annotated = draw(frame.image, result, status=status)
                if sink is not None:
                    sink.write(annotated)
                    continue
                cv2.imshow("lsa-edge camera", annotated)
                key = cv2.waitKey(1) & 0xFF
                if key in (ord("q"), 27):
                    break
                if key == ord("r"):
                    pipe.reset()
                if key == ord("s"):
                    cv2.imwrite(f"snapshot_{result.index:06d}.jpg", annotated)
    except LsaEdgeError as err:
        logging.error("%s", err)
        return 1
    except cv2.error as err:
        logging.error("cannot show a window here (%s); run with --save OUT.mp4", err)
        return 1
    finally:
        if args.save is None:
            cv2.destroyAllWindows()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
