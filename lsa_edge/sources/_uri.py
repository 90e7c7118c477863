"""Parsing what the user passed to ``open_source`` into a :class:`SourceSpec` (kind, target, URI options).

Pure apart from one ``Path.is_dir`` check (a folder and an extension-less video look alike); whether
files exist is checked when the source opens. Imports numpy and the standard library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import numpy as np

from ..errors import ConfigError, unknown_choice

KINDS = ("camera", "v4l2", "csi", "stream", "video", "image", "folder", "glob", "iterable", "demo")
LIVE_KINDS = ("camera", "v4l2", "csi", "stream")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
SCHEMES = ("v4l2", "csi", "file", *STREAM_SCHEMES)
# Still-image extensions OpenCV decodes; anything else that is a file is tried as a video.
IMAGE_EXTENSIONS = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".jp2",
        ".sr",
        ".ras",
    ]
)
_GLOB_CHARS = re.compile(r"[*?\[]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_DEV_VIDEO = re.compile(r"/dev/video[0-9]+")
# ASCII digits only: str.isdigit() is also true for "²" and "٣", which int() rejects or reads oddly.
_INDEX = re.compile(r"[0-9]+")
# Camera and sensor indices reach OpenCV / GStreamer as a C int.
MAX_INDEX = 2**31 - 1
_PASSWORD = re.compile(r"(//[^/@:]*:)[^/@]*@")


@dataclass(frozen=True)
class SourceSpec:
    """What ``open_source`` will open.

    kind: one of ``KINDS``. target: camera index (int), device path, CSI sensor id (int), stream URL, file
    path, glob pattern, or the iterable itself. options: options given in the URI's query (csi://, v4l2://),
    as strings; keyword options override them.
    """

    kind: str
    target: Any
    options: dict[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.kind in LIVE_KINDS

    @property
    def name(self) -> str:
        """A short name for frames and logs; stream credentials are masked."""
        if self.kind == "stream":
            return f"stream:{redact_url(str(self.target))}"
        if self.kind == "iterable":
            return "iterable"
        return f"{self.kind}:{self.target}"


def redact_url(url: str) -> str:
    """rtsp://user:secret@host/x -> rtsp://user:***@host/x (passwords must not reach logs)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
    except ValueError:  # a malformed URL (bad port, unbalanced "["): mask by pattern, never raise
        return _PASSWORD.sub(r"\1***@", url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def redact_text(text: str) -> str:
    """Every ``//user:secret@`` in free text (an error message quoting a URL) -> ``//user:***@``."""
    return _PASSWORD.sub(r"\1***@", text)


def _index(text: str | int, what: str, source: object) -> int:
    """A camera or sensor index (ASCII digits or an int) in 0..MAX_INDEX."""
    if isinstance(text, str) and len(text) > len(str(MAX_INDEX)):
        value = MAX_INDEX + 1  # do not convert thousands of digits (Python caps int() at 4300)
    else:
        value = int(text)
    if not 0 <= value <= MAX_INDEX:
        if isinstance(source, (int, np.integer)) and abs(int(source)) > 10**40:
            shown = f"a {int(source).bit_length()}-bit number"  # str() refuses more than 4300 digits
        else:
            shown = str(source) if len(str(source)) <= 40 else str(source)[:40] + "..."
        raise ConfigError(f"{what} must be 0 or more and at most {MAX_INDEX}, got {shown}")
    return value


def parse_uri(uri: Any) -> SourceSpec:
    """Classify a source: an int or digit string (camera index), ``v4l2:///dev/videoN`` (or ``/dev/videoN``,
    ``v4l2://N``), ``csi://N``, ``rtsp://``/``rtsps://``/``rtmp://``/``http(s)://`` streams, ``file://PATH``,
    a path to a folder, an image (by extension) or a video (any other file), a glob pattern, a numpy array
    (H×W[×C] one frame, N×H×W×C frames) or any other iterable of frames.
    """
    if isinstance(uri, bool):
        raise ConfigError(f"not a video source: {uri!r}; pass a camera index, a URI, a path or frames")
    if isinstance(uri, (int, np.integer)):
        return SourceSpec("camera", _index(int(uri), "camera index", uri))
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if isinstance(uri, bytes):
        uri = os.fsdecode(uri)
    if isinstance(uri, str):
        return _parse_string(uri)
    if isinstance(uri, np.ndarray):
        if uri.ndim in (2, 3):
            return SourceSpec("iterable", [uri])
        if uri.ndim == 4:
            return SourceSpec("iterable", uri)
        raise ConfigError(
            f"a numpy array source must be one frame (H×W or H×W×C) or frames (N×H×W×C), got shape {uri.shape}"
        )
    if isinstance(uri, Iterable):
        return SourceSpec("iterable", uri)
    raise ConfigError(
        f"not a video source: {type(uri).__name__}; pass a camera index, a URI (v4l2://, csi://, rtsp://, "
        "http://), a file, folder or glob pattern, or an iterable of frames"
    )


def _parse_string(s: str) -> SourceSpec:
    s = s.strip()
    if not s:
        raise ConfigError("empty video source; pass a camera index (0), a URI, a path or a glob pattern")
    if _INDEX.fullmatch(s):
        return SourceSpec("camera", _index(s, "camera index", s))
    if _DEV_VIDEO.fullmatch(s):
        return SourceSpec("v4l2", s)
    if s == "demo" or s.startswith("demo:"):
        return SourceSpec("demo", _demo_faces(s))
    m = _SCHEME.match(s)
    if not m:
        return _classify_path(s)
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme in STREAM_SCHEMES:
        try:
            parts = urlsplit(s)
            host, _ = parts.hostname, parts.port  # .port raises for "host:abc" or "host:99999"
        except ValueError as err:
            raise ConfigError(
                f"bad stream URL {redact_url(s)!r}: {err}; expected e.g. {scheme}://HOST:PORT/PATH"
            ) from None
        if not host:
            raise ConfigError(
                f"stream URL {redact_url(s)!r} has no host; expected e.g. {scheme}://HOST:PORT/PATH"
            )
        return SourceSpec("stream", s)
    if scheme == "file":
        path = rest[len("localhost") :] if rest.startswith("localhost/") else rest
        if not path.strip():
            raise ConfigError(f"{s!r} names no file; expected file:///PATH or file://localhost/PATH")
        return _classify_path(path)
    if scheme not in ("v4l2", "csi"):
        raise ConfigError(unknown_choice("source scheme", scheme + "://", [x + "://" for x in SCHEMES]))
    target, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True)) if query else {}
    except ValueError as err:
        raise ConfigError(f"bad options {query!r} in {s!r}: {err}; expected KEY=VALUE&KEY=VALUE") from None
    if scheme == "csi":
        if not _INDEX.fullmatch(target):
            raise ConfigError(f"bad CSI camera {s!r}: expected csi://N with the sensor id N (0, 1, ...)")
        return SourceSpec("csi", _index(target, "CSI sensor id", s), options)
    if _INDEX.fullmatch(target):  # v4l2://0 is shorthand for v4l2:///dev/video0
        target = f"/dev/video{_index(target, 'V4L2 device number', s)}"
    if not target.startswith("/"):
        raise ConfigError(f"bad V4L2 device {s!r}: expected v4l2:///dev/videoN (three slashes) or v4l2://N")
    return SourceSpec("v4l2", target, options)


def _demo_faces(s: str) -> int:
    """The number of faces in ``demo`` (1) or ``demo:N``."""
    if s == "demo":
        return 1
    try:
        return int(s.split(":", 1)[1])
    except ValueError:
        raise ConfigError(f"the demo source demo:N takes a number of faces, got {s!r}") from None


def _exists(path: Path, folder: bool = False) -> bool:
    """Path.exists()/is_dir() that answers False instead of raising for names the OS rejects (too long,
    a NUL byte, not encodable) or cannot look at (permissions); opening the source reports those."""
    try:
        return path.is_dir() if folder else path.exists()
    except (OSError, ValueError):
        return False


def _classify_path(s: str) -> SourceSpec:
    try:
        path = Path(s).expanduser()
    except RuntimeError:  # "~name/..." for a user that does not exist, or no home directory
        raise ConfigError(
            f"cannot expand {s[:80]!r}: no home directory for {s.split('/')[0]!r}; give the full path"
        ) from None
    if _GLOB_CHARS.search(s) and not _exists(path):
        return SourceSpec("glob", str(path))
    if _exists(path, folder=True):
        return SourceSpec("folder", str(path))
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return SourceSpec("image", str(path))
    return SourceSpec("video", str(path))
