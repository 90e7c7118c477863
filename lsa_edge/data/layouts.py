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
import io
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from .._lazy import require
from ..attributes import ATTRIBUTES, match_attribute_columns
from ..errors import DataError
from ._checks import SHOW, binary_labels, parse_numbers, require_unique, warn_coverage
from ._matcheck import check_mat_v5
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
def _read_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a text file with their line numbers (1-based, as an editor counts)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not a UTF-8 text file ({err}); expected CelebA's plain-text lists"
        ) from err
    except OSError as err:
        raise DataError(f"{path} cannot be read ({err})") from err
    return [(k, ln) for k, ln in enumerate(text.split("\n"), start=1) if ln.strip()]


def _read_pairs(path: Path) -> tuple[dict[str, str], list[tuple[str, int]]]:
    """Lines of "<file> <value>" (list_eval_partition.txt, identity_CelebA.txt): the mapping, and each
    entry's (file, line). An image listed twice is an error."""
    entries: list[tuple[str, int]] = []
    values: list[str] = []
    for lineno, ln in _read_lines(path):
        parts = ln.split()
        if len(parts) < 2:
            raise DataError(f"{path}:{lineno}: expected '<file> <value>', got {ln.strip()[:80]!r}")
        entries.append((parts[0], lineno))
        values.append(parts[1])
    require_unique([e[0] for e in entries], [e[1] for e in entries], path)
    return {name: v for (name, _), v in zip(entries, values)}, entries


