"""The ``lsa-edge`` command. One module per command, each with ``register(subparsers)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``--help`` is instant and torch-free.

Exit codes: 0 success (also when stdout's reader went away, ``| head``: every file was still written),
1 runtime failure, 2 usage error, 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP (the current frame finished and
the outputs closed).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .. import __version__
from .._signals import GracefulStop, Terminated, reraise_as_interruption
from ..errors import ConfigError, LsaEdgeError

# The public names: main (the command itself) and setup_logging (scripts and benchmarks log as the CLI does).
__all__ = ["COMMANDS", "build_parser", "commands", "main", "os_error_message", "setup_logging"]

# In the order of the help text: the runtime first, then building, then training. The modules are imported
# by main(), inside its Ctrl-C handling (they pull in numpy); ``COMMANDS`` gives the modules themselves.
_COMMAND_MODULES = (
    "run",
    "eval",
    "bench",
    "serve",
    "build",
    "check",
    "compare",
    "export",
    "train",
    "prior",
    "doctor",
    "detector",
)


def commands() -> tuple[ModuleType, ...]:
    """The command modules, each with ``register(subparsers)`` and ``run(args) -> int``."""
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in _COMMAND_MODULES)


def __getattr__(name: str) -> Any:
    if name == "COMMANDS":
        return commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lsa-edge",
        description="Face attributes with language-driven spatial-semantic cross-attention: run, build, train.",
        epilog="Run 'lsa-edge COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"lsa-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in commands():
        cmd.register(sub)
    return parser


def setup_logging(verbose: int, quiet: bool) -> None:
    """Logging as the CLI does it (for scripts and benchmarks too): INFO, DEBUG with ``verbose`` ≥ 2,
    WARNING with ``quiet``; rich lines on a terminal, timestamped plain lines into a file or a pipe."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, show_time=False, markup=False, rich_tracebacks=False)
        fmt = "%(message)s"
    else:  # logs to a file or a pipe: plain lines that do not wrap
        handler, fmt = logging.StreamHandler(), "%(asctime)s %(levelname)s %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)
    for noisy in ("transformers", "urllib3", "matplotlib", "PIL", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


_NEXT_STEP = {
    errno.ENOSPC: "free some space on that disk or choose a path on another one",
    errno.EDQUOT: "free some space (your disk quota is full) or choose a path on another disk",
    errno.EACCES: "check its permissions or choose a path you can write to",
    errno.EPERM: "check its permissions or choose a path you can write to",
    errno.EROFS: "the disk is read-only: choose a path on a writable one",
    errno.ENOENT: "check that the path exists",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EISDIR: "it is a folder: give a file name",
    errno.EIO: "the disk reported an error: check it, or choose a path on another one",
}


def os_error_message(command: str, err: OSError) -> str:
    """One line for an OSError that ended a command: the file(s), the system's reason, what to do."""
    reason = err.strerror or str(err) or type(err).__name__
    where = ""
    if err.filename is not None:
        where = f" {err.filename}"
        if getattr(err, "filename2", None) is not None:
            where += f" -> {err.filename2}"
        where += ":"
    step = _NEXT_STEP.get(err.errno or 0, "check the path, the free space and the permissions, then retry")
    return f"{command}:{where} {reason}. Nothing is wrong with lsa-edge here: {step}"


def _parser() -> argparse.ArgumentParser:
    """:func:`build_parser`, which imports the command modules (numpy among them). A signal in the middle of
    an extension module's import can surface as that module's ImportError (numpy turns a KeyboardInterrupt
    into one); reported as the interruption it was, not as a broken installation."""
    with GracefulStop(), reraise_as_interruption(Exception):
        return build_parser()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = _parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    if not args.command:
        parser.print_help()
        return 2
    from ._common import data_on_stdout

    data_on_stdout(False)  # set again by a command whose output flag names stdout
    try:
        setup_logging(args.verbose, args.quiet)
        # Signals from here on are counted and stop at once (KeyboardInterrupt / Terminated) until a command
        # defers them in its own loop; an import they interrupt is reported as the interruption it was.
        with GracefulStop():
            return int(args.run(args) or 0)
    except ConfigError as err:  # a bad flag or config value: a usage error
        logging.getLogger("lsa_edge").error("%s", err)
        return 2
    except LsaEdgeError as err:
        logging.getLogger("lsa_edge").error("%s", err)
        return 1
    except KeyboardInterrupt:  # Ctrl-C anywhere, start-up included: no traceback
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated as err:  # SIGTERM/SIGHUP before a command could stop cleanly (start-up)
        print(str(err), file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:  # stdout's reader went away (| head): end quietly, see _common.stdout_closed
        from ._common import stdout_closed

        return stdout_closed()
    except OSError as err:  # the system refused a file operation (a full disk, permissions): not a bug
        log = logging.getLogger("lsa_edge")
        log.error("%s", os_error_message(args.command, err))
        log.debug("traceback", exc_info=True)
        return 1
    except (
        Exception
    ) as err:  # a bug or an environment problem we did not anticipate: one line, then details on -vv
        log = logging.getLogger("lsa_edge")
        log.error(
            "%s failed: %s: %s. Re-run with -vv for the traceback, and please report it with that output.",
            args.command,
            type(err).__name__,
            err,
        )
        log.debug("traceback", exc_info=True)
        return 1
