"""Face-attribute data sets: CelebA's own layout, the generic CSV layout, LFWA's .mat release.

Loaders read labels and splits only (numpy); images are decoded later, one at a time, and a corrupt or
missing image is reported and skipped. Nothing here imports torch.
"""

from __future__ import annotations

from .crops import CropSet, load_crops
from .images import read_image
from .layouts import FORMATS, LFW_FRAME, detect_format, load_dataset
from .records import SPLITS, FaceDataset
from .selection import carve_validation, select_labelled

__all__ = [
    "FORMATS",
    "LFW_FRAME",
    "SPLITS",
    "CropSet",
    "FaceDataset",
    "carve_validation",
    "detect_format",
    "load_crops",
    "load_dataset",
    "read_image",
    "select_labelled",
]
