"""Flag groups shared by several commands (same meaning everywhere) and console helpers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..data import FORMATS


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=_json_default))
    return path


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
