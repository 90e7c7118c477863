"""Test helpers (imported by tests; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np


def make_celeba_copy(src: Path, dst: Path, n: int = 60, nested: bool = False) -> Path:
    """A small CelebA-layout folder with ``n`` real images (train/val/test all present)."""
    lines = (src / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1]
    part = dict(ln.split() for ln in (src / "list_eval_partition.txt").read_text().splitlines())
    ident = dict(ln.split() for ln in (src / "identity_CelebA.txt").read_text().splitlines())
    rows = lines[2:]
    # take images from every split
    by_split: dict[str, list[str]] = {"0": [], "1": [], "2": []}
    for r in rows:
        f = r.split()[0]
        if len(by_split[part[f]]) < n // 3:
            by_split[part[f]].append(r)
    chosen = [r for v in by_split.values() for r in v]
    anno = dst / "Anno" if nested else dst
    ev = dst / "Eval" if nested else dst
    img = dst / "Img" / "img_align_celeba" if nested else dst / "img_align_celeba"
    for d in (anno, ev, img):
        d.mkdir(parents=True, exist_ok=True)
    (anno / "list_attr_celeba.txt").write_text("\n".join([str(len(chosen)), names, *chosen]) + "\n")
    files = [r.split()[0] for r in chosen]
    (ev / "list_eval_partition.txt").write_text("\n".join(f"{f} {part[f]}" for f in files) + "\n")
    (anno / "identity_CelebA.txt").write_text("\n".join(f"{f} {ident[f]}" for f in files) + "\n")
    for f in files:
        shutil.copy(src / "img_align_celeba" / f, img / f)
    return dst


def random_image(h: int = 109, w: int = 89, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
