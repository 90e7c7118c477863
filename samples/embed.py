"""Face attributes inside a robot's control loop: the whole integration is the ``with`` block in ``main``.

    python samples/embed.py 0                          # camera 0, the default model
    python samples/embed.py video.mp4 --model build/int8 --max-frames 300

Each frame the pipeline returns a ``FrameResult``: faces with stable track ids, smoothed probabilities and
labels that do not flicker. Two ways to act on them:

- *events*: ``LabelChangeNotifier`` calls back when a tracked face appears or its labels change
  ("track 3: +Smiling −Eyeglasses") — greet a newcomer who smiles, once, not on every frame;
- *state*: read the current frame directly — here, turn the head towards the largest (nearest) face.

Replace ``Robot`` with your robot's API. Nothing here blocks: callbacks run inside the loop, so keep them
short (queue long actions to another thread).
"""

from __future__ import annotations

import argparse
import logging

from lsa_edge import Pipeline
from lsa_edge.errors import LsaEdgeError
from lsa_edge.results import FrameResult
from lsa_edge.track import LabelChange, LabelChangeNotifier

log = logging.getLogger("embed")


class Robot:
    """Stand-in for the robot's API."""

    def say(self, text: str) -> None:
        log.info("robot says: %s", text)

    def turn_head(self, pan: float) -> None:
        """pan: -1 (full left) … 1 (full right)."""
        log.debug("turn head %+.2f", pan)


def on_label_change(robot: Robot, change: LabelChange) -> None:
    """Called once per tracked face that appears or whose labels change."""
    log.info("%s", change)  # e.g. "track 3 (new): +Smiling +Eyeglasses"
    if "Smiling" in change.added:
        robot.say("Hello there!" if change.new else "Glad to see you smile.")
    if "Wearing_Hat" in change.added:
        robot.say("Nice hat.")


def steer(robot: Robot, result: FrameResult, gain: float = 0.5) -> None:
    """Proportional head control towards the largest face: the one nearest the robot."""
    if not result.faces:
        return
    face = max(result.faces, key=lambda f: f.width * f.height)
    width = result.size[1]
    error = ((face.box[0] + face.box[2]) / 2 - width / 2) / (width / 2)  # -1 … 1
    robot.turn_head(gain * error)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="0", help="camera index, URI, video, image or folder")
    parser.add_argument("--model", default=None, help="build folder, engine or ONNX (default: bundled)")
    parser.add_argument("--backend", default="auto", help="auto | tensorrt | onnxruntime | torch")
    parser.add_argument(
        "--max-frames", type=int, default=0, help="stop after N frames (0 = run until the end)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    robot = Robot()
    notifier = LabelChangeNotifier(lambda change: on_label_change(robot, change))
    source = int(args.source) if args.source.isdigit() else args.source

    try:
        with Pipeline(model=args.model, backend=args.backend) as pipe:
            for n, result in enumerate(pipe.stream(source), 1):
                notifier.update(result)  # events: faces that appeared or changed labels
                steer(robot, result)  # state: act on this frame
                if n == args.max_frames:
                    break
    except LsaEdgeError as err:  # no model, a missing backend, a camera that cannot be opened
        log.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
