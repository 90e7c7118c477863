"""Readers for the three on-disk layouts, and layout detection.

- ``celeba``: CelebA's own files (``list_attr_celeba.txt``, ``list_eval_partition.txt``, optional
  ``identity_CelebA.txt``, images in ``img_align_celeba/``), flat or in the official
  ``Anno/``, ``Eval/``, ``Img/`` folders.
- ``csv``: ``attributes.csv`` (image_id + 40 columns of 0/1 or -1/1), optional ``partition.csv`` and
  ``identity.csv``, images under ``images/``.
- ``lfwa-mat``: LFWA's original release, ``lfw_att_40*.mat`` (MATLAB v7) and
  ``indices_train_test.mat`` (v7.3 = HDF5), images in an LFW folder beside them.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np

from .._lazy import require
from ..attributes import match_attribute_columns
from ..errors import DataError
from .records import FaceDataset

log = logging.getLogger(__name__)

FORMATS = ("celeba", "csv", "lfwa-mat")

# LFW deep-funneled (250×250): the box that matches CelebA's aligned frame (eyes at y ≈ 112 px, 40 px
# apart, centred at x ≈ 125 px — the same scale as CelebA's 178×218 frame, shifted).
LFW_FRAME = (0.146, 0.004, 0.858, 0.876)
_LFW_ID = re.compile(r"^([^/]+)/\1_\d{4}\.(jpg|png)$")


def _find(root: Path, names: list[str]) -> Path | None:
    for name in names:
        p = root / name
        if p.exists():
            return p
    return None


def _find_glob(root: Path, patterns: list[str]) -> Path | None:
    for pattern in patterns:
        hits = sorted(root.glob(pattern))
        if hits:
            return hits[0]
    return None


def detect_format(root: str | Path) -> str:
    """Which of :data:`FORMATS` the folder ``root`` holds; raises :class:`DataError` naming what it looked for."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder")
    if _find(root, ["list_attr_celeba.txt", "Anno/list_attr_celeba.txt"]):
        return "celeba"
    if (root / "attributes.csv").exists():
        return "csv"
    if _find_glob(root, ["lfw_att_40*.mat", "raw/lfw_att_40*.mat"]):
        return "lfwa-mat"
    raise DataError(
        f"cannot tell the layout of {root}: found none of list_attr_celeba.txt (CelebA), attributes.csv "
        "(generic CSV) or lfw_att_40*.mat (LFWA). Pass --format celeba|csv|lfwa-mat, or see the README's "
        "data section for the expected files."
    )


def load_dataset(root: str | Path, format: str | None = None) -> FaceDataset:
    """Read the labels and splits of the data set in ``root`` (layout detected unless ``format`` is given)."""
    root = Path(root)
    fmt = format or detect_format(root)
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    reader = {"celeba": _load_celeba, "csv": _load_csv, "lfwa-mat": _load_lfwa_mat}[fmt]
    ds = reader(root)
    log.info("loaded %s (%s): %d images, splits %s", ds.name, fmt, len(ds), ds.split_sizes())
    return ds


# --------------------------------------------------------------------------------------------- CelebA
def _read_lines(path: Path) -> list[str]:
    try:
        return [ln for ln in path.read_text().splitlines() if ln.strip()]
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not a text file ({err})") from err


def _read_pairs(path: Path) -> dict[str, str]:
    """Lines of "<file> <value>" (list_eval_partition.txt, identity_CelebA.txt)."""
    out: dict[str, str] = {}
    for lineno, ln in enumerate(_read_lines(path), start=1):
        parts = ln.split()
        if len(parts) < 2:
            raise DataError(f"{path}:{lineno}: expected '<file> <value>', got {ln.strip()!r}")
        out[parts[0]] = parts[1]
    return out


def _partition_code(value: str, where: str) -> int:
    if value not in ("0", "1", "2"):
        raise DataError(f"{where}: partition must be 0 (train), 1 (val) or 2 (test), got {value!r}")
    return int(value)


