"""Evaluating any model package on a labelled data set split, aligned (the training crop) or through the
runtime's own detect + align path on unaligned images. numpy and OpenCV; backends import their runtimes.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._checks import check_number
from .card import ModelCard
from .data import FaceDataset, load_crops, read_image
from .errors import ConfigError, DataError
from .preprocess import align_keypoints, normalize

log = logging.getLogger(__name__)

FaceChoice = Literal["central", "largest", "score"]


@dataclass(frozen=True)
class Predictions:
    """Probabilities for the images of a split that produced a face (``kept`` indexes ``ds``)."""

    probs: np.ndarray  # K×C
    labels: np.ndarray  # K×C ground truth of those images
    kept: np.ndarray  # K positions in the data set split
    total: int  # images in the split
    unreadable: list[str]  # ids of images that could not be decoded
    no_face: list[str]  # ids of readable images where the detector found no face (pipeline only)
    seconds: float


def predict_aligned(
    backend: Any,
    card: ModelCard,
    ds: FaceDataset,
    batch_size: int = 64,
    workers: int = 4,
    progress: bool = True,
) -> Predictions:
    """The training crop of every image (the data set's frame for unaligned data), no detector."""
    _check_sizes(batch_size, workers)
    t0 = time.perf_counter()
    crops = load_crops(ds, card.preprocessing, ds.frame, workers, progress)
    probs = _predict(backend, crops.images, card, batch_size)
    return Predictions(probs, crops.labels, crops.index, len(ds), crops.skipped, [], time.perf_counter() - t0)


def choose_face(faces: list, image_shape: tuple[int, int], how: FaceChoice = "central"):
    """The face an image's labels describe: the one nearest the image centre (LFW and most attribute data
    sets centre their subject), the largest, or the most confident."""
    if how == "score":
        return max(faces, key=lambda f: f.score)
    if how == "largest":
        return max(faces, key=lambda f: f.width * f.height)
    h, w = image_shape
    return min(
        faces,
        key=lambda f: ((f.box[0] + f.box[2]) / 2 - w / 2) ** 2 + ((f.box[1] + f.box[3]) / 2 - h / 2) ** 2,
    )


def predict_pipeline(
    backend: Any,
    card: ModelCard,
    ds: FaceDataset,
    detector: Any,
    face: FaceChoice = "central",
    batch_size: int = 64,
    workers: int = 4,
    progress: bool = True,
) -> Predictions:
    """Detect + align + predict on every (unaligned) image, as the runtime does; no face = a miss."""
    from tqdm.auto import tqdm

    _check_sizes(batch_size, workers)
    if face not in ("central", "largest", "score"):
        raise ConfigError(f"face (--face) must be central, largest or score, got {face!r}")
    t0 = time.perf_counter()
    probs, kept, unreadable, no_face = [], [], [], []
    chunk = 256  # images decoded ahead and crops held at a time: memory stays flat on a Jetson
    bar = tqdm(total=len(ds), desc=f"detect+align {ds.name}", disable=not progress)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # decoding overlaps detection
        for start in range(0, len(ds), chunk):
            idx = range(start, min(start + chunk, len(ds)))
            crops = []
            for i, img in zip(idx, pool.map(lambda i: read_image(ds.path(i)), idx)):
                bar.update()
                if img is None:
                    unreadable.append(ds.image_ids[i])
                    continue
                faces = detector.detect(img, "RGB")
                if not faces:
                    no_face.append(ds.image_ids[i])
                    continue
                f = choose_face(faces, img.shape[:2], face)
                crops.append(
                    align_keypoints(img, f.keypoints_array(), card.preprocessing)
                )  # RGB, like stored crops
                kept.append(i)
            if crops:
                probs.append(_predict(backend, np.stack(crops), card, batch_size))
    bar.close()
    if not kept:
        raise DataError(f"the detector found no face in any of the {len(ds)} images of {ds.name}")
    kept_arr = np.asarray(kept)
    return Predictions(
        np.concatenate(probs),
        ds.labels[kept_arr],
        kept_arr,
        len(ds),
        unreadable,
        no_face,
        time.perf_counter() - t0,
    )


def _check_sizes(batch_size: int, workers: int) -> None:
    """Before any image is decoded (not as a ``range()`` error after minutes of decoding)."""
    check_number(batch_size, "batch_size", flag="--batch-size", lo=1, integer=True, hint="e.g. 256")
    check_number(workers, "workers", flag="--workers", lo=1, integer=True, hint="e.g. 4")


def _predict(backend: Any, crops: np.ndarray, card: ModelCard, batch_size: int) -> np.ndarray:
    out = [
        backend.predict(normalize(crops[i : i + batch_size], card.preprocessing), batch_size)
        for i in range(0, len(crops), batch_size)
    ]
    return np.concatenate(out)
