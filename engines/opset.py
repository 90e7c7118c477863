"""An opset-17 graph rewritten as opset 16, for TensorRT 8.5 (JetPack 5: Xavier NX, AGX Xavier, Orin).

TensorRT 8.5's ONNX parser has no LayerNormalization (ONNX added it in opset 17; TensorRT 8.6 parses it),
so a bundle meant for every Jetson carries a second graph: each LayerNormalization replaced by the
primitives torch itself writes at opset 16 — ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add —
computing the same function (float rounding aside), and the opset lowered to 16. Every other node must mean
the same at 16 as at 17 (the same operator schema version); otherwise the rewrite refuses, naming the op.
Works on any lsa-edge graph (FP32 or Q/DQ): the normalisation stays in float in both.

Needs onnx (the build extra); imported lazily.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from lsa_edge._fileio import atomic_path
from lsa_edge._lazy import require
from lsa_edge.errors import LsaEdgeError

log = logging.getLogger(__name__)

TARGET_OPSET = 16


def _default_opset(model: Any) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 0


def needs_lowering(path: str | Path) -> bool:
    """Whether the graph at ``path`` uses opset > 16 (TensorRT 8.5 needs the rewrite)."""
    onnx = require("onnx", "checking an ONNX opset")
    return _default_opset(onnx.load(str(path), load_external_data=False)) > TARGET_OPSET


def _value_types(model: Any) -> dict[str, tuple[int, int | None]]:
    """Every tensor's (element type, rank or None) after shape inference, inferred once for the graph."""
    onnx = require("onnx")
    g = onnx.shape_inference.infer_shapes(model).graph
    out: dict[str, tuple[int, int | None]] = {}
    for vi in (*g.value_info, *g.input, *g.output):
        t = vi.type.tensor_type
        out[vi.name] = (int(t.elem_type), len(t.shape.dim) if t.HasField("shape") else None)
    for init in g.initializer:
        out.setdefault(init.name, (int(init.data_type), len(init.dims)))
    return out


def _layer_norm_nodes(
    node: Any, index: int, types: dict[str, tuple[int, int | None]]
) -> tuple[list[Any], list[Any]]:
    """The primitives of one LayerNormalization node (as torch writes them at opset 16), and the
    initializers they add. Computes in the input's type, which must be float32 (``stash_type`` 1: the
    statistics in float32 — what every lsa-edge graph that still has LayerNormalization feeds it)."""
    onnx = require("onnx")
    from onnx import helper, numpy_helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    axis = int(attrs.get("axis", -1))
    eps = float(attrs.get("epsilon", 1e-5))
    if len(node.output) > 1 and any(node.output[1:]):
        raise LsaEdgeError(
            f"LayerNormalization {node.name!r} also outputs its mean/inverse std; the opset-16 rewrite "
            "supports the normalised output only"
        )
    x, scale = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    elem, rank = types.get(x, (int(onnx.TensorProto.FLOAT), None))
    if elem != onnx.TensorProto.FLOAT:
        raise LsaEdgeError(
            f"LayerNormalization {node.name!r} takes {onnx.TensorProto.DataType.Name(elem)}; the opset-16 "
            "rewrite handles float32 inputs (rewrite before converting to FP16)"
        )
    if axis < 0:
        axes = list(range(axis, 0))
    elif rank is None:
        raise LsaEdgeError(
            f"LayerNormalization {node.name!r} normalises from axis {axis} of an input of unknown rank"
        )
    else:
        axes = list(range(axis, rank))
    p = f"{node.name or 'LayerNormalization'}_{index}/opset16"  # the index keeps equal names apart
    eps_name, two_name = f"{p}/epsilon", f"{p}/two"
    inits = [
        numpy_helper.from_array(np.asarray(eps, dtype=np.float32), eps_name),
        numpy_helper.from_array(np.asarray(2.0, dtype=np.float32), two_name),
    ]
    n = helper.make_node
    nodes = [
        n("ReduceMean", [x], [f"{p}/mean"], name=f"{p}/ReduceMean", axes=axes, keepdims=1),
        n("Sub", [x, f"{p}/mean"], [f"{p}/centred"], name=f"{p}/Sub"),
        n("Pow", [f"{p}/centred", two_name], [f"{p}/squared"], name=f"{p}/Pow"),
        n("ReduceMean", [f"{p}/squared"], [f"{p}/var"], name=f"{p}/ReduceMeanVar", axes=axes, keepdims=1),
        n("Add", [f"{p}/var", eps_name], [f"{p}/var_eps"], name=f"{p}/AddEpsilon"),
        n("Sqrt", [f"{p}/var_eps"], [f"{p}/std"], name=f"{p}/Sqrt"),
        n("Div", [f"{p}/centred", f"{p}/std"], [f"{p}/normed"], name=f"{p}/Div"),
    ]
    scaled = node.output[0] if bias is None else f"{p}/scaled"
    nodes.append(n("Mul", [f"{p}/normed", scale], [scaled], name=f"{p}/Scale"))
    if bias is not None:
        nodes.append(n("Add", [scaled, bias], [node.output[0]], name=f"{p}/Bias"))
    return nodes, inits


def lower_to_opset16(src: str | Path, dst: str | Path) -> Path:
    """Write ``src`` (opset ≥ 16) as an opset-16 graph at ``dst``; metadata (the model card) is kept.

    Raises :class:`LsaEdgeError` naming any op whose opset-17 meaning differs from opset 16's.
    """
    onnx = require("onnx", "writing the opset-16 graph for TensorRT 8.5")
    model = onnx.load(str(src))
    opset = _default_opset(model)
    if opset < TARGET_OPSET:
        raise LsaEdgeError(f"{src} is opset {opset}; the rewrite goes from 17+ down to {TARGET_OPSET}")
    changed: list[str] = []
    nodes: list[Any] = []
    added: list[Any] = []
    types = _value_types(model) if any(n.op_type == "LayerNormalization" for n in model.graph.node) else {}
    for i, node in enumerate(model.graph.node):
        if node.domain in ("", "ai.onnx") and node.op_type == "LayerNormalization":
            new, inits = _layer_norm_nodes(node, i, types)
            nodes += new
            added += inits
            changed.append(node.name)
            continue
        if node.domain in ("", "ai.onnx"):
            at_src = onnx.defs.get_schema(node.op_type, opset, "").since_version
            try:
                at_16 = onnx.defs.get_schema(node.op_type, TARGET_OPSET, "").since_version
            except onnx.defs.SchemaError:
                at_16 = None
            if at_src != at_16:
                raise LsaEdgeError(
                    f"{node.op_type} (node {node.name!r}) changed after opset {TARGET_OPSET} (version "
                    f"{at_src}); it cannot be written as opset {TARGET_OPSET} for TensorRT 8.5. Export from "
                    "the checkpoint with: lsa-edge build CHECKPOINT --trt 8.5"
                )
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(added)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = TARGET_OPSET
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise LsaEdgeError(
            f"the opset-16 rewrite of {Path(src).name} is not a valid ONNX model: {err}"
        ) from err
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    log.info(
        "wrote %s: opset %d → %d, %d LayerNormalization node(s) decomposed",
        dst.name,
        opset,
        TARGET_OPSET,
        len(changed),
    )
    return dst
