"""Validation of ``open_source`` options: each source kind declares the options it accepts with a converter;
an unknown option or a bad value is a :class:`ConfigError` naming the option, the value, and what is accepted.

Values may come from keyword arguments or from a URI query (``csi://0?width=1920``), so converters accept
strings too. Imports the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable  # typing: Converter is subscripted at run time (Python 3.8)

from ..errors import ConfigError, unknown_choice

Converter = Callable[[Any], Any]


def positive_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("expected a positive integer")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError("expected a positive integer") from None
    if not f.is_integer() or f < 1:
        raise ValueError("expected a positive integer")
    return int(f)


def nonneg_int(v: Any) -> int:
    return 0 if str(v).strip() == "0" else positive_int(v)


def positive_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError("expected a positive number")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError("expected a positive number") from None
    if not (f > 0 and math.isfinite(f)):
        raise ValueError("expected a positive number")
    return f


def boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def optional(conv: Converter, *none_words: str) -> Converter:
    """``conv``, or None for None and for the given words (e.g. "forever")."""

    def convert(v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in none_words):
            return None
        return conv(v)

    return convert


def choice(*values: str) -> Converter:
    def convert(v: Any) -> str:
        s = str(v).strip().lower()
        if s not in values:
            raise ValueError(f"expected one of {', '.join(values)}")
        return s

    return convert


def text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError("expected a non-empty string")
    return v


def a_callable(v: Any) -> Any:
    if v is not None and not callable(v):
        raise ValueError("expected a callable")
    return v


def fourcc(v: Any) -> str:
    s = str(v)
    if len(s) != 4 or not s.isascii():
        raise ValueError("expected a four-character code such as MJPG or YUYV")
    return s


# Options every source accepts.
COMMON: dict[str, Converter] = {
    "max_frames": optional(positive_int),  # stop after this many frames
    "name": text,  # the name frames and logs carry (default: derived from the URI)
    "on_event": a_callable,  # called with each SourceEvent (from the reader thread for live sources)
}
# Options of live sources (camera, v4l2, csi, stream): loss detection and reconnection.
LIVE: dict[str, Converter] = {
    "read_timeout": positive_float,  # seconds without a frame before the source counts as lost (default 2)
    "reconnect_delay": positive_float,  # seconds before the first reconnection attempt (default 0.5)
    "reconnect_max_delay": positive_float,  # cap of the exponential backoff, seconds (default 10)
    "max_reconnects": optional(positive_int, "forever", "none", "inf"),  # attempts per loss; None: forever
    "open_timeout": positive_float,  # seconds an open may take (first and reconnections; streams 10, else 30)
    "capture_factory": a_callable,  # (target, api_preference, params) -> VideoCapture-like; default cv2.VideoCapture
}


def check_options(where: str, given: Mapping[str, Any], accepted: Mapping[str, Converter]) -> dict[str, Any]:
    """Convert ``given`` with the ``accepted`` converters; raise ConfigError for unknown names or bad values."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key not in accepted:
            raise ConfigError(
                f"{where}: " + unknown_choice("option", key, sorted(accepted)) + " (see lsa_edge.sources)"
            )
        try:
            out[key] = accepted[key](value)
        except ValueError as err:
            raise ConfigError(f"{where}: option {key}={value!r}: {err}") from None
    return out
