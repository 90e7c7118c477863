"""Decoding a data set split into memory as model-input crops, through the one preprocessing implementation.

Images are decoded once (threads; OpenCV releases the GIL), cropped with :func:`lsa_edge.preprocess.crop_aligned`
and kept as uint8: 43 KB per face at 128×112, so CelebA-10k takes 0.4 GB. Unreadable images are skipped
with a warning and counted. Training, evaluation and INT8 calibration all read faces through here.
numpy and OpenCV only.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..card import Preprocessing
from ..errors import DataError
from ..preprocess import crop_aligned
from .images import read_image
from .records import FaceDataset

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
