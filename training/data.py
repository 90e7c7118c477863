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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lsa_edge.card import Preprocessing
from lsa_edge.data.crops import CropSet, load_crops
from lsa_edge.errors import ConfigError

__all__ = ["AugmentConfig", "CropSet", "Normalizer", "augment", "load_crops"]

log = logging.getLogger(__name__)


@dataclass
class AugmentConfig:
    """Augmentation of aligned faces (applied on the training device, per batch).

    Geometry and colour first; then, as a camera degrades a face, resolution, optical blur, sensor noise and
    JPEG compression (each off by default: the recipes that want them switch them on)."""

    hflip: float = 0.5  # probability of a horizontal flip (all 40 attributes are mirror-symmetric)
    scale: tuple[float, float] = (0.92, 1.08)  # zoom range
    rotate_deg: float = 8.0  # max rotation, degrees
    translate: float = 0.05  # max shift, fraction of the side
    brightness: float = 0.2  # max relative brightness change
    contrast: float = 0.2  # max relative contrast change
    saturation: float = 0.2  # max relative saturation change
    erase: float = 0.0  # probability of erasing a random rectangle
    # what the warp shows outside the image: "reflection" (mirrored), "border" (the edge pixels repeated, as
    # the runtime's alignment warp does with BORDER_REPLICATE) or "zeros"
    padding: str = "reflection"
    resolution: float = 0.0  # probability of shrinking the face (area) and enlarging it back (bilinear)
    resolution_min: float = 0.35  # smallest shrink factor (uniform in log scale up to 1)
    blur: float = 0.0  # probability of a Gaussian blur
    blur_sigma: tuple[float, float] = (0.4, 1.6)  # its σ in crop pixels (uniform)
    noise: float = 0.0  # probability of Gaussian pixel noise
    noise_std: float = 0.03  # its largest std (uniform up to this), image in [0, 1]
    jpeg: float = 0.0  # probability of a JPEG round trip (OpenCV, on the CPU)
    jpeg_quality: tuple[int, int] = (20, 90)  # its quality (uniform)
    grayscale: float = 0.0  # probability of dropping colour

    def __post_init__(self) -> None:
        from lsa_edge._checks import check_number

        for name in ("scale", "blur_sigma", "jpeg_quality"):  # a YAML or JSON list: the (low, high) pair
            pair = getattr(self, name)
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ConfigError(f"augment.{name} must be a pair [low, high], got {pair!r}")
            setattr(self, name, tuple(pair))
        for name in ("hflip", "erase", "resolution", "blur", "noise", "jpeg", "grayscale"):
            check_number(getattr(self, name), f"augment.{name}", lo=0.0, hi=1.0)
        check_number(self.resolution_min, "augment.resolution_min", lo=0.05, hi=1.0)
        check_number(self.noise_std, "augment.noise_std", lo=0.0, hi=0.5)
        lo, hi = self.jpeg_quality
        if not (1 <= lo <= hi <= 100):
            raise ConfigError(
                f"augment.jpeg_quality must be (low, high) with 1 ≤ low ≤ high ≤ 100, got {(lo, hi)}"
            )
        if not (0.0 < self.blur_sigma[0] <= self.blur_sigma[1] <= 10.0):
            raise ConfigError(
                f"augment.blur_sigma must be (low, high) with 0 < low ≤ high ≤ 10, got {self.blur_sigma}"
            )
        if self.padding not in _PADDING:
            raise ConfigError(f"augment.padding must be one of {sorted(_PADDING)}, got {self.padding!r}")


_PADDING = {"reflection", "border", "zeros"}


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
    """B×H×W×3 uint8 → B×3×H×W float in [0, 1], augmented (flip, similarity jitter, colour, and the camera
    degradations the config switches on)."""
    return augment_views(images, cfg, gen)[1]


def augment_views(
    images: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clean, degraded)``: the batch after geometry and colour, and the same faces after the camera
    degradations (the same tensor when the config has none). Distillation shows the teachers the clean
    view and the student the degraded one, so the student learns to see through the camera what the
    teachers see on sharp faces. Both views come from one augmentation stream: the draws are those of
    :func:`augment`."""
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
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode=cfg.padding, align_corners=False)
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
    x = x.clamp_(0.0, 1.0)
    if not (cfg.resolution or cfg.blur or cfg.noise or cfg.jpeg or cfg.grayscale):
        return x, x  # no draws either: recipes without these options keep their augmentation stream exactly
    return x, degrade(x.clone(), cfg, rand)


def degrade(x: torch.Tensor, cfg: AugmentConfig, rand: Callable[..., torch.Tensor]) -> torch.Tensor:
    """What a camera does to a face, each with its probability: fewer pixels (area shrink, bilinear back),
    optical blur, grey, sensor noise, JPEG. x: B×3×H×W in [0, 1]; rand(*shape): uniform draws (the
    augmentation stream, so a resumed run repeats them)."""
    b, (h, w) = x.shape[0], x.shape[-2:]
    draws = rand(b, 5)  # per image, whether: resolution, blur, grey, noise, jpeg
    for i in range(b):
        u = draws[i]
        if float(u[0]) < cfg.resolution:
            f = math.exp(math.log(cfg.resolution_min) * float(rand(1)))
            small = F.interpolate(
                x[i : i + 1], size=(max(4, round(h * f)), max(4, round(w * f))), mode="area"
            )
            x[i : i + 1] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        if float(u[1]) < cfg.blur:
            lo, hi = cfg.blur_sigma
            x[i : i + 1] = _gaussian_blur(x[i : i + 1], lo + (hi - lo) * float(rand(1)))
        if float(u[2]) < cfg.grayscale:
            x[i] = (0.299 * x[i, 0] + 0.587 * x[i, 1] + 0.114 * x[i, 2]).expand(3, h, w)
        if float(u[3]) < cfg.noise:
            std = cfg.noise_std * float(rand(1))
            u1, u2 = rand(3, h, w).clamp_(min=1e-7), rand(3, h, w)  # Box–Muller: normal from the stream
            x[i] += std * torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    x = x.clamp_(0.0, 1.0)
    for j in np.flatnonzero(draws[:, 4].cpu().numpy() < cfg.jpeg).tolist():
        lo, hi = cfg.jpeg_quality
        x[j] = _jpeg(x[j], round(lo + (hi - lo) * float(rand(1))))
    return x


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """1×3×H×W blurred with a separable Gaussian of ``sigma`` pixels (edges replicated)."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma * sigma))
    k = k / k.sum()
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)


def _jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """3×H×W RGB in [0, 1] through an OpenCV JPEG encode/decode at ``quality`` (4:2:0, as cameras do)."""
    from lsa_edge._opencv import cv2

    u8 = (img.permute(1, 2, 0).float().cpu().numpy()[..., ::-1] * 255.0).round().astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if out is None:  # cannot happen for a valid image; keep the face rather than fail the step
        return img
    return (
        torch.from_numpy(np.ascontiguousarray(out[..., ::-1])).to(img.device, img.dtype).permute(2, 0, 1)
        / 255.0
    )
