"""On-device INT8 calibrators for TensorRT's implicit quantization (TensorRT 8.5 and 10 only).

The recommended INT8 path is decided on the desktop: a Q/DQ ONNX (every TensorRT) or a calibration cache
written by :mod:`lsa_edge.calibration.cache` (8.5/10). These calibrators are for users who calibrate on
the Jetson itself. TensorRT 10.1 deprecates the calibrator classes ("superseded by explicit
quantization") and TensorRT 11 removes them with the INT8 builder flag, so both factories refuse to run
on 11.

TensorRT's calibrator classes are pybind11 trampolines: subclasses are created inside the factories (so
importing this module needs neither tensorrt nor pycuda) and call the base ``__init__`` explicitly,
which TensorRT needs (Polygraphy's calibrator notes that it segfaults otherwise). pycuda is imported
lazily for the device buffers.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from packaging.version import Version

from lsa_edge._lazy import require
from lsa_edge.errors import CalibrationError

from .cache import ALGORITHMS, read_cache

__all__ = ["cache_calibrator", "entropy_calibrator"]

log = logging.getLogger(__name__)

_BASES = {"entropy2": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}


def _require_implicit_int8(trt: Any) -> None:
    version = Version(trt.__version__)
    if version.major >= 11:
        raise CalibrationError(
            f"TensorRT {trt.__version__} has no implicit INT8 calibration (removed in TensorRT 11); "
            "build from the Q/DQ ONNX that 'lsa-edge build --precision int8' writes instead"
        )
    if version.major == 10:
        log.warning(
            "TensorRT %s: implicit INT8 calibrators are deprecated since 10.1 and removed in 11; prefer the "
            "Q/DQ ONNX",
            trt.__version__,
        )


def _base_class(trt: Any, algorithm: str) -> Any:
    if algorithm not in _BASES:
        raise CalibrationError(f"unknown calibration algorithm {algorithm!r}; accepted: {', '.join(_BASES)}")
    return getattr(trt, _BASES[algorithm])


def _read_bytes(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data or None


def _check_header(path: Path, algorithm: str) -> None:
    """Warn when a cache's algorithm differs from the calibrator's: TensorRT would silently recalibrate."""
    header, scales = read_cache(path)
    expected = ALGORITHMS[algorithm]
    if header.algorithm != expected:
        log.warning(
            "%s was written by %s but the calibrator is %s: TensorRT will ignore it and calibrate again",
            path,
            header.algorithm,
            expected,
        )
    log.info("calibration cache %s: %s, %d tensors", path, header.line, len(scales))


def entropy_calibrator(
    batches: Iterable[np.ndarray],
    cache_path: str | Path,
    input_name: str = "faces",
    algorithm: str = "entropy2",
) -> Any:
    """A TensorRT INT8 calibrator that feeds ``batches`` to the GPU and keeps its cache at ``cache_path``.

    batches: iterable of N×3×H×W float32 arrays, normalised faces from the card's preprocessing (the lead's
    calibration set); every batch must have the shape of the first (a shorter last batch is dropped with
    a warning). The engine's calibration profile is that shape (``calibrator.shape``).
    cache_path: read first (when it exists and is non-empty TensorRT uses it and skips calibration),
    written after calibration.
    algorithm: "entropy2" (``IInt8EntropyCalibrator2``, TensorRT's recommended one and the only one DLA
    accepts) or "minmax" (``IInt8MinMaxCalibrator``).

    TensorRT 8.5 and 10 only (deprecated in 10.1, removed in 11). Needs tensorrt and pycuda.
    """
    trt = require("tensorrt", "INT8 calibration on the device")
    _require_implicit_int8(trt)
    base = _base_class(trt, algorithm)
    cache_path = Path(cache_path)
    it = iter(batches)
    first = next(it, None)
    if first is None and _read_bytes(cache_path) is None:
        raise CalibrationError(
            f"no calibration batches and no cache at {cache_path}: nothing to calibrate with"
        )
    if cache_path.exists() and cache_path.stat().st_size:
        _check_header(cache_path, algorithm)
    shape = None if first is None else tuple(np.asarray(first).shape)
    if shape is not None and len(shape) != 4:
        raise CalibrationError(f"calibration batches must be N×3×H×W, got shape {shape}")
    stream = itertools.chain([first], it) if first is not None else iter(())
    require("pycuda.autoinit", "INT8 calibration on the device")  # creates the CUDA context
    cuda = require("pycuda.driver", "INT8 calibration on the device")

    class _Calibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)  # trampoline: must be called explicitly
            self.shape = shape
            self.cache_path = cache_path
            self.algorithm = algorithm
            self.batches_seen = 0
            self._stream = stream
            self._device = None if shape is None else cuda.mem_alloc(int(np.prod(shape)) * 4)

        def get_batch_size(self) -> int:
            # Explicit batch: N is part of the calibration profile's shape; TensorRT 10 deprecates this call.
            return 1

        def get_batch(self, names: list[str], *_: Any) -> list[int] | None:
            # Called from TensorRT's C++ side: an exception must not cross it. Log, and end calibration
            # (None); the build then fails with TensorRT's own error, after ours in the log.
            try:
                if input_name not in names:
                    raise CalibrationError(
                        f"TensorRT asks for inputs {names}; the calibrator feeds {input_name!r}"
                    )
                for batch in self._stream:
                    x = np.ascontiguousarray(batch, dtype=np.float32)
                    if x.shape != self.shape:
                        log.warning(
                            "dropping calibration batch of shape %s (expected %s)", x.shape, self.shape
                        )
                        continue
                    cuda.memcpy_htod(self._device, x)
                    self.batches_seen += 1
                    return [int(self._device)]
            except Exception:
                log.exception("calibration batch %d failed; ending calibration", self.batches_seen + 1)
                return None
            if self.batches_seen:
                log.info("calibrated on %d batches of %s", self.batches_seen, self.shape)
            return None

        def read_calibration_cache(self, *_: Any) -> bytes | None:
            return _read_bytes(self.cache_path)

        def write_calibration_cache(self, cache: Any, *_: Any) -> None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_name(self.cache_path.name + ".tmp")
            tmp.write_bytes(bytes(memoryview(cache)))
            tmp.replace(self.cache_path)
            log.info("wrote calibration cache %s", self.cache_path)

    return _Calibrator()


def cache_calibrator(cache_path: str | Path) -> Any:
    """A calibrator that only hands TensorRT an existing cache (the desktop-calibrated path on 8.5/10).

    Its algorithm follows the cache header (EntropyCalibration2 or MinMaxCalibration); it has no data, so
    if TensorRT rejects the cache (for instance its tensor names do not match the network) the build
    fails instead of calibrating on nothing. Needs tensorrt only.
    """
    trt = require("tensorrt", "INT8 with a calibration cache")
    _require_implicit_int8(trt)
    cache_path = Path(cache_path)
    data = _read_bytes(cache_path)
    if data is None:
        raise CalibrationError(f"calibration cache {cache_path} is missing or empty")
    header, scales = read_cache(cache_path)
    by_name = {v: k for k, v in ALGORITHMS.items()}
    if header.algorithm not in by_name:
        raise CalibrationError(
            f"{cache_path}: algorithm {header.algorithm!r} is not one lsa-edge calibrates with "
            f"({', '.join(by_name)})"
        )
    algorithm = by_name[header.algorithm]
    base = _base_class(trt, algorithm)
    log.info("INT8 from calibration cache %s (%s, %d tensors)", cache_path, header.line, len(scales))

    class _CacheOnly(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.shape = None
            self.cache_path = cache_path
            self.algorithm = algorithm

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names: list[str], *_: Any) -> None:
            log.error(
                "TensorRT did not accept the calibration cache %s and asked for data; it must come from "
                "the same ONNX graph (tensor names) and calibration algorithm",
                cache_path,
            )
            return None

        def read_calibration_cache(self, *_: Any) -> bytes:
            return data

        def write_calibration_cache(self, cache: Any, *_: Any) -> None:
            pass  # never overwrite the desktop's cache

    return _CacheOnly()
