"""The typed manifest (lsa_edge.manifest): JSON round trip, old manifests, damaged ones, file names once."""

from __future__ import annotations

import json

import pytest

from lsa_edge import _manifest
from lsa_edge.errors import PackageError
from lsa_edge.manifest import (
    GENERATIONS,
    GPU_ONNX,
    MANIFEST,
    DetectorEntry,
    Manifest,
    opset16_name,
)
from lsa_edge.package import DEFAULT_MODEL_DIR

SHIPPED = json.loads((DEFAULT_MODEL_DIR / MANIFEST).read_text())


def test_the_shipped_manifest_round_trips_key_for_key():
    m = Manifest.from_json(SHIPPED)
    assert m.to_json() == SHIPPED
    assert list(m.to_json()) == [k for k in m.to_json() if k in SHIPPED]  # no invented keys
    assert Manifest.from_json(m.to_json()) == m
    assert Manifest.read(DEFAULT_MODEL_DIR) == m
    assert m.precision == SHIPPED["precision"] and m.detector is None and "detector" in m.to_json()


def test_a_built_manifest_round_trips():
    m = Manifest(
        source="best.pt",
        precision="int8",
        onnx="model_int8_trt.onnx",
        onnx_by_tensorrt={g: "model_int8_trt.onnx" for g in GENERATIONS},
        strongly_typed_by_tensorrt={"8.5": False, "10": False, "11": True},
        cpu_onnx="model_int8_cpu.onnx",
        batch=(1, 8, 16),
        detector=DetectorEntry(onnx="detector/d.onnx", batch=(1, 1, 4), precision="fp16"),
        card=SHIPPED["card"],
        extra={"future": [1, 2]},
    )
    doc = m.to_json()
    assert doc["batch"] == [1, 8, 16] and doc["detector"]["batch"] == [1, 1, 4]  # JSON lists
    assert doc["engine"] is None and doc["tensorrt_local"] is None  # written as null, as builds always did
    assert "calibration" not in doc and doc["future"] == [1, 2]
    back = Manifest.from_json(json.loads(json.dumps(doc)))
    assert back == m and back.batch == (1, 8, 16) and back.to_json() == doc
    assert m.gpu_onnx() == "model_int8_trt.onnx" and m.strongly_typed("11") and not m.strongly_typed("10")
    assert m.replace(engine="engines/x.engine").to_json()["engine"] == "engines/x.engine"


def test_an_old_manifest_loads_and_is_not_given_keys_it_lacked():
    doc = json.loads(json.dumps(SHIPPED))
    for key in ("format", "files", "detector", "engine", "precision", "onnx", "onnx_by_tensorrt"):
        doc.pop(key, None)
    doc["unknown_future_key"] = {"x": 1}
    m = Manifest.from_json(doc)
    assert m.precision == "fp32" and m.engine is None and m.detector is None
    assert m.extra == {"unknown_future_key": {"x": 1}}
    out = m.to_json()
    assert "engine" not in out and "detector" not in out and "files" not in out
    assert out["unknown_future_key"] == {"x": 1}
    assert m.gpu_onnx() == GPU_ONNX["fp32"] and m.onnx_for("10") is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"precision": "fp8"}, '"precision" must be one of'),
        ({"onnx": "../x.onnx"}, "outside the package"),
        ({"files": {"a": {"bytes": -1, "sha256": "0" * 64}}}, "bytes must be a size"),
        ({"format": 99}, "reads up to"),
    ],
)
def test_a_damaged_manifest_is_a_package_error(change, why, tmp_path):
    doc = {**json.loads(json.dumps(SHIPPED)), **change}
    with pytest.raises(PackageError, match=why):
        Manifest.from_json(doc, tmp_path / MANIFEST)
    (tmp_path / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(PackageError, match=why):
        Manifest.read(tmp_path)
    with pytest.raises(PackageError, match="holds a JSON list"):
        Manifest.from_json([1], tmp_path / MANIFEST)
    no_card = {k: v for k, v in SHIPPED.items() if k != "card"}
    with pytest.raises(PackageError, match='"card" is missing'):
        Manifest.from_json(no_card)


def test_for_build_checks_the_build_keys():
    doc = {k: v for k, v in SHIPPED.items() if k != "batch"}
    Manifest.from_json(doc)  # the runtime does not need it
    with pytest.raises(PackageError, match='"batch" is missing'):
        Manifest.from_json(doc, for_build=True)


def test_generation_names_are_defined_once():
    from lsa_edge.engines._trt_generations import GENERATIONS as TABLE

    assert tuple(TABLE) == GENERATIONS == _manifest.GENERATIONS
    assert all(TABLE[g].key == g for g in GENERATIONS)
    assert opset16_name("model_int8_trt.onnx") == "model_int8_trt_opset16.onnx"


def test_the_runtime_takes_its_gpu_graph_from_onnx_by_tensorrt(tmp_path):
    """package.py honours the manifest's onnx_by_tensorrt: the graph a strongly typed generation builds
    (it carries the precision in its types) is what ONNX Runtime's GPU providers get."""
    from lsa_edge.engine_meta import sha256_file
    from lsa_edge.package import ModelPackage

    root = tmp_path / "p"
    root.mkdir()
    for name in ("model.onnx", "custom_fp16.onnx"):
        (root / name).write_bytes(b"stand-in " + name.encode())
    doc = json.loads(json.dumps(SHIPPED))
    doc["files"] = {
        n: {"bytes": (root / n).stat().st_size, "sha256": sha256_file(root / n)}
        for n in ("model.onnx", "custom_fp16.onnx")
    }
    doc.update(
        precision="fp16",
        onnx_by_tensorrt={"8.5": "model.onnx", "10": "custom_fp16.onnx", "11": "custom_fp16.onnx"},
        strongly_typed_by_tensorrt={"8.5": False, "10": True, "11": True},
    )
    (root / MANIFEST).write_text(json.dumps(doc))
    assert ModelPackage.open(root).gpu_onnx == root / "custom_fp16.onnx"
    for key in ("onnx_by_tensorrt", "strongly_typed_by_tensorrt"):  # an older manifest: the precision's file
        doc.pop(key)
    (root / MANIFEST).write_text(json.dumps(doc))
    (root / "model_fp16.onnx").write_bytes(b"x")
    assert ModelPackage.open(root).gpu_onnx == root / "model_fp16.onnx"
