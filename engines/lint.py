"""A static TensorRT-compatibility lint of an ONNX model, on any CPU, for TensorRT 8.5, 10 and 11.

It answers "will the device's ONNX parser take this graph, and build what we expect?" before a device is
involved: operators and attribute values the generation's parser lacks, opsets out of its range, dynamic
dimensions that a batch-only optimisation profile cannot cover, INT64/DOUBLE data, Q/DQ placement that
TensorRT's explicit quantization rejects or silently runs in float, and what strong typing (TensorRT 11)
means for the graph's precision. The per-generation facts and their sources live in ``_trt_generations``.

Imports onnx lazily (the ``build`` extra); never imports tensorrt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsa_edge._lazy import require
from lsa_edge.errors import ConfigError, unknown_choice

from . import _trt_generations as T
from ._lint_qdq import rule_qdq
from ._onnx_index import (
    QDQ,
    STD_DOMAINS,
    Finding,
    ModelSummary,
    OnnxIndex,
    Severity,
    TensorSummary,
    name_list,
    node_attr,
    tensor_dims,
)
from ._trt_generations import GENERATIONS, Generation, dtype_name

__all__ = [
    "TRT_GENERATIONS",
    "Finding",
    "LintReport",
    "ModelSummary",
    "TensorSummary",
    "lint_onnx",
    "lint_report",
    "load_onnx",
    "summarize",
]

TRT_GENERATIONS: tuple[str, ...] = tuple(GENERATIONS)  # ("8.5", "10", "11")
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class LintReport:
    trt: str  # "8.5" | "10" | "11"
    baseline: str  # the release the rules describe, e.g. "10.3 (JetPack 6.1/6.2)"
    findings: tuple[Finding, ...]  # errors first, then warnings, then info
    summary: ModelSummary

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def failed(self, strict: bool = False) -> bool:
        """True with any error (or, when ``strict``, any warning)."""
        return self.errors > 0 or (strict and self.warnings > 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trt": self.trt,
            "baseline": self.baseline,
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [f.to_dict() for f in self.findings],
            "summary": self.summary.to_dict(),
        }


def lint_onnx(path_or_proto: str | Path | Any, trt: str = "10") -> list[Finding]:
    """Findings for building ``path_or_proto`` (a path or an ``onnx.ModelProto``) with TensorRT ``trt``."""
    return list(lint_report(path_or_proto, trt).findings)


def lint_report(path_or_proto: str | Path | Any, trt: str = "10") -> LintReport:
    """Findings and the model summary. ``trt``: "8.5", "10" or "11"."""
    gen = generation(trt)
    m = OnnxIndex(load_onnx(path_or_proto))
    found: list[Finding] = []
    for rule in _RULES:
        found.extend(rule(m, gen))
    found = _merge_repeats(found)
    found.sort(key=lambda f: _SEVERITY_ORDER[f.severity])  # stable: rule order within a severity
    return LintReport(gen.key, gen.baseline, tuple(found), m.summary())


def _merge_repeats(found: list[Finding]) -> list[Finding]:
    """One finding per identical (severity, rule, op, message): a Q/DQ graph from the wrong quantizer
    would otherwise list the same problem a hundred times."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for f in found:
        groups.setdefault((f.severity, f.rule, f.op, f.message), []).append(f.where)
    out = []
    for (severity, rule, op, message), where in groups.items():
        label = where[0] if len(where) == 1 else f"{name_list(where, 2)} ({len(where)} nodes)"
        out.append(Finding(severity, rule, label, op, message))  # type: ignore[arg-type]
    return out


def summarize(path_or_proto: str | Path | Any) -> ModelSummary:
    return OnnxIndex(load_onnx(path_or_proto)).summary()


