"""The embedding sample runs its control loop over a stand-in Pipeline and reacts to label changes once."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

import lsa_edge
from lsa_edge.errors import LsaEdgeError
from lsa_edge.results import Face, FrameResult

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "embed.py"


def _face(tid: int, labels: tuple[str, ...], x: float = 100.0) -> Face:
    return Face(
        box=(x, 100.0, x + 80.0, 200.0),
        score=0.9,
        keypoints=(),
        track_id=tid,
        attributes={"Smiling": 0.9 if "Smiling" in labels else 0.1},
        labels=labels,
    )


FRAMES = [
    (_face(1, ()),),
    (_face(1, ()),),
    (_face(1, ("Smiling",)),),  # track 1 starts smiling
    (_face(1, ("Smiling",)), _face(2, ("Smiling",), x=500.0)),  # a smiling newcomer
    (_face(1, ("Smiling",)), _face(2, ("Smiling",), x=500.0)),
]


class FakePipeline:
    def __init__(self, model=None, backend="auto"):
        self.args = (model, backend)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def stream(self, source):
        assert source == 0
        for i, faces in enumerate(FRAMES):
            yield FrameResult(index=i, timestamp=i / 30, size=(480, 640), faces=faces, timings_ms={})


@pytest.fixture
def embed(monkeypatch):
    monkeypatch.setattr(lsa_edge, "Pipeline", FakePipeline, raising=False)
    spec = importlib.util.spec_from_file_location("embed_sample", SAMPLE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "embed_sample", module)
    spec.loader.exec_module(module)
    return module


def test_embed_loop_greets_once_per_change(embed, monkeypatch, caplog):
    said, pans = [], []
    monkeypatch.setattr(embed.Robot, "say", lambda self, text: said.append(text))
    monkeypatch.setattr(embed.Robot, "turn_head", lambda self, pan: pans.append(pan))
    with caplog.at_level(logging.INFO, logger="embed"):
        assert embed.main(["0"]) == 0
    assert said == ["Glad to see you smile.", "Hello there!"]
    assert "track 2 (new): +Smiling" in caplog.text
    # steering follows the largest face (track 1 at x 100–180 on a 640-wide frame): left of centre
    assert len(pans) == len(FRAMES) and pans[0] == pytest.approx(0.5 * (140 - 320) / 320)


def test_embed_max_frames_and_errors(embed, monkeypatch):
    pans = []
    monkeypatch.setattr(embed.Robot, "turn_head", lambda self, pan: pans.append(pan))
    assert embed.main(["0", "--max-frames", "2"]) == 0
    assert len(pans) == 2

    def broken(**kwargs):
        raise LsaEdgeError("no model at build/x; run lsa-edge build first")

    monkeypatch.setattr(embed, "Pipeline", broken)
    assert embed.main(["0", "--model", "build/x"]) == 1
