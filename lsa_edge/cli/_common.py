"""Flag groups shared by several commands (same meaning everywhere) and console helpers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._fileio import check_writable, write_json_atomic
from ..data import FORMATS
from ..errors import ConfigError


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        required=required,
        metavar="DIR",
        help="data set folder: CelebA, generic CSV or LFWA .mat layout",
    )
    g.add_argument("--format", choices=FORMATS, default=None, help="data layout (default: detected)")
    g.add_argument(
        "--workers", type=int, default=None, metavar="N", help="image decoding threads (default: 4)"
    )


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, metavar="DEV", help="auto | cpu | cuda | cuda:N (default: auto)")


def write_json(path: str | Path, obj: Any) -> Path:
    """A command's JSON result, written atomically (a kill leaves the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, obj, default=_json_default)


def check_json_out(path: str | Path | None, flag: str = "--json", example: str = "result.json") -> None:
    """Before the long work: an output file (``--json PATH``, ``--plot``, ...) must be a file this process
    can write (not a folder)."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file name, e.g. {path / example}")
    check_writable(path, flag)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def console():
    """The CLI's console: the terminal's width, or 160 columns when output goes to a file or pipe."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def pct(x: float) -> str:
    return f"{100 * x:.2f}"
