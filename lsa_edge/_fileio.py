"""Writing files so that nothing the user has is lost: atomic replacement, staged folders, output checks.

Every file the product writes goes through :func:`atomic_write` (or the ``write_*_atomic`` shorthands): the
content goes to a hidden temporary name in the same folder, is flushed to disk and renamed over the target,
so a kill at any moment leaves the old file or the new one, never half of one. Symlinks are written
through, devices and FIFOs (``/dev/stdout``) written directly. A folder of outputs (a build) is assembled by
:func:`staged_dir` under a temporary name (beside a new folder, inside an existing one: a mount point or a
symlink stays what it is) and moved into place at the end; a failure removes the partial folder and leaves
whatever was there before.

:func:`refuse_overwrite` and :func:`check_writable` run before long work starts, so a mistake costs a second,
not an evaluation. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError, LsaEdgeError

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_writable",
    "copy_atomic",
    "file_mode",
    "is_special",
    "is_stream_name",
    "refuse_overwrite",
    "same_or_inside",
    "staged_dir",
    "staging_folder",
    "umask",
    "warn_stale",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

_TMP_PREFIX = ".lsa-edge-tmp-"
_STALE_SECONDS = 3600.0  # a temporary name older than this was left by a killed process

log = logging.getLogger(__name__)


def _umask_from_proc() -> int | None:
    """The umask from /proc/self/status (Linux 4.7+): read without changing it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_at_import() -> int:
    found = _umask_from_proc()
    if found is not None:
        return found
    # Where /proc cannot tell: read it once, at import (before the threads that write files are started).
    old = os.umask(0o022)
    os.umask(old)
    return old


_UMASK = _umask_at_import()


def umask() -> int:
    """The process's umask, never changing it (``os.umask`` can only be read by setting it, which would leave
    a window in which another thread creates world-writable files): /proc/self/status where it exists,
    else the value read once at import."""
    found = _umask_from_proc()
    return _UMASK if found is None else found


def file_mode() -> int:
    """The mode a new file gets from ``open`` under the current umask (0644 under the usual 022)."""
    return 0o666 & ~umask()


def _dir_mode() -> int:
    return 0o777 & ~umask()


_STREAM_NAMES = ("/dev/stdout", "/dev/stderr")
_STREAM_PREFIXES = ("/dev/fd/", "/proc/self/fd/")


def is_stream_name(path: str | os.PathLike[str]) -> bool:
    """``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N``, ``/proc/self/fd/N``: this process's open streams
    (a terminal, a pipe, or a file the shell opened with ``>``), whatever they point at."""
    name = str(path)
    return name in _STREAM_NAMES or name.startswith(_STREAM_PREFIXES)


def is_special(path: str | os.PathLike[str]) -> bool:
    """True for a stream name (:func:`is_stream_name`) and for an existing target that is neither a regular
    file nor a folder (symlinks followed): a character device (/dev/null, a terminal), a FIFO, a socket.
    Those are written directly (appended to: a ``>`` redirect keeps what came before): they cannot be
    renamed over and hold nothing to lose."""
    if is_stream_name(path):
        return True
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


def _real(path: str | os.PathLike[str]) -> Path:
    """Where a write to ``path`` must land: symlinks resolved, so a link is written through, not replaced."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


def _named(err: OSError, target: Path, tmp: Path | None) -> OSError:
    """``err`` naming ``target`` instead of the hidden temporary file (or nothing): the user's name."""
    if err.filename not in (None, str(tmp) if tmp is not None else None):
        return err
    new = OSError(err.errno, err.strerror or str(err), str(target))  # OSError(errno, ...) picks the subclass
    return new


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(str(folder), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None, fsync: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path`` in one rename.

    On an exception (or a kill) the target is untouched and the temporary file is removed (a kill can leave
    a hidden ``.lsa-edge-tmp-*`` file, never a truncated target). The folder must exist. ``fsync=False``
    skips flushing to the disk: still atomic against a killed process, not against a power cut (for many
    small files written per frame, where fsync would cost more than the frame).

    A symlink is written through (the temporary file goes beside the file it points to); a character
    device or FIFO (``/dev/stdout``) is written directly. An OSError names ``path``, not the temporary file.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', got {mode!r}")
    enc = encoding if "b" not in mode else None
    if is_special(path):
        try:
            with open(path, mode.replace("w", "a"), encoding=enc) as f:
                yield f
        except OSError as err:
            raise _named(err, Path(path), None) from err
        return
    with _replacing(path, fsync=fsync) as tmp, open(tmp, mode, encoding=enc) as f:
        yield f
        f.flush()
        if fsync:
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that take a file name (``onnx.save``, ONNX Runtime,
    TensorRT); on a clean exit the file written there replaces ``path`` in one rename.

    The temporary name ends with ``path``'s suffix (some writers choose the format by it). On an exception
    the target is untouched and the temporary file is removed. The folder must exist. Symlinks are written
    through; a character device or FIFO is given to the writer as it is.
    """
    if is_special(path):
        yield Path(path)
        return
    with _replacing(path, keep_suffix=True) as tmp:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer closed it; make its bytes durable before the rename
            os.fsync(f.fileno())


@contextlib.contextmanager
def _replacing(path: str | os.PathLike[str], fsync: bool = True, keep_suffix: bool = False) -> Iterator[Path]:
    """The shared core of atomic_write/atomic_path: a hidden temporary file beside the real target (symlinks
    resolved), renamed over it with the target's mode on a clean exit, removed on any exception; an OSError
    names ``path``. keep_suffix: the temporary name ends with the target's suffix."""
    real = _real(path)
    tmp = None
    try:
        prefix = _TMP_PREFIX + (real.stem if keep_suffix else real.name) + "."
        suffix = real.suffix if keep_suffix else ""
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=str(real.parent))
        os.close(fd)
        tmp = Path(tmp_name)
        yield tmp
        _keep_mode(real, tmp)
        os.replace(tmp, real)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(err, OSError):
            raise _named(err, Path(path), tmp) from err
        raise
    if fsync:
        _fsync_dir(real.parent)


