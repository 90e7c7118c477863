"""TensorRT engine building: trtexec lines per generation, version classification, the builder's flags
per generation (against a fake ``tensorrt`` module), errors without TensorRT, and real-TensorRT builds
(marked ``tensorrt``; skipped with the reason where TensorRT or a GPU is missing)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from _fake_tensorrt import make_tensorrt
from packaging.version import Version

from lsa_edge.backends import _tensorrt_env as trt_env
from lsa_edge.card import ModelCard, Preprocessing
from lsa_edge.engine_meta import EngineKey, read_sidecar, sidecar_path
from lsa_edge.engines import tensorrt as trt_mod
from lsa_edge.engines.tensorrt import (
    BuilderOptions,
    Calibration,
    EngineResult,
    EngineSpec,
    Profile,
    build_engine,
    generation,
    gpu_info,
    load_engine,
    tensorrt_version,
    trtexec_command,
)
from lsa_edge.errors import ConfigError, EngineMismatchError, LsaEdgeError, MissingDependencyError

CARD = ModelCard(name="lsa-test", preprocessing=Preprocessing()).to_dict()
SHA = "c0ffee" * 10 + "abcd"


def _build(onnx, out, precision, **flat) -> Path:
    """:func:`build_engine` on an :class:`EngineSpec` whose groups are given flat, by field name
    (``calibration_cache`` is :attr:`Calibration.cache`); returns the engine's path."""
    nested = {
        group: cls(**{f.name: flat.pop(f.name) for f in fields(cls) if f.name in flat})
        for group, cls in (("profile", Profile), ("options", BuilderOptions))
    }
    cal = {
        k: flat.pop(n) for k, n in (("cache", "calibration_cache"), ("calibrator", "calibrator")) if n in flat
    }
    spec = EngineSpec(onnx, out, precision, **nested, calibration=Calibration(**cal), **flat)
    return build_engine(spec).engine


# ------------------------------------------------------------------------------------ pure functions


def test_generation_classifies_with_versions_not_strings():
    assert generation("8.5.2.2") == "8.5"
    assert generation("8.6.2") == "8.5"  # JetPack 6.0 DP; same API for our purposes
    assert generation("10.0.1") == "10"  # "10.0.1" < "8.5" as strings: the torch2trt trap
    assert generation("10.3.0.26") == "10"
    assert generation("11.4.1") == "11"
    assert generation("12.0.0") == "11"
    for bad in ("8.4.1", "9.2.0", "7.1.3", "not-a-version"):
        with pytest.raises(ConfigError):
            generation(bad)


def test_trtexec_command_per_generation():
    common = dict(batch=(1, 8, 16), input_name="faces", input_chw=(3, 128, 112), workspace_mib=1024)
    shapes = "--minShapes=faces:1x3x128x112 --optShapes=faces:8x3x128x112 --maxShapes=faces:16x3x128x112"
    assert trtexec_command("m.onnx", "e.engine", "fp16", "8.5", **common) == (
        f"trtexec --onnx=m.onnx --saveEngine=e.engine {shapes} --fp16 --memPoolSize=workspace:1024"
    )
    assert trtexec_command("m.onnx", "e.engine", "fp16", "10", **common) == (
        f"trtexec --onnx=m.onnx --saveEngine=e.engine {shapes} --fp16 --memPoolSize=workspace:1024M"
    )
    # TensorRT 11: no precision flags; the FP16 ONNX decides, strong typing is always on.
    assert trtexec_command("m_fp16.onnx", "e.engine", "fp16", "11", **common) == (
        f"trtexec --onnx=m_fp16.onnx --saveEngine=e.engine {shapes} --memPoolSize=workspace:1024M"
    )
    assert trtexec_command("m.onnx", "e.engine", "fp32", "10", **common).count("--noTF32") == 1
    assert "--noTF32" not in trtexec_command("m.onnx", "e.engine", "fp32", "11", **common)