def _load_celeba(root: Path) -> FaceDataset:
    attr_file = _find(root, ["list_attr_celeba.txt", "Anno/list_attr_celeba.txt"])
    part_file = _find(root, ["list_eval_partition.txt", "Eval/list_eval_partition.txt"])
    id_file = _find(root, ["identity_CelebA.txt", "Anno/identity_CelebA.txt"])
    img_dir = _find(root, ["img_align_celeba", "Img/img_align_celeba"])
    if attr_file is None:
        raise DataError(f"{root}: list_attr_celeba.txt not found")
    if img_dir is None:
        raise DataError(
            f"{root}: image folder img_align_celeba/ not found (expected beside list_attr_celeba.txt or in Img/)"
        )
    lines = _read_lines(attr_file)
    if len(lines) < 3:
        raise DataError(f"{attr_file}: expected a count line, a names line and rows; got {len(lines)} lines")
    names = lines[1].split()
    order = match_attribute_columns(names, str(attr_file))
    ids, rows = [], []
    for lineno, ln in enumerate(lines[2:], start=3):
        parts = ln.split()
        if len(parts) != len(names) + 1:
            raise DataError(
                f"{attr_file}:{lineno}: expected a file name and {len(names)} values, got {len(parts)} fields"
            )
        ids.append(parts[0])
        rows.append(parts[1:])
    try:
        values = np.asarray(rows, dtype=np.int8)[:, order]
    except ValueError as err:
        raise DataError(f"{attr_file}: attribute values must be -1/1 or 0/1 ({err})") from err
    bad = sorted(set(np.unique(values).tolist()) - {-1, 0, 1})
    if bad:
        raise DataError(f"{attr_file}: attribute values must be -1/1 or 0/1, found {bad}")
    labels = (values > 0).astype(np.uint8)
    partition = np.full(len(ids), -1, dtype=np.int8)
    if part_file is not None:
        index = {name: i for i, name in enumerate(ids)}
        for name, p in _read_pairs(part_file).items():
            i = index.get(name)
            if i is not None:
                partition[i] = _partition_code(p, str(part_file))
    else:
        log.warning("%s: no list_eval_partition.txt; every image is unsplit", root)
    identity = None
    if id_file is not None:
        idmap = _read_pairs(id_file)
        identity = np.asarray([idmap.get(i, "") for i in ids], dtype=object)
    return FaceDataset(
        name=root.name,
        layout="celeba",
        image_root=img_dir,
        image_ids=tuple(ids),
        labels=labels,
        partition=partition,
        identity=identity,
        aligned=img_dir.name == "img_align_celeba",
    )


# ------------------------------------------------------------------------------------------------ CSV
def _read_csv(path: Path, columns: int = 2) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV file; every row must have at least ``columns`` fields."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # tolerate a spreadsheet's byte-order mark
            reader = csv.reader(f)
            try:
                header = next(reader)
            except StopIteration:
                raise DataError(f"{path} is empty") from None
            rows = [r for r in reader if r]
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path} is not a readable CSV text file ({err})") from err
    for k, r in enumerate(rows, start=2):
        if len(r) < columns:
            raise DataError(f"{path}:{k}: expected at least {columns} comma-separated fields, got {len(r)}")
    return [h.strip() for h in header], rows


def _rows_with_optional_header(path: Path, index: dict[str, int]) -> list[list[str]]:
    """Rows of partition.csv / identity.csv; the first line is data, not a header, when it names an image."""
    header, rows = _read_csv(path)
    return [header, *rows] if header and header[0] in index else rows


def _load_csv(root: Path) -> FaceDataset:
    attr_path = root / "attributes.csv"
    header, rows = _read_csv(attr_path, columns=41)
    if not header or header[0] != "image_id":
        raise DataError(f"{attr_path}: the first column must be 'image_id', got {header[:1]}")
    order = match_attribute_columns(header[1:], str(attr_path))
    if not rows:
        raise DataError(f"{attr_path} has a header but no rows")
    ids = [r[0] for r in rows]
    try:
        values = np.asarray([r[1:] for r in rows], dtype=np.float32)[:, order]
    except ValueError as err:
        raise DataError(
            f"{attr_path}: every row needs an image_id and 40 numbers 0/1 or -1/1 ({err})"
        ) from err
    bad = sorted(set(np.unique(values).tolist()) - {-1.0, 0.0, 1.0})
    if bad:
        raise DataError(f"{attr_path}: attribute values must be 0/1 or -1/1, found {bad[:5]}")
    labels = (values > 0).astype(np.uint8)
    partition = np.full(len(ids), -1, dtype=np.int8)
    index = {name: i for i, name in enumerate(ids)}
    if (root / "partition.csv").exists():
        prow = _rows_with_optional_header(root / "partition.csv", index)
        for r in prow:
            i = index.get(r[0])
            if i is not None:
                partition[i] = _partition_code(r[1].strip(), str(root / "partition.csv"))
    identity = None
    if (root / "identity.csv").exists():
        idmap = {r[0]: r[1] for r in _rows_with_optional_header(root / "identity.csv", index)}
        identity = np.asarray([idmap.get(i, "") for i in ids], dtype=object)
    image_root = root / "images"
    if not image_root.is_dir():
        raise DataError(f"{root}: image folder images/ not found beside attributes.csv")
    lfw = all(_LFW_ID.match(i) for i in ids[:50])
    if lfw:
        log.info("%s: LFW-style image names; without a detector, faces are cropped with LFW's frame", root)
    return FaceDataset(
        name=root.name,
        layout="csv",
        image_root=image_root,
        image_ids=tuple(ids),
        labels=labels,
        partition=partition,
        identity=identity,
        aligned=False,
        frame=LFW_FRAME if lfw else None,
    )


