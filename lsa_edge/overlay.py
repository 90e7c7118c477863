"""Drawing results onto frames: boxes, track ids, keypoints, the labels that are on, and a status line.
OpenCV only; draws on a copy unless ``inplace``.
"""

from __future__ import annotations

import numpy as np

from ._opencv import cv2
from .results import FrameResult

# Attributes people usually want to see first on a robot's screen (the rest follow by probability).
HEADLINE = ("Male", "Smiling", "Eyeglasses", "Wearing_Hat", "Young", "Mouth_Slightly_Open", "No_Beard")


def _color(track_id: int) -> tuple[int, int, int]:
    if track_id < 0:
        return (0, 200, 255)
    rng = np.random.default_rng(track_id * 7919)
    return tuple(int(v) for v in rng.integers(80, 255, 3))  # type: ignore[return-value]


def draw(
    frame: np.ndarray, result: FrameResult, max_labels: int = 4, status: str = "", inplace: bool = False
) -> np.ndarray:
    """``frame`` (H×W×3 uint8 BGR) with ``result`` drawn on it."""
    img = frame if inplace else frame.copy()
    scale = max(0.8, min(img.shape[:2]) / 500)
    thick = max(1, round(scale * 2))
    for face in result.faces:
        color = _color(face.track_id)
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(img, (x0, y0), (x1, y1), color, thick, cv2.LINE_AA)
        for x, y in face.keypoints[:4]:
            cv2.circle(img, (round(x), round(y)), thick + 1, color, -1, cv2.LINE_AA)
        on = sorted(face.labels, key=lambda a: (a not in HEADLINE, -face.attributes.get(a, 0.0)))
        lines = [f"#{face.track_id}" if face.track_id >= 0 else f"{face.score:.2f}"]
        lines += [f"{a.replace('_', ' ')} {face.attributes.get(a, 0):.2f}" for a in on[:max_labels]]
        line_h = int(20 * scale) + 4
        y = y1 + line_h
        if y + line_h * (len(lines) - 1) > img.shape[0]:  # no room below the box: write above it
            y = max(line_h, y0 - line_h * (len(lines) - 1) - 4)
        for text in lines:
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, 1)
            cv2.rectangle(img, (x0, y - th - 3), (x0 + tw + 4, y + 3), (0, 0, 0), -1)
            cv2.putText(img, text, (x0 + 2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, color, 1, cv2.LINE_AA)
            y += line_h
    if status:
        cv2.rectangle(img, (0, 0), (img.shape[1], int(22 * scale) + 6), (0, 0, 0), -1)
        cv2.putText(
            img,
            status,
            (6, int(18 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return img
