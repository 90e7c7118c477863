"""Named facial regions and their spatial maps on the aligned face, derived from the alignment template.

Each region is a mixture of anisotropic Gaussians placed relative to the template's eyes, nose and mouth,
with sizes in units of the eye distance, so the maps follow whatever template the model card carries.
The maps are what the language prior attends to. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .card import AlignmentTemplate
from .errors import ConfigError


@dataclass(frozen=True)
class Region:
    name: str
    phrases: tuple[str, ...]  # how the text encoder hears this region (averaged)
    # Gaussian blobs: (dx, dy, sx, sy) in eye-distance units; dx/dy relative to the anchor named first.
    blobs: tuple[tuple[str, float, float, float, float], ...]


# Anchors: "eyes" (midpoint of the eyes), "reye"/"leye", "nose", "mouth", "rear"/"lear".
FINE_REGIONS: tuple[Region, ...] = (
    Region("head_top", ("the top of the head", "the crown of the head"), (("eyes", 0.0, -2.0, 1.3, 0.55),)),
    Region(
        "hair",
        ("the hair", "hair on the head", "the hairstyle"),
        (("eyes", 0.0, -1.6, 1.5, 0.7), ("eyes", -1.55, 0.4, 0.35, 1.1), ("eyes", 1.55, 0.4, 0.35, 1.1)),
    ),
    Region("forehead", ("the forehead", "the brow above the eyes"), (("eyes", 0.0, -0.75, 0.85, 0.3),)),
    Region("eyebrows", ("the eyebrows",), (("reye", 0.0, -0.32, 0.32, 0.1), ("leye", 0.0, -0.32, 0.32, 0.1))),
    Region("eyes", ("the eyes", "the area around the eyes"), (("reye", 0.0, 0.0, 0.28, 0.14), ("leye", 0.0, 0.0, 0.28, 0.14))),
    Region("nose", ("the nose",), (("nose", 0.0, -0.3, 0.22, 0.42),)),
    Region("cheeks", ("the cheeks", "the cheekbones"), (("reye", -0.1, 0.6, 0.3, 0.32), ("leye", 0.1, 0.6, 0.3, 0.32))),
    Region("mouth", ("the mouth", "the open mouth and teeth"), (("mouth", 0.0, 0.0, 0.42, 0.22),)),
    Region("lips", ("the lips",), (("mouth", 0.0, 0.0, 0.33, 0.12),)),
    Region("upper_lip", ("the upper lip and the area below the nose",), (("mouth", 0.0, -0.28, 0.38, 0.12),)),
    Region("chin", ("the chin",), (("mouth", 0.0, 0.5, 0.38, 0.22),)),
    Region("jaw", ("the jaw and the jawline",), (("mouth", -0.75, -0.05, 0.28, 0.45), ("mouth", 0.75, -0.05, 0.28, 0.45))),
    Region("ears", ("the ears", "the earlobes"), (("rear", 0.0, 0.1, 0.2, 0.35), ("lear", 0.0, 0.1, 0.2, 0.35))),
    Region("neck", ("the neck", "the neck and collar"), (("mouth", 0.0, 1.25, 0.75, 0.45),)),
    Region("face", ("the whole face", "the face"), (("eyes", 0.0, 0.45, 1.05, 1.25),)),
)  # fmt: skip

# The coarse ablation: four groups, each the union of its members' maps and phrases.
COARSE_GROUPS: dict[str, tuple[str, ...]] = {
    "upper_head": ("head_top", "hair", "forehead"),
    "eye_area": ("eyebrows", "eyes", "nose"),
    "lower_face": ("cheeks", "mouth", "lips", "upper_lip", "chin", "jaw"),
    "periphery": ("ears", "neck", "face"),
}

REGION_SETS = ("fine", "coarse")


def _anchors(template: AlignmentTemplate, width: float, height: float) -> tuple[dict[str, np.ndarray], float]:
    pts = {
        k: np.asarray(p, dtype=np.float64) * [width, height]
        for k, p in zip(template.keypoints, template.points)
    }
    reye, leye = pts["right_eye"], pts["left_eye"]
    eye_dist = float(np.linalg.norm(leye - reye))
    if eye_dist <= 0:
        raise ConfigError(f"template {template.name!r} has coincident eyes")
    eyes = (reye + leye) / 2
    half_face = 1.25 * eye_dist
    anchors = {
        "eyes": eyes,
        "reye": reye,
        "leye": leye,
        "nose": pts["nose_tip"],
        "mouth": pts["mouth_center"],
        # The ears only serve as map anchors; where the template's ear guess is unreliable, use the eyes.
        "rear": pts.get("right_ear", eyes + np.array([-half_face, 0.3 * eye_dist])),
        "lear": pts.get("left_ear", eyes + np.array([half_face, 0.3 * eye_dist])),
    }
    return anchors, eye_dist


def region_names(region_set: str = "fine") -> tuple[str, ...]:
    if region_set == "fine":
        return tuple(r.name for r in FINE_REGIONS)
    if region_set == "coarse":
        return tuple(COARSE_GROUPS)
    raise ConfigError(f"unknown region set {region_set!r}; choose one of {', '.join(REGION_SETS)}")


def region_phrases(region_set: str = "fine") -> dict[str, tuple[str, ...]]:
    fine = {r.name: r.phrases for r in FINE_REGIONS}
    if region_set == "fine":
        return fine
    region_names(region_set)
    return {g: tuple(p for m in members for p in fine[m]) for g, members in COARSE_GROUPS.items()}


def region_maps(
    template: AlignmentTemplate,
    grid: tuple[int, int],
    region_set: str = "fine",
    supersample: int = 8,
) -> np.ndarray:
    """Spatial maps S of the regions on a token grid.

    template: keypoint positions (fractions of the input). grid: (h, w) tokens covering the input.
    Returns R×h×w float32, each map summing to 1 (the share of the region that falls in each token).
    """
    gh, gw = grid
    # Evaluate on a fine grid in "token units" (the input's aspect ratio is kept by the template's
    # fractions), then pool into tokens.
    fh, fw = gh * supersample, gw * supersample
    ys, xs = np.mgrid[0:fh, 0:fw].astype(np.float64)
    xs, ys = (xs + 0.5) / fw, (ys + 0.5) / fh
    # Work in a frame whose units are equal in x and y: scale by the input aspect (w/h of the grid).
    aspect = gw / gh
    anchors, eye = _anchors(template, aspect, 1.0)
    xs = xs * aspect
    fine: dict[str, np.ndarray] = {}
    for r in FINE_REGIONS:
        m = np.zeros((fh, fw))
        for anchor, dx, dy, sx, sy in r.blobs:
            cx, cy = anchors[anchor] + np.array([dx, dy]) * eye
            m = np.maximum(m, np.exp(-0.5 * (((xs - cx) / (sx * eye)) ** 2 + ((ys - cy) / (sy * eye)) ** 2)))
        fine[r.name] = m
    if region_set == "coarse":
        maps = [np.maximum.reduce([fine[n] for n in members]) for members in COARSE_GROUPS.values()]
    else:
        region_names(region_set)
        maps = list(fine.values())
    out = np.stack(maps).reshape(len(maps), gh, supersample, gw, supersample).sum(axis=(2, 4))
    out /= out.sum(axis=(1, 2), keepdims=True)
    return out.astype(np.float32)
