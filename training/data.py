"""Decoding a split into memory as model-input crops, and batch augmentation in torch.

Images are decoded once (threads; OpenCV releases the GIL), cropped through the one preprocessing
implementation (lsa_edge.preprocess), and kept as uint8: 43 KB per face at 128×112, so CelebA-10k
takes 0.4 GB. Unreadable images are skipped with a warning and counted.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lsa_edge.card import Preprocessing
from lsa_edge.data import FaceDataset, read_image
from lsa_edge.errors import DataError
from lsa_edge.preprocess import crop_aligned

log = logging.getLogger(__name__)


@dataclass
class CropSet:
    """Decoded crops of a data set split. images: N×H×W×3 uint8 RGB; labels: N×40 uint8."""

    images: np.ndarray
    labels: np.ndarray
    index: np.ndarray  # positions in the source FaceDataset of the kept images
    skipped: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.index)


def load_crops(
    ds: FaceDataset,
    pre: Preprocessing,
    frame: tuple[float, float, float, float] | None = None,
    workers: int = 4,
    progress: bool = True,
) -> CropSet:
    """Decode and crop every image of ``ds``. frame: the box of each image (fractions) that corresponds to
    CelebA's aligned frame; None = the whole image (aligned data)."""
    if len(ds) == 0:
        raise DataError(f"{ds.name} has no images")
    h, w = pre.input_size
    out = np.zeros((len(ds), h, w, 3), dtype=np.uint8)
    ok = np.zeros(len(ds), dtype=bool)

    def work(i: int) -> None:
        img = read_image(ds.path(i))
        if img is None:
            return
        img = crop_aligned(img, pre, frame)
        out[i] = img
        ok[i] = True

    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        it = pool.map(work, range(len(ds)), chunksize=64)
        for _ in tqdm(
            it, total=len(ds), desc=f"decoding {ds.name}", unit="img", disable=not progress, leave=False
        ):
            pass
    skipped = [ds.image_ids[i] for i in np.flatnonzero(~ok)]
    if skipped:
        log.warning(
            "%s: skipped %d of %d images that could not be read (first: %s)",
            ds.name,
            len(skipped),
            len(ds),
            skipped[0],
        )
    if not ok.any():
        raise DataError(f"{ds.name}: none of its {len(ds)} images could be read (first: {ds.path(0)})")
    keep = np.flatnonzero(ok)
    return CropSet(images=out[keep], labels=ds.labels[keep], index=keep, skipped=skipped, name=ds.name)


@dataclass
class AugmentConfig:
    """Augmentation of aligned faces (applied on the training device, per batch)."""

    hflip: float = 0.5  # probability of a horizontal flip (all 40 attributes are mirror-symmetric)
    scale: tuple[float, float] = (0.92, 1.08)  # zoom range
    rotate_deg: float = 8.0  # max rotation, degrees
    translate: float = 0.05  # max shift, fraction of the side
    brightness: float = 0.2  # max relative brightness change
    contrast: float = 0.2  # max relative contrast change
    saturation: float = 0.2  # max relative saturation change
    erase: float = 0.0  # probability of erasing a random rectangle


def to_tensor(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """B×H×W×3 uint8 → B×3×H×W normalised float32."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def augment(images: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """B×H×W×3 uint8 → B×3×H×W float in [0, 1], augmented (flip, similarity jitter, colour)."""
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    b, dev = x.shape[0], x.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen).to(dev)

    flip = torch.where(rand(b) < cfg.hflip, -1.0, 1.0).to(dev)
    s = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * rand(b)
    ang = (rand(b) * 2 - 1) * math.radians(cfg.rotate_deg)
    tx, ty = (rand(b) * 2 - 1) * cfg.translate * 2, (rand(b) * 2 - 1) * cfg.translate * 2
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    # A rotation in pixels, written in affine_grid's normalised coordinates (x/(W/2), y/(H/2)); without the
    # aspect terms a non-square face would be sheared.
    h, w = x.shape[-2:]
    theta = torch.stack(
        [torch.stack([cos * flip, -sin * (h / w), tx], 1), torch.stack([sin * (w / h) * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if cfg.brightness:
        x = x * (1 + (rand(b, 1, 1, 1) * 2 - 1) * cfg.brightness)
    if cfg.contrast:
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - m) * (1 + (rand(b, 1, 1, 1) * 2 - 1) * cfg.contrast) + m
    if cfg.saturation:
        g = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        x = (x - g) * (1 + (rand(b, 1, 1, 1) * 2 - 1) * cfg.saturation) + g
    if cfg.erase:
        for i in np.flatnonzero(rand(b).cpu().numpy() < cfg.erase):
            eh, ew = int(h * (0.1 + 0.2 * float(rand(1)))), int(w * (0.1 + 0.2 * float(rand(1))))
            y0, x0 = int((h - eh) * float(rand(1))), int((w - ew) * float(rand(1)))
            x[i, :, y0 : y0 + eh, x0 : x0 + ew] = rand(3, 1, 1)
    return x.clamp_(0.0, 1.0)
