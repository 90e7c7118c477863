"""Calibration and validation faces for the build: drawn from a data set or an image folder, through the
one preprocessing implementation (:func:`lsa_edge.preprocess.crop_aligned`), as the runtime will feed them.

A *data set* is any of the three layouts (CelebA, generic CSV, LFWA .mat); its split and frame are honoured.
An *image folder* holds any pictures of faces (frames from the robot's own camera are best): each goes
through the runtime's face detector and alignment, exactly as the deployed model will see it, and an
image without a face is skipped. numpy and OpenCV (ONNX Runtime for the detector).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsa_edge.card import Preprocessing
from lsa_edge.data import FaceDataset, load_crops, load_dataset
from lsa_edge.data.layouts import detect_format
from lsa_edge.errors import CalibrationError, DataError
from lsa_edge.preprocess import normalize

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True)
class FaceSet:
    """Model-input crops for calibration or an accuracy check.

    images: N×H×W×3 uint8 RGB crops; labels: N×40 uint8 or None (an image folder has no labels);
    names: N image ids; source: a description for logs and the card.
    """

    images: np.ndarray
    labels: np.ndarray | None
    names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.images)

    def tensors(self, pre: Preprocessing) -> np.ndarray:
        """All crops as one N×3×H×W float32 array, normalised for the model."""
        return normalize(self.images, pre)

    def batches(self, pre: Preprocessing, batch_size: int = 16) -> Iterator[np.ndarray]:
        """N×3×H×W float32 batches; the last one may be smaller."""
        for i in range(0, len(self), batch_size):
            yield normalize(self.images[i : i + batch_size], pre)


def is_dataset(path: str | Path) -> bool:
    try:
        detect_format(path)
    except DataError:
        return False
    return True


def load_faces(
    source: str | Path,
    pre: Preprocessing,
    *,
    split: str = "train",
    count: int | None = 512,
    seed: int = 0,
    fmt: str | None = None,
    workers: int = 4,
    progress: bool = False,
) -> FaceSet:
    """Up to ``count`` faces (a seeded random sample; None = all) of ``source``.

    source: a data set folder (``split`` is used) or a folder of aligned face crops (searched recursively).
    """
    source = Path(source)
    if not source.exists():
        raise DataError(
            f"calibration data {source} does not exist; pass a data set folder or an image folder"
        )
    if fmt or is_dataset(source):
        return _from_dataset(load_dataset(source, fmt), pre, split, count, seed, workers, progress)
    return _from_folder(source, pre, count, seed)


def _sample(n: int, count: int | None, seed: int) -> np.ndarray:
    if count is None or count >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False))


def _from_dataset(
    ds: FaceDataset,
    pre: Preprocessing,
    split: str,
    count: int | None,
    seed: int,
    workers: int,
    progress: bool,
) -> FaceSet:
    part = ds.split(split)
    if len(part) == 0:
        raise DataError(f"{ds.name} has no {split!r} images; its splits are {ds.split_sizes()}")
    part = part.subset(_sample(len(part), count, seed))
    crops = load_crops(part, pre, ds.frame, workers, progress)
    names = tuple(part.image_ids[i] for i in crops.index)
    return FaceSet(crops.images, crops.labels, names, f"{ds.name}:{split} ({len(names)} faces)")


def _from_folder(root: Path, pre: Preprocessing, count: int | None, seed: int) -> FaceSet:
    from lsa_edge.data import read_image
    from lsa_edge.detector import FaceDetector
    from lsa_edge.face_crops import detect_and_align

    if pre.template is None:
        raise DataError("the model card has no alignment template, so an image folder cannot be aligned")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}) and is not a data set "
            "(no list_attr_celeba.txt, attributes.csv or lfw_att_40*.mat)"
        )
    files = [files[i] for i in _sample(len(files), count, seed)]
    images, names, no_face = [], [], 0
    with FaceDetector() as detector:
        # read_image warns and returns None for an unreadable file; crops are RGB, like every stored crop
        for chunk in detect_and_align(lambda i: read_image(files[i]), len(files), detector, pre, workers=1):
            images.append(chunk.crops)
            names += [str(files[i].relative_to(root)) for i in chunk.kept]
            no_face += len(chunk.faceless)
    if no_face:
        log.warning("%s: no face found in %d of %d images; they are not used", root, no_face, len(files))
    if not names:
        raise DataError(f"no face could be read and detected in the {len(files)} images in {root}")
    return FaceSet(np.concatenate(images), None, tuple(names), f"{root.name}/ ({len(names)} detected faces)")


def require_enough(faces: FaceSet, minimum: int, what: str) -> None:
    if len(faces) < minimum:
        raise CalibrationError(
            f"{what} needs at least {minimum} faces, got {len(faces)} from {faces.source}; "
            "point --calib-data at a larger data set or image folder"
        )
