"""Range and type checks for flags, config fields and the Python API's keyword arguments, with messages
that name the value the way it was given (``--flag``, config key or ``Call(name=...)``), the value received,
what is accepted and what to do. Used by the CLI, by the config dataclasses (TrainConfig, LSAConfig,
BuildConfig) and, through :mod:`lsa_edge._args`, by the public calls, so every door refuses the same
values with the same rule. Standard library only.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from typing import Any, cast

from .errors import ConfigError

__all__ = [
    "argument_error",
    "check_device",
    "check_field_types",
    "check_number",
    "parse_device",
    "shown",
    "user_path",
]


def shown(value: Any) -> str:
    """``repr`` of a received value with its type where the repr alone hides it, clipped."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real message
        text = f"<{type(value).__name__}>"
    if len(text) > 60:
        text = text[:57] + "..."
    if type(value) in (str, bool, int, float, type(None)):
        return text
    return f"{text} ({type(value).__name__})"


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool, integer: bool) -> str:
    kind = "an integer" if integer else "a finite number"
    lo_s = "" if lo is None else (f"> {lo:g}" if lo_open else f"≥ {lo:g}")
    hi_s = "" if hi is None else (f"< {hi:g}" if hi_open else f"≤ {hi:g}")
    if lo_s and hi_s:
        return f"{kind} {lo_s} and {hi_s}"
    return f"{kind} {lo_s or hi_s}".rstrip()


# What was wrong with a number, for the wording: the value's type, a NaN/±inf (or an int beyond any float),
# or a value outside the range.
_TYPE, _NOT_FINITE, _RANGE = "type", "not finite", "range"


def _fault(
    value: Any, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool, integer: bool
) -> tuple[int | float, str]:
    """(the value as an int or float, "") when it is acceptable, else (whatever it became, the fault)."""
    kind = numbers.Integral if integer else numbers.Real  # numpy scalars too
    if not isinstance(value, kind) or isinstance(value, bool):
        return math.nan, _TYPE
    x: int | float
    if integer:
        x = int(cast(numbers.Integral, value))  # always finite; compared exactly, however large
    else:
        try:
            x = float(value)
        except (OverflowError, ValueError, TypeError):  # an int beyond any float, an odd Real subclass
            x = math.nan
        if not math.isfinite(x):
            return x, _NOT_FINITE
    if lo is not None and (x <= lo if lo_open else x < lo):
        return x, _RANGE
    if hi is not None and (x >= hi if hi_open else x > hi):
        return x, _RANGE
    return x, ""


def argument_error(call: str, name: str, value: Any, accepted: str, remedy: str = "") -> ConfigError:
    """The Python API's wording for a bad keyword argument: ``Call(name=...): got <value>; accepted:
    <accepted>.`` then ``remedy`` (empty, or a sentence after a space)."""
    return ConfigError(f"{call}({name}=...): got {shown(value)}; accepted: {accepted}.{remedy}")


def _argument_remedy(value: Any, fault: str, integer: bool, lo: float | None, hint: str) -> str:
    """What to do about a bad number given as a keyword argument: convert text, pass a whole number, or
    pass a finite one; then ``hint``."""
    remedy = ""
    if isinstance(value, str):
        remedy = f" Convert text first, e.g. {'int' if integer else 'float'}(text)."
    elif integer and isinstance(value, float) and math.isfinite(value):
        remedy = f" Pass a whole number (e.g. {int(value) if lo is None else max(int(lo), int(value))})."
    elif fault == _NOT_FINITE:
        remedy = " NaN, infinity and numbers beyond a float are refused."
    return remedy + (f" {hint}" if hint else "")


def _option_message(value: Any, name: str, flag: str | None, want: str, fault: str, hint: str) -> str:
    """The CLI's and the config's wording: ``name (--flag) must be <range>, got <value>; <hint>``."""
    label = name if flag is None or flag == name else f"{name} ({flag})"
    got = f"{value!r} ({type(value).__name__})" if fault == _TYPE else repr(value)
    tail = f"; {hint}" if hint else ""
    return f"{label} must be {want}, got {got}{tail}"


def check_number(
    value: Any,
    name: str,
    *,
    flag: str | None = None,
    call: str | None = None,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
    optional: bool = False,
    accepted: str = "",
    hint: str = "",
) -> int | float | None:
    """``value`` as an int (``integer``) or a float, or a ConfigError unless it is a finite number (an int
    when ``integer``; numpy's too; never a bool or a string) in the range (``lo``/``hi``, each inclusive
    unless ``lo_open``/``hi_open``). None is returned as is when ``optional``.

    NaN and ±inf are refused: they pass every ``x <= 0`` test and turn into all-NaN results or failures far
    from the cause. The message names the value the way it was given:

    * a flag (``flag="--batch"``): ``batch (--batch) must be an integer ≥ 1, got 0; e.g. 256``;
    * a config key (neither ``flag`` nor ``call``): ``dropout must be a finite number ≥ 0 and < 1, got 1``;
    * a keyword argument of a Python call (``call="Pipeline"``):
      ``Pipeline(max_batch=...): got 0; accepted: <accepted>.`` and a remedy for text, fractions and NaN.

    ``accepted`` words the range for a call (default: the range in symbols); ``hint`` is what to do. With
    both ``call`` and ``flag``, the call wording is used.
    """
    if value is None and optional:
        return None
    x, fault = _fault(value, lo, hi, lo_open, hi_open, integer)
    if not fault:
        return x
    want = _range_text(lo, hi, lo_open, hi_open, integer)
    if call is not None:
        remedy = _argument_remedy(value, fault, integer, lo, hint)
        raise argument_error(call, name, value, accepted or want, remedy)
    raise ConfigError(_option_message(value, name, flag, want, fault, hint))


