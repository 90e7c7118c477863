"""Property tests of the model-package loader: any manifest.json and any file contents either load or
raise LsaEdgeError with a message — never another exception — and no manifest makes the loader touch a
file outside the package folder. Bounded by the conftest profile (LSA_EDGE_HYPOTHESIS_EXAMPLES)."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import example, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lsa_edge import _verify  # noqa: E402
from lsa_edge._manifest import MANIFEST  # noqa: E402
from lsa_edge.engine_meta import sha256_file  # noqa: E402
from lsa_edge.errors import LsaEdgeError  # noqa: E402
from lsa_edge.package import DEFAULT_MODEL_DIR, ModelPackage  # noqa: E402

SHIPPED = json.loads((DEFAULT_MODEL_DIR / MANIFEST).read_text())
MODEL = b"stand-in model bytes"
BASE = copy.deepcopy(SHIPPED)
BASE["files"] = {"model.onnx": {"bytes": len(MODEL), "sha256": "0" * 64}}  # set per package below
BASE["detector"] = {"onnx": "model.onnx", "engine": None}  # so detector keys are there to be mutated
NAME_SLOTS = (("cpu_onnx",), ("engine",), ("onnx",), ("detector", "onnx"), ("detector", "engine"))

HUGE = st.sampled_from([2**63, -(2**63) - 1, 10**40, 10**300, 1e308, -1e308, float("inf"), float("nan")])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | HUGE
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["model.onnx", "fp32", "int8", "0" * 64])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
odd_paths = st.sampled_from(
    [
        "../x",
        "../outside.onnx",
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        ".",
        "",
        "./",
        "a/../../outside.onnx",
        "a/../model.onnx",
        "..\\outside.onnx",
        "C:\\outside.onnx",
        "C:outside.onnx",
        "\\\\server\\share\\x",
        "//server/share/x",
        "model.onnx\x00",
        "~/x",
        "model.onnx/",
        "engines/",
        " model.onnx",
        "a" * 5000,
        "x/" * 3000 + "y",
        "\udcff.onnx",
    ]
) | st.text(alphabet="./\\:~x", max_size=10)


def key_paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON document (dict keys and list indices)."""
    out = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out += key_paths(v, (*prefix, k))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for k in path[:-1]:
        doc = doc[k]
    return doc


@st.composite
def mutated_manifests(draw, base: dict | None = None) -> dict[str, Any]:
    """The shipped manifest (or ``base``) with 1–3 of: a dropped key, a value of another type, an odd file
    name, a huge number — anywhere in the document, or in one of the slots that name files."""
    doc = copy.deepcopy(BASE if base is None else base)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "value", "name", "number", "file-entry"]))
        if action == "name":
            slot = draw(st.sampled_from(NAME_SLOTS))
            parent = doc
            for k in slot[:-1]:
                if not isinstance(parent.get(k), dict):
                    parent[k] = {}
                parent = parent[k]
            parent[slot[-1]] = draw(odd_paths)
            continue
        if action == "file-entry":  # an extra listed file under an odd name
            files = doc.get("files")
            if isinstance(files, dict):
                files[draw(odd_paths)] = {
                    "bytes": draw(st.integers(-1, 64)),
                    "sha256": draw(st.text(max_size=64)),
                }
            continue
        paths = key_paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        if action == "drop":
            del parent[path[-1]]
        elif action == "value":
            parent[path[-1]] = draw(json_values)
        else:
            parent[path[-1]] = draw(HUGE | st.integers(min_value=-(2**70), max_value=2**70))
    return doc


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(_verify.VERIFY_ENV, raising=False)
    _verify.clear_memory()
    yield
    _verify.clear_memory()


@pytest.fixture
def hashed(monkeypatch) -> list[Path]:
    """Every file the loader hashes."""
    seen: list[Path] = []
    monkeypatch.setattr(_verify, "sha256_file", lambda p: seen.append(Path(p)) or sha256_file(p))
    return seen


def write_package(base: Path, manifest: Any, content: bytes = MODEL) -> Path:
    """A fresh package folder under ``base`` (a file outside it waits for traversal attempts)."""
    work = Path(tempfile.mkdtemp(dir=base))
    (work / "outside.onnx").write_bytes(MODEL)
    (work / "x").write_bytes(MODEL)
    root = work / "pkg"
    root.mkdir()
    (root / "model.onnx").write_bytes(content)
    if not isinstance(manifest, bytes):  # a JSON document (raw bytes are written as they are)
        manifest = json.dumps(manifest, allow_nan=True).encode("utf-8")
    (root / MANIFEST).write_bytes(manifest)
    return root


