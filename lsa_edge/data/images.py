"""Decoding images into H×W×3 uint8 RGB, with a warning (never an exception) for unreadable files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .._opencv import cv2

log = logging.getLogger(__name__)


def to_uint8_3ch(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Convert a decoded image of any common kind to H×W×3 uint8, keeping its channel order (RGB stays
    RGB, BGR stays BGR; the caller swaps channels where it needs to).

    Accepts H×W (gray), H×W×1, H×W×3, H×W×4 (the alpha channel is dropped), uint8 or uint16 (top byte) or
    float in [0, 1]. Raises ValueError with what was received for anything else.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"{source}: empty image of shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"{source}: unsupported dtype {image.dtype}; expected uint8, uint16 or float")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"{source}: expected H×W, H×W×1, H×W×3 or H×W×4, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image)


def read_image(path: str | Path) -> np.ndarray | None:
    """Read an image file as H×W×3 uint8 RGB; returns None (and logs a warning) when it cannot be read."""
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        log.warning("skipping %s: cannot read the file (%s)", path, err)
        return None
    # IMREAD_COLOR: always 8-bit with 3 channels, EXIF orientation applied (phone pictures come upright).
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        log.warning("skipping %s: not a decodable image (%d bytes)", path, data.size)
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