def test_trtexec_command_int8_calib_timing_cache_and_dla():
    line = trtexec_command(
        "model fp32.onnx",
        "out/e.engine",
        "int8",
        "8.5",
        batch=(4, 4, 4),
        input_chw=(3, 64, 48),
        workspace_mib=256,
        calibration_cache="lsa.calib",
        timing_cache="timing.cache",
        dla_core=1,
    )
    assert line == (
        "trtexec --onnx='model fp32.onnx' --saveEngine=out/e.engine --minShapes=faces:4x3x64x48 "
        "--optShapes=faces:4x3x64x48 --maxShapes=faces:4x3x64x48 --int8 --fp16 --calib=lsa.calib "
        "--memPoolSize=workspace:256 --timingCacheFile=timing.cache --useDLACore=1 --allowGPUFallback"
    )
    qdq_10 = trtexec_command("q.onnx", "e", "int8", "10", int8_fp16_fallback=False)
    assert "--int8" in qdq_10 and "--fp16" not in qdq_10 and "--calib" not in qdq_10
    qdq_11 = trtexec_command("q.onnx", "e", "int8", "11")
    assert "--int8" not in qdq_11 and "--stronglyTyped" not in qdq_11
    with pytest.raises(ConfigError, match="TensorRT 11 removed calibration caches"):
        trtexec_command("m.onnx", "e", "int8", "11", calibration_cache="lsa.calib")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(precision="fp32", dla_core=0, batch=(8, 8, 8)), "DLA runs FP16 or INT8"),
        (dict(precision="fp16", dla_core=0, batch=(1, 8, 16)), "DLA has no dynamic shapes"),
        (dict(precision="bf16"), "precision must be one of"),
        (dict(precision="fp16", batch=(8, 1, 16)), "min <= opt <= max"),
    ],
)
def test_trtexec_command_rejects_bad_options(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        trtexec_command("m.onnx", "e", generation="10", **kwargs)


# ------------------------------------------------------------------------------- without TensorRT


def test_tensorrt_version_none_when_not_importable(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    assert tensorrt_version() is None
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("8.5.2.2"))
    assert tensorrt_version() == "8.5.2.2"


def test_build_engine_without_tensorrt_names_extra_and_jetpack(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not parsed: the import fails first")
    with pytest.raises(MissingDependencyError) as info:
        _build(onnx, tmp_path, "fp16", card=CARD)
    assert "lsa-edge[trt]" in str(info.value) and "JetPack" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_modules_import_without_heavy_dependencies():
    code = (
        "import sys, lsa_edge.engine_meta, lsa_edge.engines.tensorrt, lsa_edge.calibration.cache, "
        "lsa_edge.calibration.trt_calibrator\n"
        "heavy = [m for m in ('tensorrt', 'pycuda', 'onnx', 'torch', 'cuda') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- builder (fake tensorrt)


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """Install a fake tensorrt of the given version; returns (trt, onnx path)."""

    def install(version: str, **kwargs):
        trt = make_tensorrt(version, **kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(trt_mod, "gpu_info", lambda device=0: ("Orin", "8.7"))  # building
        monkeypatch.setattr(trt_env, "gpu_info", lambda device=0: ("Orin", "8.7"))  # loading (core)
        onnx = tmp_path / "lsa.onnx"
        onnx.write_bytes(b"fake onnx bytes")
        return trt, onnx

    return install


def _flags(trt) -> set[str]:
    """The names of the flags set on the last builder config (the real ``flags`` bitmask)."""
    bits = trt._fake.last_config.flags
    return {k for k, v in trt.BuilderFlag.__members__.items() if bits & (1 << int(v))}


def _calls(trt) -> list:
    return trt._fake.calls


def test_engine_spec_defaults_checks_and_result(fake, tmp_path, monkeypatch):
    """The spec takes BuildConfig's batch and workspace, is checked when made (before TensorRT is
    imported), and the result says what the sidecar records."""
    from lsa_edge.engines.config import BuildConfig

    spec = EngineSpec("m.onnx", tmp_path, "fp16")
    assert spec.onnx == Path("m.onnx") and spec.profile.batch == BuildConfig().batch
    assert spec.options.workspace_mib == BuildConfig().workspace_mib and spec.options.timing_cache is None
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # none of these reaches the import
    for kwargs, message in [
        ({"precision": "int4"}, "precision must be one of"),
        ({"profile": Profile(batch=(4, 2, 8))}, "batch must be"),
        ({"options": BuilderOptions(workspace_mib=0)}, "workspace_mib must be >= 1"),
        ({"options": BuilderOptions(dla_core=0), "precision": "fp32"}, "DLA runs FP16 or INT8 only"),
        ({"calibration": Calibration(calibrator=object())}, "applies to --precision int8 only"),
    ]:
        with pytest.raises(ConfigError, match=message):
            EngineSpec(**{"onnx": "m.onnx", "out_dir": tmp_path, "precision": "fp16", **kwargs})
    with pytest.raises(ConfigError, match="not both"):
        Calibration(cache="c.calib", calibrator=object())
    _, onnx = fake("10.3.0.26", layer_kinds=("QUANTIZE", "DEQUANTIZE", "CONVOLUTION"))
    spec = EngineSpec(
        onnx, tmp_path / "e", "int8", profile=Profile(batch=(1, 2, 4)), card=CARD, model_sha256=SHA
    )
    result = build_engine(spec)
    assert isinstance(result, EngineResult) and result.sidecar == sidecar_path(result.engine)
    doc = read_sidecar(result.engine)
    assert result.key == doc["key"] and result.key.batch == (1, 2, 4)
    build = doc["build"]
    assert (result.generation, result.strongly_typed, result.static_shape) == (
        build["generation"], build["strongly_typed"], build["static_shape"],
    )  # fmt: skip
    assert result.int8 == build["int8"] == "qdq" and result.engine_bytes == result.engine.stat().st_size


@pytest.mark.parametrize(
    ("version", "network_flag", "flags"),
    [
        ("8.5.2.2", "EXPLICIT_BATCH", {"FP16"}),
        ("10.3.0.26", None, {"FP16"}),
        ("11.4.1", "STRONGLY_TYPED", set()),
    ],
)
def test_fp16_build_per_generation(fake, tmp_path, version, network_flag, flags):
    trt, onnx = fake(version, half=version.startswith("11"))
    path = _build(onnx, tmp_path / "engines", "fp16", card=CARD, model_sha256=SHA)

    created = dict(_calls(trt))["create_network"]
    expected = (
        0 if network_flag is None else 1 << int(getattr(trt.NetworkDefinitionCreationFlag, network_flag))
    )
    assert created == expected
    assert _flags(trt) == flags
    cfg = trt._fake.last_config
    assert cfg._profiles[0].get_shape("faces") == [(1, 3, 128, 112), (8, 3, 128, 112), (16, 3, 128, 112)]
    assert cfg.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1024 << 20
    assert cfg.default_device_type == trt.DeviceType.GPU

    key = EngineKey(SHA, "fp16", version, "Orin", "8.7", (1, 8, 16))
    assert path == tmp_path / "engines" / f"{key.file_stem()}.engine"
    assert path.read_bytes() == b"PLAN:" + version.encode()
    doc = read_sidecar(path)
    assert doc["key"] == key and doc["card"] == json.loads(json.dumps(CARD))
    gen = generation(version)
    assert doc["build"]["generation"] == gen
    assert doc["rebuild_command"]["trtexec"] == trtexec_command(
        onnx, path, "fp16", gen, batch=(1, 8, 16), input_chw=(3, 128, 112)
    )
    assert doc["rebuild_command"]["lsa_edge"].startswith("lsa-edge build ")


# TensorRT 10.12+ deprecates BuilderFlag.FP16/INT8: the FP16 ONNX builds strongly typed; the Q/DQ graph keeps
# INT8 + FP16 for its unquantized layers (what the gate measured; strongly typed they would run FP32).
@pytest.mark.parametrize(
    ("precision", "kinds", "half", "typed", "flags"),
    [
        ("fp16", ("CONVOLUTION",), True, True, set()),  # the FP16 ONNX: the graph decides
        ("fp16", ("CONVOLUTION",), False, False, {"FP16"}),  # an FP32 graph: the deprecated flag, warned
        ("int8", ("QUANTIZE", "DEQUANTIZE", "CONVOLUTION"), False, False, {"INT8", "FP16"}),  # warned
        ("fp32", ("CONVOLUTION",), False, False, set()),
    ],
)
def test_tensorrt_10_12_builds_strongly_typed_when_the_graph_allows(
    fake, tmp_path, caplog, precision, kinds, half, typed, flags
):
    trt, onnx = fake("10.13.3.9", layer_kinds=kinds, half=half)
    path = _build(onnx, tmp_path, precision, card=CARD, model_sha256=SHA)
    networks = [v for k, v in _calls(trt) if k == "create_network"]
    strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert networks[-1] == (strongly if typed else 0)
    assert _flags(trt) == flags
    doc = read_sidecar(path)
    assert doc["build"]["strongly_typed"] is typed
    assert ("--stronglyTyped" in doc["rebuild_command"]["trtexec"]) is typed
    warned = "deprecates BuilderFlag.FP16" in caplog.text
    assert warned is (precision != "fp32" and not typed)
    if precision == "int8":  # typed on request: the Q/DQ graph's own types, no flags
        trt, onnx = fake("10.13.3.9", layer_kinds=kinds)
        path = _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA, strongly_typed=True)
        assert _flags(trt) == set() and read_sidecar(path)["build"]["strongly_typed"] is True


def test_tensorrt_10_12_keeps_implicit_int8_from_a_cache_weakly_typed(fake, tmp_path, caplog):
    from lsa_edge.calibration.cache import write_cache

    trt, onnx = fake("10.13.3.9")
    cache = write_cache(tmp_path / "lsa.calib", {"faces": 1 / 127}, tensorrt_version="10.13.3")
    path = _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA, calibration_cache=cache)
    assert _flags(trt) == {"INT8", "FP16"} and read_sidecar(path)["build"]["int8"] == "calibrator"
    assert "deprecated since 10.1" in caplog.text


def test_tensorrt11_fp16_needs_an_fp16_onnx(fake, tmp_path):
    _, onnx = fake("11.4.1", half=False)
    with pytest.raises(LsaEdgeError, match=r"strongly typed.*no FP16 tensors"):
        _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA)
    assert not list(tmp_path.glob("*.engine"))


def test_fp32_clears_tf32(fake, tmp_path):
    trt, onnx = fake("10.3.0.26")
    _build(onnx, tmp_path, "fp32", card=CARD, model_sha256=SHA)
    assert ("clear_flag", "TF32") in _calls(trt) and _flags(trt) == set()


@pytest.mark.parametrize(
    ("version", "flags"), [("8.5.2.2", {"INT8", "FP16"}), ("10.3.0.26", {"INT8", "FP16"}), ("11.4.1", set())]
)
def test_int8_from_qdq_onnx(fake, tmp_path, version, flags):
    trt, onnx = fake(version, layer_kinds=("QUANTIZE", "DEQUANTIZE", "CONVOLUTION"))
    path = _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA)
    assert _flags(trt) == flags
    if not version.startswith("11"):
        assert trt._fake.last_config.int8_calibrator is None  # explicit quantization: no calibrator
    assert read_sidecar(path)["build"]["int8"] == "qdq"