def load_or_refuse(root: Path, hashed: list[Path]) -> ModelPackage | None:
    """The property: a package, or an LsaEdgeError with a message; nothing outside ``root`` touched."""
    hashed.clear()
    try:
        pkg = ModelPackage.open(root)
    except LsaEdgeError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        pkg = None
    inside = root.resolve()
    for p in hashed:
        assert inside in p.resolve().parents, f"hashed {p}, outside {root}"
    hashed.clear()
    if pkg is not None:
        for p in (pkg.cpu_onnx, pkg.gpu_onnx, pkg.engine, pkg.detector_onnx, pkg.detector_engine):
            assert p is None or inside in p.resolve().parents, f"{p} is outside {root}"
    return pkg


def with_real_hash(doc: Any) -> Any:
    """The stand-in model's true sha256 where the document lists model.onnx (so hashes are not the only
    thing that fails)."""
    files = doc.get("files") if isinstance(doc, dict) else None
    entry = files.get("model.onnx") if isinstance(files, dict) else None
    if isinstance(entry, dict) and entry.get("sha256") == "0" * 64:
        entry["sha256"] = sha256_file_bytes(MODEL)
    return doc


def sha256_file_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_the_base_manifest_loads(tmp_path, hashed):
    assert load_or_refuse(write_package(tmp_path, with_real_hash(copy.deepcopy(BASE))), hashed) is not None


@given(doc=json_values)
@example(doc={"card": {}})
@example(doc={"card": SHIPPED["card"], "files": {"../x": {"bytes": len(MODEL), "sha256": "0" * 64}}})
@example(doc={"card": SHIPPED["card"], "cpu_onnx": "../x"})
@example(doc={"card": SHIPPED["card"], "format": 10**300})
def test_any_json_document(tmp_path, hashed, doc):
    load_or_refuse(write_package(tmp_path, with_real_hash(doc)), hashed)


@given(doc=st.fixed_dictionaries({}, optional={k: json_values for k in BASE}))
def test_any_values_under_the_manifest_keys(tmp_path, hashed, doc):
    load_or_refuse(write_package(tmp_path, with_real_hash(doc)), hashed)


@given(card=st.fixed_dictionaries({}, optional={k: json_values for k in SHIPPED["card"]}))
def test_any_card(tmp_path, hashed, card):
    doc = with_real_hash(copy.deepcopy(BASE))
    doc["card"] = card
    load_or_refuse(write_package(tmp_path, doc), hashed)


@given(doc=mutated_manifests())
def test_mutations_of_a_real_manifest(tmp_path, hashed, doc):
    load_or_refuse(write_package(tmp_path, with_real_hash(doc)), hashed)


@given(slot=st.sampled_from(NAME_SLOTS), name=odd_paths)
def test_no_name_reaches_outside_the_package(tmp_path, hashed, slot, name):
    doc = with_real_hash(copy.deepcopy(BASE))
    _parent(doc, slot)[slot[-1]] = name
    doc["files"][name or "model.onnx"] = {"bytes": len(MODEL), "sha256": sha256_file_bytes(MODEL)}
    pkg = load_or_refuse(write_package(tmp_path, doc), hashed)
    if any(part == ".." for part in name.replace("\\", "/").split("/")) or name.startswith(("/", "\\")):
        assert pkg is None, f"{name!r} was accepted"


@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(raw=b"[" * 100_000)
@example(raw=b'{"card": {}, "files": {"model.onnx": {"bytes": 1' + b"0" * 5000 + b"}}}")
@example(raw=b"\xef\xbb\xbf{}")
def test_any_bytes_as_manifest(tmp_path, hashed, raw):
    load_or_refuse(write_package(tmp_path, raw), hashed)


@given(content=st.binary(max_size=200), recorded=st.binary(max_size=200))
@example(content=MODEL, recorded=MODEL)
def test_any_file_contents(tmp_path, hashed, content, recorded):
    doc = copy.deepcopy(BASE)
    doc["files"]["model.onnx"] = {"bytes": len(recorded), "sha256": sha256_file_bytes(recorded)}
    root = write_package(tmp_path, doc, content=content)
    try:
        ModelPackage.open(root)
        loaded = True
    except LsaEdgeError as err:
        assert "model.onnx" in str(err)
        loaded = False
    assert loaded == (content == recorded)


# -- build --from-bundle: the keys building engines reads (one schema, lsa_edge._manifest.BUILD_SCHEMA) ----

BUILD_BASE = copy.deepcopy(BASE)
BUILD_BASE["detector"] = {
    "onnx": "model.onnx",
    "onnx_by_tensorrt": {"8.5": "model.onnx", "10": "model.onnx", "11": "model.onnx"},
    "strongly_typed_by_tensorrt": {"8.5": False, "10": True, "11": True},
    "input": {"name": "input", "shape": ["batch", 3, 128, 128]},
    "batch": [1, 1, 4],
    "precision": "fp16",
    "engine": None,
}


