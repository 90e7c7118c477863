"""Augmentation and normalisation of aligned faces in torch, on the training device: the one place the
training side turns crops into model inputs.

:class:`Normalizer` is the model card's :class:`~lsa_edge.card.Preprocessing` in torch, the twin of the
runtime's numpy :func:`lsa_edge.preprocess.normalize` (tested for parity): training, validation and the
evaluation of checkpoints normalise through it, so what the model learns is what the deployment feeds it.
Decoding into memory lives in the core (:mod:`lsa_edge.data.crops`), shared with evaluation and INT8
calibration; it is re-exported here for the trainer.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lsa_edge.card import Preprocessing
from lsa_edge.data.crops import CropSet, load_crops

__all__ = ["AugmentConfig", "CropSet", "Normalizer", "augment", "load_crops"]

log = logging.getLogger(__name__)


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


class Normalizer:
    """A card's preprocessing (colour order, mean, std) in torch, for RGB crops.

    ``normalizer(images)``: B×H×W×3 uint8 RGB → B×3×H×W float32 in the model's colour order, the values
    :func:`lsa_edge.preprocess.normalize` gives (to float32 rounding). ``normalizer.unit(x)``: the same
    from B×3×H×W float RGB already scaled to [0, 1] (an augmented batch).
    """

    def __init__(self, pre: Preprocessing, device: torch.device | str = "cpu") -> None:
        self.pre = pre
        self.swap = pre.color_order == "BGR"  # crops are RGB; the card decides what the model sees
        self.mean = torch.tensor(pre.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        """B×3×H×W float RGB in [0, 1] → the model's input."""
        if self.swap:
            x = x.flip(1)
        return (x - self.mean) / self.std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """B×H×W×3 uint8 RGB → the model's input."""
        return self.unit(images.permute(0, 3, 1, 2).float().div_(255.0))


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
