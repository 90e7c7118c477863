"""Limited-label selection (SSPL's stride, a seeded fraction, a fixed count) and validation carving."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import ConfigError, DataError
from .records import SPLITS, FaceDataset


def select_labelled(
    train: FaceDataset,
    select_rate: int | None = None,
    fraction: float | None = None,
    count: int | None = None,
    seed: int = 0,
) -> FaceDataset:
    """The labelled subset of a training split.

    select_rate: every K-th image in file order (SSPL/SPL-Net's protocol; K=500 ≈ 0.2% of CelebA).
    fraction: a random fraction in (0, 1], drawn with ``seed``.
    count: a random fixed number of images, drawn with ``seed``.
    At most one may be given; none keeps every image.
    """
    chosen = [x is not None for x in (select_rate, fraction, count)]
    if sum(chosen) > 1:
        raise ConfigError("give at most one of select_rate, fraction and count")
    n = len(train)
    if select_rate is not None:
        if select_rate < 1:
            raise ConfigError(f"select_rate must be a positive integer, got {select_rate}")
        idx = np.arange(0, n, select_rate)
        how = f"every {select_rate}th image"
    elif fraction is not None:
        if not 0.0 < fraction <= 1.0:
            raise ConfigError(f"fraction must be in (0, 1], got {fraction}")
        k = round(n * fraction)
        idx = np.sort(np.random.default_rng(seed).permutation(n)[:k])
        how = f"a random {fraction:.2%} (seed {seed})"
    elif count is not None:
        if count < 1:
            raise ConfigError(f"count must be positive, got {count}")
        idx = np.sort(np.random.default_rng(seed).permutation(n)[: min(count, n)])
        how = f"{count} random images (seed {seed})"
    else:
        return train
    if idx.size == 0:
        raise DataError(
            f"the label selection ({how}) picked no image out of {n} training images; "
            "use a smaller --select-rate or a larger fraction/count"
        )
    return train.subset(idx, name=f"{train.name}[{how}]")


def carve_validation(ds: FaceDataset, fraction: float = 0.1, seed: int = 0) -> FaceDataset:
    """Move an identity-disjoint ``fraction`` of the train split to a new val split (for LFWA)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    train_idx = np.flatnonzero(ds.partition == SPLITS["train"])
    if train_idx.size < 2:
        raise DataError(f"{ds.name} has {train_idx.size} training images; cannot carve a validation set")
    groups = ds.identity[train_idx] if ds.identity is not None else train_idx.astype(str)
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    val_ids = set(rng.permutation(uniq)[: max(1, round(len(uniq) * fraction))].tolist())
    partition = ds.partition.copy()
    partition[train_idx[np.isin(groups, list(val_ids))]] = SPLITS["val"]
    note = f"val carved from train: {fraction:.0%} of identities, seed {seed}"
    return replace(ds, partition=partition, notes=(*ds.notes, note))
