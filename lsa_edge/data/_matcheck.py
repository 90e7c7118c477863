"""A structural check of MATLAB v5/v7 (.mat) files before scipy reads them.

scipy.io.loadmat crashes the whole process (SIGSEGV, no exception, no message) on some damaged files:
one flipped byte that turns a tag's data-type code into an unknown one is enough (found by the property
tests in tests/test_data_properties.py). A crash cannot be caught, so the tag tree is walked here first:
every tag must carry a known data type and a size that fits inside its parent, and compressed elements
must inflate. This checks structure only; scipy still interprets the contents.

Standard library only (zlib, struct).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from ..errors import DataError

# MATLAB's data types (miINT8 ... miUTF32); 8, 10 and 11 are reserved.
_TYPES = frozenset([1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 16, 17, 18])
_MATRIX, _COMPRESSED = 14, 15
_MAX_DEPTH = 64  # cells of cells; MATLAB files are far shallower
_CONTAINERS = (1, 2, 3)  # cell, struct, object: one child element (at least 8 bytes) per entry
_SPARSE = 5
_ARRAYS = frozenset(range(4, 16))  # char, sparse, double ... uint64
_MAX_INFLATED = 1 << 31  # a compressed variable larger than 2 GiB is not a label file


def check_mat_v5(data: bytes, path: Path | str) -> None:
    """Raise :class:`DataError` when ``data`` (a whole v5/v7 .mat file) is not a well-formed tag tree.
    Files that are not v5 (MATLAB v4: a zero in the first four bytes) are left to scipy."""
    if len(data) >= 4 and 0 in data[:4]:
        return
    if len(data) < 128:
        raise DataError(
            f"{path}: {len(data)} bytes, shorter than a MATLAB file header (128); the file is truncated or "
            "not a .mat file. Re-download or re-save it."
        )
    order = {b"IM": "<", b"MI": ">"}.get(data[126:128])
    if order is None:
        raise DataError(f"{path}: not a MATLAB v5/v7 file (no endian mark in its header)")
    _walk(memoryview(data), 128, len(data), order, 0, path, "byte {}")


def _bad(path: Path | str, where: str, what: str) -> DataError:
    return DataError(
        f"{path}: damaged MATLAB file: {what} at {where}. Re-download the file or re-save it from MATLAB "
        "(save -v7)."
    )


def _walk(buf: memoryview, pos: int, end: int, order: str, depth: int, path: Path | str, where: str) -> None:
    """Check the elements in buf[pos:end]; ``where`` formats an offset for messages."""
    top = depth == 0
    if depth > _MAX_DEPTH:
        raise _bad(path, where.format(pos), f"elements nested more than {_MAX_DEPTH} deep")
    while pos < end:
        if end - pos < 8:
            if top:
                raise _bad(path, where.format(pos), f"{end - pos} bytes left over after the last variable")
            return  # padding at the end of a matrix
        word, nbytes = struct.unpack_from(order + "II", buf, pos)
        if word >> 16:  # a small data element: type and size packed in the first word, data in the second
            mdtype, nbytes = word & 0xFFFF, word >> 16
            if mdtype not in _TYPES or nbytes > 4:
                raise _bad(path, where.format(pos), f"a small element of type {mdtype} and {nbytes} bytes")
            pos += 8
            continue
        mdtype, start = word, pos + 8
        if mdtype not in _TYPES:
            raise _bad(path, where.format(pos), f"unknown data type {mdtype}")
        if nbytes > end - start:
            raise _bad(
                path, where.format(pos), f"an element of {nbytes} bytes where only {end - start} remain"
            )
        if mdtype == _COMPRESSED:
            try:
                inflater = zlib.decompressobj()
                inner = inflater.decompress(bytes(buf[start : start + nbytes]), _MAX_INFLATED)
            except zlib.error as err:
                raise _bad(
                    path, where.format(pos), f"a compressed variable that does not inflate ({err})"
                ) from None
            inside = f"byte {{}} of the variable compressed at byte {pos}"
            _walk(memoryview(inner), 0, len(inner), order, depth + 1, path, inside)
            pos = start + nbytes  # compressed elements are not padded
        else:
            if mdtype == _MATRIX:
                _check_matrix(buf, start, nbytes, order, path, where.format(pos))
                _walk(buf, start, start + nbytes, order, depth + 1, path, where)
            pos = start + (nbytes + 7) // 8 * 8


def _children(buf: memoryview, start: int, end: int, order: str) -> list[tuple[int, int]]:
    """(data type, size) of the elements directly inside buf[start:end]; stops at anything malformed
    (the walk reports it)."""
    out: list[tuple[int, int]] = []
    pos = start
    while end - pos >= 8:
        word, nbytes = struct.unpack_from(order + "II", buf, pos)
        if word >> 16:
            out.append((word & 0xFFFF, word >> 16))
            pos += 8
            continue
        if nbytes > end - pos - 8:
            break
        out.append((word, nbytes))
        pos += 8 + (nbytes + 7) // 8 * 8
    return out


def _check_matrix(buf: memoryview, start: int, nbytes: int, order: str, path: Path | str, where: str) -> None:
    """What scipy trusts without checking (each case crashed or hung it, found by fuzzing):

    - a cell, struct or object array cannot have more entries than its bytes hold child elements
      (scipy loops over the declared dimensions: a flipped byte made it spin for minutes);
    - a numeric, char or sparse array must hold all its parts (a complex flag on an array without an
      imaginary part made scipy read past the end: SIGSEGV).
    """
    if nbytes == 0:
        return  # an empty matrix
    kids = _children(buf, start, start + nbytes, order)
    if len(kids) < 2 or kids[0] != (6, 8) or kids[1][0] != 5:
        raise _bad(path, where, "a matrix without its array flags and dimensions")
    flags = struct.unpack_from(order + "I", buf, start + 8)[0]
    cls, is_complex = flags & 0xFF, bool(flags & 0x800)
    if cls in _CONTAINERS:
        dbytes = kids[1][1]
        if dbytes % 4 or not 8 <= dbytes <= nbytes - 24:
            raise _bad(path, where, f"a cell or struct array with {dbytes} bytes of dimensions")
        dims = struct.unpack_from(order + f"{dbytes // 4}i", buf, start + 24)
        entries = 1
        for d in dims:
            if d < 0:
                raise _bad(path, where, f"negative dimensions {list(dims)}")
            entries *= d
        if entries > nbytes // 8:
            shape = "x".join(map(str, dims))
            raise _bad(path, where, f"a cell or struct array of {shape} entries in {nbytes} bytes")
    elif cls in _ARRAYS:
        # flags, dimensions, name, then the data: real [imaginary]; sparse: row indices, column starts first
        need = 3 + (2 if cls == _SPARSE else 0) + (2 if is_complex else 1)
        if len(kids) < need:
            what = "imaginary part" if is_complex and len(kids) == need - 1 else "data"
            raise _bad(path, where, f"an array of class {cls} without its {what}")
