"""Flag groups shared by several commands (same meaning everywhere) and console helpers."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .._checks import check_device, check_number, user_path
from .._fileio import check_writable, write_json_atomic
from ..data import FORMATS
from ..errors import ConfigError

__all__ = [
    "add_data_args",
    "add_device_args",
    "check_device",
    "check_json_out",
    "check_number",
    "check_workers",
    "console",
    "echo",
    "stdout_closed",
    "user_path",
    "write_json",
]


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        required=required,
        type=user_path,
        metavar="DIR",
        help="data set folder: CelebA, generic CSV or LFWA .mat layout",
    )
    g.add_argument("--format", choices=FORMATS, default=None, help="data layout (default: detected)")
    g.add_argument(
        "--workers", type=int, default=None, metavar="N", help="image decoding threads (default: 4)"
    )


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, metavar="DEV", help="auto | cpu | cuda | cuda:N (default: auto)")


def check_workers(workers: int | None, flag: str = "--workers") -> int:
    """The decoding threads (None = the default, 4); 0, negative or absurd values are refused, not
    silently replaced by the default."""
    if workers is None:
        return 4
    check_number(workers, "workers", flag=flag, lo=1, hi=256, integer=True, hint="leave it out for 4")
    return workers


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
    path = Path(os.path.expanduser(str(path)))
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


_STDOUT_CLOSED = False


def stdout_closed() -> int:
    """The reader of stdout went away (``| head``, ``| grep -m1``, a closed log pipe): point stdout at the
    null device so later output (and Python's flush at exit) cannot fail, and return the exit status, 0.

    0, not 141 (128 + SIGPIPE) or 1: the command still does all its work and writes every file it was
    asked for (--json, --plot, ...); only the display was cut short because the reader had what it wanted.
    A nonzero status would fail ``set -o pipefail`` scripts and ``cmd | head`` in CI for a run that
    succeeded."""
    global _STDOUT_CLOSED
    _STDOUT_CLOSED = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (tests, embedded)
        pass
    return 0


def echo(text: str) -> None:
    """A plain line on stdout that survives a closed pipe."""
    if _STDOUT_CLOSED:
        return
    try:
        print(text, flush=True)
    except BrokenPipeError:
        stdout_closed()


def console():
    """The CLI's console: the terminal's width, or 160 columns when output goes to a file or pipe.

    A closed stdout does not end the command (rich's default raises SystemExit(1) there, losing the
    files still to be written): output is dropped from then on and the command finishes its work."""
    from rich.console import Console

    class _CliConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            stdout_closed()

    return _CliConsole(width=None if sys.stdout.isatty() else 160, quiet=_STDOUT_CLOSED)


def pct(x: float) -> str:
    return f"{100 * x:.2f}"
