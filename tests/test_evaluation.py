"""lsa_edge.evaluation.evaluate_model: the library behind ``lsa-edge eval``; it closes what it opens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lsa_edge.data as data_mod
import lsa_edge.evaluation as ev
import lsa_edge.package as package_mod
from lsa_edge.errors import ConfigError, DataError

MODEL = Path(__file__).resolve().parents[1] / "lsa_edge" / "models" / "default"


class _Backend:
    name = "fake"

    def __init__(self, card):
        self.card, self.closed = card, 0

    def predict(self, faces, batch_size=None):
        return np.full((len(faces), len(self.card.attributes)), 0.75, np.float32)

    def close(self):
        self.closed += 1


@pytest.fixture
def opened(monkeypatch):
    """The backends evaluate_model opens (a fake that counts close())."""
    made = []

    def select(package, backend="auto", threads=0, device=None):
        made.append(_Backend(package.card))
        return made[-1]

    monkeypatch.setattr(package_mod, "select_backend", select)
    return made


def test_options_are_checked_when_made():
    with pytest.raises(ConfigError, match="--batch-size"):
        ev.EvalOptions(batch_size=0)
    with pytest.raises(ConfigError, match="--frame"):
        ev.EvalOptions(frame="1,2")
    with pytest.raises(ConfigError, match="one of them"):
        ev.EvalOptions(frame="full", pipeline=True)
    assert ev.parse_frame("full") is None and ev.parse_frame("0,0,1,1") == (0.0, 0.0, 1.0, 1.0)


def test_the_backend_is_closed_when_the_data_fails(opened, monkeypatch, tmp_path):
    def broken(*a, **k):
        raise DataError("no data here")

    monkeypatch.setattr(data_mod, "load_dataset", broken)
    with pytest.raises(DataError, match="no data here"):
        ev.evaluate_model(MODEL, tmp_path)
    assert len(opened) == 1 and opened[0].closed == 1


def test_the_backend_is_closed_when_prediction_fails(opened, monkeypatch, celeba_dir):
    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(ev, "predict_aligned", broken)
    with pytest.raises(RuntimeError, match="boom"):
        ev.evaluate_model(MODEL, celeba_dir, split="test", progress=False)
    assert opened[0].closed == 1


def test_evaluate_model_result_and_close(opened, celeba_dir):
    result = ev.evaluate_model(MODEL, celeba_dir, ev.EvalOptions(split="test", progress=False), workers=2)
    assert opened[0].closed == 1
    assert result["split"] == "test" and result["backend"] == "fake" and result["n_images"] > 0
    assert {"mean_accuracy", "mean_accuracy_tuned", "per_attribute", "model_path"} <= set(result)
