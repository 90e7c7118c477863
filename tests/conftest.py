"""Shared fixtures. Real data is read in place from ../shared/data (read-only); nothing is downloaded."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LSA_EDGE_DATA", ROOT.parent / "shared" / "data"))
CELEBA = DATA / "celeba-10k"
LFWA = DATA / "lfwa"

try:  # property tests: a bounded, deterministic profile (hypothesis is a dev dependency; 3.8's stage lacks it)
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "lsa-edge",
        max_examples=int(os.environ.get("LSA_EDGE_HYPOTHESIS_EXAMPLES", "60")),
        deadline=None,
        derandomize=bool(os.environ.get("CI")),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )
    settings.load_profile("lsa-edge")
except ImportError:
    pass


@pytest.fixture(scope="session", autouse=True)
def _private_user_cache(tmp_path_factory):
    """Tests never write the user's ~/.cache (the package verification cache, anything else cached)."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


def pytest_sessionfinish(session, exitstatus):
    """LSA_EDGE_TRT_USAGE=FILE: write the TensorRT names lsa-edge used through the strict fake, per API
    version (read by `python scripts/tensorrt_api.py conformance`)."""
    out = os.environ.get("LSA_EDGE_TRT_USAGE")
    fake = sys.modules.get("_fake_tensorrt")
    if out and fake is not None:
        Path(out).write_text(json.dumps({v: sorted(n) for v, n in fake.USAGE.items()}, indent=1))


def _need(path: Path) -> Path:
    if not path.exists():
        msg = f"real data not found at {path} (set LSA_EDGE_DATA to the folder holding celeba-10k and lfwa)"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI must provide ../shared/data")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def celeba_dir() -> Path:
    return _need(CELEBA)


@pytest.fixture(scope="session")
def lfwa_dir() -> Path:
    return _need(LFWA)


@pytest.fixture(scope="session")
def text_encoder():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from lsa_edge.training.text import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="session")
def dictionary(text_encoder):
    from lsa_edge.training.prior import build_dictionary

    return build_dictionary(text_encoder)


@pytest.fixture(scope="session")
def tiny_model(dictionary):
    """A tiny LSA model (64×48 input) with non-trivial BatchNorm statistics, and its card."""
    torch = pytest.importorskip("torch")
    from lsa_edge.card import ModelCard
    from lsa_edge.training import LSAConfig, LSAModel
    from lsa_edge.training.model import preprocessing_for

    torch.manual_seed(0)
    model = LSAModel(
        LSAConfig(backbone="test_tiny", d_model=32, heads=2, ffn=64, input_size=(64, 48)), dictionary
    )
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 64, 48))
    model.eval()
    pre = preprocessing_for(model.config)
    card = ModelCard(
        name="lsa-test", preprocessing=pre, regions=dictionary.regions, model=model.config.to_dict()
    )
    return model, card


@pytest.fixture(scope="session")
def tiny_faces(tiny_model, celeba_dir):
    """40 real validation faces (labelled) through the tiny model's preprocessing."""
    from lsa_edge.calibration.dataset import load_faces

    return load_faces(celeba_dir, tiny_model[1].preprocessing, split="val", count=40)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model, tiny_faces, tmp_path_factory):
    """The tiny model exported to ONNX (FP32, simplified, parity-checked): an ExportResult."""
    pytest.importorskip("onnxsim")
    from lsa_edge.engines.export import export_onnx

    model, card = tiny_model
    path = tmp_path_factory.mktemp("onnx") / "lsa.onnx"
    return export_onnx(model, card, path, tiny_faces.tensors(card.preprocessing))
