"""The one preprocessing implementation: alignment and normalisation, shared by training, calibration,
evaluation and the runtime. numpy and OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .card import Preprocessing
from .errors import ConfigError

_INTERP = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def crop_aligned(image: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """An already aligned face (CelebA's ``img_align_celeba`` geometry, any resolution) → model input.

    image: H×W×3 uint8 in the model's colour order. Returns input_size[0]×input_size[1]×3 uint8.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = pre.aligned_crop
    out_h, out_w = pre.input_size
    # An affine map keeps sub-pixel crop edges exact at any source resolution.
    sx, sy = out_w / ((x1 - x0) * w), out_h / ((y1 - y0) * h)
    m = np.array([[sx, 0.0, -x0 * w * sx], [0.0, sy, -y0 * h * sy]], dtype=np.float64)
    shrink = sx < 1.0 or sy < 1.0
    if shrink and pre.resize == "area":
        # INTER_AREA is only honoured by resize: crop first (whole pixels, then exact affine on the rest).
        px0, py0 = int(np.floor(x0 * w)), int(np.floor(y0 * h))
        px1, py1 = int(np.ceil(x1 * w)), int(np.ceil(y1 * h))
        sub = image[max(py0, 0) : min(py1, h), max(px0, 0) : min(px1, w)]
        if sub.shape[:2] == (py1 - py0, px1 - px0) and np.allclose(
            [x0 * w, y0 * h, x1 * w, y1 * h], [px0, py0, px1, py1]
        ):
            return cv2.resize(sub, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def similarity_transform(
    src: np.ndarray, dst: np.ndarray, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` points onto ``dst``.

    src, dst: K×2 (x, y). weights: K non-negative weights (None = all 1). Returns a 2×3 float64 matrix
    for ``cv2.warpAffine``. Weighted Umeyama (1991) without reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    wt = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = wt > 0
    if keep.sum() < 2:
        raise ConfigError("a similarity transform needs at least two keypoints with positive weight")
    src, dst, wt = src[keep], dst[keep], wt[keep] / wt[keep].sum()
    mu_s, mu_d = wt @ src, wt @ dst
    s0, d0 = src - mu_s, dst - mu_d
    cov = (d0 * wt[:, None]).T @ s0
    var_s = float((wt * (s0**2).sum(axis=1)).sum())
    if var_s < 1e-12:
        raise ConfigError("keypoints coincide; cannot estimate an alignment")
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_keypoints(image: np.ndarray, keypoints: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Warp an unaligned face to the card's template.

    image: H×W×3 uint8; keypoints: K×2 pixels (x, y) in KEYPOINTS order. Returns the model-input crop.
    """
    if pre.template is None:
        raise ConfigError("this model card has no alignment template; it can only take pre-aligned faces")
    out_h, out_w = pre.input_size
    dst = np.asarray(pre.template.points, dtype=np.float64) * [out_w, out_h]
    m = similarity_transform(keypoints, dst, pre.template.weights)
    return cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def normalize(batch: np.ndarray, pre: Preprocessing, input_order: str = "RGB") -> np.ndarray:
    """N×H×W×3 (or H×W×3) uint8 crops → N×3×H×W float32 tensor, in the model's colour order."""
    x = np.asarray(batch)
    if x.ndim == 3:
        x = x[None]
    if input_order != pre.color_order:
        x = x[..., ::-1]
    x = x.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(pre.mean, dtype=np.float32)) / np.asarray(pre.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
