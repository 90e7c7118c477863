"""On-device INT8 calibrators for TensorRT's implicit quantization (TensorRT 8.5 and 10 only).

The recommended INT8 path is decided on the desktop: a Q/DQ ONNX (every TensorRT) or a calibration cache
written by :mod:`lsa_edge.calibration.cache` (8.5/10). These calibrators are for users who calibrate on
the Jetson itself. TensorRT 10.1 deprecates the calibrator classes ("superseded by explicit
quantization") and TensorRT 11 removes them with the INT8 builder flag: both factories check that the
running TensorRT has the class (a capability check, not a version comparison) and refuse otherwise.

TensorRT's calibrator classes are pybind11 trampolines: subclasses are created inside the factories (so
importing this module needs neither tensorrt nor a CUDA binding) and call the base ``__init__``
explicitly, which TensorRT needs (Polygraphy's calibrator notes that it segfaults otherwise). Device
buffers come from :mod:`lsa_edge.backends._cuda` (cuda-python, else pycuda), one per network input.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from packaging.version import Version

from lsa_edge._fileio import write_bytes_atomic
from lsa_edge._lazy import require
from lsa_edge.backends._cuda import Cuda, DeviceMemory, open_cuda
from lsa_edge.errors import CalibrationError

from .cache import ALGORITHMS, read_cache

__all__ = ["cache_calibrator", "entropy_calibrator"]

log = logging.getLogger(__name__)

_BASES = {"entropy2": "IInt8EntropyCalibrator2", "minmax": "IInt8MinMaxCalibrator"}


def _base_class(trt: Any, algorithm: str) -> Any:
    """TensorRT's calibrator base class for ``algorithm``, where this TensorRT still has it."""
    if algorithm not in _BASES:
        raise CalibrationError(f"unknown calibration algorithm {algorithm!r}; accepted: {', '.join(_BASES)}")
    base = getattr(trt, _BASES[algorithm], None)
    if base is None:  # TensorRT 11: implicit INT8 is gone with the INT8 builder flag
        raise CalibrationError(
            f"TensorRT {trt.__version__} has no implicit INT8 calibration ({_BASES[algorithm]} was removed "
            "in TensorRT 11); build from the Q/DQ ONNX that 'lsa-edge build --precision int8' writes instead"
        )
    if Version(trt.__version__) >= Version("10.1"):
        log.warning(
            "TensorRT %s: implicit INT8 calibrators are deprecated since 10.1 and removed in 11; prefer the "
            "Q/DQ ONNX",
            trt.__version__,
        )
    return base


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
    batches: Iterable[np.ndarray | Mapping[str, np.ndarray]],
    cache_path: str | Path,
    input_name: str = "faces",
    algorithm: str = "entropy2",
    device: int = 0,
) -> Any:
    """A TensorRT INT8 calibrator that feeds ``batches`` to the GPU and keeps its cache at ``cache_path``.

    batches: iterable of N×3×H×W float32 arrays (normalised faces from the card's preprocessing) for a
    one-input network, or of {input name: array} for several inputs; every batch must have the shapes of
    the first (others are dropped with a warning). The engine's calibration profile is the first batch's
    shape of ``input_name`` (``calibrator.shape``).
    cache_path: read first (when it exists and is non-empty TensorRT uses it and skips calibration),
    written after calibration.
    algorithm: "entropy2" (``IInt8EntropyCalibrator2``, TensorRT's recommended one and the only one DLA
    accepts) or "minmax" (``IInt8MinMaxCalibrator``).

    TensorRT 8.5 and 10 only (deprecated in 10.1, removed in 11). Needs tensorrt and cuda-python (or pycuda).
    Its GPU buffers live until ``close()``: use it as ``with entropy_calibrator(...) as cal:
    build_engine(EngineSpec(..., calibration=Calibration(calibrator=cal)))``.
    """
    trt = require("tensorrt", "INT8 calibration on the device")
    base = _base_class(trt, algorithm)
    cache_file = Path(cache_path)
    it = iter(batches)
    first = next(it, None)
    if first is None and _read_bytes(cache_file) is None:
        raise CalibrationError(
            f"no calibration batches and no cache at {cache_file}: nothing to calibrate with"
        )
    if cache_file.exists() and cache_file.stat().st_size:
        _check_header(cache_file, algorithm)
    shapes = None if first is None else {k: v.shape for k, v in _as_inputs(first, input_name).items()}
    if shapes is not None:
        if input_name not in shapes:
            raise CalibrationError(f"calibration batches have inputs {sorted(shapes)}, not {input_name!r}")
        bad = {k: v for k, v in shapes.items() if len(v) != 4}
        if bad:
            raise CalibrationError(f"calibration batches must be N×C×H×W, got shapes {bad}")
    stream = itertools.chain([first], it) if first is not None else iter(())
    cuda = open_cuda(device) if shapes is not None else None  # a cache-backed run needs no GPU memory

    class _Calibrator(_DeviceFeed, base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)  # trampoline: must be called explicitly
            _DeviceFeed.__init__(self, stream, shapes, input_name, cache_file, algorithm, cuda)

    return _Calibrator()