def test_int8_without_qdq_or_cache_is_refused(fake, tmp_path):
    _, onnx = fake("10.3.0.26")
    with pytest.raises(LsaEdgeError, match=r"Q/DQ ONNX .* or a calibration cache"):
        _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA)
    _, onnx = fake("11.4.1")
    with pytest.raises(LsaEdgeError, match=r"strongly typed network .* takes INT8 from Q/DQ nodes only"):
        _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA)


def test_int8_with_calibration_cache_on_85(fake, tmp_path):
    from lsa_edge.calibration.cache import write_cache

    trt, onnx = fake("8.5.2.2")
    cache = write_cache(tmp_path / "lsa.calib", {"faces": 1 / 127}, tensorrt_version="8.5.2")
    path = _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA, calibration_cache=cache)
    cfg = trt._fake.last_config
    cal = cfg.int8_calibrator
    assert isinstance(cal, trt.IInt8EntropyCalibrator2) and cal._base_initialised
    assert cal.get_algorithm() == trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2  # the real base's method
    assert cal.read_calibration_cache() == cache.read_bytes()
    assert cal.get_batch(["faces"]) is None  # a cache-only calibrator has no data
    assert cfg.get_calibration_profile().get_shape("faces") == [(8, 3, 128, 112)] * 3
    assert _flags(trt) == {"INT8", "FP16"}
    doc = read_sidecar(path)
    assert doc["build"]["int8"] == "calibrator"
    assert "--int8 --fp16 --calib=" in doc["rebuild_command"]["trtexec"]


