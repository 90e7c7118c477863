"""The opset-16 rewrite for TensorRT 8.5: LayerNormalization decomposed exactly, the shipped model's
function unchanged, and graphs the rewrite cannot express refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from lsa_edge.engines.lint import lint_report  # noqa: E402
from lsa_edge.engines.opset import lower_to_opset16, needs_lowering  # noqa: E402
from lsa_edge.errors import LsaEdgeError  # noqa: E402
from lsa_edge.package import DEFAULT_MODEL_DIR  # noqa: E402


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _layer_norm_graph(
    path: Path, axis: int, bias: bool, opset: int = 17, extra_outputs: bool = False
) -> Path:
    rng = np.random.default_rng(0)
    scale = numpy_helper.from_array(rng.standard_normal((6, 5)).astype(np.float32), "scale")
    b = numpy_helper.from_array(rng.standard_normal((6, 5)).astype(np.float32), "b")
    outputs = ["y", "mean", "inv_std"] if extra_outputs else ["y"]
    node = helper.make_node(
        "LayerNormalization",
        ["x", "scale", *(["b"] if bias else [])],
        outputs,
        name="ln",
        axis=axis,
        epsilon=1e-3,
    )
    graph = helper.make_graph(
        [node],
        "ln",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 6, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 6, 5])],
        initializer=[scale, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("axis", "bias"), [(-2, True), (2, False)])
def test_layer_norm_is_decomposed_exactly(tmp_path, axis, bias):
    src = _layer_norm_graph(tmp_path / "ln.onnx", axis, bias)
    assert needs_lowering(src)
    dst = lower_to_opset16(src, tmp_path / "ln16.onnx")
    model = onnx.load(str(dst))
    assert model.opset_import[0].version == 16 and not needs_lowering(dst)
    assert "LayerNormalization" not in {n.op_type for n in model.graph.node}
    x = np.random.default_rng(1).standard_normal((2, 4, 6, 5)).astype(np.float32) * 3 + 1
    # numpy's LayerNorm over the last two axes (axis -2 or 2 of a rank-4 input)
    mean = x.mean(axis=(2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(2, 3), keepdims=True)
    scale, b = (numpy_helper.to_array(t) for t in model.graph.initializer[:2])
    want = (x - mean) / np.sqrt(var + 1e-3) * scale + (b if bias else 0)
    np.testing.assert_allclose(_run(dst, x), want, atol=2e-5)
    np.testing.assert_allclose(_run(dst, x), _run(src, x), atol=2e-5)


def test_the_shipped_model_at_opset16_passes_tensorrt_85_and_computes_the_same(tmp_path):
    src = DEFAULT_MODEL_DIR / "model.onnx"
    assert [f for f in lint_report(src, "8.5").findings if f.severity == "error"]  # why the rewrite exists
    dst = lower_to_opset16(src, tmp_path / "model_opset16.onnx")
    assert not [f for f in lint_report(dst, "8.5").findings if f.severity == "error"]
    x = np.random.default_rng(0).standard_normal((4, 3, 160, 144)).astype(np.float32)
    assert float(np.abs(_run(dst, x) - _run(src, x)).max()) < 1e-5
    src_meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    dst_meta = {p.key: p.value for p in onnx.load(str(dst), load_external_data=False).metadata_props}
    assert src_meta == dst_meta  # the model card travels along


def test_what_cannot_be_rewritten_is_refused_by_name(tmp_path):
    src = _layer_norm_graph(tmp_path / "stats.onnx", -1, True, extra_outputs=True)
    with pytest.raises(LsaEdgeError, match="outputs its mean/inverse std"):
        lower_to_opset16(src, tmp_path / "x.onnx")
    # opset 18 moved ReduceMean's axes from an attribute to an input: not expressible as 16 by relabelling
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean18")],
        "r",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 1])],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "r18.onnx"))
    with pytest.raises(LsaEdgeError, match=r"ReduceMean \(node 'mean18'\) changed after opset 16"):
        lower_to_opset16(tmp_path / "r18.onnx", tmp_path / "y.onnx")
    assert not (tmp_path / "y.onnx").exists()


def test_nameless_nodes_get_apart_and_fp16_inputs_are_refused(tmp_path):
    src = _layer_norm_graph(tmp_path / "ln.onnx", -1, True)
    model = onnx.load(str(src))
    model.graph.node[0].name = ""  # nameless nodes are valid ONNX, and both would be ".../opset16"
    second = onnx.helper.make_node("LayerNormalization", ["y", "scale", "b"], ["z"], axis=-1, epsilon=1e-3)
    model.graph.node.append(second)
    model.graph.output[0].name = "z"
    onnx.save(model, str(tmp_path / "two.onnx"))
    dst = lower_to_opset16(tmp_path / "two.onnx", tmp_path / "two16.onnx")
    x = np.random.default_rng(2).standard_normal((2, 4, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(_run(dst, x), _run(tmp_path / "two.onnx", x), atol=5e-5)
    half = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln16")],
        "h",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2, 5])],
        initializer=[numpy_helper.from_array(np.ones(5, np.float16), "s")],
    )
    m = helper.make_model(half, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "half.onnx"))
    with pytest.raises(LsaEdgeError, match="takes FLOAT16; the opset-16 rewrite handles float32"):
        lower_to_opset16(tmp_path / "half.onnx", tmp_path / "h16.onnx")
