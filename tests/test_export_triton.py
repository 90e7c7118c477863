"""`lsa-edge export triton`: every config.pbtxt parses into Triton's own ModelConfig (tritonclient's protobuf)
with the fields a server needs, for FP32, FP16, INT8 (+ calibration table) and a package with an engine."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
from _export_packages import package  # noqa: E402
from google.protobuf import text_format  # noqa: E402

from lsa_edge.attributes import ATTRIBUTES  # noqa: E402
from lsa_edge.cli import main  # noqa: E402
from lsa_edge.engines._pbtxt import quote  # noqa: E402
from lsa_edge.engines.triton_repo import TritonOptions, write_repository  # noqa: E402
from lsa_edge.errors import ConfigError  # noqa: E402

MC = model_config_pb2.ModelConfig


def _config(path):
    return text_format.Parse(path.read_text(), MC())


def _accel(cfg):
    accels = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    return {a.name: dict(a.parameters) for a in accels}


def _check_attributes(cfg, platform):
    assert cfg.name == "lsa_edge_attributes" and cfg.platform == platform
    assert cfg.max_batch_size == 16
    (inp,) = cfg.input
    assert (inp.name, inp.data_type, list(inp.dims)) == ("faces", model_config_pb2.TYPE_FP32, [3, 160, 144])
    (out,) = cfg.output
    assert (out.name, list(out.dims), out.label_filename) == ("probs", [40], "labels.txt")
    assert list(cfg.dynamic_batching.preferred_batch_size) == [8, 16]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 100
    (group,) = cfg.instance_group
    assert group.count == 1 and group.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    params = {k: v.string_value for k, v in cfg.parameters.items()}
    assert (
        json.loads(params["lsa_edge.input_size_hw"]) == [160, 144] and params["lsa_edge.color_order"] == "RGB"
    )
    assert json.loads(params["lsa_edge.mean"]) == [0.485, 0.456, 0.406]
    assert len(json.loads(params["lsa_edge.thresholds"])) == 40
    assert json.loads(params["lsa_edge.attributes"]) == list(ATTRIBUTES)
    return params


def test_fp32_repository_and_detector(tmp_path):
    out = tmp_path / "repo"
    res = write_repository(package(tmp_path), out, TritonOptions())
    cfg = _config(out / "lsa_edge_attributes" / "config.pbtxt")
    _check_attributes(cfg, "onnxruntime_onnx")
    assert not _accel(cfg)  # FP32: ONNX Runtime's CUDA provider, no TensorRT precision to ask for
    assert (out / "lsa_edge_attributes" / "1" / "model.onnx").is_file()
    assert (out / "lsa_edge_attributes" / "labels.txt").read_text().split() == list(ATTRIBUTES)
    det = _config(out / "lsa_edge_detector" / "config.pbtxt")
    assert det.platform == "onnxruntime_onnx" and det.max_batch_size > 0
    assert [(t.name, list(t.dims)) for t in det.input] == [("image", [3, 192, 192])]
    assert [(t.name, list(t.dims)) for t in det.output] == [("regressors", [2304, 16]), ("logits", [2304, 1])]
    assert json.loads(det.parameters["lsa_edge.detector"].string_value)["variant"] == "full"
    assert (out / "lsa_edge_detector" / "1" / "model.onnx").is_file()
    assert "tritonserver --model-repository" in (out / "README.md").read_text()
    assert {f for f, _ in res.files} >= {"README.md", "lsa_edge_detector/config.pbtxt"}


def test_fp16_uses_the_tensorrt_accelerator(tmp_path):
    out = tmp_path / "repo"
    write_repository(package(tmp_path, "fp16"), out, TritonOptions(instances=2, max_queue_delay_us=500))
    cfg = _config(out / "lsa_edge_attributes" / "config.pbtxt")
    assert cfg.instance_group[0].count == 2 and cfg.dynamic_batching.max_queue_delay_microseconds == 500
    assert _accel(cfg) == {
        "tensorrt": {
            "precision_mode": "FP16",
            "max_workspace_size_bytes": str(1024 << 20),
            # the package's profile: one engine for every batch the batcher forms, no rebuilds under load
            "trt_profile_min_shapes": "faces:1x3x160x144",
            "trt_profile_opt_shapes": "faces:8x3x160x144",
            "trt_profile_max_shapes": "faces:16x3x160x144",
        }
    }


def test_int8_copies_the_native_calibration_table(tmp_path):
    out = tmp_path / "repo"
    opts = TritonOptions(trt_cache_path="/models/lsa_edge_attributes/1")
    write_repository(package(tmp_path, "int8"), out, opts)
    cfg = _config(out / "lsa_edge_attributes" / "config.pbtxt")
    params = _check_attributes(cfg, "onnxruntime_onnx")
    trt = _accel(cfg)["tensorrt"]
    assert trt["precision_mode"] == "INT8" and trt["int8_use_native_calibration_table"] == "1"
    table = out / "lsa_edge_attributes" / "1" / trt["int8_calibration_table_name"]
    assert table.read_text().startswith("TRT-8502-")
    assert (
        trt["trt_engine_cache_path"] == "/models/lsa_edge_attributes/1"
        and trt["trt_engine_cache_enable"] == "1"
    )
    assert params["lsa_edge.precision"] == "int8"


def test_int8_without_its_cache_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="calibration cache"):
        write_repository(package(tmp_path, "int8", cache=False), tmp_path / "repo", TritonOptions())
    assert not (tmp_path / "repo").exists()  # nothing written


def test_engine_becomes_a_plan_unless_onnxruntime_is_asked(tmp_path):
    pkg = package(tmp_path, "fp16", engine=True)
    res = write_repository(pkg, tmp_path / "plan", TritonOptions())
    cfg = _config(tmp_path / "plan" / "lsa_edge_attributes" / "config.pbtxt")
    _check_attributes(cfg, "tensorrt_plan")
    assert not _accel(cfg)
    assert (
        tmp_path / "plan" / "lsa_edge_attributes" / "1" / "model.plan"
    ).read_bytes() == b"not a real engine"
    assert any("TensorRT 10.3.0.26" in n for n in res.notes)
    write_repository(pkg, tmp_path / "ort", TritonOptions(platform="onnxruntime", detector=False))
    cfg = _config(tmp_path / "ort" / "lsa_edge_attributes" / "config.pbtxt")
    assert cfg.platform == "onnxruntime_onnx" and _accel(cfg)["tensorrt"]["precision_mode"] == "FP16"
    assert not (tmp_path / "ort" / "lsa_edge_detector").exists()


def test_cpu_instances(tmp_path):
    out = tmp_path / "repo"
    write_repository(package(tmp_path, "fp16"), out, TritonOptions(instance_kind="cpu"))
    cfg = _config(out / "lsa_edge_attributes" / "config.pbtxt")
    assert cfg.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU and not _accel(cfg)
    with pytest.raises(ConfigError, match="no TensorRT engine"):
        write_repository(package(tmp_path, "int8"), tmp_path / "x", TritonOptions(platform="tensorrt"))


def test_quote_round_trips_through_protobuf():
    text = 'a "quoted" back\\slash, new\nline, Straße'
    cfg = text_format.Parse(f"name: {quote(text)}", MC())
    assert cfg.name == text


def test_cli_table_refusals_and_default_model(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "triton", "--out", "repo"]) == 0  # the shipped default model
    printed = capsys.readouterr().out
    assert "lsa_edge_attributes/config.pbtxt" in printed and "onnxruntime_onnx" in printed
    _check_attributes(_config(tmp_path / "repo" / "lsa_edge_attributes" / "config.pbtxt"), "onnxruntime_onnx")
    assert main(["export", "triton", "--out", "repo"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["export", "triton", "--out", "repo", "--overwrite", "--no-detector"]) == 0
    assert not (tmp_path / "repo" / "lsa_edge_detector").exists()
    assert main(["export", "triton", "--out", "r2", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export", "triton", "--out", "r3", str(tmp_path / "empty")]) == 2
    assert "without manifest.json" in capsys.readouterr().err
    pkg = package(tmp_path)
    (pkg / "model.onnx").unlink()
    assert main(["export", "triton", "--out", "r4", str(pkg)]) == 2
    err = capsys.readouterr().err
    assert "model.onnx" in err and "Traceback" not in err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r4").exists()


def test_a_detector_with_a_fixed_batch_gets_its_whole_shape(tmp_path):
    """max_batch_size 0 (the model does not batch): Triton wants the dims with the batch dimension."""
    import onnx
    from onnx import TensorProto, helper

    from lsa_edge.engines.triton_repo import detector_config

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["logits"])],
        "fixed",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 192, 192])],
    )
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(graph), str(path))
    cfg = text_format.Parse(detector_config(path, TritonOptions()), MC())
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert [list(t.dims) for t in (*cfg.input, *cfg.output)] == [[1, 3, 192, 192]] * 2