def test_int8_with_on_device_calibrator_on_10(fake, tmp_path, caplog):
    trt, onnx = fake("10.3.0.26")

    class Calibrator(trt.IInt8EntropyCalibrator2):  # what entropy_calibrator() makes, without a GPU
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.shape, self.cache_path = (4, 3, 128, 112), tmp_path / "device.calib"
            self.shapes = {"faces": self.shape}

    calibrator = Calibrator()
    path = _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA, calibrator=calibrator)
    cfg = trt._fake.last_config
    assert cfg.int8_calibrator is calibrator
    assert (
        cfg.get_calibration_profile().get_shape("faces") == [(4, 3, 128, 112)] * 3
    )  # the calibrator's batches
    assert any("deprecated since TensorRT 10.1" in r.getMessage() for r in caplog.records)
    assert f"--calib={tmp_path / 'device.calib'}" in read_sidecar(path)["rebuild_command"]["trtexec"]
    with pytest.raises(ConfigError, match="int8 only"):
        _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA, calibrator=calibrator)


def test_calibration_cache_refused_on_11(fake, tmp_path):
    from lsa_edge.calibration.cache import write_cache

    _, onnx = fake("11.4.1", layer_kinds=("QUANTIZE", "DEQUANTIZE"))
    cache = write_cache(tmp_path / "lsa.calib", {"faces": 1 / 127})
    with pytest.raises(ConfigError, match=r"TensorRT 8\.5/10 only"):
        _build(onnx, tmp_path, "int8", card=CARD, model_sha256=SHA, calibration_cache=cache)


