"""Writing files so that nothing the user has is lost: atomic replacement, staged folders, output checks.

Every file the product writes goes through :func:`atomic_write` (or the ``write_*_atomic`` shorthands): the
content goes to a hidden temporary name in the same folder, is flushed to disk and renamed over the target,
so a kill at any moment leaves the old file or the new one, never half of one. A folder of outputs (a
build) is assembled by :func:`staged_dir` under a temporary sibling name and renamed into place at the end;
a failure removes the partial folder and leaves whatever was there before.

:func:`refuse_overwrite` and :func:`check_writable` run before long work starts, so a mistake costs a second,
not an evaluation. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_writable",
    "copy_atomic",
    "refuse_overwrite",
    "same_or_inside",
    "staged_dir",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

_TMP_PREFIX = ".lsa-edge-tmp-"


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
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX + path.name + ".", dir=str(path.parent))
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` for writers that take a file name (``onnx.save``, ONNX Runtime,
    TensorRT); on a clean exit the file written there replaces ``path`` in one rename.

    The temporary name ends with ``path``'s suffix (some writers choose the format by it). On an exception
    the target is untouched and the temporary file is removed. The folder must exist.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=_TMP_PREFIX + path.stem + ".", suffix=path.suffix, dir=str(path.parent)
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer closed it; make its bytes durable before the rename
            os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _keep_mode(target: Path, tmp: Path) -> None:
    """mkstemp creates 0600 files; give the new file the old one's mode, or the umask's default."""
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
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
    """Yield an empty temporary folder beside ``final``; on a clean exit it becomes ``final``.

    ``final`` must not exist or be empty, unless ``overwrite`` (then the old folder is replaced only once
    the new one is complete). On an exception the temporary folder is removed and ``final`` is untouched.
    """
    final = Path(final)
    refuse_overwrite(final, overwrite, flag=flag)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + final.name + ".", dir=str(final.parent)))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.chmod(tmp, _dir_mode())
    old = None
    if final.exists():
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        else:  # overwrite: move the old one aside first, so a failure between the renames loses nothing
            old = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + final.name + ".old.", dir=str(final.parent)))
            old.rmdir()
            os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    _fsync_dir(final.parent)


def _dir_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def refuse_overwrite(path: str | os.PathLike[str], overwrite: bool, flag: str = "--overwrite") -> None:
    """ConfigError when ``path`` is an existing file or a non-empty folder and ``overwrite`` is not set."""
    path = Path(path)
    if overwrite or not path.exists():
        return
    if path.is_dir():
        if not any(path.iterdir()):
            return
        what = f"the folder {path} is not empty"
    else:
        what = f"{path} exists"
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
    written: its nearest existing ancestor must be a folder this process may write into."""
    path = Path(path)
    probe = path if path.is_dir() else path.parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path} is read-only; choose a path you can write to")
    if not probe.is_dir():
        raise ConfigError(f"{what} {path}: {probe} is a file, not a folder; choose another path")
    try:
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX + "probe.", dir=str(probe))
    except OSError as err:
        reason = "permission denied" if err.errno in (errno.EACCES, errno.EPERM) else err.strerror
        raise ConfigError(
            f"{what} {path}: cannot write into {probe} ({reason}); choose a folder you can write to"
        ) from None
    os.close(fd)
    os.unlink(name)
