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


def test_predict_pipeline_applies_the_transform_before_detection(celeba_dir):
    """transform(image, i) changes each decoded image before the detector sees it (the robustness
    benchmark's conditions): a blanked image has no face; the identity keeps every found face."""
    from lsa_edge.data import load_dataset
    from lsa_edge.detector import FaceDetector
    from lsa_edge.package import ModelPackage

    package = ModelPackage.open(MODEL)
    part = load_dataset(celeba_dir).split("test").subset(np.arange(6))
    seen = []

    def blank_odd(img, i):
        seen.append((i, img.shape, img.dtype))
        return np.zeros_like(img) if i % 2 else img

    with FaceDetector("full", min_face_size=24.0) as det:
        plain = ev.predict_pipeline(_Backend(package.card), package.card, part, det, progress=False)
        changed = ev.predict_pipeline(
            _Backend(package.card), package.card, part, det, progress=False, transform=blank_odd
        )
    assert sorted(i for i, _, _ in seen) == list(range(6)) and all(d == np.uint8 for _, _, d in seen)
    assert set(changed.kept) == {i for i in plain.kept if i % 2 == 0}
    assert {part.image_ids[i] for i in range(1, 6, 2)} <= set(changed.no_face)


def test_the_robustness_conditions_are_deterministic_images():
    """Every condition of benchmarks/robustness.py gives an H×W×3 uint8 image, the same one twice."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "robustness.py"
    spec = importlib.util.spec_from_file_location("robustness", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    img = np.random.default_rng(0).integers(0, 256, (109, 89, 3), np.uint8)
    for name, f in mod.CONDITIONS.items():
        if f is None:
            continue
        out = f(img, 3)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, name
        assert np.array_equal(out, f(img, 3)), name
        assert not np.array_equal(out, img), name
    assert mod.CONDITIONS["scale ×0.5"](img, 0).shape == (54, 44, 3)  # round(109 × 0.5), round(89 × 0.5)
    assert mod.CONDITIONS["loose framing (160%)"](img, 0).shape[0] > 160


def test_rate_matched_thresholds_give_the_asked_positive_rates():
    """benchmarks/label_shift.py: each attribute's threshold makes that share of the images positive."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "label_shift.py"
    spec = importlib.util.spec_from_file_location("label_shift", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    probs = np.random.default_rng(0).random((2000, 3))
    rates = np.array([0.1, 0.5, 0.9])
    thr = mod.rate_matched_thresholds(probs, rates)
    np.testing.assert_allclose((probs >= thr).mean(axis=0), rates, atol=1e-3)


class _Detector:
    """Finds one face (the template's keypoints, scaled to the image) in images of even brightness, none in
    odd ones; records what it saw."""

    def __init__(self, pre):
        self.pre, self.seen = pre, []

    def detect(self, img, order):
        from lsa_edge.detector import FaceDetection

        self.seen.append(int(img[0, 0, 0]))
        if img[0, 0, 0] % 2:
            return []
        h, w = img.shape[:2]
        pts = tuple((x * w, y * h) for x, y in self.pre.template.points)
        return [FaceDetection((0.0, 0.0, float(w), float(h)), 0.9, pts)]


def test_detect_and_align_covers_every_image_once_in_order_in_chunks():
    from lsa_edge.card import celeba_preprocessing
    from lsa_edge.face_crops import detect_and_align

    pre = celeba_preprocessing((64, 48))
    n, ticks = 11, []
    images = {i: np.full((90, 80, 3), i, np.uint8) for i in range(n) if i != 4}  # image 4 cannot be read
    det = _Detector(pre)
    chunks = list(
        detect_and_align(images.get, n, det, pre, workers=2, chunk=3, on_image=lambda: ticks.append(1))
    )
    assert [len(c.kept) + len(c.unreadable) + len(c.faceless) for c in chunks] == [3, 3, 3, 2]
    assert [i for c in chunks for i in c.kept] == [0, 2, 6, 8, 10]
    assert [i for c in chunks for i in c.faceless] == [1, 3, 5, 7, 9]
    assert [i for c in chunks for i in c.unreadable] == [4]
    assert det.seen == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10] and len(ticks) == n
    for c in chunks:
        assert c.crops.shape == (len(c.kept), 64, 48, 3) and c.crops.dtype == np.uint8
        assert [int(x) for x in c.crops[:, 32, 24, 0]] == c.kept  # each crop is its own image
    assert list(detect_and_align(images.get, 0, det, pre)) == []


def test_detect_and_align_checks_its_arguments_before_reading_an_image():
    from lsa_edge.card import celeba_preprocessing
    from lsa_edge.face_crops import detect_and_align

    pre = celeba_preprocessing((64, 48))

    def never(i):
        raise AssertionError("read before the arguments were checked")

    with pytest.raises(ConfigError, match="central, largest or score"):
        detect_and_align(never, 3, _Detector(pre), pre, face="nearest")
    from dataclasses import replace

    with pytest.raises(ConfigError, match="no alignment template"):
        detect_and_align(never, 3, _Detector(pre), replace(pre, template=None))