def _keep_mode(target: Path, tmp: Path) -> None:
    """mkstemp creates 0600 files; give the new file the old one's mode, or the umask's default."""
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        mode = file_mode()
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, fsync: bool = True) -> Path:
    with atomic_write(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = 2, **kwargs: Any) -> Path:
    """JSON (with a trailing newline) written atomically; ``kwargs`` go to :func:`json.dumps`."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


def copy_atomic(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy the file ``src`` to ``dst`` (a file name) atomically."""
    with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return Path(dst)


@contextlib.contextmanager
def staged_dir(
    final: str | os.PathLike[str], overwrite: bool = False, flag: str = "--overwrite"
) -> Iterator[Path]:
    """Yield an empty hidden temporary folder; on a clean exit its files become ``final``'s.

    ``final`` must not exist or be empty, unless ``overwrite`` (then the old files are replaced only once the
    new ones are complete). On an exception the temporary folder is removed and ``final`` is untouched.

    Where the folder is staged: a ``final`` that does not exist yet is assembled beside it and renamed into
    place. An existing folder (empty, a symlink to one, a mount point such as Docker's ``-v ./build:/build``,
    or one being overwritten) cannot be renamed over, so the build is staged in a hidden sub-folder of it
    and its files are moved into place at the end (old files moved aside first, removed after).
    :func:`staging_folder` says which folder that is (the one to check for writability).
    """
    real = _real(final)
    refuse_overwrite(real, overwrite, flag=flag, shown=Path(final))
    inside = real.is_dir()
    where = real if inside else real.parent
    if not inside:
        where.mkdir(parents=True, exist_ok=True)
    else:  # builds before staging moved inside left their temporary folders beside
        warn_stale(real.parent)
    warn_stale(where)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + real.name + ".", dir=str(where)))
    try:
        yield tmp
        os.chmod(tmp, _dir_mode())
        if inside:
            _move_children_into(tmp, real, overwrite)
        else:
            _replace_beside(tmp, real)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise LsaEdgeError(
                f"could not move the finished files into {final}: {err.strerror or err}; nothing there was "
                "changed and the temporary copy was removed. Check the space and permissions of that "
                "folder, or choose another one"
            ) from err
        raise
    _fsync_dir(where)


def staging_folder(final: str | os.PathLike[str]) -> Path:
    """The folder :func:`staged_dir` writes into for ``final``: ``final`` itself when it is an existing
    folder (symlinks resolved), else the nearest existing folder above it (where it is assembled)."""
    real = _real(final)
    if real.is_dir():
        return real
    probe = real.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def _replace_beside(tmp: Path, real: Path) -> None:
    """``real`` does not exist (or is a file being overwritten): rename ``tmp`` to it."""
    old = None
    if real.exists():  # a file, with overwrite: aside first, so a failure loses nothing
        old = real.with_name(_TMP_PREFIX + real.name + f".old.{os.getpid()}")
        os.replace(real, old)
    try:
        os.replace(tmp, real)
    except BaseException:
        if old is not None:
            os.replace(old, real)
        raise
    if old is not None:
        old.unlink()


