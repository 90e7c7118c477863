"""Flag groups shared by several commands (same meaning everywhere) and console helpers."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Tuple, Union

from .._checks import check_device, check_number, user_path
from .._fileio import check_writable, is_special, refuse_overwrite, same_or_inside, write_json_atomic
from ..data import FORMATS
from ..errors import ConfigError

__all__ = [
    "add_data_args",
    "add_device_args",
    "check_device",
    "check_distinct",
    "check_json_out",
    "check_number",
    "check_output",
    "check_workers",
    "console",
    "data_on_stdout",
    "default_workers",
    "echo",
    "model_inputs",
    "stdout_closed",
    "user_path",
    "write_json",
    "writes_to_stdout",
]


def default_workers() -> int:
    """The decoding threads when ``--workers`` is left out (eval, compare): :class:`EvalOptions`' default."""
    from ..evaluation import EvalOptions  # numpy only; imported when a parser is built, not with the CLI

    return int(EvalOptions.workers)  # the dataclass field's default, read from the class


def add_data_args(p: argparse.ArgumentParser, required: bool = True, workers: int | None = None) -> None:
    """--data, --format and --workers; ``workers``: the default the help shows (the command's own config
    dataclass's; None: :func:`default_workers`)."""
    shown = default_workers() if workers is None else workers
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
        "--workers", type=int, default=None, metavar="N", help=f"image decoding threads (default: {shown})"
    )


def add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, metavar="DEV", help="auto | cpu | cuda | cuda:N (default: auto)")


def check_workers(workers: int | None, flag: str = "--workers") -> int:
    """The decoding threads (None = the default, :func:`default_workers`); 0, negative or absurd values are
    refused, not silently replaced by the default."""
    default = default_workers()
    if workers is None:
        return default
    check_number(
        workers, "workers", flag=flag, lo=1, hi=256, integer=True, hint=f"leave it out for {default}"
    )
    return workers


def write_json(path: str | Path, obj: Any) -> Path:
    """A command's JSON result, written atomically (a kill leaves the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, obj, default=_json_default)


Inputs = Iterable[Tuple[Union[str, "os.PathLike[str]", None], str]]


def check_output(
    flag: str,
    path: str | os.PathLike[str] | None,
    inputs: Inputs = (),
    overwrite: bool | None = None,
    example: str = "result.json",
    folder: bool = False,
    new_inside: bool = False,
) -> Path | None:
    """Before the long work: an output (``--json PATH``, ``--plot``, ``--save``, ...) must not be one of
    the command's inputs, and must be a place this process can write. Returns the path (``~`` expanded).

    inputs: ``(path, what)`` pairs (None and paths that do not exist are skipped): the output may be
    neither an input file (a hard link or a symlink to it included) nor inside an input folder (a data
    set, a model package or run folder, a source folder). overwrite: None lets an existing output file be
    replaced (atomically: a JSON result being refreshed); False refuses an existing file or a non-empty
    folder (name the flag that allows it in the message: ``--overwrite``); True allows both. folder: the
    output is a folder (else a folder where a file is expected is refused). new_inside: a file that does
    not exist yet may be created inside an input folder (``eval runs/x --json runs/x/test.json``): it
    replaces nothing (``run`` keeps it False: a new file in a folder being read mixes with the source). A
    device or FIFO
    (``/dev/stdout``, ``| jq``) is written directly and only needs to be writable.
    """
    if path is None:
        return None
    out = Path(os.path.expanduser(str(path)))
    if is_special(out):
        check_writable(out, flag)
        if writes_to_stdout(out):
            data_on_stdout()
        return out
    for src, what in inputs:
        if src is None:
            continue
        src = Path(os.path.expanduser(str(src)))
        if not (src.exists() or src.is_symlink()) or not same_or_inside(out, src):
            continue
        if new_inside and src.is_dir() and out.resolve() != src.resolve() and not out.exists():
            continue  # a new result file beside a run's checkpoints or a data set's files replaces nothing
        if out.resolve() == src.resolve() or not src.is_dir():
            where, fix = "is", "Choose another path"
        else:
            where, fix = "lies inside", f"Choose a path outside {src}"
        raise ConfigError(
            f"{flag} {out} {where} {what} {src}: writing there would replace or mix with what is being "
            f"read. {fix}"
        )
    if not folder and out.is_dir():
        raise ConfigError(f"{flag} {out} is a folder; give a file name, e.g. {out / example}")
    if overwrite is not None:
        try:
            refuse_overwrite(out, overwrite)
        except ConfigError as err:  # "OUT exists; ..." or "the folder OUT is not empty; ..."
            raise ConfigError(f"{flag}: {err}") from None
    check_writable(out, flag)
    return out


def check_json_out(
    path: str | Path | None, flag: str = "--json", example: str = "result.json", inputs: Inputs = ()
) -> None:
    """:func:`check_output` for a result file that may replace an earlier one (never an input); a new file
    inside an input folder (a run folder, a data set) is fine."""
    check_output(flag, path, inputs, example=example, new_inside=True)


def check_distinct(*outputs: tuple[str, str | os.PathLike[str] | None]) -> None:
    """Two output flags naming the same file would overwrite each other: refuse it."""
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if path is None or is_special(path):
            continue
        key = os.path.realpath(os.path.expanduser(str(path)))
        if key in seen:
            raise ConfigError(f"{seen[key]} and {flag} are both {path}; give them different paths")
        seen[key] = flag


def model_inputs(
    *models: str | os.PathLike[str] | None, detector: str | None = None
) -> list[tuple[Any, str]]:
    """The inputs a model flag reads: each model (the shipped package where None) and a detector ONNX."""
    from ..package import DEFAULT_MODEL_DIR

    found: list[tuple[Any, str]] = [(DEFAULT_MODEL_DIR if m is None else m, "the model") for m in models]
    if detector and detector not in ("full", "short"):
        found.append((detector, "the detector"))
    return found


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
        print(text, flush=True, file=sys.stderr if _DATA_ON_STDOUT else sys.stdout)
    except BrokenPipeError:
        stdout_closed()


def writes_to_stdout(path: str | os.PathLike[str] | None) -> bool:
    """True when an output flag names this process's stdout (``--json /dev/stdout | jq``): the console then
    writes to stderr, so the stream holds only the data."""
    if not path:
        return False
    name = str(path)
    if name in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
        return True
    try:
        a, b = os.stat(name), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and not os.path.isdir(name)


_DATA_ON_STDOUT = False


def data_on_stdout(on: bool = True) -> None:
    """An output flag names stdout (``--json /dev/stdout | jq``): from now on the console and :func:`echo`
    write to stderr, so stdout carries only the data. ``main`` resets it for each command."""
    global _DATA_ON_STDOUT
    _DATA_ON_STDOUT = on


def console():
    """The CLI's console: the terminal's width, or 160 columns when output goes to a file or pipe; stderr
    when stdout carries a command's data (:func:`data_on_stdout`).

    A closed stdout does not end the command (rich's default raises SystemExit(1) there, losing the
    files still to be written): output is dropped from then on and the command finishes its work."""
    from rich.console import Console

    class _CliConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            stdout_closed()

    if _DATA_ON_STDOUT:
        return Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    return _CliConsole(width=None if sys.stdout.isatty() else 160, quiet=_STDOUT_CLOSED)


def pct(x: float) -> str:
    return f"{100 * x:.2f}"