def test_dla_build(fake, tmp_path, caplog):
    trt, onnx = fake("8.5.2.2", dla_cores=2)
    path = _build(onnx, tmp_path, "fp16", batch=(4, 4, 4), dla_core=1, card=CARD, model_sha256=SHA)
    cfg = trt._fake.last_config
    assert cfg.default_device_type == trt.DeviceType.DLA and cfg.DLA_core == 1
    assert _flags(trt) == {"FP16", "GPU_FALLBACK"}
    assert path.name.endswith("-b4-4-4-dla1.engine")
    assert "--useDLACore=1 --allowGPUFallback" in read_sidecar(path)["rebuild_command"]["trtexec"]


def test_dla_core_missing_on_device(fake, tmp_path):
    _, onnx = fake("10.3.0.26", dla_cores=0)
    with pytest.raises(LsaEdgeError, match="DLA core 0 requested but this device has 0"):
        _build(onnx, tmp_path, "fp16", batch=(2, 2, 2), dla_core=0, card=CARD, model_sha256=SHA)


def test_every_parser_error_is_logged(fake, tmp_path, caplog):
    _, onnx = fake("10.3.0.26", parse_errors=("unsupported op GridSample", "bad attribute on Resize"))
    with caplog.at_level(logging.ERROR, logger="lsa_edge.engines.tensorrt"):  # noqa: SIM117  (3.8: no ( ) with)
        with pytest.raises(LsaEdgeError) as info:
            _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA)
    assert "2 error(s)" in str(info.value)
    assert "GridSample" in str(info.value) and "Resize" in str(info.value)
    logged = [r.getMessage() for r in caplog.records if "ONNX parser error" in r.getMessage()]
    assert len(logged) == 2 and "node 1" in logged[1] and "UNSUPPORTED_NODE" in logged[1]


def test_timing_cache_loaded_and_saved(fake, tmp_path):
    trt, onnx = fake("10.3.0.26")
    timing = tmp_path / "timing.cache"
    _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA, timing_cache=timing)
    assert ("create_timing_cache", b"") in _calls(trt) and timing.read_bytes() == b"+timed"
    _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA, timing_cache=timing)
    assert ("create_timing_cache", b"+timed") in _calls(trt) and timing.read_bytes() == b"+timed+timed"


def test_failed_build_and_fixed_batch_are_errors(fake, tmp_path):
    _, onnx = fake("10.3.0.26", build_ok=False)
    with pytest.raises(LsaEdgeError, match="could not build an engine"):
        _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA)
    _, onnx = fake("10.3.0.26", input_shape=(1, 3, 128, 112))
    with pytest.raises(LsaEdgeError, match="fixed batch of 1"):
        _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA)
    _, onnx = fake("10.3.0.26")
    with pytest.raises(LsaEdgeError, match="no input 'images'"):
        _build(onnx, tmp_path, "fp16", input_name="images", card=CARD, model_sha256=SHA)


