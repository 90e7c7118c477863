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


def make_lfwa_csv_copy(src: Path, dst: Path, per_split: int = 12, add_faceless: bool = True) -> Path:
    """A small generic-CSV data set of real, unaligned LFWA images (train and test), plus one image with no
    face in it (a flat grey picture) among the test images, for the pipeline's detection rate."""
    import csv

    import cv2

    with open(src / "attributes.csv") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    with open(src / "partition.csv") as f:
        part = dict(r for r in csv.reader(f) if r[0] != "image_id")
    chosen: list[list[str]] = []
    for split in ("0", "2"):
        chosen += [r for r in rows if part[r[0]] == split][:per_split]
    (dst / "images").mkdir(parents=True, exist_ok=True)
    for r in chosen:
        (dst / "images" / r[0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / "images" / r[0], dst / "images" / r[0])
    parts = [(r[0], part[r[0]]) for r in chosen]
    if add_faceless:
        cv2.imwrite(str(dst / "images" / "grey.jpg"), np.full((250, 250, 3), 128, np.uint8))
        chosen.append(["grey.jpg", *chosen[-1][1:]])
        parts.append(("grey.jpg", "2"))
    with open(dst / "attributes.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *chosen])
    with open(dst / "partition.csv", "w", newline="") as f:
        csv.writer(f).writerows([["image_id", "partition"], *parts])
    return dst
