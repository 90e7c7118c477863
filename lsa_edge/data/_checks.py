"""Checks shared by the layout readers: one row per image, label values, and how the side files
(partition, identity) cover the attribute rows.

What is an error and what is a warning:

- Errors (:class:`DataError`) where the result would silently depend on row order or on a guess: an
  image id given twice (today the later row would win, changing labels and splits), a label value that
  is neither -1, 0 nor 1 (2, 0.5, NaN, "yes": a threshold would be a guess), a split entry that is not
  0/1/2.
- Warnings (logged, with counts) where every value has one reading and the data set still loads: files
  mixing the -1/1 and 0/1 encodings (-1 and 0 are both negative, but a 0 in a -1/1 file often means
  "not annotated" and is then trained as a negative), partition or identity entries naming images
  without an attribute row (ignored), and attribute rows without a split or identity entry.

numpy and the standard library only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..attributes import ATTRIBUTES
from ..errors import DataError

log = logging.getLogger(__name__)

# How many offending ids / lines a message shows before "and N more".
SHOW = 5


def _more(total: int) -> str:
    return f" (and {total - SHOW} more)" if total > SHOW else ""


def require_unique(ids: Sequence[str], lines: Sequence[int], path: Path | str, unit: str = "line") -> None:
    """Raise :class:`DataError` when an image id occurs more than once. ``lines``: where each id was
    read (line numbers, or 1-based entry numbers with ``unit="entry"``)."""
    first: dict[str, int] = {}
    dupes: dict[str, list[int]] = {}
    for name, at in zip(ids, lines):
        if name in first:
            dupes.setdefault(name, [first[name]]).append(at)
        else:
            first[name] = at
    if not dupes:
        return
    units = "entries" if unit == "entry" else unit + "s"
    shown = "; ".join(
        f"{name!r} on {units} {', '.join(str(x) for x in where)}"
        for name, where in list(dupes.items())[:SHOW]
    )
    extra = sum(len(w) - 1 for w in dupes.values())
    extra_units = units if extra > 1 else unit
    raise DataError(
        f"{path}: {len(dupes)} image id(s) appear more than once ({extra} extra {extra_units}): {shown}"
        f"{_more(len(dupes))}. Each image must appear exactly once (otherwise the later {unit} would "
        f"silently win); remove or merge the duplicate {units}."
    )


def parse_numbers(rows: Sequence[Sequence[str]], lines: Sequence[int], path: Path | str) -> np.ndarray:
    """Rows of equally many number strings -> float64 array; a token that is not a number is a
    :class:`DataError` naming its line."""
    try:
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    except (ValueError, OverflowError, TypeError):
        pass
    for row, at in zip(rows, lines):
        for k, tok in enumerate(row):
            try:
                float(tok)
            except (ValueError, OverflowError, TypeError):
                raise DataError(
                    f"{path}:{at}: value {k + 1} is {str(tok)[:40]!r}, not a number; attribute values "
                    "must be -1/1 or 0/1"
                ) from None
    raise DataError(f"{path}: the attribute values could not be read as numbers")  # pragma: no cover


def binary_labels(values: np.ndarray, lines: Sequence[int], path: Path | str) -> np.ndarray:
    """N×40 attribute values (columns in :data:`ATTRIBUTES` order) -> N×40 uint8 in {0, 1}.

    -1/1 and 0/1 are both accepted (value > 0 is positive). Anything else is an error (there is no safe
    threshold for 2, 0.5 or NaN); a file mixing -1 and 0 loads with a warning giving the counts.
    """
    with np.errstate(invalid="ignore"):
        bad = ~np.isin(values, (-1.0, 0.0, 1.0))
    if bad.any():
        rows, cols = np.nonzero(bad)
        r, c = int(rows[0]), int(cols[0])
        found = sorted({f"{float(v):g}" for v in values[bad][:1000].tolist()})[:SHOW]
        name = ATTRIBUTES[c] if values.shape[1] == len(ATTRIBUTES) else f"column {c + 1}"
        raise DataError(
            f"{path}:{lines[r]}: attribute values must be -1/1 or 0/1; {name} is {float(values[r, c]):g} "
            f"there ({int(bad.sum())} such values in {len(set(rows.tolist()))} rows; found "
            f"{', '.join(found)}). Convert the labels to -1/1 or 0/1 (no probabilities, no missing values)."
        )
    neg, zero = values == -1.0, values == 0.0
    if neg.any() and zero.any():
        zero_rows = np.flatnonzero(zero.any(axis=1))
        neg_rows = np.flatnonzero(neg.any(axis=1))
        log.warning(
            "%s: attribute values mix the -1/1 and 0/1 encodings: %d values are -1 (in %d rows), %d are 0 "
            "(in %d rows, first on line %d), %d are 1. Both -1 and 0 are read as negative; if 0 means "
            "'unknown' here those labels are wrong. Use one encoding throughout.",
            path,
            int(neg.sum()),
            len(neg_rows),
            int(zero.sum()),
            len(zero_rows),
            lines[int(zero_rows[0])],
            int((values == 1.0).sum()),
        )
    return (values > 0).astype(np.uint8)


def warn_coverage(
    side: Path | str,
    what: str,
    entries: Sequence[tuple[str, int]],
    ids: Sequence[str],
    attr_path: Path | str,
) -> set[str]:
    """Warn (with counts) about ``entries`` of a side file (``(image id, line)``) that name no attribute
    row, and about attribute rows the side file does not cover. Returns the covered ids."""
    known = set(ids)
    orphans = [(name, at) for name, at in entries if name not in known]
    if orphans:
        shown = ", ".join(f"{name!r} (line {at})" for name, at in orphans[:SHOW])
        log.warning(
            "%s: %d of its %d entries name images with no row in %s; they are ignored: %s%s",
            side,
            len(orphans),
            len(entries),
            attr_path,
            shown,
            _more(len(orphans)),
        )
    covered = {name for name, _ in entries} & known
    missing = [i for i in ids if i not in covered]
    if missing:
        log.warning(
            "%s: %d of the %d images in %s have no %s entry%s: %s%s",
            side,
            len(missing),
            len(ids),
            attr_path,
            what,
            " and are in no split (not used by --split train/val/test)" if what == "partition" else "",
            ", ".join(repr(m) for m in missing[:SHOW]),
            _more(len(missing)),
        )
    return covered
