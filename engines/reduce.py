"""The precision steps of a build and their accuracy gates, each from typed inputs to a frozen artifact:

    Fp32Model + Validation ─ reference ─▶ Reference (FP32's probabilities on the validation faces)
    Fp32Model + Opset16? + Reference ─ reduce_fp16 ─▶ Reduced (model_fp16.onnx, gated)
    Fp32Model + Reference ─ calibrate ─▶ Calibrated ─ quantize ─▶ Reduced (Q/DQ graphs + cache, gated)

A gate measures an artifact against FP32 on the validation faces as what runs it will run it (see
:func:`gate_all`) and fails the build when it loses more than ``max_accuracy_drop`` points.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lsa_edge.card import ModelCard
from lsa_edge.manifest import (
    CALIBRATION_CACHE,
    MODEL_FP16_ONNX,
    MODEL_INT8_CPU_ONNX,
    MODEL_INT8_TRT_ONNX,
)

from .accuracy import AccuracyCheck, AccuracyGateError, compare_accuracy, enforce
from .config import BuildConfig
from .steps import Fp32Model, Opset16, Timings, Validation, Workspace, lower_opset16

log = logging.getLogger(__name__)

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class Reference:
    """FP32's probabilities on the validation faces: what every gate compares against."""

    x: np.ndarray  # N×3×H×W float32, the faces through the card's preprocessing
    probs: np.ndarray  # N×attributes, FP32 ONNX Runtime
    labels: np.ndarray  # N×attributes 0/1: the faces' labels, or FP32's own decisions (built-in faces)
    labelled: bool
    seconds: float


@dataclass(frozen=True)
class Reduced:
    """What a precision step wrote and how it was checked."""

    files: dict[str, Path] = field(default_factory=dict)  # name in the bundle → path
    checks: dict[str, AccuracyCheck] = field(default_factory=dict)  # gate name → its check
    lowered: tuple[Opset16, ...] = ()  # opset-16 rewrites of the reduced graph (TensorRT 8.5)
    calibration: dict[str, Any] | None = None  # INT8: method, faces, source, caches
    timings: Timings = field(default_factory=dict)


def reference(fp32: Fp32Model, val: Validation) -> Reference:
    from lsa_edge.backends import OnnxRuntimeBackend

    x = val.faces.tensors(fp32.card.preprocessing)
    t0 = time.perf_counter()
    probs = OnnxRuntimeBackend(fp32.path).predict(x)
    seconds = time.perf_counter() - t0
    labels = val.faces.labels
    if labels is None:  # built-in faces: FP32's own decisions are the labels (a numerics check)
        labels = (probs >= np.asarray(fp32.card.thresholds, dtype=np.float32)).astype(np.uint8)
    return Reference(x, probs, labels, labels is val.faces.labels, seconds)


def gate_all(
    runs: list[tuple[str, Path, str]], ref: Reference, card: ModelCard, cfg: BuildConfig, timings: Timings
) -> dict[str, AccuracyCheck]:
    """Measure every (name, graph, label) against FP32 (so all deltas are reported), then fail on the first
    that lost more than ``cfg.max_accuracy_drop`` points. Adds ``evaluate_<name>`` to ``timings``."""
    from lsa_edge.backends import OnnxRuntimeBackend

    checks: dict[str, AccuracyCheck] = {}
    failures = []
    for name, path, label in runs:
        t0 = time.perf_counter()
        probs = OnnxRuntimeBackend(path).predict(ref.x)
        timings[f"evaluate_{name}"] = time.perf_counter() - t0
        label = label or path.name
        if not ref.labelled:
            label += " [built-in faces, FP32 decisions as labels]"
        check = compare_accuracy(label, ref.probs, probs, ref.labels, card.thresholds, card.attributes)
        checks[name] = check
        log.info("accuracy gate: %s", check.describe())
        try:
            enforce(check, cfg.max_accuracy_drop, cfg.precision)
        except AccuracyGateError as err:
            failures.append(err)
    if failures:
        raise failures[0]
    return checks


def reduce_fp16(ws: Workspace, fp32: Fp32Model, lowered: Opset16 | None, ref: Reference) -> Reduced:
    """``model_fp16.onnx`` (sensitive ops kept FP32), gated as TensorRT 10/11 run it and as 8.5's FP16
    flag may run it (every layer FP16, on the graph 8.5 builds)."""
    from .fp16 import FP32_OPS, convert_fp16

    t0 = time.perf_counter()
    path = convert_fp16(fp32.path, ws.out / MODEL_FP16_ONNX, (*FP32_OPS, *ws.cfg.fp32_ops))
    timings: Timings = {"fp16": time.perf_counter() - t0, "evaluate_fp32": ref.seconds}
    with tempfile.TemporaryDirectory(prefix="lsa-fp16-") as tmp:
        # TensorRT 8.5 has no strong typing: with the FP16 flag it may run any layer in FP16, the
        # softmax and normalisations included. Gate that worst case too (every op in FP16), on the graph
        # 8.5 builds (the opset-16 one: LayerNormalization's primitives in FP16 too).
        every = convert_fp16(lowered.path if lowered else fp32.path, Path(tmp) / "all.onnx", ())
        runs = [
            ("fp16", path, "model_fp16.onnx (TensorRT 10/11, strongly typed)"),
            ("fp16_all_layers", every, "every layer FP16 (TensorRT 8.5's --fp16 worst case)"),
        ]
        checks = gate_all(runs, ref, fp32.card, ws.cfg, timings)
    return Reduced({MODEL_FP16_ONNX: path}, checks, timings=timings)


@dataclass(frozen=True)
class Calibrated:
    """Activation ranges measured with ONNX Runtime on calibration faces, and TensorRT's cache of them."""

    ranges: Any  # lsa_edge.calibration.quantize.Ranges
    batches: list[np.ndarray]
    source: str
    files: dict[str, Path]
    timings: Timings


