"""What each TensorRT generation's ONNX parser accepts: the facts behind ``lsa_edge.engines.lint``.

Pure data, no imports beyond the standard library and the core's names (generation and file names). Each table names the document it was taken from, so a
new TensorRT release is a reviewed edit here, not a change to the rules.

Sources (read May 2026):
- [OPS-8.5]  onnx/onnx-tensorrt, branch release/8.5-GA, docs/operators.md ("TensorRT 8.5 supports operators
  up to Opset 17"; INT64/DOUBLE "cast down ... clamping values to +-INT_MAX or +-FLT_MAX").
- [OPS-10]   onnx/onnx-tensorrt docs/operators.md for TensorRT 10.0 ("inclusive range of opset 9 to opset 20")
  and 10.15 ("opset 9 to opset 24"; "UINT8 is only supported as network input or output tensor types";
  "INT8, INT4, FP8 and FP4 are treated as Quantized Types").
- [CHANGES]  onnx/onnx-tensorrt docs/Changelog.md: 8.6 added LayerNormalization, GroupNormalization, IsInf;
  9.0 native INT64 ("no longer automatically casts INT64 to INT32"), BF16, FP8, local functions; 9.2 Hardmax;
  10.0 Pad ``wrap``; 10.1 DeformConv; 10.4 Blackman/Hamming/HannWindow; 10.5 STFT; 10.8 FP4, dynamic CumSum
  axis; 10.12 Einsum ellipsis/diagonal/broadcast; 10.14 Attention; 10.15 RMSNormalization, RotaryEmbedding,
  TensorScatter.
- [TRT-11]   NVIDIA TensorRT 11.0.0 release notes and "Migrating from TensorRT 10.x to 11.x": strongly typed
  networks are required (BuilderFlag FP16/INT8/BF16/FP8/INT4/FP4 and OBEY/PREFER_PRECISION_CONSTRAINTS
  removed; IInt8Calibrator / implicit quantization removed: "Explicit quantization with Q/DQ nodes");
  NVIDIA/TensorRT v11.0 release: parser added Swish, removed plugins batchTile, clip, coordConvAC,
  cropAndResize, gelu, leakyRelu, normalize, singleStepLSTM, specialSlice, split, nms, proposal; v11.2
  added DFT; v11.5 "Added support for ONNX opset 25". "ONNX Opset Guide" (11.x): minimum opset 9.
- [JETPACK]  JetPack 5.1 ships TensorRT 8.5; JetPack 6.1/6.2 ship TensorRT 10.3 (Torch-TensorRT's JetPack
  page), which is why "10" means 10.3 below and later 10.x features are warnings, not silent passes.

No 11.x operators.md could be read; the 11 table is 10.15's plus the 11.x release-note additions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lsa_edge.manifest import GENERATIONS as GENERATION_NAMES
from lsa_edge.manifest import MODEL_FP16_ONNX, MODEL_INT8_TRT_ONNX, MODEL_ONNX

# ONNX TensorProto.DataType codes (kept here so the linter needs onnx only to read the file).
FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, STRING, BOOL = 1, 2, 3, 4, 5, 6, 7, 8, 9
FLOAT16, DOUBLE, UINT32, UINT64, COMPLEX64, COMPLEX128, BFLOAT16 = 10, 11, 12, 13, 14, 15, 16
FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, UINT4, INT4, FLOAT4E2M1 = 17, 18, 19, 20, 21, 22, 23
DTYPE_NAMES = {
    0: "undefined",
    FLOAT: "float32",
    UINT8: "uint8",
    INT8: "int8",
    UINT16: "uint16",
    INT16: "int16",
    INT32: "int32",
    INT64: "int64",
    STRING: "string",
    BOOL: "bool",
    FLOAT16: "float16",
    DOUBLE: "double",
    UINT32: "uint32",
    UINT64: "uint64",
    COMPLEX64: "complex64",
    COMPLEX128: "complex128",
    BFLOAT16: "bfloat16",
    FLOAT8E4M3FN: "float8e4m3fn",
    FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    FLOAT8E5M2: "float8e5m2",
    FLOAT8E5M2FNUZ: "float8e5m2fnuz",
    UINT4: "uint4",
    INT4: "int4",
    FLOAT4E2M1: "float4e2m1",
    24: "float8e8m0",
    25: "uint2",
    26: "int2",
    27: "float6e2m3",
    28: "float6e3m2",
}


def dtype_name(code: int) -> str:
    return DTYPE_NAMES.get(code, f"dtype#{code}")


def _ops(text: str) -> frozenset[str]:
    return frozenset(text.split())


# [OPS-8.5]: every operator marked "Y".
OPS_8_5 = _ops(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu
    Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
    Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
    GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid
    Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN
    LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg
    NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal
    RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
    ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
    ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink
    Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan
    Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
    """
)

