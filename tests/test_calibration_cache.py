"""TensorRT's calibration cache text format: header per version, hex scales, exact round trips."""

from __future__ import annotations

import numpy as np
import pytest

from lsa_edge.calibration.cache import (
    CacheHeader,
    decode_scale,
    encode_scale,
    read_cache,
    scales_from_ranges,
    version_code,
    write_cache,
)
from lsa_edge.errors import CalibrationError


def test_known_scales_by_hand():
    # 1/127 = 2^-7 · (128/127): sign 0, biased exponent 127 - 7 = 120 = 0b01111000, fraction
    # round((128/127 - 1) · 2^23) = round(66052.03) = 66052 = 0x010204 → 0 01111000 00000010000001000000100
    # = 0x3C010204: the scale of an input in [0, 1] (amax 1), as in TensorRT-written caches.
    assert encode_scale(1 / 127) == "3c010204"
    assert encode_scale(0.125) == "3e000000"  # 2^-3: exponent 124 = 0x7C, fraction 0
    assert encode_scale(1.0) == "3f800000"
    assert decode_scale("3c010204") == float(np.float32(1 / 127))
    assert decode_scale("3C010204") == decode_scale("3c010204")


def test_version_codes_and_headers():
    assert version_code("8.5.2.2") == 8502
    assert version_code("8.6.1") == 8601
    assert version_code("7.1.3") == 7103
    assert version_code("10.3.0.26") == 100300
    assert version_code("11.4.1") == 110401
    assert CacheHeader(8502, "EntropyCalibration2").line == "TRT-8502-EntropyCalibration2"
    assert CacheHeader(8502, "EntropyCalibration2").tensorrt_version == "8.5.2"
    assert CacheHeader(100300, "MinMaxCalibration").tensorrt_version == "10.3.0"
    assert CacheHeader(110401, "MinMaxCalibration").tensorrt_version == "11.4.1"
    with pytest.raises(CalibrationError):
        version_code("eight")


def test_write_cache_exact_text(tmp_path):
    path = write_cache(tmp_path / "a.calib", {"faces": 1 / 127, "/backbone/conv1/Conv_output_0": 0.125})
    assert (
        path.read_text()
        == "TRT-8502-EntropyCalibration2\nfaces: 3c010204\n/backbone/conv1/Conv_output_0: 3e000000\n"
    )
    path = write_cache(tmp_path / "b.calib", {"faces": 1.0}, tensorrt_version="10.3.0.26", algorithm="minmax")
    assert path.read_text().splitlines()[0] == "TRT-100300-MinMaxCalibration"


def test_round_trip_is_exact_and_ordered(tmp_path):
    rng = np.random.default_rng(0)
    names = ["faces", "(Unnamed Layer* 3) [Convolution]_output", "/head/attn/Softmax_output_0", "probs"]
    ranges = {n: (float(-rng.uniform(0, 50)), float(rng.uniform(0, 50))) for n in names}
    scales = scales_from_ranges(ranges)
    header, back = read_cache(write_cache(tmp_path / "c.calib", scales, tensorrt_version="8.6.2"))
    assert header == CacheHeader(8602, "EntropyCalibration2")
    assert back == scales and list(back) == names
    for name, (lo, hi) in ranges.items():
        assert back[name] == pytest.approx(max(-lo, hi) / 127, rel=1e-7)


def test_scales_from_ranges():
    s = scales_from_ranges({"a": (-2.54, 1.0), "b": (0.0, 0.0), "c": (-1e-45, 1e-45)})
    assert s["a"] == float(np.float32(2.54 / 127))
    assert s["b"] == 1.0  # all-zero tensor: any scale holds 0; TensorRT rejects scale 0
    assert s["c"] > 0
    with pytest.raises(CalibrationError, match="not finite"):
        scales_from_ranges({"x": (float("nan"), 1.0)})


def test_reads_tensorrt_written_cache(tmp_path):
    path = tmp_path / "trt.calib"
    path.write_text("TRT-8601-EntropyCalibration2\ninput.1: 3c010204\nonnx::Conv_123: 3d4ccccd\n\n")
    header, scales = read_cache(path)
    assert header.algorithm == "EntropyCalibration2" and header.tensorrt_version == "8.6.1"
    assert scales["input.1"] == float(np.float32(1 / 127))
    assert scales["onnx::Conv_123"] == float(np.float32(0.05))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("calibration\nfaces: 3c010204\n", "not a TensorRT cache header"),
        ("TRT-8502-EntropyCalibration2\nfaces 3c010204\n", r"c\.calib:2"),
        ("TRT-8502-EntropyCalibration2\nfaces: 3c0102\n", "8 hex digits"),
    ],
)
def test_read_cache_errors(tmp_path, text, match):
    path = tmp_path / "c.calib"
    path.write_text(text)
    with pytest.raises(CalibrationError, match=match):
        read_cache(path)


def test_write_cache_rejects_bad_input(tmp_path):
    for scales in ({"a: b": 1.0}, {"a": 0.0}, {"a": float("inf")}):
        with pytest.raises(CalibrationError):
            write_cache(tmp_path / "x.calib", scales)
    with pytest.raises(CalibrationError, match="unknown calibration algorithm"):
        write_cache(tmp_path / "x.calib", {"a": 1.0}, algorithm="percentile")
