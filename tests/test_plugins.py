"""The core imports no stage: checkpoints reach the runtime through lsa_edge.plugins."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from lsa_edge import plugins
from lsa_edge.errors import ConfigError, MissingDependencyError

CORE = Path(__file__).resolve().parents[1] / "lsa_edge"
STAGES = ("training", "engines", "calibration")
STAGE_NAME = re.compile(r"\blsa_edge\.(training|engines|calibration)\b")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (documentation may name a stage; code may not)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _stage_references(path: Path) -> list[str]:
    """Imports of a stage, and strings naming one (import_module("lsa_edge.training..."), say)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .training import x / from .. import engines
                package = path.relative_to(CORE.parent).parts[:-1]  # lsa_edge/sub/m.py: lsa_edge.sub
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            names = STAGE_NAME.findall(node.value) and [node.value]
        for name in names:
            if STAGE_NAME.search(name) or name.split(".")[:2] in (["lsa_edge", s] for s in STAGES):
                found.append(f"{path.relative_to(CORE.parent)}:{node.lineno}: {name}")
    return found


def test_core_names_no_stage():
    """lsa_edge/ outside cli/ never imports training, engines or calibration, not even by a string."""
    files = [p for p in CORE.rglob("*.py") if "cli" not in p.relative_to(CORE).parts[:1]]
    assert len(files) > 30
    found = [hit for p in files for hit in _stage_references(p)]
    assert not found, "\n".join(found)


def test_scan_finds_stage_references(tmp_path, monkeypatch):
    """The scan above sees each way of naming a stage (it is not vacuous)."""
    fake = tmp_path / "lsa_edge" / "sub"
    fake.mkdir(parents=True)
    monkeypatch.setattr(sys.modules[__name__], "CORE", tmp_path / "lsa_edge")
    src = fake / "m.py"
    for code in (
        "from lsa_edge.training.checkpoint import read_checkpoint",
        "import lsa_edge.engines",
        "from ..calibration import x",
        "from .. import training",
        "mod = 'lsa_edge.training.backend'",
    ):
        src.write_text(f'"""Doc naming lsa_edge.training is fine."""\n{code}\n')
        assert _stage_references(src), code
    src.write_text(
        '"""Doc naming lsa_edge.training is fine."""\n# lsa_edge.engines in a comment\nx = "training"\n'
    )
    assert not _stage_references(src)


def test_import_core_and_pipeline_without_torch(tmp_path):
    code = """
    import sys
    import lsa_edge
    lsa_edge.Pipeline, lsa_edge.ModelPackage
    import lsa_edge.package, lsa_edge.plugins
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
    stages = sorted(m for m in sys.modules if m.startswith(("lsa_edge.training", "lsa_edge.engines", "lsa_edge.calibration")))
    assert not heavy and not stages, (heavy, stages)
    print("OK")
    """
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


def test_checkpoint_support_comes_from_the_entry_point(tmp_path):
    """A fresh interpreter that never imported training finds the checkpoint loader by entry point."""
    pytest.importorskip("torch")  # the training package needs it (and Python >= 3.9)
    code = """
    import sys
    from lsa_edge.plugins import checkpoint_loader
    assert "lsa_edge.training" not in sys.modules
    loader = checkpoint_loader()
    assert loader.name == "torch", loader
    assert loader.read_card.__module__ == "lsa_edge.training._plugin", loader.read_card.__module__
    print("OK")
    """
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


@pytest.fixture
def empty_registry(monkeypatch):
    monkeypatch.setattr(plugins, "_LOADERS", {})
    monkeypatch.setattr(plugins, "_entry_points_loaded", False)


def test_no_plugin_installed_names_the_extra(empty_registry, monkeypatch):
    monkeypatch.setattr(plugins, "_entry_points", lambda group: [])
    with pytest.raises(MissingDependencyError, match=r"pip install 'lsa-edge\[train\]'"):
        plugins.checkpoint_loader()


def test_register_twice(empty_registry):
    def read(p):
        return None

    def run(p, d):
        return None

    a = plugins.register_checkpoint_loader("x", read_card=read, open_backend=run)
    assert plugins.register_checkpoint_loader("x", read_card=read, open_backend=run) == a  # idempotent
    with pytest.raises(ConfigError, match="already registered"):
        plugins.register_checkpoint_loader("x", read_card=lambda p: None, open_backend=run)
    assert plugins.checkpoint_loader() is a


def test_entry_points_both_apis(monkeypatch):
    """importlib.metadata.entry_points(): a dict of lists on Python 3.8/3.9, .select() from 3.10."""
    from importlib import metadata

    ep = SimpleNamespace(name="training", value="pkg.mod:register")

    class Selectable:
        def select(self, group):
            return [ep, ep] if group == "lsa_edge.plugins" else []

    monkeypatch.setattr(metadata, "entry_points", lambda: {"lsa_edge.plugins": [ep], "other": []})
    assert plugins._entry_points("lsa_edge.plugins") == [ep]
    assert plugins._entry_points("none") == []
    monkeypatch.setattr(metadata, "entry_points", Selectable)
    assert plugins._entry_points("lsa_edge.plugins") == [ep]  # listed twice (editable install): once


def test_plugin_that_fails_to_import_is_a_missing_dependency(empty_registry, monkeypatch):
    def load():
        raise ImportError("No module named 'torch'")

    ep = SimpleNamespace(name="training", value="lsa_edge.training._plugin:register", load=load)
    monkeypatch.setattr(plugins, "_entry_points", lambda group: [ep])
    with pytest.raises(MissingDependencyError, match="lsa-edge\\[train\\]"):
        plugins.checkpoint_loader()
    assert not plugins._entry_points_loaded  # tried again next time


def test_a_checkpoint_without_torch_names_the_extra(tmp_path):
    """Where torch is missing, opening or running a checkpoint says which extra to install, as before."""
    (tmp_path / "best.pt").write_bytes(b"not read")
    code = """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                raise ModuleNotFoundError(f"No module named {name!r}")
    sys.meta_path.insert(0, _Block())
    from lsa_edge.card import ModelCard
    from lsa_edge.errors import MissingDependencyError
    from lsa_edge.package import ModelPackage, select_backend
    for attempt in (lambda: ModelPackage.open("best.pt"), lambda: ModelPackage.open(".")):
        try:
            attempt()
        except MissingDependencyError as err:
            assert "pip install 'lsa-edge[train]'" in str(err) and "running a checkpoint" in str(err), err
        else:
            raise AssertionError("opened a checkpoint without torch")
    from pathlib import Path
    from lsa_edge.card import Preprocessing
    card = ModelCard(name="x", preprocessing=Preprocessing())
    pkg = ModelPackage(card=card, source=Path("best.pt"), checkpoint=Path("best.pt"))
    try:
        select_backend(pkg, "torch")
    except MissingDependencyError as err:
        assert "pip install 'lsa-edge[train]'" in str(err), err
    else:
        raise AssertionError("ran a checkpoint without torch")
    print("OK")
    """
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
