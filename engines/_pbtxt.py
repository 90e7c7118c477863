"""A small writer of protobuf text format (Triton's ``config.pbtxt``), with no protobuf dependency.

A message is a list of ``(field, value)`` pairs, in order; a repeated field is the same name given again.
Values: ``str`` (quoted, escaped), :class:`Enum` (an enum constant, bare), ``bool``, ``int``, ``float``, a
list of numbers (a repeated scalar, ``[1, 2]``) or a nested message (a list of pairs). Standard library only.
"""

from __future__ import annotations

from typing import Any, List, Tuple

Message = List[Tuple[str, Any]]


class Enum(str):
    """An enum constant (``TYPE_FP32``, ``KIND_GPU``): written without quotes."""


def quote(text: str) -> str:
    """A text-format string literal (ASCII; other characters as octal-escaped UTF-8 bytes)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} in protobuf text format")


def _is_message(value: Any) -> bool:
    return (
        isinstance(value, list) and all(isinstance(v, tuple) and len(v) == 2 for v in value) and bool(value)
    )


def render(message: Message, indent: int = 0) -> str:
    """``message`` as protobuf text format, two spaces per level."""
    pad = "  " * indent
    lines = []
    for name, value in message:
        if _is_message(value):
            lines.append(f"{pad}{name} {{")
            lines.append(render(value, indent + 1))
            lines.append(f"{pad}}}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{pad}{name}: [ {', '.join(_scalar(v) for v in value)} ]")
        else:
            lines.append(f"{pad}{name}: {_scalar(value)}")
    return "\n".join(lines)
