"""Q/DQ rules of the TensorRT lint: explicit quantization as TensorRT takes it.

TensorRT quantizes symmetrically (int8 zero point 0), activations per tensor, weights per output channel,
keeps biases float, and wants every QuantizeLinear followed by a DequantizeLinear ([OPS-8.5]/[OPS-10]
"zero point must be zero"; TensorRT developer guide, "Explicit Quantization"). Findings say where a graph
departs from that and what to do. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _trt_generations as T
from ._onnx_index import QDQ, Finding, OnnxIndex, Severity, node_attr
from ._trt_generations import Generation

_WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# Ops a weight may pass through between its DequantizeLinear and the compute op (TensorRT propagates
# Q/DQ through these).
_PASS_THROUGH = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def rule_qdq(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """Explicit quantization as TensorRT takes it: symmetric int8 (zero point 0), per-tensor activations,
    per-output-channel weights, float bias, every Q followed by a DQ."""
    qdq = [n for n in m.nodes if n.op_type in QDQ]
    if not qdq:
        return
    for n in qdq:
        yield from _qdq_node(m, n, gen)
    yield from _qdq_half_quantized(m)


def _scale_size(m: OnnxIndex, n: Any) -> int | None:
    if len(n.input) < 2:
        return None
    v = m.value(n.input[1])
    if v is not None:
        return int(v.size)
    shape = m.shapes.get(n.input[1])
    return int(np.prod([d for d in shape if isinstance(d, int)])) if shape else None


def _is_weight(m: OnnxIndex, n: Any) -> bool:
    """True when the Q/DQ quantizes a constant (a weight), directly or through its Q."""
    x = n.input[0]
    if x in m.const:
        return True
    p = m.producer.get(x)
    return p is not None and p.op_type == "QuantizeLinear" and p.input[0] in m.const


def _qdq_node(m: OnnxIndex, n: Any, gen: Generation) -> Iterator[Finding]:
    """Each Q/DQ rule for one QuantizeLinear/DequantizeLinear node, in this order: opset, scale, zero point,
    int32 input, per-channel use, Q/DQ pairing."""
    op, where = n.op_type, m.label(n)
    size = _scale_size(m, n)
    per_channel = size is not None and size > 1
    yield from _qdq_opset(m, op, where, per_channel)
    yield from _qdq_scale(m, n, op, where)
    yield from _qdq_zero_point(m, n, op, where)
    yield from _qdq_int32(m, n, op, where)
    if per_channel:
        yield from _qdq_per_channel(m, n, op, where, size)
    yield from _qdq_pairing(m, n, op, where)


def _qdq_opset(m: OnnxIndex, op: str, where: str, per_channel: bool) -> Iterator[Finding]:
    """Q/DQ below opset 13: per-channel scales have no ``axis`` there; TensorRT specifies opset >= 13."""
    if m.opset >= 13:
        return
    yield Finding(
        "error" if per_channel else "warning",
        "qdq-opset",
        where,
        op,
        f"{op} at opset {m.opset}: "
        + (
            "per-channel scales need the `axis` attribute, which exists from opset 13"
            if per_channel
            else "TensorRT's explicit quantization is specified for opset >= 13 Q/DQ"
        )
        + "; re-export the Q/DQ model with opset_version >= 13.",
    )


def _qdq_scale(m: OnnxIndex, n: Any, op: str, where: str) -> Iterator[Finding]:
    """The scale must be a constant with positive, finite values."""
    scale = n.input[1] if len(n.input) > 1 else ""
    if scale and scale not in m.const:
        yield Finding(
            "error",
            "qdq-scale",
            where,
            op,
            f"{op} scale {scale} is computed at run time; TensorRT needs constant scales: fold it into an "
            "initializer.",
        )
    elif scale:
        v = m.value(scale)
        if v is not None and v.size and not (np.all(np.isfinite(v)) and np.all(v > 0)):
            yield Finding(
                "error",
                "qdq-scale",
                where,
                op,
                f"{op} scale {scale} has zero, negative or non-finite values; TensorRT requires positive scales: "
                "recalibrate (a dead channel should get a tiny positive scale, not 0).",
            )


def _qdq_zero_point(m: OnnxIndex, n: Any, op: str, where: str) -> Iterator[Finding]:
    """Symmetric int8: a constant int8 zero point of 0; never uint8; a Q without one is uint8 in ONNX."""
    zp = n.input[2] if len(n.input) > 2 and n.input[2] else ""
    x_type = m.types.get(n.input[0], 0)
    if zp:
        zp_type = m.types.get(zp, 0)
        if zp_type == T.UINT8 or (op == "DequantizeLinear" and x_type == T.UINT8):
            yield _uint8_finding(where, op)
        elif zp_type == T.INT8:
            v = m.value(zp)
            if zp not in m.const or (v is not None and np.any(v != 0)):
                yield Finding(
                    "error",
                    "qdq-zero-point",
                    where,
                    op,
                    f'{op} zero point {zp} is not a constant 0: TensorRT quantization is symmetric ("zero point '
                    'must be zero"). Requantize with symmetric int8 (zero point 0).',
                )
    elif op == "QuantizeLinear":
        yield Finding(
            "warning",
            "qdq-zero-point",
            where,
            op,
            "QuantizeLinear has no zero point, so ONNX defines its output as uint8 while TensorRT quantizes to "
            "int8: give it an int8 zero-point initializer of 0 so ONNX Runtime and TensorRT agree.",
        )
    elif x_type == T.UINT8:
        yield _uint8_finding(where, op)


def _qdq_int32(m: OnnxIndex, n: Any, op: str, where: str) -> Iterator[Finding]:
    """An int32 DequantizeLinear (a quantized bias) does not run in TensorRT."""
    if op == "DequantizeLinear" and m.types.get(n.input[0], 0) == T.INT32:
        yield Finding(
            "error",
            "qdq-int32",
            where,
            op,
            "DequantizeLinear of int32 (a quantized bias, ONNX Runtime's QDQ convention): TensorRT does not "
            "run int32 DQ. Keep biases float in the TensorRT Q/DQ model; TensorRT fuses them itself.",
        )


def _qdq_per_channel(m: OnnxIndex, n: Any, op: str, where: str, size: int | None) -> Iterator[Finding]:
    """Per-channel scales (``size`` > 1) only for weights, along the output-channel axis."""
    if not _is_weight(m, n):
        yield Finding(
            "error",
            "qdq-activation-per-channel",
            where,
            op,
            f"{op} quantizes an activation per channel ({size} scales); TensorRT quantizes activations per "
            "tensor only: use one scale for activations, per-channel scales for weights only.",
        )
    if op == "DequantizeLinear":
        yield from _qdq_axis(m, n, where)


def _qdq_pairing(m: OnnxIndex, n: Any, op: str, where: str) -> Iterator[Finding]:
    """Every Q feeds only DQs (Q/DQ pairs); a DQ that feeds nothing is a leftover."""
    outs = [o for o in n.output if o]
    uses = [(c, k) for o in outs for c, k in m.consumers.get(o, [])]
    if op == "QuantizeLinear":
        bad = sorted({c.op_type for c, _ in uses if c.op_type != "DequantizeLinear"})
        if bad:
            yield Finding(
                "error",
                "qdq-q-without-dq",
                where,
                op,
                f"QuantizeLinear feeds {', '.join(bad)} directly; TensorRT needs every Q followed by a "
                "DequantizeLinear (Q/DQ pairs): insert the DQ before the consumer.",
            )
        elif not uses:
            yield Finding(
                "warning",
                "qdq-q-without-dq",
                where,
                op,
                "QuantizeLinear has no DequantizeLinear after it"
                + (" (its int8 output is a graph output)" if set(outs) & m.graph_outputs else "")
                + ": TensorRT expects Q/DQ pairs; end the graph in float.",
            )
    elif not uses and not set(outs) & m.graph_outputs:
        yield Finding(
            "warning",
            "qdq-dq-unused",
            where,
            op,
            "DequantizeLinear feeds nothing: a leftover of quantization. Remove it (onnxsim or "
            "onnx.utils.extract_model) so the quantized graph is what TensorRT builds.",
        )


def _uint8_finding(where: str, op: str) -> Finding:
    return Finding(
        "error",
        "qdq-uint8",
        where,
        op,
        f"{op} uses a uint8 zero point (asymmetric u8, ONNX Runtime's CPU flavour); TensorRT needs symmetric "
        "int8 with zero point 0. Use the TensorRT Q/DQ ONNX (s8/s8), not the ONNX Runtime one.",
    )


def _qdq_axis(m: OnnxIndex, n: Any, where: str) -> Iterator[Finding]:
    """Per-channel weights must be quantized along the output-channel axis."""
    x = n.input[0]
    src = x if x in m.const else m.producer[x].input[0] if x in m.producer else x
    shape = m.shapes.get(src) or m.shapes.get(x)
    rank = len(shape) if shape else None
    axis = int(node_attr(n, "axis", 1))
    if rank and axis < 0:
        axis += rank
    sev: Severity
    for c, k in _consumers_through(m, n.output[0]):
        if k != 1:
            continue
        if c.op_type == "Conv":
            want, sev = 0, "error"
        elif c.op_type == "ConvTranspose":
            want, sev = 1, "warning"
        elif c.op_type == "Gemm":
            want, sev = (0 if node_attr(c, "transB", 0) else 1), "warning"
        elif c.op_type == "MatMul" and rank:
            want, sev = rank - 1, "warning"
        else:
            continue
        if axis != want:
            yield Finding(
                sev,
                "qdq-axis",
                where,
                n.op_type,
                f"per-channel DequantizeLinear for {c.op_type} weights uses axis {axis}; TensorRT quantizes "
                f"weights per output channel, axis {want} here"
                + (" (K of K×C×R×S)" if c.op_type == "Conv" else "")
                + f": requantize the weights with axis={want}.",
            )


def _consumers_through(m: OnnxIndex, tensor: str) -> Iterator[tuple[Any, int]]:
    for c, k in m.consumers.get(tensor, []):
        if c.op_type in _PASS_THROUGH and k == 0:
            yield from _consumers_through(m, c.output[0])
        else:
            yield c, k


def _from_dq(m: OnnxIndex, tensor: str) -> bool:
    p = m.producer.get(tensor)
    while p is not None and p.op_type in _PASS_THROUGH:
        p = m.producer.get(p.input[0])
    return p is not None and p.op_type == "DequantizeLinear"


def _qdq_half_quantized(m: OnnxIndex) -> Iterator[Finding]:
    for n in m.nodes:
        if n.op_type not in _WEIGHTED or len(n.input) < 2:
            continue
        data, weight = _from_dq(m, n.input[0]), _from_dq(m, n.input[1])
        if data != weight:
            quantized = "weights" if weight else "input"
            other = "input activation" if weight else "weights"
            yield Finding(
                "warning",
                "qdq-half-quantized",
                m.label(n),
                n.op_type,
                f"{n.op_type} has quantized {quantized} but float {other}: TensorRT has no INT8 kernel for "
                "that mix and runs it in float after dequantizing. Quantize both inputs (Q/DQ on the "
                "activation too) or neither.",
            )