class _DeviceFeed:
    """What :func:`entropy_calibrator`'s calibrators do, mixed in before TensorRT's calibrator base: feed
    the batches to the GPU, one buffer per input, and keep the cache. TensorRT calls these methods from C++,
    so none lets an exception escape."""

    def __init__(
        self,
        stream: Iterator[Any],
        shapes: dict[str, tuple[int, ...]] | None,
        input_name: str,
        cache_path: Path,
        algorithm: str,
        cuda: Cuda | None,
    ) -> None:
        self.shape = None if shapes is None else shapes[input_name]
        self.shapes = shapes
        self.input_name = input_name
        self.cache_path = cache_path
        self.algorithm = algorithm
        self.batches_seen = 0
        self._stream = stream
        self._cuda = cuda
        self._device: dict[str, DeviceMemory] = {}

    def get_batch_size(self) -> int:
        # Explicit batch: N is part of the calibration profile's shape; TensorRT 10 deprecates this call.
        return 1

    def get_batch(self, names: list[str], *_: Any) -> list[int] | None:
        # An exception must not cross into TensorRT's C++: log, and end calibration (None); the build then
        # fails with TensorRT's own error, after ours in the log.
        try:
            if self._cuda is None or self.shapes is None:
                return None
            missing = [n for n in names if n not in self.shapes]
            if missing:
                raise CalibrationError(
                    f"TensorRT asks for inputs {list(names)}; the calibration batches hold "
                    f"{sorted(self.shapes)} (missing {missing})"
                )
            for batch in self._stream:
                inputs = _as_inputs(batch, self.input_name)
                got = {k: v.shape for k, v in inputs.items()}
                if got != self.shapes:
                    log.warning("dropping calibration batch of shapes %s (expected %s)", got, self.shapes)
                    continue
                with self._cuda.current():
                    for name in names:
                        x = inputs[name]
                        if name not in self._device:
                            self._device[name] = self._cuda.alloc(x.nbytes)
                        self._cuda.to_device(self._device[name], x, asynchronous=False)
                self.batches_seen += 1
                return [int(self._device[name]) for name in names]  # one pointer per input, in order
        except Exception:
            log.exception("calibration batch %d failed; ending calibration", self.batches_seen + 1)
            return None
        if self.batches_seen:
            log.info("calibrated on %d batches of %s", self.batches_seen, self.shapes)
        return None

    def read_calibration_cache(self, *_: Any) -> bytes | None:
        return _read_bytes(self.cache_path)

    def write_calibration_cache(self, cache: Any, *_: Any) -> None:
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(self.cache_path, bytes(memoryview(cache)))
            log.info("wrote calibration cache %s", self.cache_path)
        except Exception:  # never across TensorRT's C++ side
            log.exception("could not write the calibration cache %s", self.cache_path)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the device buffers (also safe to call twice)."""
        if self._cuda is None:
            return
        cuda, self._cuda = self._cuda, None
        with cuda.current():
            while self._device:
                self._device.popitem()[1].free()
        cuda.close()


def _as_inputs(batch: np.ndarray | Mapping[str, np.ndarray], input_name: str) -> dict[str, np.ndarray]:
    """{input name: C-contiguous float32 array} of one calibration batch."""
    items = batch.items() if isinstance(batch, Mapping) else [(input_name, batch)]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in items}


def cache_calibrator(cache_path: str | Path) -> Any:
    """A calibrator that only hands TensorRT an existing cache (the desktop-calibrated path on 8.5/10).

    Its algorithm follows the cache header (EntropyCalibration2 or MinMaxCalibration); it has no data, so
    if TensorRT rejects the cache (for instance its tensor names do not match the network) the build
    fails instead of calibrating on nothing. Needs tensorrt only.
    """
    trt = require("tensorrt", "INT8 with a calibration cache")
    cache_path = Path(cache_path)
    cached = _read_bytes(cache_path)
    if cached is None:
        raise CalibrationError(f"calibration cache {cache_path} is missing or empty")
    data: bytes = cached  # the class below returns it (a narrowed name does not stay narrowed in its methods)
    header, scales = read_cache(cache_path)
    by_name = {v: k for k, v in ALGORITHMS.items()}
    if header.algorithm not in by_name:
        raise CalibrationError(
            f"{cache_path}: algorithm {header.algorithm!r} is not one lsa-edge calibrates with "
            f"({', '.join(by_name)})"
        )
    algorithm = by_name[header.algorithm]
    base = _base_class(trt, algorithm)  # before reading further: TensorRT 11 has no calibrators
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