def calibrate(ws: Workspace, fp32: Fp32Model, val: Validation) -> Calibrated:
    from lsa_edge.calibration.cache import scales_from_ranges, write_cache
    from lsa_edge.calibration.dataset import load_faces, require_enough
    from lsa_edge.calibration.quantize import calibrate as measure

    cfg, pre = ws.cfg, fp32.card.preprocessing
    src = cfg.calib_data or cfg.val_data
    if src is None:  # load_validation refuses INT8 without data first
        raise ValueError("INT8 calibration needs --calib-data")
    t0 = time.perf_counter()
    calib = load_faces(
        src, pre, split="train", count=cfg.calib_count, seed=cfg.seed, fmt=cfg.data_format,
        workers=cfg.workers, progress=cfg.progress,
    )  # fmt: skip
    require_enough(calib, min(cfg.calib_count, 32), "INT8 calibration")
    overlap = set(calib.names) & set(val.faces.names)
    if overlap:
        log.warning("%d calibration faces are also validation faces; the gate is optimistic", len(overlap))
    timings: Timings = {"load_calibration_faces": time.perf_counter() - t0}
    log.info("calibration faces: %s", calib.source)
    batches = list(calib.batches(pre, cfg.calib_batch))
    ranges = measure(fp32.path, batches, ws.out, method=cfg.calib_method, progress=cfg.progress)
    timings["calibrate"] = ranges.seconds
    ranges.ort_cache.chmod(0o644)  # ONNX Runtime writes it through mkstemp (0600)
    cache = write_cache(ws.out / CALIBRATION_CACHE, scales_from_ranges(ranges.ranges))
    files = {ranges.ort_cache.name: ranges.ort_cache, CALIBRATION_CACHE: Path(cache)}
    return Calibrated(ranges, batches, calib.source, files, timings)


def reduce_int8(ws: Workspace, fp32: Fp32Model, val: Validation, ref: Reference) -> Reduced:
    """Calibrate, write both Q/DQ flavours, rewrite TensorRT's at opset 16 for 8.5, and gate them all."""
    from lsa_edge.calibration.quantize import quantize

    cal = calibrate(ws, fp32, val)
    files, timings = dict(cal.files), dict(cal.timings)
    for flavour, name in (("tensorrt", MODEL_INT8_TRT_ONNX), ("cpu", MODEL_INT8_CPU_ONNX)):
        t0 = time.perf_counter()
        files[name] = quantize(
            fp32.path, ws.out / name, cal.ranges, flavour,  # type: ignore[arg-type]
            exclude_nodes=ws.cfg.exclude_nodes, batches=cal.batches,
        )  # fmt: skip
        timings[f"quantize_{flavour}"] = time.perf_counter() - t0
    calibration = {
        "method": cal.ranges.method,
        "faces": cal.ranges.images,
        "source": cal.source,
        "tensors": len(cal.ranges.ranges),
        "excluded_nodes": list(ws.cfg.exclude_nodes),
        "tensorrt_cache": CALIBRATION_CACHE,
        "onnxruntime_cache": cal.ranges.ort_cache.name,
    }
    lowered = lower_opset16(ws, fp32.card, MODEL_INT8_TRT_ONNX, val)  # TensorRT 8.5's Q/DQ graph
    if lowered is not None:
        timings[f"opset16_{Path(lowered.source).stem}"] = lowered.seconds
    timings["evaluate_fp32"] = ref.seconds
    checks = _int8_gates(ws, fp32.card, lowered, ref, timings)
    return Reduced(files, checks, (lowered,) if lowered else (), calibration, timings)


def _int8_gates(
    ws: Workspace, card: ModelCard, lowered: Opset16 | None, ref: Reference, timings: Timings
) -> dict[str, AccuracyCheck]:
    """Gate each INT8 artifact as what runs it will run it: TensorRT 11 the Q/DQ graph as typed, 10 with
    FP16 for the unquantized layers, 8.5 its opset-16 graph with every float layer FP16, ONNX Runtime
    its CPU flavour."""
    from .fp16 import FP32_OPS, convert_fp16

    out = ws.out
    with tempfile.TemporaryDirectory(prefix="lsa-int8-fp16-") as tmp:
        # TensorRT 8.5/10 build INT8 with FP16 for the layers left without Q/DQ (attention, norms,
        # sigmoid): gate that combination too, emulated by casting the float parts to FP16.
        mixed = convert_fp16(
            out / MODEL_INT8_TRT_ONNX, Path(tmp) / "model_int8_trt_fp16.onnx", (*FP32_OPS, *QDQ_OPS)
        )
        runs = [
            ("int8_trt", out / MODEL_INT8_TRT_ONNX, "model_int8_trt.onnx (TensorRT 11)"),
            ("int8_trt_fp16", mixed, "model_int8_trt.onnx + FP16 for the rest (TensorRT 10)"),
            ("int8_cpu", out / MODEL_INT8_CPU_ONNX, "model_int8_cpu.onnx (ONNX Runtime CPU)"),
        ]
        if lowered is not None:  # 8.5 may run every float layer in FP16, the decomposed norms included
            every = convert_fp16(lowered.path, Path(tmp) / "int8_85.onnx", QDQ_OPS)
            runs.append(
                ("int8_trt_fp16_85", every, f"{lowered.path.name} + every float layer FP16 (TensorRT 8.5)")
            )
        return gate_all(runs, ref, card, ws.cfg, timings)


__all__ = [
    "Calibrated",
    "Reduced",
    "Reference",
    "calibrate",
    "gate_all",
    "reduce_fp16",
    "reduce_int8",
    "reference",
]
