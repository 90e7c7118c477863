"""Shared fixtures. Real data is read in place from ../shared/data (read-only); nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LSA_EDGE_DATA", ROOT.parent / "shared" / "data"))
CELEBA = DATA / "celeba-10k"
LFWA = DATA / "lfwa"


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
