"""INT8 on the desktop: calibrate an FP32 ONNX once with ONNX Runtime over real face crops, then write
the Q/DQ ONNX each target needs and TensorRT's calibration cache from the same tensor ranges.

Flavours (design.md §5):

- ``tensorrt``: symmetric int8 activations and weights (TensorRT runs no uint8 or int32 Q/DQ), per-channel
  weights on axis 0, Q/DQ on the *inputs* of compute ops only (Conv, MatMul, Gemm): TensorRT fuses each
  Q/DQ pair into the layer around it and picks the output precision itself; biases stay float.
- ``cpu``: uint8 activations / int8 weights, the flavour ONNX Runtime's x86 kernels (VNNI/AMX) are fast
  with; compute ops plus the activations and residual adds between them, outputs quantized too, so
  ONNX Runtime chains integer kernels without float round trips (ReLU/ReLU6 fold into the u8 range).

The ranges of *every* float tensor are collected once (all op types), saved as ONNX Runtime's calibration
cache (JSON) so both flavours reuse them without a second calibration pass, and converted to per-tensor
scales for TensorRT 8.5's implicit-quantization cache. Imports onnx and onnxruntime lazily.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lsa_edge._fileio import atomic_path
from lsa_edge._lazy import require
from lsa_edge.errors import CalibrationError, ConfigError, unknown_choice

log = logging.getLogger(__name__)

METHODS = ("minmax", "entropy", "percentile")
FLAVOURS = ("tensorrt", "cpu")
COMPUTE_OPS = ("Conv", "MatMul", "Gemm")  # TensorRT: the ops whose inputs carry Q/DQ
# ONNX Runtime on CPUs: also the activations and joins between convolutions. Left in float, every ReLU6 of
# MobileNetV2 becomes QLinearConv → DequantizeLinear → Clip → QuantizeLinear, and those float round trips
# cost more than INT8 saves (measured: 0.9× FP32 with compute ops only, 2× with Clip/Relu/Add quantized).
CPU_OPS = (*COMPUTE_OPS, "Clip", "Relu", "Add", "MaxPool")
Method = Literal["minmax", "entropy", "percentile"]
Flavour = Literal["tensorrt", "cpu"]


@dataclass(frozen=True)
class Ranges:
    """Calibrated activation ranges: tensor name → (min, max), plus where they are cached."""

    method: str
    ranges: dict[str, tuple[float, float]]
    ort_cache: Path  # ONNX Runtime's calibration cache (JSON), reusable by quantize_static
    images: int
    seconds: float
    percentile: float = 99.99


def _ort_method(method: str) -> Any:
    q = require("onnxruntime.quantization", "INT8 calibration")
    if method not in METHODS:
        raise ConfigError(unknown_choice("calibration method", method, METHODS))
    return {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }[method]


def _reader(batches: Iterable[np.ndarray], input_name: str) -> Any:
    """An ONNX Runtime CalibrationDataReader over an iterator of N×3×H×W float32 batches."""
    q = require("onnxruntime.quantization", "INT8 calibration")
    reader: Any = q.CalibrationDataReader  # onnxruntime has no type information (no py.typed)

    class FaceBatches(reader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {input_name: np.ascontiguousarray(x, dtype=np.float32)}

    return FaceBatches()


def calibrate(
    onnx_path: str | Path,
    batches: Sequence[np.ndarray],
    out_dir: str | Path,
    method: Method = "percentile",
    input_name: str = "faces",
    percentile: float = 99.99,
    chunk: int = 4,
    progress: bool = False,
) -> Ranges:
    """Collect the ranges of every float tensor of ``onnx_path`` over ``batches`` (normalised faces).

    Histogram methods see the batches ``chunk`` at a time, so memory stays bounded by a few batches'
    activations. Writes ``out_dir/calibration_<method>.json`` (ONNX Runtime's cache format).
    """
    q = require("onnxruntime.quantization", "INT8 calibration")
    calib = require("onnxruntime.quantization.calibrate", "INT8 calibration")
    if not batches:
        raise CalibrationError("calibration needs at least one batch of faces")
    ort_method = _ort_method(method)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lsa-calib-") as tmp:
        options: dict[str, Any] = {}
        if method == "percentile":
            options = {"percentile": percentile, "symmetric": True}
        elif method == "entropy":
            options = {"symmetric": True}
        calibrator = q.create_calibrator(
            Path(onnx_path),
            None,  # every op type: TensorRT's implicit cache wants every tensor's scale
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=ort_method,
            extra_options=options,
        )
        from tqdm.auto import tqdm

        # ONNX Runtime's histogram calibrators print progress to stdout; keep the CLI's output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            for i in tqdm(
                range(0, len(batches), chunk),
                desc=f"calibrating ({method})",
                unit="batch",
                disable=not progress,
            ):
                calibrator.collect_data(_reader(batches[i : i + chunk], input_name))
            data = calibrator.compute_data()
        del calibrator
    cache = out_dir / f"calibration_{method}.json"
    with atomic_path(cache) as tmp:
        calib.save_tensors_data(data, tmp)
    ranges = {}
    for name, td in data.data.items():
        lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in td.range_value)
        ranges[name] = (lo, hi)
    images = sum(len(b) for b in batches)
    secs = time.perf_counter() - t0
    log.info("calibrated %d tensors on %d faces with %s in %.1f s", len(ranges), images, method, secs)
    return Ranges(method, ranges, cache, images, secs, percentile)


def quantize(
    onnx_path: str | Path,
    out_path: str | Path,
    ranges: Ranges,
    flavour: Flavour,
    *,
    per_channel: bool = True,
    exclude_nodes: Sequence[str] = (),
    op_types: Sequence[str] | None = None,
    batches: Sequence[np.ndarray] | None = None,
    input_name: str = "faces",
) -> Path:
    """Write a Q/DQ ONNX of ``onnx_path`` for ``flavour`` using calibrated ``ranges``.

    op_types: the op types to quantize (default: COMPUTE_OPS for TensorRT, CPU_OPS for ONNX Runtime).

    ONNX Runtime ≥ 1.30-ish reuses ``ranges`` through its calibration cache; older releases cannot, and
    re-calibrate on ``batches`` (the same faces, so the same ranges) instead.
    """
    onnx = require("onnx", "INT8 quantization")
    q = require("onnxruntime.quantization", "INT8 quantization")
    if flavour not in FLAVOURS:
        raise ConfigError(unknown_choice("quantization flavour", flavour, FLAVOURS))
    model = onnx.load(str(onnx_path))
    _check_graph(model, onnx_path, exclude_nodes)
    if op_types is None:
        op_types = COMPUTE_OPS if flavour == "tensorrt" else CPU_OPS
    act, wt, extra = _quant_types(q, flavour, op_types)
    reuse = _reuse_ranges(q, ranges, batches, input_name, extra)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    quiet = logging.getLogger()  # quantize_static warns through the root logger about pre-processing
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with atomic_path(out_path) as tmp:  # a kill or a failure never leaves half a quantized model
        try:
            q.quantize_static(
                str(onnx_path),
                str(tmp),
                quant_format=q.QuantFormat.QDQ,
                op_types_to_quantize=list(op_types),
                per_channel=per_channel,
                activation_type=act,
                weight_type=wt,
                nodes_to_exclude=list(exclude_nodes),
                calibrate_method=_ort_method(ranges.method),
                extra_options=extra,
                **reuse,
            )
        finally:
            quiet.setLevel(level)
        # Keep the FP32 model's metadata (the model card) on the quantized graph.
        qmodel = onnx.load(str(tmp))
        del qmodel.metadata_props[:]
        qmodel.metadata_props.extend(model.metadata_props)
        onnx.save(qmodel, str(tmp))
    counts = qdq_counts(qmodel)
    log.info(
        "wrote %s (%s flavour, %d QuantizeLinear, %d DequantizeLinear) in %.1f s",
        out_path,
        flavour,
        counts["QuantizeLinear"],
        counts["DequantizeLinear"],
        time.perf_counter() - t0,
    )
    return out_path


def _check_graph(model: Any, onnx_path: str | Path, exclude_nodes: Sequence[str]) -> None:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        raise ConfigError(
            f"{onnx_path}: opset {opset}; per-channel Q/DQ needs opset ≥ 13 (export with --opset 17)"
        )
    known = {n.name for n in model.graph.node}
    missing = [n for n in exclude_nodes if n not in known]
    if missing:
        raise ConfigError(
            f"--exclude-nodes names nodes the graph does not have: {', '.join(missing)}; "
            f"list them with: lsa-edge check {onnx_path} --nodes"
        )


def _quant_types(q: Any, flavour: Flavour, op_types: Sequence[str]) -> tuple[Any, Any, dict[str, Any]]:
    """Activation type, weight type and quantize_static's extra options for ``flavour``."""
    extra: dict[str, Any] = {"WeightSymmetric": True}
    if flavour != "tensorrt":
        return q.QuantType.QUInt8, q.QuantType.QInt8, extra
    extra.update(
        {
            "ActivationSymmetric": True,
            "QuantizeBias": False,  # TensorRT has no int32 DequantizeLinear; it folds float biases itself
            "OpTypesToExcludeOutputQuantization": list(op_types),  # Q/DQ on inputs; TensorRT fuses outputs
            "QDQKeepRemovableActivations": True,  # keep ReLU/Clip in the graph: TensorRT fuses them
        }
    )
    return q.QuantType.QInt8, q.QuantType.QInt8, extra


def _reuse_ranges(
    q: Any, ranges: Ranges, batches: Sequence[np.ndarray] | None, input_name: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """How quantize_static gets the calibrated ranges: the cache where it reads one, else the same faces
    again (adding the matching options to ``extra``)."""
    if "calibration_cache_path" in inspect.signature(q.quantize_static).parameters:
        return {"calibration_data_reader": None, "calibration_cache_path": ranges.ort_cache}
    if not batches:
        raise CalibrationError(
            "this onnxruntime cannot reuse calibrated ranges and no calibration faces were given; "
            "upgrade with: pip install -U onnxruntime"
        )
    if ranges.method == "percentile":
        extra["CalibPercentile"] = ranges.percentile
    if ranges.method in ("percentile", "entropy"):  # as calibrate() collected them
        extra["CalibTensorRangeSymmetric"] = True
    return {"calibration_data_reader": _reader(batches, input_name)}


def qdq_counts(model: Any) -> dict[str, int]:
    ops = [n.op_type for n in model.graph.node]
    return {k: ops.count(k) for k in ("QuantizeLinear", "DequantizeLinear")}
