"""FP32 ONNX → FP16 ONNX for strongly typed TensorRT (11) and for measuring FP16 numerics on a CPU.

TensorRT ≤ 10 takes the FP32 ONNX and a builder flag; TensorRT 11 builds exactly the types in the graph,
so FP16 has to be baked into the ONNX. Numerically sensitive ops stay FP32 — softmax, the normalisations
(LayerNorm and the reductions/divisions around it), exp/log/pow/sqrt and the final sigmoid — with casts
around them; inputs and outputs stay FP32 so every backend is fed and read the same way.

Uses ONNX Runtime's converter (onnxruntime.transformers.float16; no extra package). Imports lazily.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lsa_edge._fileio import atomic_path
from lsa_edge._lazy import require

log = logging.getLogger(__name__)

# Ops kept in FP32: accumulations over many values, exponentials, and the probability output.
FP32_OPS = (
    "Softmax",
    "LogSoftmax",
    "Sigmoid",
    "LayerNormalization",
    "GroupNormalization",
    "InstanceNormalization",
    "BatchNormalization",
    "ReduceMean",
    "ReduceSum",
    "ReduceSumSquare",
    "ReduceL2",
    "Div",
    "Pow",
    "Sqrt",
    "Reciprocal",
    "Exp",
    "Log",
    "Softplus",
)


def convert_fp16(
    onnx_path: str | Path, out_path: str | Path, keep_fp32_ops: tuple[str, ...] = FP32_OPS
) -> Path:
    """Write an FP16 copy of ``onnx_path`` (FP32 inputs/outputs, ``keep_fp32_ops`` in FP32)."""
    onnx = require("onnx", "FP16 conversion")
    f16 = require("onnxruntime.transformers.float16", "FP16 conversion")
    model = onnx.load(str(onnx_path))
    block = sorted(set(f16.DEFAULT_OP_BLOCK_LIST) | set(keep_fp32_ops))
    converted = f16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block)
    # The converter appends its input casts at the end of the node list; ONNX wants topological order.
    require("onnxruntime.transformers.onnx_model", "FP16 conversion").OnnxModel(converted).topological_sort()
    del converted.metadata_props[:]
    converted.metadata_props.extend(model.metadata_props)  # the model card travels along
    onnx.checker.check_model(converted)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        onnx.save(converted, str(tmp))
    fp16_nodes = sum(1 for n in converted.graph.node if n.op_type not in block and n.op_type != "Cast")
    log.info(
        "wrote %s: FP16 except %s",
        out_path,
        ", ".join(sorted({n.op_type for n in model.graph.node} & set(block))),
    )
    log.debug("%d nodes in FP16", fp16_nodes)
    return out_path
