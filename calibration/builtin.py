"""Built-in faces: the shipped demo portrait under random camera-like changes, detected and aligned by the
runtime's own detector and alignment. For a build given no data (``lsa-edge build --precision fp16``):
enough to check reduced-precision *numerics* against FP32, never a substitute for labelled accuracy.

The changes are what a robot's camera does to a face: rotation, scale, off-centre framing, mirror,
brightness and contrast, blur, JPEG compression, grey. numpy and OpenCV (ONNX Runtime for the detector).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from lsa_edge.card import Preprocessing
from lsa_edge.errors import CalibrationError

from .dataset import FaceSet

log = logging.getLogger(__name__)

SOURCE = "built-in: the demo portrait under random rotation, scale, framing, mirror, light, blur, JPEG, grey"


def _augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    angle = rng.uniform(-20, 20)
    scale = rng.uniform(0.55, 1.15)
    shift = rng.uniform(-0.12, 0.12, size=2) * [w, h]
    m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale), dtype=np.float64)  # 2×3 float64
    m[:, 2] += shift
    grey = (118, 118, 118)  # a plain surround: reflected borders would paint hats and hair
    out = cv2.warpAffine(
        img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=grey
    )
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = np.clip(out.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30), 0, 255).astype(
        np.uint8
    )
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 80))])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:  # as with a failed encode, a failed decode keeps the frame unchanged
            out = decoded
    if rng.random() < 0.15:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(out)


def builtin_faces(pre: Preprocessing, count: int = 64, seed: int = 0) -> FaceSet:
    """``count`` aligned model-input crops (RGB) of the demo portrait, each under a different random change.

    Faces go through the runtime's BlazeFace and alignment exactly as a camera frame would; an
    augmentation that loses the face is replaced by another. No labels: ``labels`` is None.
    """
    from lsa_edge.demo import portrait
    from lsa_edge.detector import FaceDetector
    from lsa_edge.preprocess import align_keypoints

    rng = np.random.default_rng(seed)
    base = portrait()
    crops: list[np.ndarray] = []
    names: list[str] = []
    with FaceDetector() as detector:
        for attempt in range(count * 4):
            if len(crops) == count:
                break
            img = _augment(base, rng)
            dets = detector.detect(img)
            if not dets:
                continue
            face = max(dets, key=lambda d: d.score)
            crop = align_keypoints(img, face.keypoints_array(), pre)
            crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            names.append(f"builtin-{attempt:04d}")
    if len(crops) < max(8, count // 2):
        raise CalibrationError(
            f"only {len(crops)} of {count} built-in faces were detected; pass real faces with --calib-data DIR"
        )
    log.info("%d built-in faces (%s)", len(crops), SOURCE)
    return FaceSet(np.stack(crops), None, tuple(names), f"{SOURCE} ({len(crops)} faces, no labels)")