_CUDA_INDEX = re.compile(r"cuda:(\d{1,4})")
_DEVICE_FORMS = "auto, cpu, cuda, or cuda:N (N = the GPU's index, e.g. cuda:0)"


def parse_device(
    value: Any, name: str = "device", *, flag: str | None = None, mps: bool = False
) -> tuple[str, int | None] | None:
    """One rule for every door that takes a device: None/"auto" → None (the backend's own choice);
    "cpu" → ("cpu", None); "cuda" → ("cuda", None); "cuda:N" → ("cuda", N); "mps" → ("mps", None) where
    ``mps`` (training on a Mac). Case and surrounding spaces are ignored. Anything else is a ConfigError
    naming ``name`` (a flag, a config key, or a call such as ``"Pipeline(device=...):"``) and ``flag``,
    the value received, the accepted forms and the closest one."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return None
        if text in ("cpu", "cuda") or (mps and text == "mps"):
            return text, None
        m = _CUDA_INDEX.fullmatch(text)
        if m:
            return "cuda", int(m.group(1))
    import difflib

    forms = ["auto", "cpu", "cuda", "cuda:0"] + (["mps"] if mps else [])
    close = difflib.get_close_matches(str(value).strip().lower(), forms, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    accepted = _DEVICE_FORMS + (", or mps (Apple GPUs, training only)" if mps else "")
    label = name if flag is None or flag == name else f"{name} ({flag})"
    raise ConfigError(f"{label} {shown(value)} is not a device; accepted: {accepted}.{hint}")


def check_device(value: Any, flag: str = "--device") -> None:
    """A device flag or config value (``auto``, ``cpu``, ``cuda``, ``cuda:N``, or ``mps`` for training),
    refused now with the flag named, not as a torch RuntimeError later."""
    parse_device(value, flag, mps=True)


def user_path(text: str) -> str:
    """An argparse ``type`` for path flags: a ``~`` that reached us quoted (config files, systemd units,
    subprocess lists) is expanded as the shell would, as ``--source`` does, instead of creating a folder
    literally named ``~``."""
    return os.path.expanduser(text) if isinstance(text, str) else text


# ------------------------------------------------------------------------------------ config file types
_SIMPLE = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


def _split_union(ann: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in ann:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p]


def _match(ann: str, value: Any) -> tuple[bool | None, str]:
    """(True/False, the expected type in words) for a field annotation written as a string, or (None, "")
    for annotations this checker does not know (left to ``__post_init__``)."""
    options = _split_union(ann)
    if len(options) > 1:
        wants, unknown = [], False
        for opt in options:
            ok, want = _match(opt, value)
            if ok:
                return True, ""
            if ok is None:
                unknown = True
            if want:
                wants.append(want)
        return (None if unknown else False), " or ".join(wants)
    ann = ann.strip()
    if ann == "None":
        return value is None, "null"
    if ann == "Any":
        return True, ""
    if ann == "int":  # numbers.Integral: numpy integers too
        return isinstance(value, numbers.Integral) and not isinstance(value, bool), _SIMPLE["int"]
    if ann == "float":
        return isinstance(value, numbers.Real) and not isinstance(value, bool), _SIMPLE["float"]
    if ann == "str" or ann.startswith("Literal["):
        return isinstance(value, str), _SIMPLE["str"]
    if ann == "bool":
        return isinstance(value, bool), _SIMPLE["bool"]
    m = re.match(r"^(list|tuple)\[(.*)\]$", ann)
    if m:
        inner = _split_top(m.group(2))
        if not isinstance(value, (list, tuple)):
            return False, _list_words(m.group(1), inner)
        if m.group(1) == "tuple" and not (len(inner) == 2 and inner[1] == "..."):
            if len(value) != len(inner):
                return False, _list_words("tuple", inner)
            pairs = list(zip(inner, value))
        else:
            pairs = [(inner[0], v) for v in value]
        for a, v in pairs:
            ok, _ = _match(a, v)
            if ok is False:
                return False, _list_words(m.group(1), inner)
        return True, ""
    return None, ""


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def _list_words(kind: str, inner: list[str]) -> str:
    plural = {"int": "integers", "float": "numbers", "str": "strings", "bool": "booleans"}
    if kind == "tuple" and not (len(inner) == 2 and inner[1] == "..."):
        if len(set(inner)) == 1 and inner[0] in plural:
            return f"a list of {len(inner)} {plural[inner[0]]}"
        return f"a list of {len(inner)} values ({', '.join(_SIMPLE.get(a, a) for a in inner)})"
    return f"a list of {plural.get(inner[0], inner[0])}"


def check_field_types(cls: Any, values: dict[str, Any], where: str) -> None:
    """ConfigError naming ``where`` (a file or "training config"), the key, the value and the expected
    type, for each value of ``values`` that does not fit the dataclass ``cls``'s annotation. Nested config
    objects (annotations this checker does not know) are left to their own ``from_dict``."""
    import dataclasses

    types = {f.name: f.type for f in dataclasses.fields(cls)}
    for key, value in values.items():
        ann = types.get(key)
        if not isinstance(ann, str):
            continue
        ok, want = _match(ann, value)
        if ok is False:
            raise ConfigError(
                f"{where}: {key} must be {want}, got {value!r} ({type(value).__name__}); fix the value"
            )
