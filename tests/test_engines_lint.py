"""The static TensorRT lint: deliberately bad small graphs fire the exact rule, per generation; a clean graph
and the exported LSA model pass; the `lsa-edge check` exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from lsa_edge.cli import main  # noqa: E402
from lsa_edge.engines.lint import TRT_GENERATIONS, Finding, lint_onnx, lint_report  # noqa: E402
from lsa_edge.errors import ConfigError  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def model(nodes, inputs, outputs, inits=(), opset=17, check=True, extra_opsets=()):
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), list(inits))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in extra_opsets)]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="test")
    m.ir_version = 8
    if check:  # the graphs are legal ONNX: findings are about TensorRT, not a broken model
        onnx.checker.check_model(m)
    return m


def vi(name, shape, dtype=F):
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def rules(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.rule for f in findings if severity is None or f.severity == severity}


def only(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def clean_model(dtype=F, np_dtype=np.float32):
    """Conv → Relu → GlobalAveragePool → Flatten → Gemm → Sigmoid, dynamic batch."""
    rng = np.random.default_rng(0)
    inits = [
        init("w", rng.normal(size=(4, 3, 3, 3)).astype(np_dtype)),
        init("b", np.zeros(4, np_dtype)),
        init("fc_w", rng.normal(size=(2, 4)).astype(np_dtype)),
        init("fc_b", np.zeros(2, np_dtype)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["g"], name="fc", transB=1),
        helper.make_node("Sigmoid", ["g"], ["y"], name="sigmoid"),
    ]
    return model(nodes, [vi("x", ["batch", 3, 8, 8], dtype)], [vi("y", ["batch", 2], dtype)], inits)


@pytest.mark.parametrize("trt", TRT_GENERATIONS)
def test_clean_conv_relu_gemm_sigmoid_passes(trt):
    found = lint_onnx(clean_model(), trt)
    assert rules(found, "error") == set() and rules(found, "warning") == set(), found
    report = lint_report(clean_model(), trt)
    assert not report.failed(strict=True)
    s = report.summary
    assert s.opset == 17 and dict(s.op_counts)["Conv"] == 1 and s.qdq_nodes == 0 and s.fp16_tensors == 0
    assert s.inputs[0].shape == ("batch", 3, 8, 8) and s.outputs[0].dtype == "float32"


@pytest.mark.parametrize(
    ("op", "expect"),
    [
        # TensorRT 8.6 added LayerNormalization: JetPack 5's 8.5 cannot parse torch's opset-17 LayerNorm.
        ("LayerNormalization", {"8.5": "error", "10": None, "11": None}),
        ("Hardmax", {"8.5": "error", "10": None, "11": None}),  # added in 9.2
        ("HannWindow", {"8.5": "error", "10": "warning", "11": None}),  # added in 10.4 (JetPack 6 has 10.3)
        ("DFT", {"8.5": "error", "10": "error", "11": "warning"}),  # TensorRT 11.2
        ("NonMaxSuppression", {"8.5": None, "10": None, "11": None}),  # native since 8.5
    ],
)
def test_operator_support_differs_by_generation(op, expect):
    x = vi("x", ["batch", 4])
    if op == "LayerNormalization":
        nodes = [helper.make_node(op, ["x", "s"], ["y"], name="ln", axis=-1)]
        m = model(nodes, [x], [vi("y", ["batch", 4])], [init("s", np.ones(4, np.float32))])
    elif op == "Hardmax":
        m = model([helper.make_node(op, ["x"], ["y"], name="hm")], [x], [vi("y", ["batch", 4])])
    elif op == "HannWindow":
        nodes = [helper.make_node(op, ["n"], ["y"], name="win")]
        m = model(nodes, [], [vi("y", [8])], [init("n", np.array(8, np.int64))])
    elif op == "DFT":
        nodes = [helper.make_node(op, ["s"], ["y"], name="dft")]
        m = model(nodes, [vi("s", [1, 8, 1])], [vi("y", [1, 8, 2])])
    else:
        nodes = [helper.make_node(op, ["boxes", "scores", "k"], ["sel"], name="nms")]
        ins = [vi("boxes", [1, 10, 4]), vi("scores", [1, 1, 10])]
        m = model(nodes, ins, [vi("sel", ["n", 3], I64)], [init("k", np.array([5], np.int64))])
    for trt, sev in expect.items():
        found = [f for f in lint_onnx(m, trt) if f.rule.startswith("op-")]
        if sev is None:
            assert found == [], (trt, found)
        else:
            assert [(f.severity, f.op) for f in found] == [(sev, op)], (trt, found)
            assert "not in" in found[0].message or "supported from" in found[0].message


def test_nms_selected_indices_have_a_data_dependent_output_shape():
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores", "k"], ["sel"], name="nms")]
    ins = [vi("boxes", [1, 10, 4]), vi("scores", [1, 1, 10])]
    m = model(nodes, ins, [vi("sel", ["n", 3], I64)], [init("k", np.array([5], np.int64))])
    found = only(lint_onnx(m, "10"), "dynamic-output-dim")
    assert found == []  # axis 0 may be dynamic
    m = model(nodes, ins, [vi("sel", [1, "k", 3], I64)], [init("k", np.array([5], np.int64))], check=False)
    assert [f.severity for f in only(lint_onnx(m, "10"), "dynamic-output-dim")] == ["warning"]


def test_layernorm_message_says_how_to_fix_it_for_jetpack5():
    nodes = [helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")]
    m = model(nodes, [vi("x", ["b", 4])], [vi("y", ["b", 4])], [init("s", np.ones(4, np.float32))])
    (f,) = lint_onnx(m, "8.5")
    assert f.rule == "op-unsupported" and f.where == "ln" and "opset_version 16" in f.message


@pytest.mark.parametrize("trt", TRT_GENERATIONS)
def test_non_batch_dynamic_input_dim_is_an_error_and_output_a_warning(trt):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    m = model(nodes, [vi("x", ["batch", 3, "height", "width"])], [vi("y", ["batch", 3, "height", "width"])])
    found = lint_onnx(m, trt)
    (err,) = only(found, "dynamic-dim")
    assert err.severity == "error" and err.where == "x" and "height" in err.message and "width" in err.message
    (warn,) = only(found, "dynamic-output-dim")
    assert warn.severity == "warning" and warn.where == "y"
    # a fixed batch is allowed but noted
    m = model(nodes, [vi("x", [1, 3, 8, 8])], [vi("y", [1, 3, 8, 8])])
    assert rules(lint_onnx(m, trt)) - {"strongly-typed"} == {"static-batch"}


def test_int64_out_of_int32_range_fails_only_on_8_5():
    nodes = [helper.make_node("Add", ["x", "big"], ["y"], name="add")]
    big = init("big", np.array([2**40], np.int64))
    m = model(nodes, [vi("x", ["b", 1], I64)], [vi("y", ["b", 1], I64)], [big])
    found = lint_onnx(m, "8.5")
    (err,) = only(found, "int64-out-of-range")
    assert err.severity == "error" and err.where == "big" and "INT32" in err.message
    assert [f.severity for f in only(found, "int64-io")] == ["warning", "warning"]
    for trt in ("10", "11"):  # native INT64 since 9.0
        assert not rules(lint_onnx(m, trt)) & {"int64-out-of-range", "int64-io"}


def test_int64_max_slice_end_clamps_harmlessly_on_8_5():
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["y"], name="slice")]
    inits = [
        init("starts", np.array([1], np.int64)),
        init("ends", np.array([np.iinfo(np.int64).max], np.int64)),
        init("axes", np.array([1], np.int64)),
    ]
    m = model(nodes, [vi("x", ["b", 8])], [vi("y", ["b", 7])], inits)
    found = lint_onnx(m, "8.5")
    assert rules(found, "error") == set()
    assert [f.where for f in only(found, "int64-clamped")] == ["ends"]
    assert only(found, "int64-cast-down")[0].severity == "info"


@pytest.mark.parametrize("trt", TRT_GENERATIONS)
def test_double_weights_io_and_casts(trt):
    nodes = [
        helper.make_node("Cast", ["x"], ["xd"], name="to_double", to=TensorProto.DOUBLE),
        helper.make_node("Add", ["xd", "bias"], ["yd"], name="add"),
        helper.make_node("Cast", ["yd"], ["y"], name="to_int64", to=TensorProto.INT64),
    ]
    m = model(nodes, [vi("x", ["b", 2])], [vi("y", ["b", 2], I64)], [init("bias", np.ones(2, np.float64))])
    found = lint_onnx(m, trt)
    assert [(f.severity, f.where) for f in only(found, "double")] == [("warning", "bias")]
    assert [(f.severity, f.where) for f in only(found, "cast-double")] == [("warning", "to_double")]
    assert [f.where for f in only(found, "cast-int64")] == (["to_int64"] if trt == "8.5" else [])
    m = model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")],
        [vi("x", ["b", 2], TensorProto.DOUBLE)],
        [vi("y", ["b", 2], TensorProto.DOUBLE)],
    )
    assert {(f.severity, f.where) for f in only(lint_onnx(m, trt), "double")} == {
        ("error", "x"),
        ("error", "y"),
    }


def _qdq_conv(
    w_axis=0,
    zp_dtype=np.int8,
    zp_value=0,
    opset=13,
    per_channel=True,
    bias_int32=False,
    act_zp=np.int8,
    check=True,
):
    """x → Q → DQ ─┐
    w(int8) → DQ ──┴→ Conv (+ bias) → y"""
    rng = np.random.default_rng(0)
    k = 4
    inits = [
        init("x_scale", np.float32(0.02)),
        init("x_zp", act_zp(0)),
        init("w_q", rng.integers(-127, 127, size=(k, 3, 3, 3)).astype(zp_dtype)),
        init("w_scale", np.full(k if per_channel else (), 0.01, np.float32)),
        init("w_zp", np.full(k if per_channel else (), zp_value, zp_dtype)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["xq"], name="q_x"),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zp"], ["xdq"], name="dq_x"),
        helper.make_node(
            "DequantizeLinear",
            ["w_q", "w_scale", "w_zp"],
            ["w"],
            name="dq_w",
            **({"axis": w_axis} if opset >= 13 else {}),
        ),
    ]
    conv_in = ["xdq", "w"]
    if bias_int32:
        inits += [init("b_q", np.zeros(k, np.int32)), init("b_scale", np.full(k, 2e-4, np.float32))]
        nodes.append(
            helper.make_node(
                "DequantizeLinear",
                ["b_q", "b_scale"],
                ["bias"],
                name="dq_bias",
                **({"axis": 0} if opset >= 13 else {}),
            )
        )
        conv_in.append("bias")
    nodes.append(helper.make_node("Conv", conv_in, ["y"], name="conv", pads=[1, 1, 1, 1]))
    return model(nodes, [vi("x", ["b", 3, 8, 8])], [vi("y", ["b", k, 8, 8])], inits, opset=opset, check=check)


@pytest.mark.parametrize("trt", TRT_GENERATIONS)
def test_symmetric_int8_per_channel_qdq_conv_is_clean(trt):
    found = lint_onnx(_qdq_conv(), trt)
    assert rules(found, "error") == set() and rules(found, "warning") == set(), found
    assert lint_report(_qdq_conv(), trt).summary.qdq_nodes == 3


@pytest.mark.parametrize("trt", TRT_GENERATIONS)
def test_uint8_zero_points_are_errors(trt):
    found = lint_onnx(_qdq_conv(zp_dtype=np.uint8, act_zp=np.uint8), trt)
    bad = only(found, "qdq-uint8")
    # the same problem on several nodes is one finding naming them
    assert {f.where for f in bad} == {"q_x", "dq_x, dq_w (2 nodes)"} and {f.severity for f in bad} == {
        "error"
    }
    assert "symmetric" in bad[0].message and "int8" in bad[0].message


def test_nonzero_int8_zero_point_is_an_error():
    (f,) = only(lint_onnx(_qdq_conv(zp_value=3), "10"), "qdq-zero-point")
    assert f.severity == "error" and f.where == "dq_w"


@pytest.mark.parametrize("trt", TRT_GENERATIONS)
def test_int32_bias_dequantize_is_an_error(trt):
    (f,) = only(lint_onnx(_qdq_conv(bias_int32=True), trt), "qdq-int32")
    assert f.severity == "error" and f.where == "dq_bias" and "float" in f.message


def test_conv_weight_axis_must_be_output_channels():
    (f,) = only(lint_onnx(_qdq_conv(w_axis=1), "10"), "qdq-axis")
    assert f.severity == "error" and f.where == "dq_w" and "axis 0" in f.message


def test_per_channel_qdq_below_opset_13_is_an_error():
    m = _qdq_conv(opset=11, check=False)  # opset-10 DequantizeLinear has no `axis`: not valid ONNX either
    found = {f.where: f for f in only(lint_onnx(m, "8.5"), "qdq-opset")}
    assert (
        found["dq_w"].severity == "error"
        and "axis" in found["dq_w"].message
        and "13" in found["dq_w"].message
    )
    assert found["q_x"].severity == found["dq_x"].severity == "warning"  # per-tensor activations
    # per-tensor Q/DQ at opset 11 is legal ONNX: only a warning
    found = only(lint_onnx(_qdq_conv(opset=11, per_channel=False), "8.5"), "qdq-opset")
    assert {f.severity for f in found} == {"warning"}
    assert {f.where for f in found} == {"q_x", "dq_x, dq_w (2 nodes)"}


def test_q_without_dq_unused_dq_and_half_quantized_compute():
    rng = np.random.default_rng(0)
    inits = [
        init("s", np.float32(0.1)),
        init("zp", np.int8(0)),
        init("w", rng.normal(size=(2, 4)).astype(np.float32)),
        init("w2_q", rng.integers(-127, 127, size=(2, 2)).astype(np.int8)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q_x"),
        helper.make_node("Cast", ["xq"], ["xf"], name="cast", to=F),  # Q feeding a non-DQ
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["dead"], name="dq_dead"),
        helper.make_node("Gemm", ["xf", "w"], ["h"], name="fc", transB=1),
        helper.make_node("DequantizeLinear", ["w2_q", "s", "zp"], ["w2"], name="dq_w2"),
        helper.make_node("MatMul", ["h", "w2"], ["y"], name="mm"),  # weights quantized, activation not
    ]
    m = model(nodes, [vi("x", ["b", 4])], [vi("y", ["b", 2])], inits)
    found = lint_onnx(m, "10")
    (q,) = only(found, "qdq-q-without-dq")
    assert q.severity == "error" and q.where == "q_x" and "Cast" in q.message
    (dead,) = only(found, "qdq-dq-unused")
    assert dead.severity == "warning" and dead.where == "dq_dead"
    (half,) = only(found, "qdq-half-quantized")
    assert half.severity == "warning" and half.where == "mm" and "weights" in half.message


def test_per_channel_activation_quantization_is_an_error():
    inits = [init("s", np.full(3, 0.1, np.float32)), init("zp", np.zeros(3, np.int8))]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q", axis=1),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["y"], name="dq", axis=1),
    ]
    m = model(nodes, [vi("x", ["b", 3, 4, 4])], [vi("y", ["b", 3, 4, 4])], inits)
    found = only(lint_onnx(m, "11"), "qdq-activation-per-channel")
    assert {f.where for f in found} == {"q", "dq"} and {f.severity for f in found} == {"error"}


def test_trt11_precision_follows_the_tensor_types():
    (f,) = only(lint_onnx(clean_model(), "11"), "strongly-typed")
    assert f.severity == "info" and "FP32" in f.message and "FP16 ONNX" in f.message
    for trt in ("8.5", "10"):
        assert only(lint_onnx(clean_model(), trt), "strongly-typed") == []
    fp16 = clean_model(TensorProto.FLOAT16, np.float16)
    (f,) = only(lint_onnx(fp16, "11"), "strongly-typed")
    assert "float16 graph" in f.message
    assert lint_report(fp16, "11").summary.fp16_tensors >= 6
    # float32 I/O around a float16 body: the casts are honoured
    nodes = [
        helper.make_node("Cast", ["x"], ["xh"], name="in_cast", to=TensorProto.FLOAT16),
        helper.make_node("Relu", ["xh"], ["rh"], name="relu"),
        helper.make_node("Cast", ["rh"], ["y"], name="out_cast", to=F),
    ]
    mixed = model(nodes, [vi("x", ["b", 4])], [vi("y", ["b", 4])])
    (f,) = only(lint_onnx(mixed, "11"), "strongly-typed")
    assert "2 float Cast(s)" in f.message and "honours" in f.message


def test_trt11_removed_plugins_and_custom_domains():
    nodes = [helper.make_node("NMS_TRT", ["x"], ["y"], name="nms", domain="my.plugins")]
    m = model(nodes, [vi("x", ["b", 4])], [vi("y", ["b", 4])], extra_opsets=[("my.plugins", 1)], check=False)
    (f,) = [f for f in lint_onnx(m, "11") if f.rule.startswith("op-")]
    assert (f.severity, f.rule) == ("error", "op-plugin-removed") and "'nms'" in f.message
    (f,) = [f for f in lint_onnx(m, "10") if f.rule.startswith("op-")]
    assert (f.severity, f.rule) == ("warning", "op-plugin")
    nodes = [helper.make_node("FusedConv", ["x"], ["y"], name="fc", domain="com.microsoft")]
    m = model(
        nodes, [vi("x", ["b", 4])], [vi("y", ["b", 4])], extra_opsets=[("com.microsoft", 1)], check=False
    )
    assert [(f.severity, f.rule) for f in lint_onnx(m, "10")] == [("error", "op-domain")]


def test_resize_and_pad_modes():
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up", mode="cubic")]
    inits = [init("scales", np.array([1, 1, 2, 2], np.float32))]
    m = model(nodes, [vi("x", ["b", 3, 4, 4])], [vi("y", ["b", 3, 8, 8])], inits)
    (f,) = only(lint_onnx(m, "10"), "attr-unsupported")
    assert f.severity == "error" and "cubic" in f.message and "linear" in f.message
    nodes = [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="wrap")]
    m = model(
        nodes,
        [vi("x", ["b", 3, 4, 4])],
        [vi("y", ["b", 3, 6, 6])],
        [init("pads", np.array([0, 0, 1, 1] * 2))],
        opset=19,
    )
    assert [f.severity for f in only(lint_onnx(m, "8.5"), "attr-unsupported")] == ["error"]
    assert only(lint_onnx(m, "10"), "attr-unsupported") == []


def test_opset_range_per_generation():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    for opset, expect in (
        (17, {"8.5": None, "10": None, "11": None}),
        (21, {"8.5": "error", "10": "warning", "11": None}),  # 10.3 stops at 20; later 10.x accept 24
        (8, {"8.5": None, "10": "error", "11": "error"}),
    ):
        m = model(nodes, [vi("x", ["b", 4])], [vi("y", ["b", 4])], opset=opset)
        for trt, sev in expect.items():
            got = [f.severity for f in only(lint_onnx(m, trt), "opset")]
            assert got == ([sev] if sev else []), (opset, trt, got)


def test_runtime_axes_must_be_constant_on_8_5():
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"], name="shape"),
        helper.make_node("Gather", ["shp", "zero"], ["axes"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="unsq"),
    ]
    inits = [init("zero", np.array([0], np.int64))]
    m = model(nodes, [vi("x", ["b", 4])], [vi("y", [1, "b", 4])], inits, check=False)
    (f,) = only(lint_onnx(m, "8.5"), "input-not-constant")
    assert f.severity == "error" and f.where == "unsq" and "axes" in f.message


def test_bad_generation_and_files(tmp_path):
    with pytest.raises(ConfigError, match="TensorRT generation"):
        lint_onnx(clean_model(), "9")
    with pytest.raises(ConfigError, match="no such ONNX file"):
        lint_onnx(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xfe not a protobuf \x00\x01")
    with pytest.raises(ConfigError, match="not"):
        lint_onnx(tmp_path / "junk.onnx")


def test_cli_exit_codes_and_json(tmp_path, capsys):
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    onnx.save(clean_model(), str(good))
    nodes = [helper.make_node("LayerNormalization", ["x", "s"], ["y"], name="ln")]
    onnx.save(
        model(
            nodes,
            [vi("x", ["b", "n"])],
            [vi("y", ["b", "n"])],
            [init("s", np.ones(1, np.float32))],
            check=False,
        ),
        str(bad),
    )
    assert main(["check", str(good)]) == 0
    assert main(["check", str(good), "--trt", "all", "--strict", "--nodes"]) == 0
    out = capsys.readouterr().out
    assert "passes" in out and "Conv×1" in out and "6 nodes" in out and "flatten" in out
    assert main(["check", str(bad), "--trt", "10"]) == 1  # dynamic non-batch dim
    assert main(["check", str(bad), "--trt", "8.5", "--json", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "dynamic-dim" in out and "op-unsupported" in out and "fails" in out
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["passed"] is False and r["results"]["8.5"]["errors"] == 2
    assert {f["rule"] for f in r["results"]["8.5"]["findings"]} >= {"dynamic-dim", "op-unsupported"}
    assert r["summary"]["op_counts"] == {"LayerNormalization": 1}
    # warnings pass unless --strict
    nms = model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")],
        [vi("x", ["b", 4])],
        [vi("y", ["b", "n"])],
        check=False,
    )
    onnx.save(nms, str(tmp_path / "warn.onnx"))
    assert main(["check", str(tmp_path / "warn.onnx")]) == 0
    assert main(["check", str(tmp_path / "warn.onnx"), "--strict"]) == 1
    # usage errors: exit 2 with one clear line
    assert main(["check", str(tmp_path / "missing.onnx")]) == 2
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xfe not a protobuf")
    assert main(["check", str(tmp_path / "junk.onnx")]) == 2
    err = capsys.readouterr().err
    assert "no such ONNX file" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------------------
# The real exported model (tiny LSA, the export test's fixture pattern)


@pytest.fixture(scope="module")
def exported_tiny(dictionary, celeba_dir, tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxsim")
    from lsa_edge.card import ModelCard
    from lsa_edge.data import load_dataset
    from lsa_edge.engines.export import export_onnx
    from lsa_edge.preprocess import normalize
    from lsa_edge.training import LSAConfig, LSAModel
    from lsa_edge.training.data import load_crops
    from lsa_edge.training.model import preprocessing_for

    torch.manual_seed(0)
    m = LSAModel(
        LSAConfig(backbone="test_tiny", d_model=32, heads=2, ffn=64, input_size=(64, 48)), dictionary
    )
    m.eval()
    pre = preprocessing_for(m.config)
    card = ModelCard(name="lsa-test", preprocessing=pre, regions=dictionary.regions, model=m.config.to_dict())
    faces = load_crops(load_dataset(celeba_dir).split("val").subset(range(4)), pre, progress=False)
    x = normalize(faces.images, pre)
    out = tmp_path_factory.mktemp("lint")
    return {opset: export_onnx(m, card, out / f"lsa{opset}.onnx", x, opset=opset).path for opset in (17, 16)}


def test_exported_fp32_model_builds_on_every_generation(exported_tiny):
    opset17, opset16 = exported_tiny[17], exported_tiny[16]
    for trt in ("10", "11"):
        report = lint_report(opset17, trt)
        assert report.errors == 0 and report.warnings == 0, report.findings
    # TensorRT 8.5 (JetPack 5) has no LayerNormalization importer (8.6 added it): the only thing that can
    # fail there is torch's opset-17 LayerNorm, and the opset-16 export decomposes it.
    errors = [f for f in lint_onnx(opset17, "8.5") if f.severity == "error"]
    assert {(f.rule, f.op) for f in errors} <= {("op-unsupported", "LayerNormalization")}
    has_layernorm = "LayerNormalization" in dict(lint_report(opset17, "8.5").summary.op_counts)
    assert bool(errors) == has_layernorm
    for trt in TRT_GENERATIONS:
        report = lint_report(opset16, trt)
        assert report.errors == 0 and report.warnings == 0, (trt, report.findings)
    s = lint_report(opset17, "10").summary
    assert s.inputs[0].shape[1:] == (3, 64, 48) and not isinstance(s.inputs[0].shape[0], int)
    assert s.qdq_nodes == 0 and s.fp16_tensors == 0


def test_generation_accepts_device_version_strings():
    from lsa_edge.engines.lint import generation

    keys = [generation(v).key for v in ("8.5.2.2", "10.3.0.30", "11.4", "10")]
    assert keys == ["8.5", "10", "11", "10"]
    for bad in ("8.6", "9.3", "twelve"):
        with pytest.raises(ConfigError, match=r"8\.5, 10, 11"):
            generation(bad)


def test_bfloat16_needs_tensorrt_9_or_later():
    nodes = [
        helper.make_node("Cast", ["x"], ["xb"], name="to_bf16", to=TensorProto.BFLOAT16),
        helper.make_node("Cast", ["xb"], ["y"], name="back", to=F),
    ]
    m = model(nodes, [vi("x", ["b", 4])], [vi("y", ["b", 4])])
    (f,) = only(lint_onnx(m, "8.5"), "dtype-unsupported")
    assert f.severity == "error" and f.where == "xb" and "bfloat16" in f.message
    for trt in ("10", "11"):
        assert only(lint_onnx(m, trt), "dtype-unsupported") == []


def test_cli_choices_mirror_the_rule_sets():
    from lsa_edge.cli import check

    assert check.GENERATIONS == TRT_GENERATIONS