# [OPS-10] (10.15): every operator marked "Y".
OPS_10_15 = _ops(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
    BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
    CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike
    Flatten Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool
    Greater GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish
    Hardmax Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less
    LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
    MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
    ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike
    Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd
    ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RMSNormalization RNN RoiAlign
    RotaryEmbedding Round STFT ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid
    Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh
    TensorScatter ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
    """
)

# [CHANGES]: operators of the 10.15 table that arrived after 10.3 (JetPack 6's release).
LATER_IN_10 = {
    "BlackmanWindow": "10.4",
    "HammingWindow": "10.4",
    "HannWindow": "10.4",
    "STFT": "10.5",
    "Attention": "10.14",
    "RMSNormalization": "10.15",
    "RotaryEmbedding": "10.15",
    "TensorScatter": "10.15",
}
# [TRT-11]: parser additions in 11.x.
ADDED_IN_11 = {"Swish": "11.0", "DFT": "11.2"}

# [TRT-11] plugins removed in 11.0, by the op names their creators register (NVIDIA/TensorRT plugin/).
REMOVED_PLUGINS_11 = {
    "BatchTilePlugin_TRT": "batchTile",
    "Clip_TRT": "clip",
    "CoordConvAC": "coordConvAC",
    "CropAndResize": "cropAndResize",
    "CropAndResizeDynamic": "cropAndResize",
    "CustomGeluPluginDynamic": "gelu",
    "LReLU_TRT": "leakyRelu",
    "Normalize_TRT": "normalize",
    "SpecialSlice_TRT": "specialSlice",
    "NMS_TRT": "nms",
    "Proposal": "proposal",
    "ProposalDynamic": "proposal",
}

# Resize/Pad/Pool attribute values from the "Restrictions" column ([OPS-8.5], [OPS-10]).
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORD_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})


@dataclass(frozen=True)
class ConstInput:
    """An operator input that the parser needs as a build-time constant ("must be an initializer")."""

    op: str  # ONNX op_type
    index: int  # input position
    what: str  # the input's ONNX name, for messages
    relaxed_in: str = ""  # the later release of the same generation that lifts the restriction, if any


_REDUCE_OPS = sorted(
    _ops(
        "ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare"
    )
)


@dataclass(frozen=True)
class Generation:
    """One TensorRT generation as the linter sees it: the baseline release we build on, and its parser."""

    key: str  # "8.5" | "10" | "11"
    baseline: str  # the release the rules describe, e.g. "10.3 (JetPack 6.1/6.2)"
    opset_min: int
    opset_max: int  # the baseline's newest opset
    opset_max_latest: int  # the newest opset any release of this generation accepts
    ops: frozenset[str]  # operators the baseline parser imports
    later_ops: dict[str, str] = field(default_factory=dict)  # op -> later release of this generation
    int64_native: bool = True  # False: the parser casts INT64 down to INT32 (clamping)
    low_precision_types: frozenset[int] = frozenset()  # BF16/FP8/INT4/FP4 codes the baseline knows
    later_types: dict[int, str] = field(default_factory=dict)  # dtype -> later release
    pad_modes: frozenset[str] = frozenset({"constant", "reflect", "edge"})
    const_inputs: tuple[ConstInput, ...] = ()
    einsum_ellipsis: bool = False  # Einsum with "..." or a repeated (diagonal) index
    einsum_ellipsis_later: str = ""  # the later release of this generation that adds it, if any
    strongly_typed: bool = False  # 11: precision comes from the ONNX tensor types, no builder flags
    removed_plugins: dict[str, str] = field(default_factory=dict)
    # -- how lsa-edge builds for it (the build, the trtexec recipes and build_engine read these) ----------
    strongly_typed_opt_in: bool = False  # 10: builds strongly typed when asked (--stronglyTyped)
    # 8.5: implicit batch is the default, so an explicit-batch ONNX needs the EXPLICIT_BATCH network flag;
    # 10 made explicit batch the default (flag deprecated, ignored): NVIDIA's TensorRT 10 migration guide
    explicit_batch_flag: bool = False
    # trtexec --memPoolSize=workspace:N: 8.5 takes MiB with no unit ("pool:sizeInMiB"); 10/11 accept B/K/M/G
    # and get an explicit "M" (each version's trtexec --help)
    trtexec_mib_suffix: str = "M"
    implicit_int8_deprecated: bool = False  # 10: IInt8Calibrator deprecated since 10.1 (removed in 11)
    export_opset: int = 17  # the opset a checkpoint is exported at when this generation is the target
    onnx_by_precision: dict[str, str] = field(default_factory=dict)  # precision -> the graph it builds
    typed_by_precision: dict[str, bool] = field(default_factory=dict)  # precision -> built strongly typed
    gate_by_precision: dict[str, str] = field(default_factory=dict)  # precision -> the accuracy check

    @property
    def can_type_strongly(self) -> bool:
        """Whether strongly typed networks exist here (always on 11, opt-in on 10, never on 8.5)."""
        return self.strongly_typed or self.strongly_typed_opt_in

    @property
    def has_calibrators(self) -> bool:
        """Implicit INT8 (calibrators, caches) and the FP16/INT8 builder flags: gone with strong typing."""
        return not self.strongly_typed

    def typed_flag(self, typed: bool) -> bool:
        """Whether a build that is strongly typed (``typed``) must say so (``--stronglyTyped``,
        ``strongly_typed=True``): only where it is opt-in; 11 is always typed."""
        return typed and self.strongly_typed_opt_in


_GENERATIONS = (
    Generation(
        key="8.5",
        baseline="8.5 (JetPack 5.1)",
        opset_min=7,  # the 8.x developer guide: "backward compatible up to opset 7"
        opset_max=17,
        opset_max_latest=17,
        ops=OPS_8_5,
        int64_native=False,
        explicit_batch_flag=True,
        trtexec_mib_suffix="",
        export_opset=16,  # 8.5's parser has no LayerNormalization: torch decomposes it at opset 16
        # no strong typing: the FP32 graph + the FP16 flag, Q/DQ + INT8 flag + FP16 for the rest
        onnx_by_precision={"fp32": MODEL_ONNX, "fp16": MODEL_ONNX, "int8": MODEL_INT8_TRT_ONNX},
        typed_by_precision={"fp32": False, "fp16": False, "int8": False},
        gate_by_precision={"fp16": "fp16_all_layers", "int8": "int8_trt_fp16"},
        const_inputs=(
            ConstInput("CumSum", 1, "axis"),
            ConstInput("TopK", 1, "K"),
            ConstInput("Slice", 3, "axes"),
            ConstInput("Squeeze", 1, "axes"),
            ConstInput("Unsqueeze", 1, "axes"),
        ),
    ),
    Generation(
        key="10",
        baseline="10.3 (JetPack 6.1/6.2)",
        opset_min=9,
        opset_max=20,
        opset_max_latest=24,
        ops=OPS_10_15 - frozenset(LATER_IN_10),
        later_ops=dict(LATER_IN_10),
        low_precision_types=frozenset({BFLOAT16, FLOAT8E4M3FN, INT4}),
        later_types={FLOAT4E2M1: "10.8"},
        pad_modes=frozenset({"constant", "reflect", "edge", "wrap"}),
        const_inputs=(
            ConstInput("CumSum", 1, "axis", relaxed_in="10.8"),
            ConstInput("OneHot", 1, "depth"),
            ConstInput("Squeeze", 1, "axes"),
            ConstInput("Unsqueeze", 1, "axes"),
            ConstInput("Dropout", 2, "training_mode"),
            *(ConstInput(op, 1, "axes") for op in _REDUCE_OPS),
        ),
        einsum_ellipsis_later="10.12",
        strongly_typed_opt_in=True,
        implicit_int8_deprecated=True,
        # FP16 from the FP16 graph, typed; Q/DQ + INT8 flag + FP16 for the unquantized layers (weakly typed)
        onnx_by_precision={"fp32": MODEL_ONNX, "fp16": MODEL_FP16_ONNX, "int8": MODEL_INT8_TRT_ONNX},
        typed_by_precision={"fp32": False, "fp16": True, "int8": False},
        gate_by_precision={"fp16": "fp16", "int8": "int8_trt_fp16"},
    ),
    Generation(
        key="11",
        baseline="11.x (Jetson Thor, JetPack 7)",
        opset_min=9,
        opset_max=24,
        opset_max_latest=25,
        ops=OPS_10_15 | frozenset({"Swish"}),
        later_ops={"DFT": "11.2"},
        low_precision_types=frozenset({BFLOAT16, FLOAT8E4M3FN, INT4, FLOAT4E2M1}),
        pad_modes=frozenset({"constant", "reflect", "edge", "wrap"}),
        const_inputs=(
            ConstInput("OneHot", 1, "depth"),
            ConstInput("Squeeze", 1, "axes"),
            ConstInput("Unsqueeze", 1, "axes"),
            ConstInput("Dropout", 2, "training_mode"),
            *(ConstInput(op, 1, "axes") for op in _REDUCE_OPS),
        ),
        einsum_ellipsis=True,
        strongly_typed=True,
        removed_plugins=dict(REMOVED_PLUGINS_11),
        # always strongly typed: the graph's own types (Q/DQ int8, the rest FP32)
        onnx_by_precision={"fp32": MODEL_ONNX, "fp16": MODEL_FP16_ONNX, "int8": MODEL_INT8_TRT_ONNX},
        typed_by_precision={"fp32": True, "fp16": True, "int8": True},
        gate_by_precision={"fp16": "fp16", "int8": "int8_trt"},
    ),
)
# Keyed by the core's list of generation names (lsa_edge._manifest.GENERATIONS, the one definition).
GENERATIONS: dict[str, Generation] = {g.key: g for g in _GENERATIONS}
if tuple(GENERATIONS) != GENERATION_NAMES:  # a generation added here must be added there (and back)
    raise ImportError(f"TensorRT generations {tuple(GENERATIONS)} != lsa_edge._manifest's {GENERATION_NAMES}")

# Types no TensorRT has (there is no INT16/UINT16/UINT32/UINT64/STRING/COMPLEX DataType in any release).
NEVER_TYPES = frozenset(
    {STRING, UINT16, INT16, UINT32, UINT64, COMPLEX64, COMPLEX128, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ}
    | {UINT4, 24, 25, 26, 27, 28}
)
# Types every generation runs natively (INT64 and DOUBLE have their own rules, UINT8 is I/O-only).
NATIVE_TYPES = frozenset({FLOAT, FLOAT16, INT8, INT32, BOOL})
