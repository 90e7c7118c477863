"""ROS 2 message conversion for the lsa-edge node: plain functions, importable without ROS.

Nothing here imports rclpy, vision_msgs or cv_bridge. The message classes come in as a *factory*: any object
with ``Detection2DArray``, ``Detection2D`` and ``ObjectHypothesisWithPose`` attributes that build empty
messages (the real ``vision_msgs.msg`` module on the robot, a stand-in namespace in the tests). The fields
that moved between vision_msgs releases are found by looking at the built message, never by version:

- box centre: ``bbox.center.x/y`` (geometry_msgs/Pose2D, vision_msgs 2 and 3: Foxy, Galactic), or
  ``bbox.center.position.x/y`` (vision_msgs/Pose2D, vision_msgs 4: Humble and later);
- track id: ``tracking_id`` + ``is_tracking`` (2), or ``id`` (3 and later);
- hypothesis: ``id``, ``score`` (2), or ``hypothesis.class_id``, ``hypothesis.score`` (3 and later).

Image conversion without cv_bridge covers the 8-bit encodings a camera driver publishes (``bgr8``, ``rgb8``,
``mono8``, ``bgra8``, ``rgba8``), honouring the row stride ``step``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from lsa_edge.errors import ConfigError
from lsa_edge.results import Face, FrameResult

__all__ = [
    "SUPPORTED_ENCODINGS",
    "attributes_json",
    "face_to_detection2d",
    "faces_to_detection2d_array",
    "image_to_bgr",
    "to_bgr",
]

# encoding → (channels, indices that turn the channels into B, G, R)
_ENCODINGS: dict[str, tuple[int, tuple[int, ...]]] = {
    "bgr8": (3, (0, 1, 2)),
    "rgb8": (3, (2, 1, 0)),
    "bgra8": (4, (0, 1, 2)),
    "rgba8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


def faces_to_detection2d_array(
    result: FrameResult, header: Any, msgs: Any, *, all_attributes: bool = False
) -> Any:
    """A ``vision_msgs/Detection2DArray`` with one ``Detection2D`` per face of ``result``.

    header: the ``std_msgs/Header`` to stamp with (the image's, so the detections line up with the frame it
    came from), or None to leave the default; msgs: the message factory (``vision_msgs.msg``).
    all_attributes: one hypothesis per attribute with its probability, instead of one per label that is on.
    """
    array = msgs.Detection2DArray()
    if header is not None:
        array.header = header
    array.detections = [
        face_to_detection2d(f, header, msgs, all_attributes=all_attributes) for f in result.faces
    ]
    return array


def face_to_detection2d(face: Face, header: Any, msgs: Any, *, all_attributes: bool = False) -> Any:
    """One ``vision_msgs/Detection2D``: box centre and size in pixels, the track id, one hypothesis per label.

    The hypothesis' class id is the attribute name (e.g. "Smiling"), its score the (smoothed) probability.
    An untracked face (track id -1) gets an empty id (and ``is_tracking = False`` on vision_msgs 2).
    """
    det = msgs.Detection2D()
    if header is not None and hasattr(det, "header"):
        det.header = header
    x0, y0, x1, y1 = (float(v) for v in face.box)
    center = det.bbox.center
    if hasattr(center, "position"):  # vision_msgs >= 4: vision_msgs/Pose2D(position: Point2D, theta)
        center.position.x = (x0 + x1) / 2.0
        center.position.y = (y0 + y1) / 2.0
    else:  # vision_msgs 2/3: geometry_msgs/Pose2D(x, y, theta)
        center.x = (x0 + x1) / 2.0
        center.y = (y0 + y1) / 2.0
    center.theta = 0.0
    det.bbox.size_x = x1 - x0
    det.bbox.size_y = y1 - y0

    tracked = face.track_id >= 0
    track_id = str(int(face.track_id)) if tracked else ""
    if hasattr(det, "id"):  # vision_msgs >= 3
        det.id = track_id
    elif hasattr(det, "tracking_id"):  # vision_msgs 2
        det.tracking_id = track_id
        det.is_tracking = tracked

    names = list(face.attributes) if all_attributes else list(face.labels)
    det.results = [_hypothesis(msgs, name, face.attributes.get(name, 1.0)) for name in names]
    return det


def _hypothesis(msgs: Any, name: str, score: float) -> Any:
    h = msgs.ObjectHypothesisWithPose()
    score = float(score)
    if not math.isfinite(score):
        score = 0.0  # NaN would break subscribers that sort or threshold by score
    if hasattr(h, "hypothesis"):  # vision_msgs >= 3: ObjectHypothesis(class_id, score) + pose
        h.hypothesis.class_id = str(name)
        h.hypothesis.score = score
    else:  # vision_msgs 2: flat id, score, pose
        h.id = str(name)
        h.score = score
    return h


def attributes_json(result: FrameResult) -> str:
    """The full result as one compact JSON line (``FrameResult.to_dict``), for a ``std_msgs/String`` topic.

    Non-finite numbers become null: NaN is not JSON, and many subscribers' parsers reject it.
    """
    return json.dumps(_finite(result.to_dict()), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def image_to_bgr(msg: Any) -> np.ndarray:
    """H×W×3 uint8 BGR frame from a ``sensor_msgs/Image`` with an 8-bit encoding; always a fresh copy.

    msg: anything with ``height``, ``width``, ``step`` (bytes per row, ≥ width × channels), ``encoding``
    and ``data`` (bytes, ``array.array('B')`` as rclpy gives it, or a sequence of ints).
    """
    encoding = str(msg.encoding).lower()
    if encoding not in _ENCODINGS:
        raise ConfigError(
            f"image encoding {msg.encoding!r} is not supported without cv_bridge; supported: "
            f"{', '.join(SUPPORTED_ENCODINGS)}. Set the camera driver to publish bgr8 or rgb8, or install "
            "cv_bridge (apt install ros-$ROS_DISTRO-cv-bridge)"
        )
    channels, order = _ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    try:
        buf = np.frombuffer(msg.data, dtype=np.uint8)
    except TypeError:  # a list of ints
        buf = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    if step < width * channels or buf.size < height * step:
        raise ConfigError(
            f"image message is inconsistent: {width}×{height} {encoding} needs step ≥ {width * channels} and "
            f"≥ height × step bytes; got step={step} and {buf.size} bytes. Check the publisher."
        )
    pixels = (
        buf[: height * step].reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    )
    return np.ascontiguousarray(pixels[:, :, list(order)])  # fancy indexing copies: never aliases msg.data


def to_bgr(msg: Any, bridge: Any = None) -> np.ndarray:
    """BGR frame from a ``sensor_msgs/Image``: through ``cv_bridge.CvBridge`` when given, else :func:`image_to_bgr`."""
    if bridge is not None:
        return bridge.imgmsg_to_cv2(msg, desired_encoding="bgr8")
    return image_to_bgr(msg)
