"""The ONNX model indexed once for the TensorRT lint: producers, consumers, constants, element types and
shapes (with onnx's shape inference), plus the finding and summary records the lint returns.

Imports onnx lazily (the ``build`` extra) when a model is indexed; importing this module needs only numpy.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from lsa_edge._lazy import require

from . import _trt_generations as T
from ._trt_generations import dtype_name

log = logging.getLogger(__name__)

Severity = Literal["error", "warning", "info"]
QDQ = ("QuantizeLinear", "DequantizeLinear")
STD_DOMAINS = ("", "ai.onnx")
_RANDOM = (
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Bernoulli",
    "Multinomial",
)


@dataclass(frozen=True)
class Finding:
    """One thing the linter found. ``message`` says what is wrong and what to do about it."""

    severity: Severity
    rule: str  # stable id, e.g. "op-unsupported"
    where: str  # node name, tensor name, or "model"
    op: str  # the node's op_type; "" for tensors and the model
    message: str

    @property
    def location(self) -> str:
        return f"{self.where} ({self.op})" if self.op else self.where

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class TensorSummary:
    name: str
    dtype: str  # "float32", "float16", ...
    shape: tuple[int | str, ...] | None  # ints, symbolic names, "?" for unknown dims; None: unknown rank


@dataclass(frozen=True)
class ModelSummary:
    """What the graph is, independent of the TensorRT generation."""

    opset: int  # default-domain opset; 0 when the model imports none
    ir_version: int
    producer: str
    n_nodes: int  # main graph only
    op_counts: tuple[tuple[str, int], ...]  # main graph, most frequent first
    inputs: tuple[TensorSummary, ...]
    outputs: tuple[TensorSummary, ...]
    n_parameters: int  # elements in initializers
    qdq_nodes: int  # QuantizeLinear + DequantizeLinear
    fp16_tensors: int  # float16 inputs, outputs, initializers and inferred intermediates
    dtypes: tuple[str, ...]  # every element type seen

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["op_counts"] = dict(self.op_counts)
        return d


class OnnxIndex:
    """One model, indexed for the rules (main graph; ``all_nodes`` also walks subgraphs)."""

    def __init__(self, proto: Any) -> None:
        self.onnx = require("onnx", "checking an ONNX model")
        self.proto = proto
        g = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in STD_DOMAINS), 0)
        self.init = {t.name: t for t in g.initializer}
        self.nodes = list(g.node)
        self.functions = {(f.domain, f.name): f for f in proto.functions}
        self.inputs = [i for i in g.input if i.name not in self.init]
        self.outputs = list(g.output)
        self.graph_outputs = {o.name for o in g.output}
        self.io_names = {i.name for i in self.inputs} | self.graph_outputs
        self.producer: dict[str, Any] = {}
        self.consumers: dict[str, list[tuple[Any, int]]] = defaultdict(list)
        for n in self.nodes:
            for o in n.output:
                if o:
                    self.producer[o] = n
            for k, i in enumerate(n.input):
                if i:
                    self.consumers[i].append((n, k))
        self.constant_nodes = {n.output[0]: n for n in self.nodes if n.op_type == "Constant" and n.output}
        self.const = self._constant_tensors()
        self.types, self.shapes = self._types_and_shapes()
        self._values: dict[str, np.ndarray | None] = {}

    # -- naming
    def label(self, node: Any) -> str:
        if node.name:
            return node.name
        return f"{node.op_type} -> {node.output[0]}" if node.output else node.op_type

    # -- every node, including If/Loop/Scan bodies and model-local function bodies
    def all_nodes(self) -> Iterator[Any]:
        def walk(nodes: Iterable[Any]) -> Iterator[Any]:
            for n in nodes:
                yield n
                for a in n.attribute:
                    if a.type == self.onnx.AttributeProto.GRAPH:
                        yield from walk(a.g.node)
                    elif a.type == self.onnx.AttributeProto.GRAPHS:
                        for sub in a.graphs:
                            yield from walk(sub.node)

        yield from walk(self.nodes)
        for f in self.proto.functions:
            yield from walk(f.node)

    def _constant_tensors(self) -> set[str]:
        """Initializers, Constant outputs, and what is computed from them alone (what the parser folds)."""
        const = set(self.init) | set(self.constant_nodes)
        for n in self.nodes:  # ONNX graphs are topologically sorted
            if n.op_type in _RANDOM or any(a.type == self.onnx.AttributeProto.GRAPH for a in n.attribute):
                continue
            ins = [i for i in n.input if i]
            if ins and all(i in const for i in ins):
                const.update(o for o in n.output if o)
        return const

    def _types_and_shapes(self) -> tuple[dict[str, int], dict[str, tuple[int | str, ...] | None]]:
        onnx = self.onnx
        proto = self.proto
        try:  # value_info for intermediates; fails on >2 GB protos or broken graphs, which is fine
            proto = onnx.shape_inference.infer_shapes(self.proto)
        except Exception as err:
            log.debug("shape inference failed (%s); intermediate types unknown", err)
        types: dict[str, int] = {}
        shapes: dict[str, tuple[int | str, ...] | None] = {}
        g = proto.graph
        for vi in [*g.value_info, *g.input, *g.output]:
            tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
            if tt is None:
                continue
            if tt.elem_type:
                types[vi.name] = tt.elem_type
            shapes[vi.name] = tensor_dims(tt)
        for t in self.proto.graph.initializer:
            types[t.name] = t.data_type
            shapes[t.name] = tuple(int(d) for d in t.dims)
        for name, n in self.constant_nodes.items():
            for a in n.attribute:
                if a.name == "value":
                    types[name] = a.t.data_type
                    shapes[name] = tuple(int(d) for d in a.t.dims)
                elif a.name in ("value_int", "value_ints"):
                    types[name] = T.INT64
                elif a.name in ("value_float", "value_floats"):
                    types[name] = T.FLOAT
        for n in self.nodes:  # a Cast's type even where inference gave up
            if n.op_type == "Cast" and n.output:
                to = node_attr(n, "to")
                if to:
                    types[n.output[0]] = int(to)
        return types, shapes

    def value(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant output; None for anything else or unreadable data."""
        if name not in self._values:
            self._values[name] = self._read_value(name)
        return self._values[name]

    def _read_value(self, name: str) -> np.ndarray | None:
        nh = self.onnx.numpy_helper
        try:
            if name in self.init:
                return nh.to_array(self.init[name])
            n = self.constant_nodes.get(name)
            if n is None:
                return None
            for a in n.attribute:
                if a.name == "value":
                    return nh.to_array(a.t)
                if a.name == "value_int":
                    return np.asarray(a.i, dtype=np.int64)
                if a.name == "value_ints":
                    return np.asarray(list(a.ints), dtype=np.int64)
                if a.name == "value_float":
                    return np.asarray(a.f, dtype=np.float32)
                if a.name == "value_floats":
                    return np.asarray(list(a.floats), dtype=np.float32)
        except Exception as err:  # external data not loaded, an exotic type numpy cannot hold
            log.debug("cannot read %s: %s", name, err)
        return None

    def constant_tensors(self) -> Iterator[tuple[str, int]]:
        """(name, dtype) of every initializer and Constant output."""
        for t in self.proto.graph.initializer:
            yield t.name, t.data_type
        for name in self.constant_nodes:
            if name not in self.init:
                yield name, self.types.get(name, 0)

    def summary(self) -> ModelSummary:
        g = self.proto.graph
        counts = Counter(n.op_type for n in self.nodes)
        return ModelSummary(
            opset=self.opset,
            ir_version=int(self.proto.ir_version),
            producer=" ".join(p for p in (self.proto.producer_name, self.proto.producer_version) if p),
            n_nodes=len(self.nodes),
            op_counts=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            inputs=tuple(self._tensor_summary(i) for i in self.inputs),
            outputs=tuple(self._tensor_summary(o) for o in self.outputs),
            n_parameters=int(sum(int(np.prod(t.dims)) if t.dims else 1 for t in g.initializer)),
            qdq_nodes=sum(counts[q] for q in QDQ),
            fp16_tensors=sum(t == T.FLOAT16 for t in self.types.values()),
            dtypes=tuple(sorted({dtype_name(t) for t in self.types.values() if t})),
        )

    def _tensor_summary(self, vi: Any) -> TensorSummary:
        tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
        if tt is None:
            return TensorSummary(vi.name, vi.type.WhichOneof("value") or "?", None)
        return TensorSummary(vi.name, dtype_name(tt.elem_type), tensor_dims(tt))


def tensor_dims(tt: Any) -> tuple[int | str, ...] | None:
    if not tt.HasField("shape"):
        return None
    out: list[int | str] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        else:
            out.append(d.dim_param or "?")
    return tuple(out)


def node_attr(node: Any, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            if a.type == 1:  # FLOAT
                return a.f
            if a.type == 2:  # INT
                return a.i
            if a.type == 3:  # STRING
                return a.s.decode("utf-8", "replace")
            if a.type == 6:  # FLOATS
                return list(a.floats)
            if a.type == 7:  # INTS
                return list(a.ints)
            return a
    return default


def name_list(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
