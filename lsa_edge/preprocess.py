"""The one preprocessing implementation: alignment and normalisation, shared by training, calibration,
evaluation and the runtime. numpy and OpenCV only.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from ._opencv import cv2  # a stand-in naming the fix where OpenCV is missing
from .card import Preprocessing
from .errors import ConfigError


def warp(
    image: np.ndarray,
    m: np.ndarray,
    out_size: tuple[int, int],
    resize: str = "area",
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply the 2×3 affine ``m``, output (H, W).

    ``m`` maps continuous image coordinates (pixel i spans [i, i+1); keypoints and templates use these)
    from the source to the output. When it shrinks the image, the image is first shrunk with INTER_AREA
    by the least shrinking direction's scale and the rest of the warp is near 1:1, so a large face is
    averaged, not aliased (warpAffine alone only samples). out: an H×W×C uint8 C-contiguous array to
    write into (e.g. one slot of a batch), returned; None = a new array.
    """
    out_h, out_w = out_size
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (2, 3):
        raise ConfigError(f"warp takes a 2×3 affine matrix, got shape {m.shape}")
    # Six numbers: plain float arithmetic where numpy calls per face would cost more than the warp of a
    # small face; the matrix OpenCV receives is computed with the same IEEE operations as before.
    (a, b, tx), (c, d, ty) = m.tolist()
    h, w = image.shape[:2]
    # Only the part of the image the output sees matters: cut it out first (a face in a 1080p frame is a
    # small region; shrinking or copying the whole frame per face would dominate the runtime).
    try:
        a_inv = np.linalg.inv(m[:, :2])
    except np.linalg.LinAlgError:
        raise ConfigError(f"warp needs an invertible affine matrix, got {m.tolist()}") from None
    # The corners exactly as before (LAPACK's inverse, one matmul): a corner on a whole pixel must round
    # the same way, or the window and with it the INTER_AREA grid below moves by a pixel.
    corners = (np.array([[0, 0], [out_w, 0], [0, out_h], [out_w, out_h]], np.float64) - m[:, 2]) @ a_inv.T
    (xmin, ymin), (xmax, ymax) = corners.min(axis=0).tolist(), corners.max(axis=0).tolist()
    # Cropping moves only the translation, so one scale serves the margin and the shrink below (LAPACK's
    # value as before: a closed form differs in the last bit, which can move the window at a tie).
    scale = float(np.linalg.svd(m[:, :2], compute_uv=False).max())
    # Margin: bilinear taps plus the INTER_AREA footprint of the shrink below (2 output px in source px).
    pad = 2 + math.ceil(2.0 / max(scale, 1e-6))
    x0, y0 = max(0, math.floor(xmin) - pad), max(0, math.floor(ymin) - pad)
    x1, y1 = min(w, math.ceil(xmax) + pad), min(h, math.ceil(ymax) + pad)
    if x1 - x0 >= 2 and y1 - y0 >= 2 and (x0 > 0 or y0 > 0 or x1 < w or y1 < h):
        image = image[y0:y1, x0:x1]  # a view: OpenCV reads rows at any stride, no copy needed
        tx, ty = tx + (a * x0 + b * y0), ty + (c * x0 + d * y0)
    if not _rows_of_pixels(image):
        image = np.ascontiguousarray(image)
    if resize == "area" and scale < 0.8:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        a, b, c, d = a * (w / nw), b * (h / nh), c * (w / nw), d * (h / nh)  # small → original
    # OpenCV indexes pixel centres: index = continuous − ½ on both sides of the map.
    m_idx = np.array(
        [[a, b, tx + ((a * 0.5 + b * 0.5) - 0.5)], [c, d, ty + ((c * 0.5 + d * 0.5) - 0.5)]], np.float64
    )
    if out is None:
        return cv2.warpAffine(
            image, m_idx, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    if out.shape != (out_h, out_w, image.shape[2]) or out.dtype != image.dtype or not out.flags.c_contiguous:
        raise ConfigError(
            f"out must be a C-contiguous {out_h}×{out_w}×{image.shape[2]} {image.dtype} array, "
            f"got {out.shape} {out.dtype}"
        )
    # OpenCV writes into a destination of the right size and type in place (no copy back needed).
    cv2.warpAffine(
        image, m_idx, (out_w, out_h), dst=out, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out


def _rows_of_pixels(image: np.ndarray) -> bool:
    """Packed pixels in rows at a positive stride (a C-contiguous image or a window of one)."""
    st, item = image.strides, image.itemsize
    return st[0] > 0 and st[-1] == item and (image.ndim == 2 or st[1] == image.shape[2] * item)


def crop_transform(
    image_size: tuple[int, int], pre: Preprocessing, frame: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """The 2×3 affine (continuous coordinates) that :func:`crop_aligned` applies to an image of (H, W)."""
    h, w = image_size
    fx0, fy0, fx1, fy1 = frame or (0.0, 0.0, 1.0, 1.0)
    ax0, ay0, ax1, ay1 = pre.aligned_crop
    # The model's crop of the aligned frame, in fractions of the image; an affine map keeps sub-pixel edges.
    x0, x1 = fx0 + ax0 * (fx1 - fx0), fx0 + ax1 * (fx1 - fx0)
    y0, y1 = fy0 + ay0 * (fy1 - fy0), fy0 + ay1 * (fy1 - fy0)
    out_h, out_w = pre.input_size
    sx, sy = out_w / ((x1 - x0) * w), out_h / ((y1 - y0) * h)
    return np.array([[sx, 0.0, -x0 * w * sx], [0.0, sy, -y0 * h * sy]], dtype=np.float64)


def crop_aligned(
    image: np.ndarray, pre: Preprocessing, frame: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """An already aligned face (CelebA's ``img_align_celeba`` geometry, any resolution) → model input.

    image: H×W×3 uint8 in the model's colour order. frame: the box of ``image`` (fractions) that holds
    CelebA's aligned frame, for unaligned pictures framed like it (LFW); None = the whole image.
    Returns input_size[0]×input_size[1]×3 uint8.
    """
    return warp(image, crop_transform(image.shape[:2], pre, frame), pre.input_size, pre.resize)


def similarity_transform(
    src: np.ndarray, dst: np.ndarray, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` points onto ``dst``.

    src, dst: K×2 (x, y). weights: K non-negative weights (None = all 1). Returns a 2×3 float64 matrix
    for ``cv2.warpAffine``. Weighted Umeyama (1991) without reflection, in its closed 2-D form: with the
    centred points' weighted cross terms Sxx, Sxy (dst x · src y), Syx, Syy and the src variance V, the
    scaled rotation is [[a, −b], [b, a]], a = (Sxx + Syy) / V, b = (Syx − Sxy) / V — what the SVD gives
    (tests compare to 1e-12), in plain floats: a few keypoints do not pay for numpy calls and an SVD.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    wt = [1.0] * len(src) if weights is None else [float(v) for v in weights]
    if src.ndim != 2 or src.shape[1:] != (2,) or dst.shape != src.shape or len(wt) != len(src):
        raise ConfigError(
            f"similarity_transform takes K×2 src and dst and K weights, got {src.shape}, {dst.shape}, {len(wt)}"
        )
    pts = [(w, s, d) for w, s, d in zip(wt, src.tolist(), dst.tolist()) if w > 0]
    if len(pts) < 2:
        raise ConfigError("a similarity transform needs at least two keypoints with positive weight")
    total = sum(w for w, _, _ in pts)
    pts = [(w / total, s, d) for w, s, d in pts]
    msx, msy = sum(w * s[0] for w, s, _ in pts), sum(w * s[1] for w, s, _ in pts)
    mdx, mdy = sum(w * d[0] for w, _, d in pts), sum(w * d[1] for w, _, d in pts)
    var_s = sxx = sxy = syx = syy = 0.0
    for w, (sx, sy), (dx, dy) in pts:
        sx, sy, dx, dy = sx - msx, sy - msy, dx - mdx, dy - mdy
        var_s += w * (sx * sx + sy * sy)
        sxx, sxy, syx, syy = sxx + w * dx * sx, sxy + w * dx * sy, syx + w * dy * sx, syy + w * dy * sy
    if var_s < 1e-12:
        raise ConfigError("keypoints coincide; cannot estimate an alignment")
    a, b = (sxx + syy) / var_s, (syx - sxy) / var_s
    return np.array([[a, -b, mdx - (a * msx - b * msy)], [b, a, mdy - (b * msx + a * msy)]])


def align_keypoints(
    image: np.ndarray, keypoints: np.ndarray, pre: Preprocessing, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Warp an unaligned face to the card's template.

    image: H×W×3 uint8; keypoints: K×2 pixels (x, y) in KEYPOINTS order. Returns the model-input crop,
    written into ``out`` when given (see :func:`warp`).
    """
    if pre.template is None:
        raise ConfigError("this model card has no alignment template; it can only take pre-aligned faces")
    out_h, out_w = pre.input_size
    dst = np.asarray(pre.template.points, dtype=np.float64) * [out_w, out_h]
    m = similarity_transform(keypoints, dst, pre.template.weights)
    return warp(image, m, (out_h, out_w), pre.resize, out=out)


def _normalized(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """The normalisation formula, elementwise in float32 on …×3 values (also builds the lookup table)."""
    x = x.astype(np.float32) * (1.0 / 255.0)
    return (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)


@lru_cache(maxsize=16)
def _normalize_lut(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """3×256 float32: row c maps a uint8 value of channel c through :func:`_normalized` (same float ops)."""
    lut = np.ascontiguousarray(_normalized(np.repeat(np.arange(256)[:, None], 3, axis=1), mean, std).T)
    lut.flags.writeable = False
    return lut


def to_planes(image: np.ndarray, lut: np.ndarray, swap: bool, out: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 → ``out`` 3×H×W float32 (any row stride), ``out[c] = lut[c][image[..., c]]``.

    swap: take channel c from the image's channel 2 − c (RGB ↔ BGR). A table lookup equals the float32
    arithmetic it was built with bit for bit, and OpenCV's split and LUT do the layout change and the
    mapping in one pass each, several times faster than numpy's astype/subtract/divide/transpose chain.
    """
    planes = cv2.split(np.ascontiguousarray(image))
    for c in range(3):
        write_into(cv2.LUT(planes[2 - c if swap else c], lut[c], dst=out[c]), out[c])
    return out


def write_into(result: np.ndarray, out: np.ndarray) -> np.ndarray:
    """OpenCV writes into a fitting ``dst`` in place; where a build returns a new array instead, copy it."""
    if result is not out and not np.may_share_memory(result, out):
        out[...] = result
    return out


def normalize(
    batch: np.ndarray, pre: Preprocessing, input_order: str = "RGB", *, out: np.ndarray | None = None
) -> np.ndarray:
    """N×H×W×3 (or H×W×3) uint8 crops → N×3×H×W float32 tensor, in the model's colour order.

    out: an N×3×H×W float32 array to write into (e.g. a batch buffer reused across frames), returned;
    None = a new array.
    """
    x = np.asarray(batch)
    if x.ndim == 3:
        x = x[None]
    swap = input_order != pre.color_order
    shape = (len(x), 3, *x.shape[1:3])
    if out is not None and (out.shape != shape or out.dtype != np.float32):
        raise ConfigError(f"out must be a {shape} float32 array, got {out.shape} {out.dtype}")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:  # not crops: the formula itself
        y = np.ascontiguousarray(
            _normalized(x[..., ::-1] if swap else x, pre.mean, pre.std).transpose(0, 3, 1, 2)
        )
        if out is None:
            return y
        out[...] = y
        return out
    if out is None:
        out = np.empty(shape, np.float32)
    lut = _normalize_lut(tuple(pre.mean), tuple(pre.std))
    for i in range(len(x)):
        to_planes(x[i], lut, swap, out[i])
    return out


_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid that made it, the pool)
_pool_lock = threading.Lock()


@lru_cache(maxsize=1)
def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker() -> ThreadPoolExecutor:
    """One background thread for the runtime's OpenCV work (OpenCV releases the GIL while it computes):
    the lower band of the letterbox shrink, every other face's warp. Shared by the whole process."""
    global _pool
    with _pool_lock:
        # A forked child (e.g. a data loader worker) inherits the pool but not its thread: make its own.
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="lsa-edge-preprocess"))
        return _pool[1]
