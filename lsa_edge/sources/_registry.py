"""Source kind → (opener, accepted options). A new kind is a new module plus one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Dict  # typing: Opener is subscripted at run time (Python 3.8)

from ..errors import ConfigError
from . import arrays, cameras, demo, images, video
from ._base import Source
from ._options import Converter, check_options
from ._uri import KINDS, SourceSpec, parse_uri

Opener = Callable[[SourceSpec, Dict[str, Any]], Source]

_KINDS: dict[str, tuple[Opener, Mapping[str, Converter]]] = {
    "camera": (cameras.open_camera, cameras.CAMERA_OPTIONS),
    "v4l2": (cameras.open_camera, cameras.CAMERA_OPTIONS),
    "csi": (cameras.open_csi, cameras.CSI_OPTIONS),
    "stream": (cameras.open_stream, cameras.STREAM_OPTIONS),
    "video": (video.open_video, video.OPTIONS),
    "image": (images.open_images, images.OPTIONS),
    "folder": (images.open_images, images.FOLDER_OPTIONS),
    "glob": (images.open_images, images.FOLDER_OPTIONS),
    "iterable": (arrays.open_iterable, arrays.OPTIONS),
    "demo": (demo.open_demo_source, demo.OPTIONS),
}
assert set(_KINDS) == set(KINDS), "every kind _uri.parse_uri returns needs an opener"


def options_for(kind: str) -> list[str]:
    """The option names a source kind accepts."""
    return sorted(_KINDS[kind][1])


def open_source(source: Any, **options: Any) -> Source:
    """Open a video source by URI, path, camera index or iterable of frames; see :mod:`lsa_edge.sources`.

    Returns a :class:`Source`: iterate it for :class:`Frame` objects (image H×W×3 uint8 BGR), use it as a
    context manager. An already opened Source is returned as is. Raises ConfigError for a malformed URI or
    an option the kind does not accept, DataError when the file/device cannot be opened,
    MissingDependencyError when OpenCV lacks what the kind needs (GStreamer for csi://).
    """
    if isinstance(source, Source):
        if options:
            given = ", ".join(sorted(options))
            raise ConfigError(
                f"{source.name} is already open; options ({given}) apply only when opening a URI"
            )
        return source
    spec = parse_uri(source)
    opener, accepted = _KINDS[spec.kind]
    opts = check_options(f"{spec.name} ({spec.kind})", {**spec.options, **options}, accepted)
    return opener(spec, opts)
