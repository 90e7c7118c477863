"""Sources left running for days keep a fixed amount of state (events, counters, the file list)."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
from _helpers import random_image

from lsa_edge._opencv import cv2
from lsa_edge.sources import open_source
from lsa_edge.sources._base import MAX_EVENTS, Frame, Source


class _Flaky(Source):
    """A source that reports a loss and a reconnection for every frame."""

    def _next_frame(self):
        self._emit("lost")
        self._emit("reconnected")
        return Frame(np.zeros((2, 2, 3), np.uint8), self._n_delivered, 0.0, self.name)


def _growth(src, warmup: int, frames: int) -> int:
    """Traced memory after ``warmup`` + ``frames`` frames minus after ``warmup`` (tracing from the start of
    the warm-up, so that objects replacing untraced ones do not count as growth)."""
    it = iter(src)
    tracemalloc.start()
    try:
        for _ in range(warmup):
            next(it)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(frames):
            next(it)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_events_are_bounded(caplog):
    caplog.set_level(logging.ERROR, logger="lsa_edge.sources")  # pytest keeps every captured record
    src = _Flaky("flaky")
    growth = _growth(src, MAX_EVENTS, 3 * MAX_EVENTS)  # after MAX_EVENTS/2 frames the deque is full
    assert len(src.events) == MAX_EVENTS
    assert growth < 32_000, growth


def test_looping_image_folder_and_iterable_do_not_grow(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), random_image(16, 16, seed=i))
    with open_source(str(tmp_path), loop=True) as src:
        assert _growth(src, 30, 1500) < 16_000
    frames = (np.zeros((8, 8, 3), np.uint8) for _ in range(10**9))
    with open_source(frames) as src:
        assert _growth(src, 30, 3000) < 16_000
