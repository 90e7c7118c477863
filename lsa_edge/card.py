"""The model card: everything the runtime must know to feed and read the model, travelling with the weights.

It is stored in the checkpoint, in the ONNX file's ``metadata_props`` and beside every engine as JSON.
The runtime reads it and never guesses preprocessing. Imports nothing heavy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .attributes import ATTRIBUTES
from .errors import ConfigError

CARD_FORMAT_VERSION = 1

# BlazeFace's six keypoints, in its output order. "right" is the subject's right: the image's left side.
KEYPOINTS: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")

# CelebA's aligned frame (img_align_celeba, 178×218 pixels at full size). Mean landmark positions of that
# frame (eyes ≈ (69, 111) and (108, 111), nose ≈ (88, 135), mouth corners ≈ (72, 152) and (106, 152));
# mouth centre is the corners' midpoint. Ear tragions are rough guesses (face width ≈ 2.5 × eye distance)
# and get weight 0 in the similarity fit until the detector-estimated template replaces this one.
CELEBA_FRAME_SIZE = (218, 178)  # (H, W) pixels
_CELEBA_POINTS_PX = (
    (69.0, 111.0),
    (108.0, 111.0),
    (88.5, 135.0),
    (89.0, 152.0),
    (40.0, 124.0),
    (137.0, 124.0),
)
_CELEBA_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 0.0, 0.0)


@dataclass(frozen=True)
class AlignmentTemplate:
    """Canonical keypoint positions on the model input, as fractions of its width and height."""

    name: str  # identifier, e.g. "celeba-align-mean-v1"
    points: tuple[tuple[float, float], ...]  # (x/W, y/H) per keypoint, in KEYPOINTS order
    weights: tuple[float, ...]  # weight of each keypoint in the similarity fit (0 = ignored)
    source: str  # how the positions were obtained
    keypoints: tuple[str, ...] = KEYPOINTS

    def __post_init__(self) -> None:
        if not (len(self.points) == len(self.weights) == len(self.keypoints)):
            raise ConfigError(
                f"template {self.name!r}: {len(self.points)} points, {len(self.weights)} weights, "
                f"{len(self.keypoints)} keypoint names; they must match"
            )


@dataclass(frozen=True)
class Preprocessing:
    """How a face becomes the model's input tensor (1×3×H×W float32)."""

    input_size: tuple[int, int] = (128, 112)  # (H, W) pixels of the model input
    color_order: Literal["RGB", "BGR"] = "RGB"  # channel order the model expects
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # subtracted after scaling to [0, 1]
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)  # divided after subtracting the mean
    # Crop of a CelebA-aligned image (x0, y0, x1, y1 as fractions of its width/height) that becomes the
    # model input: the full width, and the centred height that keeps the input's aspect ratio.
    aligned_crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    template: AlignmentTemplate | None = None  # keypoint targets on the model input (for unaligned faces)
    resize: Literal["area", "linear"] = "area"  # interpolation used when shrinking

    def __post_init__(self) -> None:
        h, w = self.input_size
        if h < 16 or w < 16:
            raise ConfigError(f"input_size must be at least 16×16 pixels, got {h}×{w}")
        if self.color_order not in ("RGB", "BGR"):
            raise ConfigError(f"color_order must be RGB or BGR, got {self.color_order!r}")
        x0, y0, x1, y1 = self.aligned_crop
        if not (x1 > x0 and y1 > y0):
            raise ConfigError(
                f"aligned_crop must be (x0, y0, x1, y1) with x1 > x0, y1 > y0, got {self.aligned_crop}"
            )


def celeba_preprocessing(input_size: tuple[int, int] = (128, 112)) -> Preprocessing:
    """Preprocessing for CelebA-aligned faces at ``input_size`` (H, W), with the matching template.

    The crop keeps the model's aspect ratio: the aligned frame's full width and a vertically centred band.
    """
    h, w = input_size
    fh, fw = CELEBA_FRAME_SIZE
    crop_h = fw * h / w  # pixels of the frame's height that the input covers
    if crop_h <= fh:
        cx0, cx1, cy0, cy1 = 0.0, float(fw), (fh - crop_h) / 2, (fh + crop_h) / 2
    else:  # an input taller than the frame's aspect: full height, centred width band
        crop_w = fh * w / h
        cx0, cx1, cy0, cy1 = (fw - crop_w) / 2, (fw + crop_w) / 2, 0.0, float(fh)
    points = tuple(
        (round((x - cx0) / (cx1 - cx0), 5), round((y - cy0) / (cy1 - cy0), 5)) for x, y in _CELEBA_POINTS_PX
    )
    template = AlignmentTemplate(
        name="celeba-align-mean-v1",
        points=points,
        weights=_CELEBA_WEIGHTS,
        source="mean landmarks of CelebA's aligned frame (eyes, nose, mouth); ears approximate",
    )
    crop = (round(cx0 / fw, 5), round(cy0 / fh, 5), round(cx1 / fw, 5), round(cy1 / fh, 5))
    return Preprocessing(input_size=(h, w), aligned_crop=crop, template=template)


@dataclass(frozen=True)
class ModelCard:
    """Self-description of a trained attribute model."""

    name: str
    preprocessing: Preprocessing
    attributes: tuple[str, ...] = ATTRIBUTES
    thresholds: tuple[float, ...] = (0.5,) * len(ATTRIBUTES)  # per-attribute decision thresholds
    regions: tuple[str, ...] = ()  # facial regions of the language prior
    model: dict[str, Any] = field(default_factory=dict)  # backbone and head configuration
    training: dict[str, Any] = field(default_factory=dict)  # data, label budget, seed, metrics
    build: dict[str, Any] = field(
        default_factory=dict
    )  # precision, calibration, accuracy gate (lsa-edge build)
    weights_sha256: str = ""
    format_version: int = CARD_FORMAT_VERSION

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.attributes):
            raise ConfigError(f"{len(self.thresholds)} thresholds for {len(self.attributes)} attributes")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def with_updates(self, **changes: Any) -> ModelCard:
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        version = int(d.get("format_version", 0))
        if version > CARD_FORMAT_VERSION:
            raise ConfigError(
                f"model card format {version} is newer than this lsa-edge understands ({CARD_FORMAT_VERSION}); "
                "upgrade lsa-edge"
            )
        p = dict(d["preprocessing"])
        t = p.get("template")
        if t is not None:
            p["template"] = AlignmentTemplate(
                name=t["name"],
                points=tuple(tuple(pt) for pt in t["points"]),
                weights=tuple(t["weights"]),
                source=t["source"],
                keypoints=tuple(t.get("keypoints", KEYPOINTS)),
            )
        for key in ("input_size", "mean", "std", "aligned_crop"):
            if key in p:
                p[key] = tuple(p[key])
        return cls(
            name=d["name"],
            preprocessing=Preprocessing(**p),
            attributes=tuple(d.get("attributes", ATTRIBUTES)),
            thresholds=tuple(float(x) for x in d.get("thresholds", (0.5,) * len(ATTRIBUTES))),
            regions=tuple(d.get("regions", ())),
            model=dict(d.get("model", {})),
            training=dict(d.get("training", {})),
            build=dict(d.get("build", {})),
            weights_sha256=d.get("weights_sha256", ""),
            format_version=version or CARD_FORMAT_VERSION,
        )

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        return cls.from_dict(json.loads(text))
