"""INT8 on CPU: calibration over real faces, Q/DQ flavours for TensorRT and ONNX Runtime, the TensorRT cache,
and FP16 conversion — numerics against FP32 on real faces."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, numpy_helper  # noqa: E402

from lsa_edge.backends import OnnxRuntimeBackend  # noqa: E402
from lsa_edge.calibration.cache import read_cache  # noqa: E402
from lsa_edge.calibration.dataset import load_faces  # noqa: E402
from lsa_edge.calibration.quantize import calibrate, quantize  # noqa: E402
from lsa_edge.engines.fp16 import convert_fp16  # noqa: E402
from lsa_edge.errors import ConfigError, DataError  # noqa: E402


@pytest.fixture(scope="module")
def calibrated(tiny_model, tiny_onnx, celeba_dir, tmp_path_factory):
    card = tiny_model[1]
    faces = load_faces(celeba_dir, card.preprocessing, split="train", count=64, seed=1)
    out = tmp_path_factory.mktemp("int8")
    ranges = calibrate(tiny_onnx.path, list(faces.batches(card.preprocessing, 16)), out, method="minmax")
    trt = quantize(tiny_onnx.path, out / "trt.onnx", ranges, "tensorrt")
    cpu = quantize(tiny_onnx.path, out / "cpu.onnx", ranges, "cpu")
    return ranges, trt, cpu


def _initializers(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_calibration_set_is_a_seeded_sample_of_the_split(tiny_model, celeba_dir):
    pre = tiny_model[1].preprocessing
    a = load_faces(celeba_dir, pre, split="train", count=16, seed=3)
    b = load_faces(celeba_dir, pre, split="train", count=16, seed=3)
    c = load_faces(celeba_dir, pre, split="train", count=16, seed=4)
    assert a.names == b.names and a.names != c.names
    assert a.images.shape == (16, 64, 48, 3) and a.images.dtype == np.uint8 and a.labels.shape == (16, 40)
    x = a.tensors(pre)
    assert x.shape == (16, 3, 64, 48) and x.dtype == np.float32 and abs(float(x.mean())) < 1.5


def test_image_folder_goes_through_detect_and_align(tiny_model, celeba_dir, tmp_path, caplog):
    import shutil

    import cv2

    pre = tiny_model[1].preprocessing
    for name in sorted((celeba_dir / "img_align_celeba").iterdir())[:8]:
        shutil.copy(name, tmp_path / name.name)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((120, 100, 3), 128, np.uint8))  # no face in it
    faces = load_faces(tmp_path, pre, count=None)
    assert 6 <= len(faces) <= 8 and faces.labels is None
    assert "broken.jpg" not in faces.names and "grey.png" not in faces.names
    assert faces.images.shape[1:] == (64, 48, 3)
    assert "broken.jpg" in caplog.text and "no face found" in caplog.text
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_faces(tmp_path / "empty", pre)


def test_ranges_cover_every_float_tensor(calibrated, tiny_onnx):
    ranges, _, _ = calibrated
    model = onnx.load(str(tiny_onnx.path))
    outputs = {o for n in model.graph.node for o in n.output}
    assert "faces" in ranges.ranges and "probs" in ranges.ranges
    assert len(ranges.ranges) > 0.5 * len(outputs)
    lo, hi = ranges.ranges["probs"]
    assert 0.0 <= lo < hi <= 1.0  # sigmoid outputs
    assert ranges.images == 64 and ranges.ort_cache.exists()


def test_tensorrt_flavour_is_symmetric_int8_with_float_bias(calibrated):
    _, trt, _ = calibrated
    model = onnx.load(str(trt))
    inits = _initializers(model)
    q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert q and dq
    for node in q + dq:
        zp = inits[node.input[2]]
        assert zp.dtype == np.int8 and not zp.any(), f"{node.name}: zero point must be int8 0 for TensorRT"
    # No int32 DequantizeLinear (TensorRT cannot run it): biases stay float.
    assert all(inits[n.input[0]].dtype != np.int32 for n in dq if n.input[0] in inits)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    per_channel = [n for n in dq if n.input[0] in inits and inits[n.input[1]].size > 1]
    assert per_channel and all(
        next((a.i for a in n.attribute if a.name == "axis"), 1) == 0
        for n in per_channel
        if inits[n.input[0]].ndim == 4
    )
    # Q/DQ on the inputs of compute ops only: no Conv output goes straight into a QuantizeLinear.
    conv_outputs = {o for n in convs for o in n.output}
    assert not [n for n in q if n.input[0] in conv_outputs]
    assert "lsa_edge.card" in {p.key for p in model.metadata_props}


def test_cpu_flavour_uses_uint8_activations(calibrated):
    _, _, cpu = calibrated
    model = onnx.load(str(cpu))
    inits = _initializers(model)
    act = [inits[n.input[2]].dtype for n in model.graph.node if n.op_type == "QuantizeLinear"]
    weights = [
        inits[n.input[2]].dtype
        for n in model.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in inits
    ]
    assert set(act) == {np.dtype(np.uint8)} and np.dtype(np.int8) in set(weights)


def test_int8_numerics_stay_close_to_fp32(calibrated, tiny_onnx, tiny_model, tiny_faces):
    _, trt, cpu = calibrated
    x = tiny_faces.tensors(tiny_model[1].preprocessing)
    ref = OnnxRuntimeBackend(tiny_onnx.path).predict(x)
    for path in (trt, cpu):
        got = OnnxRuntimeBackend(path).predict(x)
        diff = np.abs(got - ref)
        assert diff.max() < 0.15 and diff.mean() < 0.02, (
            f"{path.name}: max {diff.max():.3f} mean {diff.mean():.4f}"
        )
        assert not np.array_equal(got, ref)  # really quantized


def test_tensorrt_cache_holds_the_calibrated_scales(calibrated, tmp_path):
    from lsa_edge.calibration.cache import scales_from_ranges, write_cache

    ranges, _, _ = calibrated
    path = write_cache(tmp_path / "calibration.cache", scales_from_ranges(ranges.ranges))
    header, scales = read_cache(path)
    assert "EntropyCalibration2" in str(header)
    lo, hi = ranges.ranges["faces"]
    assert scales["faces"] == pytest.approx(max(abs(lo), abs(hi)) / 127, rel=1e-6)
    assert set(scales) == set(ranges.ranges)


def test_methods_and_flavours_are_checked(calibrated, tiny_onnx, tmp_path):
    ranges, _, _ = calibrated
    with pytest.raises(ConfigError, match="unknown calibration method 'kl'"):
        calibrate(tiny_onnx.path, [np.zeros((1, 3, 64, 48), np.float32)], tmp_path, method="kl")
    with pytest.raises(ConfigError, match="quantization flavour"):
        quantize(tiny_onnx.path, tmp_path / "x.onnx", ranges, "gpu")
    with pytest.raises(ConfigError, match="nodes the graph does not have: nope"):
        quantize(tiny_onnx.path, tmp_path / "x.onnx", ranges, "cpu", exclude_nodes=["nope"])


def test_excluded_nodes_stay_float(calibrated, tiny_onnx, tmp_path):
    ranges, _, _ = calibrated
    model = onnx.load(str(tiny_onnx.path))
    first_conv = next(n.name for n in model.graph.node if n.op_type == "Conv")
    out = quantize(tiny_onnx.path, tmp_path / "x.onnx", ranges, "tensorrt", exclude_nodes=[first_conv])
    q = onnx.load(str(out))
    node = next(n for n in q.graph.node if n.name == first_conv)
    producers = {o: n.op_type for n in q.graph.node for o in n.output}
    assert all(producers.get(i) != "DequantizeLinear" for i in node.input)


def test_fp16_keeps_sensitive_ops_in_fp32(tiny_onnx, tiny_model, tiny_faces, tmp_path):
    path = convert_fp16(tiny_onnx.path, tmp_path / "fp16.onnx")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.output]}
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # FP32 I/O
    half = [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT16]
    assert len(half) > 5  # the weights really are FP16
    for node in model.graph.node:
        if node.op_type in ("Softmax", "Sigmoid", "LayerNormalization"):
            assert types[node.output[0]] == TensorProto.FLOAT, f"{node.op_type} must stay FP32"
        if node.op_type == "Conv":
            assert types[node.output[0]] == TensorProto.FLOAT16
    x = tiny_faces.tensors(tiny_model[1].preprocessing)
    diff = np.abs(OnnxRuntimeBackend(path).predict(x) - OnnxRuntimeBackend(tiny_onnx.path).predict(x))
    assert 0 < diff.max() < 5e-3
