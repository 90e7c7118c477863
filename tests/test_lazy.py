"""Optional dependencies: a missing one names its extra; what needs a newer Python than the runtime's 3.8
(JetPack 5) says so before anything of it is imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lsa_edge import _lazy
from lsa_edge.errors import MissingDependencyError


def test_missing_module_names_its_extra():
    with pytest.raises(MissingDependencyError, match=r"pip install 'lsa-edge\[build\]'"):
        _lazy.require("onnxsim.surely_not_a_module", "simplifying")


def test_older_python_is_told_what_runs_there(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 8, 18, "final", 0))
    with pytest.raises(MissingDependencyError) as err:
        _lazy.require("torch", "training")
    msg = str(err.value)
    assert msg.startswith("training needs Python >= 3.9 (torch >= 2.5 has no build for older Pythons)")
    assert "build --from-bundle" in msg and "pip install 'lsa-edge[train]'" in msg
    monkeypatch.setattr(sys, "version_info", (3, 9, 0, "final", 0))
    _lazy.require_python((3, 9), "training", "")  # new enough: no error


@pytest.mark.skipif(sys.version_info >= (3, 9), reason="runs on Python 3.8 only (the 3.8 stage of .ci/run)")
def test_training_on_python_38_is_a_clear_error():
    res = subprocess.run(
        [sys.executable, "-m", "lsa_edge", "train", "--data", ".", "--out", "run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert "training needs Python >= 3.9" in res.stderr and "SyntaxError" not in res.stderr


def test_every_error_class_is_exported_at_the_top():
    """Messages lead users to catch PackageError, GpuUnavailableError, ...: ``from lsa_edge import X`` works
    for every exception class in lsa_edge.errors (and the type checkers' view lists the same names)."""
    import inspect

    import lsa_edge
    from lsa_edge import errors

    classes = [n for n in errors.__all__ if inspect.isclass(getattr(errors, n))]
    assert {"PackageError", "GpuUnavailableError"} <= set(classes)
    source = inspect.getsource(lsa_edge)
    for name in classes:
        assert name in lsa_edge.__all__, name
        assert getattr(lsa_edge, name) is getattr(errors, name)
        assert f"from .errors import {name} as {name}" in source, name