def test_static_shape_model_without_card(fake, tmp_path, caplog):
    """The face detector: fixed 1×3×192×192 input, no lsa-edge card in its ONNX."""
    trt, onnx = fake("10.3.0.26", input_shape=(1, 3, 192, 192))
    path = _build(onnx, tmp_path, "fp16", batch=None, input_name="faces", model_sha256=SHA)
    assert trt._fake.last_config._profiles == []  # no dynamic dimension, no profile
    assert path.name.endswith("-b1-1-1.engine")
    doc = read_sidecar(path)
    assert doc["card"] is None and doc["build"]["static_shape"] is True
    assert (
        "Shapes=" not in doc["rebuild_command"]["trtexec"]
        and "--batch" not in doc["rebuild_command"]["lsa_edge"]
    )
    assert any("no model card" in r.getMessage() for r in caplog.records)
    line = trtexec_command("det.onnx", "det.engine", "fp16", "10", batch=None, input_chw=None)
    assert line == "trtexec --onnx=det.onnx --saveEngine=det.engine --fp16 --memPoolSize=workspace:1024M"
    _, onnx = fake("10.3.0.26")  # dynamic batch but no profile given
    with pytest.raises(LsaEdgeError, match="dynamic batch; pass batch"):
        _build(onnx, tmp_path, "fp16", batch=None, card=CARD, model_sha256=SHA)


def test_version_compatible_needs_86(fake, tmp_path):
    trt, onnx = fake("8.6.1")
    path = _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA, version_compatible=True)
    assert "VERSION_COMPATIBLE" in _flags(trt) and read_sidecar(path)["build"]["version_compatible"]
    _, onnx = fake("8.5.2.2")
    with pytest.raises(ConfigError, match=r"8\.6 or later"):
        _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA, version_compatible=True)


def test_tensorrt_messages_go_to_logging(fake, caplog):
    trt, _ = fake("10.3.0.26")
    logger = trt_mod.trt_logger(trt)
    assert isinstance(logger, trt.ILogger) and logger._base_initialised
    with caplog.at_level(logging.DEBUG, logger="lsa_edge.tensorrt"):
        logger.log(trt.ILogger.Severity.WARNING, "tactic skipped")
        logger.log(trt.ILogger.Severity.VERBOSE, "chatter")
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels == {"tactic skipped": logging.WARNING, "chatter": logging.DEBUG}


def test_load_engine_checks_sidecar_before_deserializing(fake, tmp_path):
    _, onnx = fake("8.5.2.2")
    path = _build(onnx, tmp_path, "fp16", card=CARD, model_sha256=SHA)
    assert load_engine(path, precision="fp16")._plan == b"PLAN:8.5.2.2"

    trt10, _ = fake("10.3.0.26")  # JetPack upgrade: same device, new TensorRT
    with pytest.raises(
        EngineMismatchError, match=r"built with TensorRT 8\.5\.2 .* runs TensorRT 10\.3\.0"
    ) as info:
        load_engine(path)
    assert "lsa-edge build" in str(info.value) and "trtexec --onnx=" in str(info.value)
    assert not [c for c in _calls(trt10) if c[0] == "deserialize_cuda_engine"]  # TensorRT never saw the file


def test_card_read_from_onnx_metadata(fake, tmp_path):
    onnx_lib = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from lsa_edge.engines.export import set_card

    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["faces"], ["probs"])],
        "g",
        [helper.make_tensor_value_info("faces", TensorProto.FLOAT, ["batch", 3, 128, 112])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 3, 128, 112])],
    )
    proto = helper.make_model(graph)
    card = ModelCard(name="from-metadata", preprocessing=Preprocessing())
    set_card(proto, card)
    _, onnx_path = fake("10.3.0.26")
    onnx_lib.save(proto, str(onnx_path))
    path = _build(onnx_path, tmp_path, "fp16")
    doc = read_sidecar(path)
    assert doc["card"]["name"] == "from-metadata"
    assert doc["key"].model_sha256 == trt_mod.sha256_file(onnx_path)


# --------------------------------------------------------------------------------- real TensorRT


