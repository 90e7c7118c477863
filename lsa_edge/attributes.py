"""The 40 CelebA face attributes, in CelebA's order (LFWA uses the same names and order)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from .errors import DataError

ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # fmt: skip

NUM_ATTRIBUTES = len(ATTRIBUTES)


def match_attribute_columns(names: Sequence[str], source: str = "the data set") -> list[int]:
    """Map the 40 canonical attributes to column positions in ``names``.

    Returns ``idx`` with ``names[idx[k]] == ATTRIBUTES[k]``; columns may come in any order. Raises
    :class:`DataError` naming what is missing, unexpected (with close matches) or duplicated.
    """
    names = [n.strip() for n in names]
    got, want = set(names), set(ATTRIBUTES)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if got == want and not dupes:
        return [names.index(a) for a in ATTRIBUTES]
    problems: list[str] = []
    missing = [n for n in ATTRIBUTES if n not in got]
    for n in (n for n in names if n not in want):
        close = difflib.get_close_matches(n, missing or ATTRIBUTES, n=1)
        problems.append(f"unexpected {n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if missing:
        problems.append("missing " + ", ".join(repr(n) for n in missing))
    if dupes:
        problems.append("duplicated " + ", ".join(repr(n) for n in dupes))
    raise DataError(
        f"{source} has {len(names)} attribute columns that do not match the 40 CelebA attributes: "
        + "; ".join(problems)
        + ". Rename the columns to CelebA's attribute names (see lsa_edge.ATTRIBUTES)."
    )
