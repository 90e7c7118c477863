"""Samples, scripts and benchmarks use only lsa-edge's public API: no private module (``lsa_edge._x``) and
no CLI internals (``lsa_edge.cli.<command>``); what they need is offered publicly (lsa_edge.io,
lsa_edge.sinks, lsa_edge.sources, lsa_edge.evaluation, ``lsa_edge.cli.__all__``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
USERS = sorted(p for d in ("samples", "scripts", "benchmarks") for p in (ROOT / d).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import of lsa_edge in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("lsa_edge"):
            out.append((node.lineno, node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("lsa_edge")]
    return out


def _private(module: str, names: list[str]) -> list[str]:
    import lsa_edge.cli

    parts = module.split(".")
    bad = (
        [module]
        if any(p.startswith("_") for p in parts) or (parts[:2] == ["lsa_edge", "cli"] and len(parts) > 2)
        else []
    )
    if module == "lsa_edge.cli":
        bad += [f"lsa_edge.cli.{n}" for n in names if n not in lsa_edge.cli.__all__]
    bad += [f"{module}.{n}" for n in names if n.startswith("_")]
    return bad


@pytest.mark.parametrize("path", USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_uses_only_the_public_api(path):
    found = [f"{ln}: {bad}" for ln, mod, names in _imports(path) for bad in _private(mod, names)]
    assert not found, f"{path.relative_to(ROOT)} imports private names:\n" + "\n".join(found)


def test_the_check_sees_private_imports():
    assert _private("lsa_edge._fileio", ["write_json_atomic"])
    assert _private("lsa_edge.cli.run", ["VideoSink"])
    assert _private("lsa_edge.cli", ["_common"])
    assert not _private("lsa_edge.cli", ["main", "setup_logging"])
    assert not _private("lsa_edge.io", ["write_json_atomic"])


def test_io_is_the_fileio_helpers():
    import lsa_edge._fileio as fileio
    import lsa_edge.io as io

    for name in io.__all__:
        assert getattr(io, name) is getattr(fileio, name)