# ------------------------------------------------------------------------------------------- LFWA .mat
def _loadmat(path: Path) -> dict[str, np.ndarray]:
    """Read a MATLAB file: v7 with scipy, v7.3 (HDF5) with h5py."""
    with path.open("rb") as f:
        head = f.read(128)
    if b"MATLAB 7.3" in head or head[:8] == b"\x89HDF\r\n\x1a\n":
        h5py = require("h5py", "reading MATLAB v7.3 files")
        try:
            with h5py.File(path, "r") as f:
                return {k: _h5_value(h5py, f, f[k]) for k in f if isinstance(f[k], h5py.Dataset)}
        except (OSError, KeyError, ValueError) as err:
            raise DataError(f"{path}: cannot read this MATLAB v7.3 (HDF5) file ({err})") from err
    sio = require("scipy.io", "reading MATLAB v7 files")
    try:
        return {k: v for k, v in sio.loadmat(str(path)).items() if not k.startswith("__")}
    except Exception as err:  # scipy raises MatReadError, ValueError, NotImplementedError, ...
        raise DataError(f"{path}: cannot read this .mat file ({type(err).__name__}: {err})") from err


def _h5_value(h5py, f, ds) -> np.ndarray | str:
    """A MATLAB v7.3 variable: cell arrays are object references, char arrays uint16 codes, and every
    array is stored column-major (so transposed)."""
    data = ds[()]
    if ds.dtype == h5py.ref_dtype:
        out = np.empty(data.shape, dtype=object)
        for idx, ref in np.ndenumerate(data):
            out[idx] = _h5_value(h5py, f, f[ref])
        return out.T
    if ds.attrs.get("MATLAB_class", b"") in (b"char", "char"):
        return "".join(chr(c) for c in np.asarray(data).ravel())
    return np.asarray(data).T


def _mat_strings(cell: np.ndarray) -> list[str]:
    return [str(np.asarray(x).ravel()[0]) for x in np.asarray(cell).ravel()]


def _load_lfwa_mat(root: Path) -> FaceDataset:
    att = _find_glob(root, ["lfw_att_40*.mat", "raw/lfw_att_40*.mat"])
    if att is None:
        raise DataError(f"{root}: lfw_att_40*.mat not found")
    m = _loadmat(att)
    for key in ("AttrName", "label", "name"):
        if key not in m:
            raise DataError(f"{att}: expected variables AttrName, label, name; found {sorted(m)}")
    order = match_attribute_columns(_mat_strings(m["AttrName"]), str(att))
    labels = (np.asarray(m["label"]) > 0).astype(np.uint8)[:, order]
    ids = [n.replace("\\", "/") for n in _mat_strings(m["name"])]
    partition = np.full(len(ids), -1, dtype=np.int8)
    split_file = _find_glob(att.parent, ["indices_train_test.mat"]) or _find_glob(
        root, ["indices_train_test.mat"]
    )
    if split_file is not None:
        s = _loadmat(split_file)
        for key, code in (("indices_img_train", 0), ("indices_img_test", 2)):
            if key in s:
                idx = np.asarray(s[key]).astype(np.int64).ravel() - 1  # MATLAB is 1-based
                if idx.size and (idx.min() < 0 or idx.max() >= len(ids)):
                    raise DataError(f"{split_file}: {key} indexes outside 1..{len(ids)}")
                partition[idx] = code
    else:
        log.warning("%s: no indices_train_test.mat; every image is unsplit", root)
    image_root = None
    for base in (att.parent, att.parent.parent, root):
        image_root = _find(base, ["images", "lfw-deepfunneled", "lfw_funneled", "lfw"])
        if image_root is not None:
            break
    if image_root is None:
        raise DataError(
            f"{root}: no LFW image folder (images/, lfw-deepfunneled/, lfw/) beside {att.name} or its parent"
        )
    identity = np.asarray([i.split("/")[0] for i in ids], dtype=object)
    return FaceDataset(
        name=root.name,
        layout="lfwa-mat",
        image_root=image_root,
        image_ids=tuple(ids),
        labels=labels,
        partition=partition,
        identity=identity,
        aligned=False,
        frame=LFW_FRAME,
    )
