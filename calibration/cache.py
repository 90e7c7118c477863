"""TensorRT's INT8 calibration cache text format: read, write, and per-tensor scales from ranges.

The desktop computes activation ranges with ONNX Runtime (through the runtime's own preprocessing) and
writes them here as a cache that TensorRT 8.5/10 reads instead of calibrating on the device (implicit
INT8). TensorRT 11 has no implicit INT8: there the Q/DQ ONNX carries the scales.

Format (one ``\\n``-terminated line each)::

    TRT-8502-EntropyCalibration2          header: TRT-<version code>-<algorithm>
    faces: 3c010204                       <tensor name>: <8 hex digits>

* The hex digits are the big-endian IEEE-754 float32 bits of the per-tensor *scale* (``amax / 127``,
  symmetric INT8), not of amax: ``struct.pack(">f", 1 / 127).hex() == "3c010204"`` is the scale of an
  input in [0, 1]. NVIDIA's ModelOpt reads these values as Q/DQ scales (``struct.unpack("!f", ...)`` in
  ``modelopt/onnx/quantization/calib_utils.py``), and caches written by TensorRT 10.3 for inputs in
  [0, 1] hold ``3c010204``.
* The version code is TensorRT's ``NV_TENSORRT_VERSION``: ``major*1000 + minor*100 + patch`` up to 8.x
  (8.5.2 → ``8502``, 8.6.2 → ``8602``) and ``major*10000 + minor*100 + patch`` from 10.0 on (10.3.0 →
  ``100300``; ``NV_TENSORRT_VERSION_INT`` in TensorRT 10's ``NvInferRuntimeBase.h``).
* The algorithm names the calibrator that wrote it: ``EntropyCalibration2`` (``IInt8EntropyCalibrator2``,
  the only one DLA accepts) or ``MinMaxCalibration`` (``IInt8MinMaxCalibrator``). TensorRT recalibrates
  when the header's algorithm differs from the calibrator's, so write the one the device will use.

Imports numpy only.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from packaging.version import InvalidVersion, Version

from lsa_edge._fileio import write_bytes_atomic
from lsa_edge.errors import CalibrationError

__all__ = [
    "ALGORITHMS",
    "CacheHeader",
    "decode_scale",
    "encode_scale",
    "read_cache",
    "scales_from_ranges",
    "version_code",
    "write_cache",
]

INT8_MAX = 127  # symmetric signed INT8: scale = amax / 127

# Short names (as the calibrator factory takes them) → the algorithm name in the cache header.
ALGORITHMS: dict[str, str] = {
    "entropy2": "EntropyCalibration2",
    "minmax": "MinMaxCalibration",
}

_HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class CacheHeader:
    """The first line of a cache, parsed: ``TRT-<version_code>-<algorithm>``."""

    version_code: int  # NV_TENSORRT_VERSION of the TensorRT the cache is meant for, e.g. 8502
    algorithm: str  # e.g. "EntropyCalibration2"

    @property
    def line(self) -> str:
        return f"TRT-{self.version_code}-{self.algorithm}"

    @property
    def tensorrt_version(self) -> str:
        """The version the code stands for, "major.minor.patch" (8502 → "8.5.2", 100300 → "10.3.0")."""
        code = self.version_code
        if code >= 100_000:  # 10.x and later: major*10000 + minor*100 + patch
            return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
        return f"{code // 1000}.{code // 100 % 10}.{code % 100}"

    def __str__(self) -> str:
        return self.line


def version_code(tensorrt_version: str) -> int:
    """TensorRT's integer version code: "8.5.2" → 8502, "8.5.2.2" → 8502, "10.3.0.26" → 100300."""
    try:
        v = Version(tensorrt_version)
    except InvalidVersion as err:
        raise CalibrationError(
            f"not a TensorRT version: {tensorrt_version!r} (expected e.g. '8.5.2')"
        ) from err
    major, minor, patch = (*v.release, 0, 0, 0)[:3]
    if major < 10:
        if minor > 9 or patch > 99:
            raise CalibrationError(
                f"TensorRT {tensorrt_version}: minor > 9 or patch > 99 has no 4-digit code"
            )
        return major * 1000 + minor * 100 + patch
    return major * 10000 + minor * 100 + patch