def _partition_code(value: str, where: str) -> int:
    if value not in ("0", "1", "2"):
        raise DataError(f"{where}: partition must be 0 (train), 1 (val) or 2 (test), got {value[:40]!r}")
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
        raise DataError(
            f"{attr_file}: expected a count line, a names line and rows; got {len(lines)} non-blank lines"
        )
    names = lines[1][1].split()
    order = match_attribute_columns(names, str(attr_file))
    ids, rows, where = [], [], []
    for lineno, ln in lines[2:]:
        parts = ln.split()
        if len(parts) != len(names) + 1:
            raise DataError(
                f"{attr_file}:{lineno}: expected a file name and {len(names)} values, got {len(parts)} fields"
            )
        ids.append(parts[0])
        rows.append(parts[1:])
        where.append(lineno)
    count = lines[0][1].strip()
    if not count.isascii() or not count.isdigit() or int(count) != len(ids):
        # CelebA's first line is the number of rows; a mismatch often means a truncated or edited file.
        log.warning(
            "%s: line %d says %r images but the file has %d rows; check that it is complete",
            attr_file,
            lines[0][0],
            count[:40],
            len(ids),
        )
    require_unique(ids, where, attr_file)
    labels = binary_labels(parse_numbers(rows, where, attr_file)[:, order], where, attr_file)
    partition = np.full(len(ids), -1, dtype=np.int8)
    if part_file is not None:
        index = {name: i for i, name in enumerate(ids)}
        split, entries = _read_pairs(part_file)
        lineno_of = dict(entries)
        for name, p in split.items():
            code = _partition_code(p, f"{part_file}:{lineno_of[name]}")
            i = index.get(name)
            if i is not None:
                partition[i] = code
        warn_coverage(part_file, "partition", entries, ids, attr_file)
    else:
        log.warning("%s: no list_eval_partition.txt; every image is unsplit", root)
    identity = None
    if id_file is not None:
        idmap, entries = _read_pairs(id_file)
        warn_coverage(id_file, "identity", entries, ids, attr_file)
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
def _read_csv(path: Path, columns: int = 2) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, rows and each row's line number of a CSV file; every row must have at least ``columns``
    fields (empty fields at the end of a row are dropped first)."""
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # tolerate a spreadsheet's byte-order mark
            reader = csv.reader(f)
            try:
                header = next(reader)
            except StopIteration:
                raise DataError(f"{path} is empty") from None
            for r in reader:
                if any(x.strip() for x in r):
                    rows.append(r)
                    lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path} is not a readable CSV text file ({err})") from err
    except OSError as err:
        raise DataError(f"{path} cannot be read ({err})") from err
    for r, at in zip(rows, lines):
        while len(r) > columns and not r[-1].strip():  # a trailing comma
            r.pop()
        if len(r) < columns:
            raise DataError(f"{path}:{at}: expected at least {columns} comma-separated fields, got {len(r)}")
        r[0] = r[0].strip()
        if not r[0]:
            raise DataError(f"{path}:{at}: the first field (the image id) is empty")
    header = [h.strip() for h in header]
    while len(header) > columns and not header[-1]:  # a trailing comma on the header line
        header.pop()
    return header, rows, lines


def _side_csv(path: Path, index: dict[str, int]) -> tuple[list[list[str]], list[int]]:
    """Rows of partition.csv / identity.csv with their lines; the first line is data, not a header, when
    it names an image. An image listed twice is an error."""
    header, rows, lines = _read_csv(path)
    if header and header[0] in index:
        if len(header) < 2:
            raise DataError(f"{path}:1: expected at least 2 comma-separated fields, got {len(header)}")
        rows, lines = [header, *rows], [1, *lines]
    require_unique([r[0] for r in rows], lines, path)
    return rows, lines


def _load_csv(root: Path) -> FaceDataset:
    attr_path = root / "attributes.csv"
    if not attr_path.is_file():
        raise DataError(
            f"{root}: attributes.csv not found (the csv layout is attributes.csv, images/, and optional "
            "partition.csv and identity.csv); check --data and --format"
        )
    header, rows, where = _read_csv(attr_path, columns=len(ATTRIBUTES) + 1)
    if not header or header[0] != "image_id":
        raise DataError(f"{attr_path}: the first column must be 'image_id', got {header[:1]}")
    order = match_attribute_columns(header[1:], str(attr_path))
    if not rows:
        raise DataError(f"{attr_path} has a header but no rows")
    for r, at in zip(rows, where):
        if len(r) != len(header):
            raise DataError(
                f"{attr_path}:{at}: {len(r)} fields, but the header has {len(header)} (image_id and 40 "
                "attributes); check for a stray comma or a missing value"
            )
    ids = [r[0] for r in rows]
    require_unique(ids, where, attr_path)
    values = parse_numbers([r[1:] for r in rows], where, attr_path)[:, order]
    labels = binary_labels(values, where, attr_path)
    partition = np.full(len(ids), -1, dtype=np.int8)
    index = {name: i for i, name in enumerate(ids)}
    part_path = root / "partition.csv"
    if part_path.exists():
        prow, plines = _side_csv(part_path, index)
        for r, at in zip(prow, plines):
            code = _partition_code(r[1].strip(), f"{part_path}:{at}")
            i = index.get(r[0])
            if i is not None:
                partition[i] = code
        warn_coverage(part_path, "partition", [(r[0], at) for r, at in zip(prow, plines)], ids, attr_path)
    identity = None
    id_path = root / "identity.csv"
    if id_path.exists():
        irow, ilines = _side_csv(id_path, index)
        warn_coverage(id_path, "identity", [(r[0], at) for r, at in zip(irow, ilines)], ids, attr_path)
        idmap = {r[0]: r[1] for r in irow}
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
def _loadmat(path: Path) -> dict[str, Any]:
    """Read a MATLAB file: v7 with scipy, v7.3 (HDF5) with h5py."""
    try:
        with path.open("rb") as f:
            head = f.read(128)
    except OSError as err:
        raise DataError(f"{path} cannot be read ({err})") from err
    if b"MATLAB 7.3" in head or head[:8] == b"\x89HDF\r\n\x1a\n":
        h5py = require("h5py", "reading MATLAB v7.3 files")
        try:
            with h5py.File(path, "r") as f:
                return {k: _h5_value(h5py, f, f[k]) for k in f if isinstance(f[k], h5py.Dataset)}
        except Exception as err:  # h5py raises OSError, KeyError, TypeError, ... on damaged or odd files
            raise DataError(
                f"{path}: cannot read this MATLAB v7.3 (HDF5) file ({type(err).__name__}: {err})"
            ) from err
    sio = require("scipy.io", "reading MATLAB v7 files")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path} cannot be read ({err})") from err
    check_mat_v5(data, path)  # scipy crashes the process on some damaged files (see _matcheck)
    try:
        return {k: v for k, v in sio.loadmat(io.BytesIO(data)).items() if not k.startswith("__")}
    except Exception as err:  # scipy raises MatReadError, ValueError, NotImplementedError, ...
        raise DataError(f"{path}: cannot read this .mat file ({type(err).__name__}: {err})") from err


def _h5_value(h5py, f, ds) -> np.ndarray | str:
    """A MATLAB v7.3 variable: cell arrays are object references, char arrays uint16 codes, and every
    array is stored column-major (so transposed)."""
    data = ds[()]
    if ds.dtype == h5py.ref_dtype:
        out = np.empty(np.shape(data), dtype=object)
        for idx, ref in np.ndenumerate(data):
            out[idx] = _h5_value(h5py, f, f[ref])
        return out.T
    if ds.attrs.get("MATLAB_class", b"") in (b"char", "char"):
        return "".join(chr(c) for c in np.asarray(data).ravel())
    return np.asarray(data).T


def _mat_strings(cell: object, path: Path, key: str) -> list[str]:
    """A MATLAB cell array of strings (1×K or K×1) as K Python strings."""
    arr = np.asarray(cell)
    if arr.dtype.kind == "U" and arr.ndim <= 1:  # a v7.3 char array already read as one string
        arr = arr.reshape(-1)
    out: list[str] = []
    for k, x in enumerate(arr.ravel(), start=1):
        v = np.asarray(x).ravel()
        if v.dtype.kind != "U" or v.size != 1:
            raise DataError(
                f"{path}: {key} must be a cell array of strings; entry {k} is {v.dtype} with {v.size} "
                "values. Re-save it from MATLAB as a cell array of char rows."
            )
        out.append(str(v[0]))
    return out


def _mat_labels(m: dict, n: int, path: Path, order: list[int]) -> np.ndarray:
    """LFWA's N×40 ``label`` matrix (0/1 or -1/1) in :data:`ATTRIBUTES` order."""
    arr = np.asarray(m["label"])
    if arr.dtype.kind not in "biuf" or arr.ndim != 2 or arr.shape != (n, len(ATTRIBUTES)):
        raise DataError(
            f"{path}: label must be a numeric {n}×{len(ATTRIBUTES)} matrix (one row per name, one column "
            f"per AttrName), got {arr.dtype} of shape {arr.shape}"
        )
    entries = list(range(1, n + 1))
    return binary_labels(arr.astype(np.float64)[:, order], entries, f"{path} (label row)")