def _tiny_onnx(path: Path) -> Path:
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from lsa_edge.engines.export import set_card

    w = numpy_helper.from_array(
        np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w"
    )
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["faces", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("GlobalAveragePool", ["c"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("Sigmoid", ["f"], ["probs"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("faces", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 4])],
        initializer=[w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    set_card(proto, ModelCard(name="tiny", preprocessing=Preprocessing(input_size=(32, 32))))
    onnx.save(proto, str(path))
    return path


@pytest.fixture
def real_tensorrt():
    version = tensorrt_version()
    if version is None:
        pytest.skip("TensorRT is not importable here (it comes with JetPack or NVIDIA's wheels)")
    try:
        gpu_info()
    except LsaEdgeError as err:
        pytest.skip(f"TensorRT {version} is installed but there is no GPU ({err})")
    return version


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_real_build_and_load(real_tensorrt, tmp_path, precision):
    if precision == "fp16" and generation(real_tensorrt) == "11":
        pytest.skip("TensorRT 11 needs an FP16 ONNX (ModelOpt AutoCast), not made by this test")
    onnx = _tiny_onnx(tmp_path / "tiny.onnx")
    timing = tmp_path / "timing.cache"
    path = _build(onnx, tmp_path / "out", precision, batch=(1, 2, 4), timing_cache=timing, workspace_mib=64)
    assert path.exists() and sidecar_path(path).exists() and timing.stat().st_size > 0
    engine = load_engine(path, precision=precision)
    assert engine is not None
    doc = read_sidecar(path)
    assert doc["key"].tensorrt == real_tensorrt and doc["card"]["name"] == "tiny"


@pytest.mark.gpu
def test_real_gpu_info():
    try:
        name, cc = gpu_info()
    except LsaEdgeError as err:
        try:
            import torch

            if torch.cuda.is_available():  # a GPU is there: gpu_info must read it
                raise
        except ImportError:
            pass
        pytest.skip(f"no GPU here ({err})")
    assert name and cc.count(".") == 1


# ------------------------------------------------------------------- every path, every generation's real API


@pytest.mark.parametrize("version", ["8.5.2.2", "8.6.1", "10.3.0.26", "10.13.3.9", "11.4.1"])
def test_every_build_path_against_each_real_api(fake, tmp_path, caplog, version):
    """Each builder/loader path the code takes for a version runs against that version's real API (the
    strict fake raises on any name, kind or attribute the real module lacks)."""
    from lsa_edge.calibration.cache import write_cache

    gen = generation(version)
    qdq = ("QUANTIZE", "DEQUANTIZE", "CONVOLUTION")
    out = tmp_path / "engines"
    timing = tmp_path / "timing.cache"
    _, onnx = fake(version, half=True, dla_cores=2)
    built = [
        _build(onnx, out, "fp32", card=CARD, model_sha256=SHA, timing_cache=timing),
        _build(onnx, out, "fp16", card=CARD, model_sha256=SHA, timing_cache=timing),
        _build(onnx, out, "fp16", batch=(2, 2, 2), dla_core=1, card=CARD, model_sha256=SHA),
    ]
    if gen != "8.5":
        built.append(_build(onnx, out, "fp16", card=CARD, model_sha256=SHA, strongly_typed=True))
    if Version(version) >= Version("8.6"):
        built.append(_build(onnx, out, "fp32", card=CARD, model_sha256=SHA, version_compatible=True))
    _, onnx = fake(version, layer_kinds=qdq)
    built.append(_build(onnx, out, "int8", card=CARD, model_sha256=SHA))
    _, onnx = fake(version)
    cache = write_cache(tmp_path / "lsa.calib", {"faces": 1 / 127}, tensorrt_version="8.5.2")
    if gen == "11":
        with pytest.raises(ConfigError, match=r"8\.5/10 only"):
            _build(onnx, out, "int8", card=CARD, model_sha256=SHA, calibration_cache=cache)
    else:
        built.append(_build(onnx, out, "int8", card=CARD, model_sha256=SHA, calibration_cache=cache))
    for path in built:  # every engine loads back through its sidecar on the same TensorRT and GPU
        assert load_engine(path)._plan == b"PLAN:" + version.encode()
    _, onnx = fake(version, parse_errors=("No importer registered for op: GridSample",))
    with pytest.raises(LsaEdgeError, match=r"GridSample \[node 0.*code UNSUPPORTED_NODE\]"):
        _build(onnx, out, "fp32", card=CARD, model_sha256=SHA)
    assert ("GridSample" in caplog.text) and ("bound method" not in caplog.text)
    if gen != "8.5":  # TensorRT 10+ also names the node and its operator
        assert "name /block0/op, operator GridSample" in caplog.text