def generation(trt: str) -> Generation:
    """The rules for ``trt``: a generation key ("8.5", "10", "11") or a full version such as "10.3.0.30"
    (what ``tensorrt.__version__`` says on the device)."""
    key = str(trt).strip()
    if key in GENERATIONS:
        return GENERATIONS[key]
    from packaging.version import InvalidVersion, Version

    try:
        release = Version(key[:-2] if key.endswith(".x") else key).release
    except InvalidVersion:
        release = ()
    if release[:2] == (8, 5):
        return GENERATIONS["8.5"]
    if release and str(release[0]) in GENERATIONS:
        return GENERATIONS[str(release[0])]
    raise ConfigError(
        unknown_choice("TensorRT generation", trt, GENERATIONS)
        + " (a full version such as 10.3.0 works too; 8.6 and 9.x have no rule set)"
    )


def load_onnx(path_or_proto: str | Path | Any) -> Any:
    """An ``onnx.ModelProto`` from a path (weights included) or the proto itself.

    Raises :class:`ConfigError` for a missing file or one that is not an ONNX model.
    """
    onnx = require("onnx", "checking an ONNX model")
    if isinstance(path_or_proto, onnx.ModelProto):
        return path_or_proto
    path = Path(path_or_proto)
    if not path.is_file():
        raise ConfigError(f"{path}: no such ONNX file")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # protobuf's DecodeError, a truncated file, missing external data
        raise ConfigError(f"{path} is not a readable ONNX model ({type(err).__name__}: {err})") from err
    if not proto.graph.node and not proto.graph.input and not proto.opset_import:
        raise ConfigError(f"{path} is not an ONNX model (no graph, inputs or opset after decoding)")
    return proto


def _trt(gen: Generation) -> str:
    return f"TensorRT {gen.baseline}"


# --------------------------------------------------------------------------------------------------------
# Rules: each takes the indexed model and a generation and yields findings


