"""Checking a model package's files against the sha256 its manifest records, cheaply the second time.

Hashing a package costs a read of every byte (a 13 MB ONNX: tens of milliseconds; a Jetson's SD card:
more). A verified hash is remembered by the file's identity — resolved path, size, mtime and ctime in
nanoseconds — in memory for the process and in a small JSON file in the user's cache folder
(``$XDG_CACHE_HOME/lsa-edge/verified.json``, default ``~/.cache``), so a second load, or a restart, only
stats the files. ctime is in the key because tools can restore an edited file's mtime (``touch -r``,
``rsync -t --inplace``) but nothing restores its ctime. The cache protects against damage (a bad copy, a
flipped bit, a truncated download), not against someone who can write the user's own files.

The disk cache is best effort: a missing, read-only or corrupt cache folder only means hashing again.
A file changed in the last :data:`RACY_S` seconds is hashed but not remembered: file times are coarse
(a clock tick, up to seconds on some file systems), so two writes of the same size within one tick would
look alike — the "racy" case git knows too. It is written atomically and holds at most :data:`MAX_ENTRIES` files (oldest dropped first).

``LSA_EDGE_VERIFY=0`` skips the hash comparison (a warning says so); sizes are still checked, and a
listed file that is absent still fails where it is opened.
Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Tuple

from ._fileio import write_json_atomic

__all__ = [
    "MAX_ENTRIES",
    "RACY_S",
    "VERIFY_ENV",
    "cache_file",
    "clear_memory",
    "file_sha256",
    "verify_enabled",
]

log = logging.getLogger(__name__)

VERIFY_ENV = "LSA_EDGE_VERIFY"
MAX_ENTRIES = 512
RACY_S = 2.0  # a file younger than this (by mtime or ctime) is not cached: its times may not tell changes
_CACHE_VERSION = 1
_MAX_CACHE_BYTES = 1 << 20  # MAX_ENTRIES entries take ~100 kB

Identity = Tuple[str, int, int, int]  # resolved path, size, mtime_ns, ctime_ns

_lock = threading.Lock()
_memory: dict[Identity, str] = {}  # identity → sha256, for this process
_disk: dict[str, list] | None = None  # path → [size, mtime_ns, ctime_ns, sha256], read once


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The file's sha256, read in 1 MiB blocks: the one definition (manifests, sidecars, provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_enabled() -> bool:
    """False when the user set LSA_EDGE_VERIFY to 0/no/false/off (deliberately running a changed package)."""
    return os.environ.get(VERIFY_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def cache_file() -> Path | None:
    """Where verified hashes are kept between processes; None when there is no usable home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry (some containers)
            return None
    return Path(base) / "lsa-edge" / "verified.json"


def clear_memory() -> None:
    """Forget this process's verified hashes (the disk cache is re-read on the next lookup)."""
    global _disk
    with _lock:
        _memory.clear()
        _disk = None


def identity(path: Path, st: os.stat_result) -> Identity:
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_sha256(path: Path, st: os.stat_result | None = None, fresh: bool = False) -> tuple[str, bool]:
    """(sha256 of ``path``, whether it came from a cache). ``st``: the caller's stat of the file;
    ``fresh``: read the file even when a cache knows it (and correct the cache)."""
    st = path.stat() if st is None else st
    key = identity(path, st)
    with _lock:
        hit = None if fresh else _memory.get(key)
        if hit is None and not fresh:
            entry = _load_disk().get(key[0])
            if entry is not None and tuple(entry[:3]) == key[1:]:
                hit = _memory[key] = entry[3]
    if hit is not None:
        return hit, True
    digest = sha256_file(path)
    if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 < RACY_S:
        return digest, False
    with _lock:
        _memory[key] = digest
        disk = _load_disk()
        disk.pop(key[0], None)  # re-insert at the end: the newest entries survive trimming
        disk[key[0]] = [key[1], key[2], key[3], digest]
        while len(disk) > MAX_ENTRIES:
            del disk[next(iter(disk))]
        _save_disk(disk)
    return digest, False


def _load_disk() -> dict[str, list]:
    """The disk cache's entries (read once per process; anything unreadable counts as empty)."""
    global _disk
    if _disk is not None:
        return _disk
    _disk = {}
    path = cache_file()
    if path is None:
        return _disk
    try:
        if path.stat().st_size > _MAX_CACHE_BYTES:  # not ours, or damaged: never read a huge file
            raise ValueError(f"{path.stat().st_size} bytes")
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _disk
    except (OSError, ValueError, RecursionError) as err:
        log.debug("ignoring the verified-hash cache %s: %s", path, err)
        return _disk
    entries = doc.get("files") if isinstance(doc, dict) and doc.get("version") == _CACHE_VERSION else None
    if isinstance(entries, dict):
        for name, e in list(entries.items())[-MAX_ENTRIES:]:
            if (
                isinstance(e, list)
                and len(e) == 4
                and all(isinstance(v, int) and not isinstance(v, bool) for v in e[:3])
                and isinstance(e[3], str)
            ):
                _disk[name] = e
    return _disk


def _save_disk(entries: dict[str, list]) -> None:
    path = cache_file()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"version": _CACHE_VERSION, "files": entries}, indent=None)
    except OSError as err:  # a read-only home, a full disk: the next process hashes again, nothing worse
        log.debug("cannot write the verified-hash cache %s: %s", path, err)