def _move_children_into(tmp: Path, real: Path, overwrite: bool) -> None:
    """Move ``tmp``'s entries into the existing folder ``real`` (a mount point or a symlink's target stays
    what it is); ``real``'s own entries (overwrite) go aside first and are removed once all are in place.
    A failure puts everything back as it was."""
    theirs = [p for p in real.iterdir() if p != tmp and not p.name.startswith(_TMP_PREFIX)]
    if theirs and not overwrite:  # written there by someone else while the build ran: not ours to remove
        raise LsaEdgeError(
            f"{real} was empty when the build started and now holds {', '.join(p.name for p in theirs[:3])}; "
            "nothing was replaced. Build into an empty folder, or add --overwrite"
        )
    old = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + "old.", dir=str(real))) if theirs else None
    moved_aside: list[Path] = []
    moved_in: list[Path] = []
    try:
        for p in theirs:
            os.replace(p, old / p.name)  # type: ignore[operator]
            moved_aside.append(p)
        for p in sorted(tmp.iterdir()):
            os.replace(p, real / p.name)
            moved_in.append(real / p.name)
    except BaseException:
        for p in reversed(moved_in):
            with contextlib.suppress(OSError):
                os.replace(p, tmp / p.name)
        for p in reversed(moved_aside):
            with contextlib.suppress(OSError):
                os.replace(old / p.name, p)  # type: ignore[operator]
        if old is not None:
            with contextlib.suppress(OSError):
                old.rmdir()
        raise
    tmp.rmdir()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


_WARNED: set[str] = set()


def warn_stale(folder: Path) -> list[Path]:
    """Log (and return) the hidden ``.lsa-edge-tmp-*`` entries in ``folder`` older than an hour: left by a
    process that was killed. They are named, not deleted: the user decides."""
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(_TMP_PREFIX)]
    except OSError:
        return []
    entries = [p for p in entries if str(p) not in _WARNED]
    now = time.time()
    stale = []
    for p in entries:
        try:
            if now - p.lstat().st_mtime > _STALE_SECONDS:
                stale.append(p)
        except OSError:
            continue
    _WARNED.update(str(p) for p in stale)  # once per process: check_writable, then staged_dir
    if stale:
        names = ", ".join(str(p) for p in sorted(stale)[:5]) + (" ..." if len(stale) > 5 else "")
        log.warning(
            "%d leftover temporary item(s) from an interrupted lsa-edge run in %s: %s. Delete them if you "
            "do not need them",
            len(stale),
            folder,
            names,
        )
    return stale


def refuse_overwrite(
    path: str | os.PathLike[str], overwrite: bool, flag: str = "--overwrite", shown: Path | None = None
) -> None:
    """ConfigError when ``path`` is an existing file or a non-empty folder and ``overwrite`` is not set.

    A device or FIFO (``/dev/stdout``) holds nothing to lose; lsa-edge's own hidden temporary items do not
    make a folder non-empty. ``shown``: the name to use in the message (default ``path``)."""
    path = Path(path)
    shown = path if shown is None else shown
    if overwrite or not path.exists() or is_special(path):
        return
    if path.is_dir():
        if not any(not p.name.startswith(_TMP_PREFIX) for p in path.iterdir()):
            return
        what = f"the folder {shown} is not empty"
    else:
        what = f"{shown} exists"
    raise ConfigError(f"{what}; nothing was written. Choose another path, or add {flag} to replace it")


def same_or_inside(out: str | os.PathLike[str], src: str | os.PathLike[str]) -> bool:
    """True when ``out`` is ``src`` or lies inside the folder ``src`` (symlinks resolved; a hard link to
    ``src`` counts as ``src``)."""
    o, s = Path(out).resolve(), Path(src).resolve()
    if o == s or s in o.parents:
        return True
    try:
        return os.path.samefile(o, s)
    except OSError:  # one of them does not exist (yet)
        return False


def check_writable(path: str | os.PathLike[str], what: str = "output") -> None:
    """ConfigError now, not after an hour of work, when ``path`` (a file or folder to be created) cannot be
    written: the folder the write really happens in (symlinks resolved; an existing folder itself, where
    :func:`staged_dir` stages; else the nearest existing folder above) must be one this process may write
    into. A device or FIFO (``/dev/stdout``) only needs to be writable: nothing is created beside it."""
    path = Path(path)
    if is_special(path):
        if not os.access(path, os.W_OK):
            raise ConfigError(f"{what} {path} cannot be written (permission denied); choose another path")
        return
    real = _real(path)
    probe = staging_folder(real)
    if real.exists() and not real.is_dir() and not os.access(real, os.W_OK):
        raise ConfigError(f"{what} {path} is read-only; choose a path you can write to")
    if not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is a file, not a folder; choose another path")
    warn_stale(probe)
    try:
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX + "probe.", dir=str(probe))
    except OSError as err:
        reason = "permission denied" if err.errno in (errno.EACCES, errno.EPERM) else err.strerror
        raise ConfigError(
            f"{what} {path}: cannot write into {probe} ({reason}); choose a folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(name)