def _rule_opset(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    o = m.opset
    rng = f"{gen.opset_min}–{gen.opset_max}"
    if o == 0:
        yield Finding(
            "error",
            "opset",
            "model",
            "",
            "the model imports no default-domain (ai.onnx) opset; re-export it with an explicit opset_version "
            f"in {rng}.",
        )
    elif o < gen.opset_min:
        yield Finding(
            "error",
            "opset",
            "model",
            "",
            f"opset {o} is below {_trt(gen)}'s parser range {rng}: re-export with opset_version {gen.opset_max} "
            f"(or convert with onnx.version_converter.convert_version(model, {gen.opset_max})).",
        )
    elif o > gen.opset_max_latest:
        yield Finding(
            "error",
            "opset",
            "model",
            "",
            f"opset {o} is above what any TensorRT {gen.key} parser accepts (up to {gen.opset_max_latest}; "
            f"{gen.baseline}: {rng}): operators whose semantics changed in newer opsets would be misread. "
            f"Re-export with opset_version {gen.opset_max}.",
        )
    elif o > gen.opset_max:
        yield Finding(
            "warning",
            "opset",
            "model",
            "",
            f"opset {o} is above {_trt(gen)}'s range {rng} (later {gen.key}.x releases accept up to "
            f"{gen.opset_max_latest}): re-export with opset_version {gen.opset_max} to build on {gen.baseline}.",
        )


def _rule_operators(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """Operators the parser has no importer for, grouped by op type."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for n in m.all_nodes():
        groups[(n.domain or "", n.op_type)].append(m.label(n))
    for (domain, op), where in groups.items():
        first = name_list(where, 2)
        count = f" ({len(where)} nodes)" if len(where) > 1 else ""
        if (domain, op) in m.functions:
            if gen.key == "8.5":  # [CHANGES] 9.0 "Added support for ONNX local functions"
                yield Finding(
                    "error",
                    "op-unsupported",
                    first,
                    op,
                    f"{op} is a model-local function{count}; TensorRT 8.5's parser has no local-function "
                    "support (9.0 added it): inline it with onnx.inliner.inline_local_functions(model).",
                )
            continue
        if domain in STD_DOMAINS:
            if op in gen.ops:
                continue
            if op in gen.later_ops:
                yield Finding(
                    "warning",
                    "op-newer-release",
                    first,
                    op,
                    f"{op}{count} is supported from TensorRT {gen.later_ops[op]}, not by {gen.baseline}: build "
                    f"with TensorRT >= {gen.later_ops[op]}, or re-export {op} as basic operators.",
                )
                continue
            yield Finding(
                "error",
                "op-unsupported",
                first,
                op,
                f"{op}{count} is not in {_trt(gen)}'s ONNX operator table: the parser would look for a plugin "
                f"named {op!r} and fail. {_op_hint(op, gen)}",
            )
        elif domain in ("ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc"):
            what = "an ONNX-ML operator" if domain == "ai.onnx.ml" else "an ONNX Runtime contrib operator"
            yield Finding(
                "error",
                "op-domain",
                first,
                op,
                f"{op}{count} is {what} (domain {domain!r}); TensorRT cannot run it. Export the model without "
                "ONNX Runtime graph optimisation or quantization (use the TensorRT Q/DQ flavour), so only "
                "standard ai.onnx operators remain.",
            )
        elif op in gen.removed_plugins:
            yield Finding(
                "error",
                "op-plugin-removed",
                first,
                op,
                f"{op}{count} maps to TensorRT's {gen.removed_plugins[op]!r} plugin, which TensorRT 11.0 "
                "removed: replace it by standard ONNX operators (or ship your own plugin).",
            )
        else:
            yield Finding(
                "warning",
                "op-plugin",
                first,
                op,
                f"{op}{count} is in custom domain {domain!r}: the parser imports it only as a TensorRT plugin "
                f"registered under the name {op!r}. Load that plugin library on the device (trtexec "
                "--staticPlugins) or replace the node by standard operators.",
            )


def _op_hint(op: str, gen: Generation) -> str:
    if op == "LayerNormalization" and gen.key == "8.5":  # [CHANGES] 8.6 added it
        return (
            "TensorRT 8.6 added it; for 8.5 (JetPack 5) re-export with opset_version 16 so torch decomposes "
            "LayerNorm into ReduceMean/Sub/Pow/Sqrt/Div, or build on TensorRT >= 8.6."
        )
    if op in ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"):
        return "TensorRT takes quantized models only as QuantizeLinear/DequantizeLinear (Q/DQ) pairs."
    if op in T.OPS_10_15 and gen.key == "8.5":
        return "TensorRT 10 supports it; for 8.5 replace it by basic operators or build on a newer release."
    return "Replace it by supported operators, or write and register a TensorRT plugin for it."


def _rule_attributes(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """Attribute values a supported operator does not accept ("Restrictions" column of operators.md)."""
    for n in m.all_nodes():
        if n.domain not in STD_DOMAINS:
            continue
        op, where = n.op_type, m.label(n)
        if op in ("Resize", "Upsample"):
            yield from _resize(n, where, gen)
        elif op == "Pad":
            mode = node_attr(n, "mode", "constant")
            if mode not in gen.pad_modes:
                later = " (TensorRT 10.0 added it)" if mode == "wrap" else ""
                yield Finding(
                    "error",
                    "attr-unsupported",
                    where,
                    op,
                    f"Pad mode {mode!r} is not supported by {_trt(gen)}{later}; supported: "
                    f"{', '.join(sorted(gen.pad_modes))}. Use one of those padding modes.",
                )
        elif op in ("MaxPool", "AveragePool", "LpPool"):
            yield from _pool(m, n, where, gen)
        elif op == "TopK" and gen.key != "8.5" and node_attr(n, "sorted", 1) == 0:
            yield Finding(
                "error",
                "attr-unsupported",
                where,
                op,
                f'TopK with sorted=0 is not supported by {_trt(gen)} ("`sorted` must be 1"): export TopK sorted.',
            )
        elif op == "Einsum" and not gen.einsum_ellipsis and _einsum_needs_more(node_attr(n, "equation", "")):
            eq = node_attr(n, "equation", "")
            sev: Severity = "warning" if gen.einsum_ellipsis_later else "error"
            yield Finding(
                sev,
                "attr-unsupported",
                where,
                op,
                f"Einsum {eq!r} uses an ellipsis or a diagonal (repeated index), which {_trt(gen)} does not "
                "support"
                + (f" (TensorRT {gen.einsum_ellipsis_later} does)" if gen.einsum_ellipsis_later else "")
                + ": rewrite it with explicit indices, or as MatMul/Transpose/Reshape.",
            )


def _resize(n: Any, where: str, gen: Generation) -> Iterator[Finding]:
    op = n.op_type
    checks = (
        ("mode", node_attr(n, "mode", "nearest"), T.RESIZE_MODES),
        (
            "coordinate_transformation_mode",
            node_attr(n, "coordinate_transformation_mode", "half_pixel"),
            T.RESIZE_COORD_MODES,
        ),
        ("nearest_mode", node_attr(n, "nearest_mode", "round_prefer_floor"), T.RESIZE_NEAREST_MODES),
    )
    for name, value, allowed in checks:
        if name == "coordinate_transformation_mode" and op == "Upsample":
            continue  # Upsample has no coordinate_transformation_mode
        if value not in allowed:
            yield Finding(
                "error",
                "attr-unsupported",
                where,
                op,
                f"{op} {name}={value!r} is not supported by {_trt(gen)}; supported: "
                f"{', '.join(sorted(allowed))}. For images use mode 'linear' (bilinear) or 'nearest' with "
                "half_pixel / pytorch_half_pixel / align_corners.",
            )
    if node_attr(n, "antialias", 0):
        yield Finding(
            "error",
            "attr-unsupported",
            where,
            op,
            f'{op} antialias=1 is not supported by TensorRT ("Antialiasing is not supported"): resize without '
            "antialiasing in the model, or resize images before the network.",
        )
    policy = node_attr(n, "keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        yield Finding(
            "error",
            "attr-unsupported",
            where,
            op,
            f"{op} keep_aspect_ratio_policy={policy!r} is not supported (only 'stretch'): give explicit sizes.",
        )


def _pool(m: OnnxIndex, n: Any, where: str, gen: Generation) -> Iterator[Finding]:
    op = n.op_type
    kernel = node_attr(n, "kernel_shape", [])
    if kernel and len(kernel) not in (2, 3):
        yield Finding(
            "error",
            "attr-unsupported",
            where,
            op,
            f'{len(kernel)}-D {op} is not supported ("2D or 3D pooling only"): reshape to a 2-D pool '
            "(N×C×1×L) around it.",
        )
    dil = node_attr(n, "dilations", [])
    if dil and any(d != 1 for d in dil):
        yield Finding(
            "error",
            "attr-unsupported",
            where,
            op,
            f'{op} dilations={dil} are not supported ("dilations must be empty or all ones"): remove the '
            "dilation from the pooling layer.",
        )
    if op == "MaxPool" and len(n.output) > 1 and n.output[1]:
        idx = n.output[1]
        if m.consumers.get(idx) or idx in m.graph_outputs:
            yield Finding(
                "error",
                "attr-unsupported",
                where,
                op,
                "MaxPool's Indices output is used, which TensorRT does not support (\"Indices output tensor "
                'unsupported"): drop return_indices / MaxUnpool from the exported model.',
            )


def _einsum_needs_more(eq: str) -> bool:
    if "..." in eq:
        return True
    lhs = eq.split("->")[0]
    return any(len(set(term)) != len(term) for term in lhs.replace(" ", "").split(","))


def _rule_constant_inputs(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """Inputs the parser needs at build time ("must be an initializer")."""
    wanted = defaultdict(list)
    for ci in gen.const_inputs:
        wanted[ci.op].append(ci)
    for n in m.nodes:
        for ci in wanted.get(n.op_type, ()):
            if len(n.input) <= ci.index or not n.input[ci.index]:
                continue
            name = n.input[ci.index]
            if name in m.const:
                continue
            relaxed = f" (TensorRT {ci.relaxed_in} accepts a runtime tensor)" if ci.relaxed_in else ""
            yield Finding(
                "warning" if ci.relaxed_in else "error",
                "input-not-constant",
                m.label(n),
                n.op_type,
                f"{n.op_type} input {ci.what!r} ({name}) is computed at run time, but {_trt(gen)} needs it as "
                f"an initializer{relaxed}: fold it to a constant (onnxsim, or polygraphy surgeon sanitize "
                "--fold-constants), e.g. by exporting with static non-batch shapes.",
            )


def _rule_dynamic_dims(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """Only the batch axis is dynamic in the build's optimisation profile."""
    for vi in m.inputs:
        if not vi.type.HasField("tensor_type"):
            kind = vi.type.WhichOneof("value") or "unknown"
            yield Finding(
                "error",
                "input-type",
                vi.name,
                "",
                f"input {vi.name} is a {kind}, not a tensor: TensorRT takes tensor inputs only.",
            )
            continue
        dims = tensor_dims(vi.type.tensor_type)
        if dims is None:
            yield Finding(
                "error",
                "dynamic-dim",
                vi.name,
                "",
                f"input {vi.name} has no shape (unknown rank): export it with a fixed shape and only axis 0 "
                "(batch) dynamic.",
            )
            continue
        bad = [f"axis {k}={d!r}" for k, d in enumerate(dims) if k > 0 and not isinstance(d, int)]
        if bad:
            yield Finding(
                "error",
                "dynamic-dim",
                vi.name,
                "",
                f"input {vi.name} {list(dims)} has dynamic non-batch dimensions ({', '.join(bad)}); the engine's "
                "optimisation profile varies the batch axis only: export with fixed C/H/W (dynamic_axes only "
                "{0: 'batch'}).",
            )
        if dims and isinstance(dims[0], int):
            yield Finding(
                "info",
                "static-batch",
                vi.name,
                "",
                f"input {vi.name} has a fixed batch of {dims[0]}: the engine will accept exactly that many faces "
                "per call. Export with a dynamic axis 0 for per-face batching.",
            )
    for vi in m.outputs:
        if not vi.type.HasField("tensor_type"):
            continue
        dims = tensor_dims(vi.type.tensor_type)
        bad = [f"axis {k}={d!r}" for k, d in enumerate(dims or ()) if k > 0 and not isinstance(d, int)]
        if bad:
            yield Finding(
                "warning",
                "dynamic-output-dim",
                vi.name,
                "",
                f"output {vi.name} has symbolic non-batch dimensions ({', '.join(bad)}): the runtime cannot "
                "size its buffer before inference. Check the export (a data-dependent shape, e.g. NonZero) "
                "or give the output a fixed shape.",
            )


def _rule_int64(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """TensorRT 8.5 casts INT64 down to INT32, clamping ([OPS-8.5]); 9.0+ runs INT64 natively."""
    if gen.int64_native:
        return
    fit: list[str] = []
    clamped_ok: list[str] = []
    for name, dtype in m.constant_tensors():
        if dtype != T.INT64:
            continue
        v = m.value(name)
        if v is None or v.size == 0 or (v.min() >= _INT32_MIN and v.max() <= _INT32_MAX):
            fit.append(name)
            continue
        uses = m.consumers.get(name, [])
        if uses and all(n.op_type == "Slice" and k in (1, 2) for n, k in uses):
            clamped_ok.append(name)  # INT64_MAX "to the end" means the same after clamping to INT32_MAX
            continue
        ops = sorted({n.op_type for n, _ in uses}) or ["nothing"]
        yield Finding(
            "error",
            "int64-out-of-range",
            name,
            "",
            f"INT64 constant {name} holds values outside INT32 ({int(v.min())}..{int(v.max())}); TensorRT 8.5 "
            f"casts INT64 to INT32 and clamps them, changing what {'/'.join(ops)} computes. Keep the values "
            "within ±2^31 (or store them as int32), or build on TensorRT >= 9.",
        )
    if clamped_ok:
        yield Finding(
            "info",
            "int64-clamped",
            name_list(clamped_ok),
            "",
            f"{len(clamped_ok)} Slice bound(s) use INT64 extremes ('to the end'); TensorRT 8.5 clamps them to "
            "INT32, which slices the same. Nothing to do.",
        )
    if fit:
        yield Finding(
            "info",
            "int64-cast-down",
            name_list(fit),
            "",
            f"{len(fit)} INT64 constant(s) (shape arithmetic, indices) are cast to INT32 by TensorRT 8.5; their "
            "values fit. Nothing to do.",
        )
    for vi in [*m.inputs, *m.outputs]:
        if m.types.get(vi.name) == T.INT64:
            yield Finding(
                "warning",
                "int64-io",
                vi.name,
                "",
                f"{vi.name} is INT64: TensorRT 8.5 binds it as INT32, so the host must pass int32 data (9.0 made "
                "INT64 bindings native). Export it as int32 to keep one contract on every generation.",
            )
    for n in m.nodes:
        if n.op_type == "Cast" and node_attr(n, "to") == T.INT64:
            yield Finding(
                "warning",
                "cast-int64",
                m.label(n),
                n.op_type,
                "Cast to INT64 runs as a cast to INT32 on TensorRT 8.5 (no INT64 type): values beyond ±2^31 "
                "overflow. Cast to int32 in the model if that is what is meant.",
            )


def _rule_double(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """DOUBLE is cast down to FLOAT with clamping ([OPS-8.5], [OPS-10]); it cannot be bound as I/O."""
    weights = [name for name, dtype in m.constant_tensors() if dtype == T.DOUBLE]
    if weights:
        yield Finding(
            "warning",
            "double",
            name_list(weights),
            "",
            f"{len(weights)} DOUBLE constant(s): TensorRT casts them to FLOAT, clamping to ±FLT_MAX and losing "
            "precision. Store them as float32 (model.float() / .astype(np.float32) before export).",
        )
    for vi in [*m.inputs, *m.outputs]:
        if m.types.get(vi.name) == T.DOUBLE:
            yield Finding(
                "error",
                "double",
                vi.name,
                "",
                f"{vi.name} is DOUBLE (float64): TensorRT has no FP64 bindings. Export the network's inputs "
                "and outputs as float32 (or float16).",
            )
    for n in m.nodes:
        if n.op_type == "Cast" and node_attr(n, "to") == T.DOUBLE:
            yield Finding(
                "warning",
                "cast-double",
                m.label(n),
                n.op_type,
                "Cast to DOUBLE: TensorRT computes it in FLOAT (no FP64 kernels), so results differ from ONNX "
                "Runtime. Remove the float64 round-trip from the model (usually a torch .double() or numpy "
                "default dtype at export).",
            )


def _rule_dtypes(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """Element types the generation has no DataType for."""
    qdq_io = {t for n in m.nodes if n.op_type in QDQ for t in (*n.input, *n.output)}
    never: dict[int, list[str]] = defaultdict(list)
    missing: dict[int, list[str]] = defaultdict(list)
    later: dict[int, list[str]] = defaultdict(list)
    uint8_mid: list[str] = []
    for name, dtype in m.types.items():
        if dtype in T.NATIVE_TYPES or dtype in (T.INT64, T.DOUBLE, 0):
            continue
        if dtype == T.UINT8:
            if name not in m.io_names and name not in qdq_io:
                uint8_mid.append(name)
        elif dtype in T.NEVER_TYPES:
            never[dtype].append(name)
        elif dtype in gen.later_types:
            later[dtype].append(name)
        elif dtype not in gen.low_precision_types:
            missing[dtype].append(name)
    for dtype, names in never.items():
        yield Finding(
            "error",
            "dtype-unsupported",
            name_list(names),
            "",
            f"{len(names)} tensor(s) of type {dtype_name(dtype)}: TensorRT has no such type. Cast to a "
            "supported one (float32/float16/int32/int8/bool) in the model.",
        )
    for dtype, names in missing.items():
        yield Finding(
            "error",
            "dtype-unsupported",
            name_list(names),
            "",
            f"{len(names)} tensor(s) of type {dtype_name(dtype)}, which {_trt(gen)} does not support "
            "(BF16/FP8 arrived in 9.0, INT4 in 10.0): use a float32/float16 graph for this generation.",
        )
    for dtype, names in later.items():
        yield Finding(
            "warning",
            "dtype-newer-release",
            name_list(names),
            "",
            f"{len(names)} tensor(s) of type {dtype_name(dtype)}, supported from TensorRT "
            f"{gen.later_types[dtype]}, not by {gen.baseline}.",
        )
    if uint8_mid:
        yield Finding(
            "warning",
            "dtype-unsupported",
            name_list(uint8_mid),
            "",
            f"{len(uint8_mid)} intermediate uint8 tensor(s): TensorRT supports UINT8 only as network input or "
            "output. Keep uint8 at the image input and cast to float right after it.",
        )


def _rule_strong_typing(m: OnnxIndex, gen: Generation) -> Iterator[Finding]:
    """TensorRT 11 builds what the tensor types say ([TRT-11])."""
    if not gen.strongly_typed:
        return
    kinds = set(m.types.values())
    low = kinds & {T.FLOAT16, T.BFLOAT16}
    has_qdq = any(n.op_type in QDQ for n in m.nodes)
    if not low:
        if has_qdq:
            what = (
                "the layers between Q/DQ pairs run in INT8 as marked and everything else in FP32 (there is "
                "no FP16 fallback)."
            )
            nxt = " For FP16 outside the INT8 layers, convert the float parts to float16 offline."
        else:
            what = "it builds in FP32."
            nxt = (
                " For FP16 use the FP16 ONNX (converted offline, e.g. lsa-edge build --precision fp16); INT8 "
                "needs the Q/DQ ONNX, as implicit INT8 calibration is gone."
            )
        yield Finding(
            "info",
            "strongly-typed",
            "model",
            "",
            "TensorRT 11 builds strongly typed networks and removed the FP16/INT8 builder flags: this graph's "
            f"float tensors are float32, so {what}{nxt}",
        )
    elif T.FLOAT in kinds:
        casts = sum(
            1
            for n in m.nodes
            if n.op_type == "Cast" and node_attr(n, "to") in (T.FLOAT, T.FLOAT16, T.BFLOAT16)
        )
        yield Finding(
            "info",
            "strongly-typed",
            "model",
            "",
            f"mixed precision: TensorRT 11 honours the graph's {casts} float Cast(s) as written and runs each "
            "layer in its inputs' type (float16 where the model says so, float32 elsewhere).",
        )
    else:
        yield Finding(
            "info",
            "strongly-typed",
            "model",
            "",
            "float16 graph: TensorRT 11 builds it in FP16 as typed (no --fp16 flag needed or available).",
        )


_RULES = (
    _rule_opset,
    _rule_operators,
    _rule_attributes,
    _rule_constant_inputs,
    _rule_dynamic_dims,
    _rule_int64,
    _rule_double,
    _rule_dtypes,
    rule_qdq,
    _rule_strong_typing,
)