def _mat_split(s: dict, key: str, n: int, path: Path) -> np.ndarray:
    """One of indices_train_test.mat's 1-based index lists as 0-based positions, checked."""
    arr = np.asarray(s[key])
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key} must be numeric indices, got {arr.dtype}")
    flat = arr.astype(np.float64).ravel()
    ok = np.isfinite(flat) & (flat == np.round(flat)) & (flat >= 1) & (flat <= n)
    if not ok.all():
        bad = flat[~ok][:SHOW].tolist()
        raise DataError(
            f"{path}: {key} must hold whole numbers in 1..{n} (the images of the label file); found "
            f"{bad} ({int((~ok).sum())} bad values)"
        )
    return flat.astype(np.int64) - 1  # MATLAB is 1-based


def _load_lfwa_mat(root: Path) -> FaceDataset:
    att = _find_glob(root, ["lfw_att_40*.mat", "raw/lfw_att_40*.mat"])
    if att is None:
        raise DataError(f"{root}: lfw_att_40*.mat not found")
    m = _loadmat(att)
    for key in ("AttrName", "label", "name"):
        if key not in m:
            raise DataError(f"{att}: expected variables AttrName, label, name; found {sorted(m)}")
    order = match_attribute_columns(_mat_strings(m["AttrName"], att, "AttrName"), str(att))
    ids = [n.replace("\\", "/") for n in _mat_strings(m["name"], att, "name")]
    require_unique(ids, range(1, len(ids) + 1), f"{att} (name)", unit="entry")
    labels = _mat_labels(m, len(ids), att, order)
    partition = np.full(len(ids), -1, dtype=np.int8)
    split_file = _find_glob(att.parent, ["indices_train_test.mat"]) or _find_glob(
        root, ["indices_train_test.mat"]
    )
    if split_file is not None:
        s = _loadmat(split_file)
        seen: dict[int, str] = {}
        for key, code in (("indices_img_train", 0), ("indices_img_test", 2)):
            if key not in s:
                continue
            idx = _mat_split(s, key, len(ids), split_file)
            uniq, counts = np.unique(idx, return_counts=True)
            twice = [int(i) for i in uniq[counts > 1]] + [int(i) for i in uniq if int(i) in seen]
            if twice:
                lists = sorted({seen.get(i, key) for i in twice} | {key})
                raise DataError(
                    f"{split_file}: {len(twice)} images are listed more than once in "
                    f"{' and '.join(lists)}, e.g. {', '.join(repr(ids[i]) for i in twice[:SHOW])} "
                    f"(1-based indices {', '.join(str(i + 1) for i in twice[:SHOW])}). Each image must be "
                    "in one split, once."
                )
            seen.update((int(i), key) for i in idx)
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
