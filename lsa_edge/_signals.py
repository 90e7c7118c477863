"""Stopping long runs cleanly: SIGTERM (``kill``, ``timeout``, systemd, ``docker stop``), SIGHUP (the
terminal went away) and SIGINT (Ctrl-C).

:class:`GracefulStop` installs handlers for the duration of a ``with`` block. Inside its :meth:`frames`
region (a frame loop) the first signal only sets :attr:`GracefulStop.signum`: the loop finishes the
current frame, checks :attr:`GracefulStop.requested` and leaves, and the writers close as usual. Outside
that region (start-up: imports, model loading) the first signal raises at once — ``KeyboardInterrupt``
for SIGINT, :class:`Terminated` for the others — so start-up needs no polling. Either way the first signal
restores the operating system's default action, so a second signal ends the process at once, even while
it is stuck in a blocking call. Exit codes follow the shell's convention, 128 + the signal number
(SIGINT 130, SIGTERM 143, SIGHUP 129).

Handlers can only be installed from the main thread; elsewhere :class:`GracefulStop` does nothing.
Standard library only.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "STOP_SIGNALS",
    "GracefulStop",
    "Terminated",
    "exit_code",
    "interruption",
    "received",
    "reraise_as_interruption",
    "signal_name",
]

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)

_received = 0  # stop signals seen by any GracefulStop handler in this process
_last: int | None = None


def received() -> int:
    """How many stop signals :class:`GracefulStop` handlers have seen in this process (a counter: compare
    before and after an operation to tell whether it was interrupted)."""
    return _received


def interruption(signum: int | None = None) -> BaseException:
    """The exception that stands for a stop signal (default: the last one seen): KeyboardInterrupt for
    SIGINT, :class:`Terminated` for the others."""
    signum = _last if signum is None else signum
    if signum is None or signum == getattr(signal, "SIGINT", None):
        return KeyboardInterrupt()
    return Terminated(signum)


@contextlib.contextmanager
def reraise_as_interruption(*errors: type[BaseException]) -> Iterator[None]:
    """Inside the block, an exception of a type in ``errors`` is the interruption, raised from it, when a
    stop signal arrived meanwhile (:func:`interruption`) or when a KeyboardInterrupt is among its causes
    (Ctrl-C under Python's own handler); otherwise it propagates unchanged.

    For imports: a signal in the middle of an extension module's import can surface as that module's
    ImportError (numpy's C API turns a KeyboardInterrupt into one), which is no broken installation."""
    before = _received
    try:
        yield
    except errors as err:
        if _received != before:
            raise interruption() from err
        if _caused_by_ctrl_c(err):
            raise KeyboardInterrupt from err
        raise


def _caused_by_ctrl_c(err: BaseException) -> bool:
    """True when a KeyboardInterrupt is among the causes or contexts of ``err``."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(signum: int) -> int:
    """128 + the signal number: what a shell reports for a process ended by that signal."""
    return 128 + int(signum)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived outside a frame loop. A BaseException, like KeyboardInterrupt, so that
    ``except Exception`` blocks do not swallow it; :func:`lsa_edge.cli.main` turns it into the exit code."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal_name(signum)}")
        self.signum = signum
        self.exit_code = exit_code(signum)


class GracefulStop:
    """Handlers for SIGINT, SIGTERM and SIGHUP while the ``with`` block runs; see the module docstring.

    ``on_stop`` callbacks (:meth:`add_callback`) run in the handler on the first signal inside
    :meth:`frames`; keep them short and thread-safe (e.g. wake a source that waits for a camera).
    """

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.signum: int | None = None
        self._old: dict[int, Any] = {}
        self._deferring = False
        self._callbacks: list[Callable[[], None]] = []

    @property
    def requested(self) -> bool:
        """True once a stop signal has arrived."""
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum) if self.signum is not None else 0

    def add_callback(self, fn: Callable[[], None]) -> None:
        self._callbacks.append(fn)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old.clear()

    @contextlib.contextmanager
    def frames(self) -> Iterator[GracefulStop]:
        """A region where a signal sets :attr:`requested` instead of raising (check it once per frame)."""
        self._deferring = True
        try:
            if self.signum is not None:  # a signal arrived just before: honour it now
                self._raise(self.signum)
            yield self
        finally:
            self._deferring = False

    def _handle(self, signum: int, frame: Any) -> None:
        global _received, _last
        _received += 1
        _last = signum
        if self.signum is None:
            self.signum = signum
        # From now on the operating system handles these: a second signal ends the process at once.
        for sig in self._old:
            signal.signal(sig, signal.SIG_DFL)
        if not self._deferring:
            self._raise(signum)
        for fn in self._callbacks:
            fn()

    @staticmethod
    def _raise(signum: int) -> None:
        raise interruption(signum)