@pytest.fixture
def fake_tensorrt_build(monkeypatch):
    """TensorRT 10 "installed": build_engine writes a stand-in engine (what is checked is the manifest)."""
    from lsa_edge.engines import tensorrt as trt_mod

    def build_engine(spec, log=None):
        spec.out_dir.mkdir(exist_ok=True)
        engine = spec.out_dir / f"{spec.onnx.stem}_{spec.precision}.engine"
        engine.write_bytes(b"engine")
        return SimpleNamespace(engine=engine)  # what --from-bundle reads of an EngineResult

    monkeypatch.setattr(trt_mod, "tensorrt_version", lambda: "10.3.0.26")
    monkeypatch.setattr(trt_mod, "build_engine", build_engine)


def build_or_refuse(root: Path) -> dict | None:
    """What ``lsa-edge build --from-bundle`` does with a manifest — read it, derive the device commands and
    DEPLOY.md, build the engines and record them — either works or raises LsaEdgeError with a message."""
    from lsa_edge.cli.build import print_summary
    from lsa_edge.engines.build import build_from_manifest, deploy_text, read_manifest, tensorrt_commands

    try:
        manifest = read_manifest(root, for_build=True)
        tensorrt_commands(manifest)
        deploy_text(manifest)
        deploy_text({k: v for k, v in manifest.items() if k != "tensorrt_commands"})
        built = build_from_manifest(root, manifest)
        print_summary(built, root)  # what the CLI prints after building: reads the report keys
        return built
    except LsaEdgeError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return None


def test_the_base_bundle_builds(tmp_path, fake_tensorrt_build):
    built = build_or_refuse(write_package(tmp_path, with_real_hash(copy.deepcopy(BUILD_BASE))))
    assert built is not None and built["engine"] and built["detector"]["engine"]


def _gap(path: tuple, value: Any = "<drop>") -> dict:
    doc = copy.deepcopy(BUILD_BASE)
    if value == "<drop>":
        del _parent(doc, path)[path[-1]]
    else:
        _parent(doc, path)[path[-1]] = value
    return doc


GAPS = [  # each ended in a KeyError/TypeError ("please report it") on the device before the schema
    _gap(("detector", "onnx_by_tensorrt")),
    _gap(("tensorrt_compatibility", "10", "errors")),
    _gap(("tensorrt_compatibility", "10"), {"ok": False, "errors": []}),
    _gap(("batch",), "abc"),
    _gap(("batch",), [1, 2]),
    _gap(("input", "shape"), "faces"),
    _gap(("workspace_mib",), "1024"),
    _gap(("dla_core",), -1),
    _gap(("onnx_by_tensorrt", "10")),
    _gap(("strongly_typed_by_tensorrt",), ["10"]),
    _gap(("tensorrt_commands", "trtexec")),
    _gap(("detector", "input")),
    _gap(("detector", "batch"), "1,1,4"),
    _gap(("opset16",), ["model.onnx"]),
    _gap(("files",), None),
    _gap(("source",)),
    _gap(("accuracy",), {"fp16": {"artifact": "fp16"}}),
    _gap(("validation",), []),
]


@pytest.mark.parametrize("doc", GAPS)
def test_gaps_of_the_old_key_list_are_package_errors(tmp_path, fake_tensorrt_build, doc):
    """The old build-side check listed keys, not types: these reached KeyError/TypeError on the device."""
    root = write_package(tmp_path, with_real_hash(doc))
    if doc.get("files") is None:  # no checksums recorded: builds (with a warning), the files entry added
        assert build_or_refuse(root) is not None
        return
    from lsa_edge.engines.build import read_manifest
    from lsa_edge.errors import PackageError

    with pytest.raises(PackageError, match=r"manifest\.json is not a valid lsa-edge manifest") as err:
        read_manifest(root, for_build=True)
    assert "rebuild" in str(err.value).lower()
    assert build_or_refuse(root) is None


def test_an_in_memory_manifest_is_checked_by_build_from_manifest(tmp_path, fake_tensorrt_build):
    from lsa_edge.engines.build import build_from_manifest, read_manifest
    from lsa_edge.errors import PackageError

    root = write_package(tmp_path, with_real_hash(copy.deepcopy(BUILD_BASE)))
    manifest = read_manifest(root)  # the runtime's checks only (cli/build.py reads it so)
    manifest["batch"] = "abc"
    with pytest.raises(PackageError, match='"batch" must be'):
        build_from_manifest(root, manifest)


@given(doc=mutated_manifests(BUILD_BASE))
def test_build_from_bundle_on_mutated_manifests(tmp_path, fake_tensorrt_build, doc):
    build_or_refuse(write_package(tmp_path, with_real_hash(doc)))
