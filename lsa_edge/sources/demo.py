"""The built-in demo scene as a source: ``demo`` (one face) or ``demo:N`` (N faces).

Synthetic frames rendered from the shipped portrait (:mod:`lsa_edge.demo`): a camera-like input that needs
no camera or file, for ``lsa-edge run --source demo:3``, ``Pipeline.stream("demo:3")`` and tests. The clip
is 90 frames (3 s at 30 fps), or ``max_frames`` when given; ``loop`` repeats it forever. To read a folder
called ``demo``, pass ``./demo``. Imports numpy, OpenCV and the standard library only.
"""

from __future__ import annotations

from typing import Any

from ._base import Source
from ._options import boolean, optional, positive_float, positive_int, text
from ._uri import SourceSpec

OPTIONS = {
    "max_frames": optional(positive_int),  # stop after this many frames (also the clip's length)
    "loop": boolean,  # repeat the clip forever (stop with max_frames or close)
    "fps": positive_float,  # timestamps = index / fps (default 30)
    "name": text,  # the name frames and logs carry (default "demo (N faces)")
}


def open_demo_source(spec: SourceSpec, opts: dict[str, Any]) -> Source:
    from ..demo import open_demo

    max_frames = opts.get("max_frames")
    return open_demo(
        spec.target,
        n=max_frames or 90,
        loop=opts.get("loop", False),
        max_frames=max_frames,
        fps=opts.get("fps", 30.0),
        name=opts.get("name"),
    )
