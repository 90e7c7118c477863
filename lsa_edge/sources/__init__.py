"""Video sources by URI for the runtime: ``open_source(uri_or_obj, **options) -> Source``.

A :class:`Source` is an iterator of :class:`Frame` (``image`` H×W×3 uint8 **BGR**, OpenCV's channel order,
for every kind; ``index``; ``timestamp`` in seconds; ``source`` name) and a context manager::

    from lsa_edge.sources import open_source

    with open_source("csi://0", width=1920, height=1080, fps=30) as src:
        for frame in src:          # always the newest frame; stale ones are dropped (src.stats.dropped)
            ...

| what you pass | kind | read with | live |
| --- | --- | --- | --- |
| ``0``, ``"0"`` | camera | ``CAP_V4L2`` on Linux, OpenCV's default elsewhere | yes |
| ``v4l2:///dev/video0``, ``/dev/video0``, ``v4l2://0`` | v4l2 | ``CAP_V4L2`` | yes |
| ``csi://0`` | csi | GStreamer ``nvarguscamerasrc`` (:func:`csi_pipeline`), ``CAP_GSTREAMER`` | yes |
| ``rtsp://``, ``rtsps://``, ``rtmp://``, ``http://``, ``https://`` | stream | FFmpeg, with timeouts | yes |
| ``clip.mp4`` (any other file), ``file:///…`` | video | OpenCV (FFmpeg) | no |
| ``face.jpg`` (image extension) | image | :func:`lsa_edge.data.images.read_image` | no |
| ``frames/`` (a folder) | folder | sorted naturally; ``recursive=True`` for sub-folders | no |
| ``"frames/*.png"``, ``"frames/**/*.jpg"`` | glob | image files matched (``**``: any depth), sorted naturally | no |
| a numpy array (H×W[×C] or N×H×W×C), any iterable/iterator of arrays | iterable | as given | no |
| ``"demo"``, ``"demo:3"`` (N faces) | demo | synthetic scene (:mod:`lsa_edge.demo`); ``./demo`` is a folder | no |

Options (keywords; for csi:// and v4l2:// also as a URI query, ``csi://0?width=1920&height=1080&flip=2``):

* every kind: ``max_frames`` (stop after N), ``name`` (for frames and logs), ``on_event`` (callback with
  each :class:`SourceEvent`; live sources call it from their reader thread).
* camera, v4l2: ``width``, ``height``, ``fps``, ``fourcc`` (e.g. ``"MJPG"`` for high resolutions on USB 2).
* csi: ``width``, ``height``, ``fps`` (alias ``framerate``) — default 1280×720 at 30 — ``flip`` (0..7 or
  nvvidconv's name), ``sensor_mode``.
* live kinds: ``read_timeout`` (seconds without a frame = lost; 2, streams 5), ``reconnect_delay`` (0.5),
  ``reconnect_max_delay`` (10), ``max_reconnects`` (failed attempts in a row; default None = forever; an
  attempt succeeds once a frame arrives), ``open_timeout`` (seconds an open may take; streams 10, passed to
  FFmpeg, others 30),
  ``capture_factory`` (``(target, api_preference, params) -> VideoCapture-like``; default
  ``cv2.VideoCapture``; for tests and custom capture stacks).
* video, image, folder, glob, iterable: ``loop`` (start again at the end; indices and timestamps keep
  increasing; an iterable must then be a list or array — an iterator can be read only once).
* image, folder, glob, iterable: ``fps`` (timestamps = index / fps instead of the read time).
* folder, glob: ``recursive`` (folders: include sub-folders, default False, and a warning names images
  left out; globs: ``**`` matches any depth, default True when the pattern has ``**``).
  iterable: ``color`` (``"bgr"``, default, or ``"rgb"``).
* demo: ``max_frames`` (also the clip's length; default 90), ``loop``, ``fps`` (default 30), ``name``.

Frames from every kind are normalised the same way: grayscale → 3 channels, 16-bit → 8-bit (top byte),
float in [0, 1] → uint8, alpha dropped, RGB input (``color="rgb"``) and RGB-decoded image files → BGR.
A bad item (unreadable file, None, empty or malformed array) is skipped with a warning naming it.

Live sources keep only the latest frame and reconnect with exponential backoff; they report ``connected``,
``lost``, ``reconnecting`` (attempt N), ``reconnected``, ``gave_up`` and ``closed`` in ``source.events``.
When they give up, the iterator ends and ``source.error`` says why (also logged as an error).

Imports numpy, OpenCV and the standard library only.
"""

from __future__ import annotations

from ._base import EVENT_KINDS as EVENT_KINDS
from ._base import Frame as Frame
from ._base import Source as Source
from ._base import SourceEvent as SourceEvent
from ._base import SourceStats as SourceStats
from ._registry import open_source as open_source
from ._registry import options_for as options_for
from ._uri import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
from ._uri import KINDS as KINDS
from ._uri import SourceSpec as SourceSpec
from ._uri import parse_uri as parse_uri
from .arrays import to_bgr_uint8 as to_bgr_uint8
from .cameras import CameraInfo as CameraInfo
from .cameras import csi_pipeline as csi_pipeline
from .cameras import gstreamer_available as gstreamer_available
from .cameras import probe_cameras as probe_cameras
from .cameras import video_backends as video_backends
from .live import ReconnectPolicy as ReconnectPolicy

__all__ = [
    "EVENT_KINDS",
    "IMAGE_EXTENSIONS",
    "KINDS",
    "CameraInfo",
    "Frame",
    "ReconnectPolicy",
    "Source",
    "SourceEvent",
    "SourceSpec",
    "SourceStats",
    "csi_pipeline",
    "gstreamer_available",
    "open_source",
    "options_for",
    "parse_uri",
    "probe_cameras",
    "to_bgr_uint8",
    "video_backends",
]
