"""The in-memory description of a labelled face data set: image ids, 40 labels, split, identity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..attributes import ATTRIBUTES
from ..errors import DataError

# CelebA's partition codes; -1 where a data set has no split for an image.
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class FaceDataset:
    """A labelled face data set, images not yet decoded (use ``dataclasses.replace`` to derive one).

    image_ids: paths relative to ``image_root`` (forward slashes).
    labels: N×40 uint8 in {0, 1}, columns in :data:`lsa_edge.ATTRIBUTES` order.
    partition: N int8, 0 train / 1 val / 2 test / -1 none.
    identity: N identities (strings), or None where the data set has none.
    aligned: True where images are already aligned to CelebA's geometry (``img_align_celeba``).
    """

    name: str
    layout: str
    image_root: Path
    image_ids: tuple[str, ...]
    labels: np.ndarray
    partition: np.ndarray
    identity: np.ndarray | None = None
    aligned: bool = False
    # Box of each image (x0, y0, x1, y1 as fractions) that corresponds to CelebA's aligned frame, for
    # unaligned data sets evaluated without a face detector; None = the whole image.
    frame: tuple[float, float, float, float] | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        if self.labels.shape != (n, len(ATTRIBUTES)):
            raise DataError(f"{self.name}: labels have shape {self.labels.shape}, expected ({n}, 40)")
        if self.partition.shape != (n,):
            raise DataError(f"{self.name}: partition has shape {self.partition.shape}, expected ({n},)")
        if self.identity is not None and len(self.identity) != n:
            raise DataError(f"{self.name}: {len(self.identity)} identities for {n} images")

    def __len__(self) -> int:
        return len(self.image_ids)

    def path(self, i: int) -> Path:
        return self.image_root / self.image_ids[i]

    def subset(self, index: Sequence[int] | np.ndarray, name: str | None = None) -> FaceDataset:
        idx = np.asarray(index, dtype=np.int64)
        return FaceDataset(
            name=name or self.name,
            layout=self.layout,
            image_root=self.image_root,
            image_ids=tuple(self.image_ids[i] for i in idx),
            labels=self.labels[idx],
            partition=self.partition[idx],
            identity=None if self.identity is None else self.identity[idx],
            aligned=self.aligned,
            frame=self.frame,
            notes=self.notes,
        )

    def split(self, name: str) -> FaceDataset:
        """The images of one split: ``train``, ``val``, ``test`` or ``all``."""
        if name == "all":
            return self
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; choose one of train, val, test, all")
        idx = np.flatnonzero(self.partition == SPLITS[name])
        if idx.size == 0:
            have = sorted(k for k, v in SPLITS.items() if (self.partition == v).any())
            hint = (
                " Use --val-fraction to carve an identity-disjoint validation set from train."
                if name == "val"
                else ""
            )
            raise DataError(
                f"{self.name} has no {name!r} split (it has: {', '.join(have) or 'no split at all'}).{hint}"
            )
        return self.subset(idx, name=f"{self.name}:{name}")

    def split_sizes(self) -> dict[str, int]:
        return {k: int((self.partition == v).sum()) for k, v in SPLITS.items()}

    def positive_rate(self) -> np.ndarray:
        """Fraction of positives per attribute (40,)."""
        return self.labels.mean(axis=0) if len(self) else np.zeros(len(ATTRIBUTES))
