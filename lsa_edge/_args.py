"""Checks of the Python API's arguments: a wrong type or value is a :class:`ConfigError` naming the
argument, what was received and what is accepted — before any model is opened, never a TypeError from
deep inside (or at the first frame).

``where`` names the call (``"Pipeline"``, ``"FaceDetector"``) so the message says whose argument it is.
Imports nothing heavy.
"""

from __future__ import annotations

import os
from typing import Any, cast

from ._checks import argument_error, check_number, shown
from ._checks import parse_device as _parse_device

__all__ = [
    "DEVICES",
    "device_text",
    "integer",
    "max_faces",
    "min_face_size",
    "number",
    "parse_device",
    "path_like",
    "shown",
    "threads",
]

DEVICES = ("auto", "cpu", "cuda", "cuda:N")


def number(
    where: str,
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    accepted: str,
) -> float:
    """A finite real number (an int or float, numpy's too; never a bool or a string) within the bounds:
    :func:`~lsa_edge._checks.check_number` worded for the keyword argument ``name`` of the call ``where``."""
    x = check_number(
        value, name, call=where, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, accepted=accepted
    )
    return cast(float, x)


MAX_THREADS = 1024  # more intra-op threads than any machine lsa-edge runs on has cores: a mistake


def integer(where: str, name: str, value: Any, *, lo: int, accepted: str, hi: int | None = None) -> int:
    """An int (numpy's too; never a bool, a float such as 4.0 or 1.5, or a string) in [lo, hi]:
    :func:`~lsa_edge._checks.check_number` worded for the keyword argument ``name`` of the call ``where``."""
    x = check_number(value, name, call=where, lo=lo, hi=hi, integer=True, accepted=accepted)
    return cast(int, x)


# Arguments several public calls take (Pipeline hands them on to FaceDetector and select_backend, which
# are public too): one definition each — the rule and the message — whoever checks it.


def threads(where: str, value: Any) -> int:
    """ONNX Runtime intra-op threads: an int from 0 (its own choice) to :data:`MAX_THREADS`."""
    accepted = f"an int from 0 (ONNX Runtime's choice) to {MAX_THREADS}"
    return integer(where, "threads", value, lo=0, hi=MAX_THREADS, accepted=accepted)


def min_face_size(where: str, value: Any) -> float:
    """Faces whose larger box side is below this many frame pixels are dropped (0 keeps every face)."""
    return number(
        where, "min_face_size", value, lo=0.0, accepted="a number of pixels ≥ 0 (0 keeps every face)"
    )


def max_faces(where: str, value: Any) -> int | None:
    """At most this many faces a frame: None (every face) or an int ≥ 1."""
    if value is None:
        return None
    return integer(where, "max_faces", value, lo=1, accepted="None (every face) or an int ≥ 1")


def path_like(where: str, name: str, value: Any, accepted: str) -> None:
    """A str or os.PathLike (a pathlib.Path); bytes, numbers and the rest are refused."""
    if not isinstance(value, (str, os.PathLike)):
        raise argument_error(where, name, value, accepted)
    try:
        text = os.fspath(value)
    except Exception:  # a PathLike whose __fspath__ fails
        raise argument_error(where, name, value, accepted) from None
    if not isinstance(text, str):  # bytes from __fspath__
        raise argument_error(where, name, value, accepted)
    if not text.strip() or "\0" in text:
        raise argument_error(where, name, value, accepted, " The path is empty or holds a NUL character.")


def parse_device(value: Any, where: str = "device") -> tuple[str, int | None] | None:
    """None/"auto" → None (the backend's own choice); "cpu" → ("cpu", None); "cuda" → ("cuda", None);
    "cuda:N" → ("cuda", N). Anything else is a ConfigError listing the accepted forms
    (:func:`lsa_edge._checks.parse_device`, the one rule; ``where`` names the argument, e.g.
    ``"Pipeline(device=...):"``)."""
    return _parse_device(value, where)


def device_text(device: tuple[str, int | None] | None) -> str:
    if device is None:
        return "auto"
    kind, index = device
    return kind if index is None else f"{kind}:{index}"