def _algorithm_name(algorithm: str) -> str:
    if algorithm in ALGORITHMS:
        return ALGORITHMS[algorithm]
    if algorithm in ALGORITHMS.values():
        return algorithm
    accepted = ", ".join([*ALGORITHMS, *ALGORITHMS.values()])
    raise CalibrationError(f"unknown calibration algorithm {algorithm!r}; accepted: {accepted}")


def encode_scale(scale: float) -> str:
    """8 lowercase hex digits: the big-endian float32 bits of ``scale``."""
    return struct.pack(">f", scale).hex()


def decode_scale(hex_digits: str) -> float:
    """The float32 value of 8 big-endian hex digits, as a Python float (exact)."""
    raw = bytes.fromhex(hex_digits)
    if len(raw) != 4:
        raise ValueError(f"expected 8 hex digits, got {hex_digits!r}")
    return struct.unpack(">f", raw)[0]


def scales_from_ranges(ranges: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """Per-tensor symmetric INT8 scales from observed (min, max) activation ranges.

    scale = max(|min|, |max|) / 127, rounded to float32 (what the cache can hold, so a write/read round
    trip is exact). A tensor that was exactly 0 everywhere gets scale 1.0: any scale represents 0 exactly,
    and TensorRT rejects a zero scale. Non-finite ranges raise :class:`CalibrationError`.
    """
    scales: dict[str, float] = {}
    for name, (lo, hi) in ranges.items():
        amax = max(abs(float(lo)), abs(float(hi)))
        if not math.isfinite(amax):
            raise CalibrationError(
                f"tensor {name!r}: range ({lo}, {hi}) is not finite; check the calibration set"
            )
        scale = float(np.float32(amax / INT8_MAX)) if amax > 0 else 1.0
        if scale == 0.0:  # amax below float32's range of scales
            scale = float(np.finfo(np.float32).tiny)
        scales[name] = scale
    return scales


def write_cache(
    path: str | Path,
    scales: Mapping[str, float],
    tensorrt_version: str = "8.5.2",
    algorithm: str = "EntropyCalibration2",
) -> Path:
    """Write ``scales`` (tensor name → scale, as from :func:`scales_from_ranges`) as a TensorRT cache.

    ``tensorrt_version`` is the TensorRT that will read it (the header's version code); ``algorithm`` is
    "EntropyCalibration2"/"entropy2" or "MinMaxCalibration"/"minmax" and must match the device's
    calibrator. Scales are stored as float32 (exact for those from :func:`scales_from_ranges`, rounded
    otherwise). Lines follow the order of ``scales``. Returns the path.
    """
    header = CacheHeader(version_code(tensorrt_version), _algorithm_name(algorithm))
    lines = [header.line]
    for name, scale in scales.items():
        if "\n" in name or ": " in name:
            raise CalibrationError(f"tensor name {name!r} cannot be stored in a TensorRT calibration cache")
        s = float(scale)
        if not (math.isfinite(s) and s > 0):
            raise CalibrationError(f"tensor {name!r}: scale {scale!r} must be finite and > 0")
        lines.append(f"{name}: {encode_scale(s)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def read_cache(path: str | Path) -> tuple[CacheHeader, dict[str, float]]:
    """Parse a TensorRT calibration cache (ours or TensorRT's) into its header and tensor → scale.

    Raises :class:`CalibrationError` naming the file and line when it is not in TensorRT's format.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise CalibrationError(f"cannot read calibration cache {path}: {err}") from err
    except UnicodeDecodeError as err:
        raise CalibrationError(f"{path} is not a TensorRT calibration cache (not text)") from err
    lines = text.splitlines()
    if not lines:
        raise CalibrationError(f"{path} is empty; expected a 'TRT-<version>-<algorithm>' header")
    m = _HEADER.match(lines[0].strip())
    if not m:
        raise CalibrationError(
            f"{path}: first line {lines[0][:60]!r} is not a TensorRT cache header like "
            "'TRT-8502-EntropyCalibration2'"
        )
    header = CacheHeader(int(m.group(1)), m.group(2))
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        name, sep, digits = line.rpartition(": ")
        try:
            if not sep:
                raise ValueError("no ': ' separator")
            scales[name] = decode_scale(digits.strip())
        except ValueError as err:
            raise CalibrationError(
                f"{path}:{number}: {line[:80]!r} is not '<tensor>: <8 hex digits>' ({err})"
            ) from err
    return header, scales
