"""On-device calibrators against the strict fake TensorRT (real API per generation) and a fake GPU behind
cuda-python or pycuda: base class, batches (one input or several), cache I/O, TensorRT 11 refusal."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from _fake_cuda import FakeGpu, install
from _fake_tensorrt import make_tensorrt

from lsa_edge.calibration.cache import write_cache
from lsa_edge.calibration.trt_calibrator import cache_calibrator, entropy_calibrator
from lsa_edge.errors import CalibrationError, MissingDependencyError


@pytest.fixture(params=["cuda-python", "pycuda"])
def device(request, monkeypatch):
    """Fake tensorrt 8.5 + a fake GPU through one binding; returns the GPU."""
    gpu = FakeGpu()
    install(monkeypatch, gpu, cuda_python=request.param == "cuda-python", pycuda=request.param == "pycuda")
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("8.5.2.2"))
    return gpu


def batches(n=3, shape=(4, 3, 16, 16)):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def test_entropy_calibrator_feeds_batches_and_writes_cache(device, tmp_path):
    trt = sys.modules["tensorrt"]
    data = batches()
    cal = entropy_calibrator(iter([*data, data[0][:2]]), tmp_path / "lsa.calib")
    assert isinstance(cal, trt.IInt8EntropyCalibrator2) and cal._base_initialised  # base __init__ called
    assert cal.get_algorithm() == trt.CalibrationAlgoType.ENTROPY_CALIBRATION_2  # the base's own method
    assert cal.shape == (4, 3, 16, 16) and cal.get_batch_size() == 1
    assert cal.read_calibration_cache() is None  # no cache yet: TensorRT calibrates
    for expected in data:
        (ptr,) = cal.get_batch(["faces"])
        assert device.read(ptr, expected.nbytes) == expected.tobytes()
    assert cal.get_batch(["faces"]) is None  # the short last batch was dropped
    assert cal.batches_seen == 3
    cal.write_calibration_cache(memoryview(b"TRT-8502-EntropyCalibration2\nfaces: 3c010204\n"))
    assert cal.read_calibration_cache().startswith(b"TRT-8502-EntropyCalibration2")
    cal.close()
    assert device.live() == 0


def test_one_pointer_per_input_in_the_order_asked(device, tmp_path):
    rng = np.random.default_rng(1)
    data = [
        {
            "faces": rng.standard_normal((2, 3, 16, 16)).astype(np.float32),
            "mask": np.ones((2, 1, 16, 16), np.float32),
        }
        for _ in range(2)
    ]
    cal = entropy_calibrator(data, tmp_path / "two.calib")
    assert cal.shape == (2, 3, 16, 16)  # the calibration profile follows input_name
    for batch in data:
        ptrs = cal.get_batch(["mask", "faces"])
        assert len(ptrs) == 2 and ptrs[0] != ptrs[1]
        assert device.read(ptrs[0], batch["mask"].nbytes) == batch["mask"].tobytes()
        assert device.read(ptrs[1], batch["faces"].nbytes) == batch["faces"].tobytes()
    assert cal.get_batch(["mask", "faces"]) is None
    cal.close()


def test_minmax_and_wrong_input(device, tmp_path, caplog):
    trt = sys.modules["tensorrt"]
    cal = entropy_calibrator(batches(1), tmp_path / "c.calib", input_name="faces", algorithm="minmax")
    assert isinstance(cal, trt.IInt8MinMaxCalibrator)
    # An error inside a TensorRT callback is logged and ends calibration; it never crosses into C++.
    assert cal.get_batch(["images"]) is None
    assert "missing ['images']" in caplog.text
    with pytest.raises(CalibrationError, match="unknown calibration algorithm"):
        entropy_calibrator(batches(1), tmp_path / "c.calib", algorithm="percentile")


def test_no_data_and_no_cache(device, tmp_path):
    with pytest.raises(CalibrationError, match="nothing to calibrate with"):
        entropy_calibrator([], tmp_path / "none.calib")
    with pytest.raises(CalibrationError, match="N×C×H×W"):
        entropy_calibrator([np.zeros((3, 16, 16), np.float32)], tmp_path / "none.calib")


def test_existing_cache_is_used(device, tmp_path, caplog):
    cache = write_cache(tmp_path / "lsa.calib", {"faces": 1 / 127}, algorithm="minmax")
    cal = entropy_calibrator([], cache)  # entropy2 calibrator, minmax cache: TensorRT would recalibrate
    assert cal.read_calibration_cache() == cache.read_bytes()
    assert any("will ignore it and calibrate again" in r.getMessage() for r in caplog.records)


def test_cache_calibrator_follows_header(device, tmp_path):
    trt = sys.modules["tensorrt"]
    cache = write_cache(tmp_path / "lsa.calib", {"faces": 1 / 127}, algorithm="minmax")
    cal = cache_calibrator(cache)
    assert isinstance(cal, trt.IInt8MinMaxCalibrator) and cal._base_initialised
    assert cal.read_calibration_cache() == cache.read_bytes()
    cal.write_calibration_cache(b"overwritten?")
    assert cache.read_bytes().startswith(b"TRT-")  # the desktop's cache is never overwritten
    with pytest.raises(CalibrationError, match="missing or empty"):
        cache_calibrator(tmp_path / "absent.calib")


def test_refused_on_tensorrt_11(monkeypatch, device, tmp_path, caplog):
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("11.4.1"))
    with pytest.raises(CalibrationError, match="removed in TensorRT 11"):
        entropy_calibrator(batches(1), tmp_path / "c.calib")
    cache = write_cache(tmp_path / "lsa.calib", {"faces": 1 / 127})
    with pytest.raises(CalibrationError, match="removed in TensorRT 11"):
        cache_calibrator(cache)
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("10.13.3.9"))
    entropy_calibrator(batches(1), tmp_path / "c.calib").close()  # still there, deprecated
    assert "deprecated since 10.1" in caplog.text


def test_needs_tensorrt(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match="JetPack"):
        entropy_calibrator(batches(1), tmp_path / "c.calib")
