"""ONNX → TensorRT engine, for the three TensorRT generations the Jetson line ships, plus the exact
``trtexec`` line that does the same build.

* "8.5" (8.5 and 8.6; JetPack 5 on Xavier/Orin): explicit batch needs the EXPLICIT_BATCH network flag;
  FP16 is BuilderFlag.FP16; INT8 is the Q/DQ ONNX + BuilderFlag.INT8, or implicit INT8 from a calibration
  cache.
* "10" (JetPack 6 on Orin, JetPack 7.0 on Thor): explicit batch is the default (the flag is deprecated
  and ignored); FP16 and INT8 as on 8.5; implicit INT8 still works but is deprecated since 10.1. From
  10.12 the FP16/INT8 builder flags (weak typing) are deprecated too: an FP16 ONNX or a Q/DQ ONNX is built
  strongly typed, as on 11; only an FP32 graph asked for FP16 still gets the flag, with a warning.
* "11" (JetPack 7.2.2+ on Thor and AGX Orin): every network is strongly typed (STRONGLY_TYPED is accepted
  and ignored); FP16 must be baked into the ONNX (the FP16 ONNX), INT8 must be Q/DQ; the FP16/INT8
  builder flags, calibrators and caches are removed.

Facts behind the table (NVIDIA's docs): TensorRT 10 migration guide and deprecated-API list (implicit batch
removed, IInt8*Calibrator deprecated in 10.1); TensorRT 10.x→11.x migration guide (BuilderFlag.FP16/INT8,
int8_calibrator, set_calibration_profile removed; trtexec --fp16/--int8/--calib removed, --stronglyTyped
always on); "Working with DLA" (DLA needs FP16 or INT8, has no dynamic shapes; absent after TensorRT
10.7 and from 11.0-11.3, back in 11.4.1 on AGX Orin with JetPack 7.2.2+; Thor has no DLA).

Every TensorRT name used here is checked against NVIDIA's real bindings of each generation
(tests/data/tensorrt_api, written by scripts/tensorrt_api.py). Everything TensorRT is imported lazily
(``tensorrt`` through :func:`lsa_edge._lazy.require`; cuda-python or pycuda for :func:`gpu_info`);
:func:`trtexec_command` and :func:`generation` are pure.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from packaging.version import InvalidVersion, Version

from lsa_edge._fileio import atomic_write
from lsa_edge._lazy import require
from lsa_edge.backends._tensorrt_env import enum_name, gpu_info, load_engine, tensorrt_version, trt_logger

# gpu_info, load_engine and tensorrt_version live in the core (the runtime loads engines too); re-exported here.
from lsa_edge.engine_meta import EngineKey, sha256_file, sidecar_path, write_sidecar
from lsa_edge.errors import ConfigError, LsaEdgeError

from ._trt_generations import GENERATIONS as TABLE
from .config import default
from .engine_spec import BuilderOptions, Calibration, EngineResult, EngineSpec, Profile
from .engine_spec import validate_options as _validate

__all__ = [
    "DEFAULT_WORKSPACE_MIB",
    "BuilderOptions",
    "Calibration",
    "EngineResult",
    "EngineSpec",
    "Profile",
    "build_engine",
    "generation",
    "gpu_info",
    "load_engine",
    "tensorrt_version",
    "trtexec_command",
    "weak_typing_deprecated",
]

_LOG = logging.getLogger(__name__)

Generation = Literal["8.5", "10", "11"]

# Workspace = scratch memory a layer's kernel may use (MemoryPoolType.WORKSPACE). TensorRT's default is
# the device's whole memory; on a Jetson that memory is shared with the CPU, the camera pipeline, the
# face detector and ROS, so cap it. BuildConfig's default (1 GiB) is far above what this model's kernels ask
# for (a few MiB at batch 16) while leaving a Jetson Orin Nano (8 GB) room; tactics needing more are
# skipped, not failed. The batch profile's default is BuildConfig's too (the one home of build defaults).
DEFAULT_WORKSPACE_MIB: int = default("workspace_mib")
DEFAULT_BATCH: tuple[int, int, int] = default("batch")


# --------------------------------------------------------------------------------------------- versions


def generation(version: str) -> Generation:
    """Which API family a TensorRT version belongs to: "8.5" (8.5 and 8.6), "10" or "11" (11 and later).

    8.6 behaves like 8.5 for everything done here (explicit-batch flag, FP16/INT8 builder flags,
    calibrators); it adds version-compatible engines. 9.x (an LLM-only, x86-only line) and anything
    before 8.5 are refused.
    """
    try:
        v = Version(version)
    except InvalidVersion as err:
        raise ConfigError(f"not a TensorRT version: {version!r}") from err
    if v >= Version("11"):
        return "11"
    if v >= Version("10"):
        return "10"
    if Version("8.5") <= v < Version("9"):
        return "8.5"
    raise ConfigError(
        f"TensorRT {version} is not supported; lsa-edge builds with 8.5/8.6 (JetPack 5), 10.x (JetPack 6) or "
        "11.x (JetPack 7)"
    )


def weak_typing_deprecated(version: str) -> bool:
    """TensorRT 10.12+: BuilderFlag.FP16/INT8 (weak typing) are deprecated in favour of strongly typed
    networks whose ONNX carries the precision (NVIDIA's 10.12 release notes); 11 removes them."""
    return Version(version) >= Version("10.12")


# ---------------------------------------------------------------------------------------------- trtexec


def _shape(batch: int, chw: Sequence[int]) -> str:
    return "x".join(str(d) for d in (batch, *chw))


def trtexec_command(
    onnx: str | Path,
    engine: str | Path,
    precision: str,
    generation: str,
    *,
    batch: tuple[int, int, int] | None = DEFAULT_BATCH,
    input_name: str = "faces",
    input_chw: Sequence[int] | None = (3, 128, 112),
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    calibration_cache: str | Path | None = None,
    timing_cache: str | Path | None = None,
    dla_core: int | None = None,
    int8_fp16_fallback: bool = True,
    strongly_typed: bool = False,
) -> str:
    """The ``trtexec`` line that builds the same engine as :func:`build_engine` (pure; no tensorrt).

    Per generation (from each version's ``trtexec --help`` and NVIDIA's migration guides):

    * shapes ``--minShapes/--optShapes/--maxShapes=name:NxCxHxW``: all three; none when ``batch`` is None
      (a model whose input shape is fixed in the ONNX, like the face detector).
    * ``--memPoolSize=workspace:N``: 8.5 takes MiB only ("pool:sizeInMiB"); 10/11 accept B/K/M/G suffixes
      (MiB when none), so 10/11 get an explicit ``M``. (``--workspace`` is deprecated in 8.x, gone in 10.)
    * precision: 8.5/10 ``--fp16``; ``--int8`` (+ ``--fp16`` for layers left unquantized) for the Q/DQ
      ONNX, ``--calib=FILE`` for a calibration cache; fp32 adds ``--noTF32``. 11 has none of these flags
      (removed): the ONNX's types decide, and ``--stronglyTyped`` is always on, so it is left out.
    * ``--timingCacheFile``: all. DLA: ``--useDLACore=N --allowGPUFallback`` (FP16/INT8 only).
    """
    gen = generation
    if gen not in TABLE:
        raise ConfigError(f"generation must be {' or '.join(repr(g) for g in TABLE)}, got {gen!r}")
    facts = TABLE[gen]
    _validate(precision, batch, dla_core, workspace_mib)
    q = shlex.quote
    args = ["trtexec", f"--onnx={q(str(onnx))}", f"--saveEngine={q(str(engine))}"]
    if batch is not None:
        if input_chw is None:
            raise ConfigError("a batch profile needs input_chw, the input's non-batch dimensions")
        args += [
            f"--{which}Shapes={q(input_name)}:{_shape(n, input_chw)}"
            for which, n in zip(("min", "opt", "max"), batch)
        ]
    if strongly_typed and not facts.can_type_strongly:
        raise ConfigError("strongly typed networks need TensorRT 10 or later")
    if facts.strongly_typed or strongly_typed:
        if calibration_cache is not None:
            why = (
                "TensorRT 11 removed calibration caches (--calib)"
                if not facts.has_calibrators
                else "strongly typed builds take no cache"
            )
            raise ConfigError(f"{why}; build from the Q/DQ ONNX")
        if facts.strongly_typed_opt_in:
            args.append("--stronglyTyped")  # the ONNX's types decide, as on 11
    elif precision == "fp16":
        args.append("--fp16")
    elif precision == "int8":
        args.append("--int8")
        if int8_fp16_fallback:
            args.append("--fp16")
        if calibration_cache is not None:
            args.append(f"--calib={q(str(calibration_cache))}")
    else:  # fp32: a reference engine, so no TF32 (on by default on Ampere and later)
        args.append("--noTF32")
    args.append(f"--memPoolSize=workspace:{workspace_mib}{facts.trtexec_mib_suffix}")
    if timing_cache is not None:
        args.append(f"--timingCacheFile={q(str(timing_cache))}")
    if dla_core is not None:
        args += [f"--useDLACore={dla_core}", "--allowGPUFallback"]
    return " ".join(args)


# ------------------------------------------------------------------------------------ TensorRT plumbing


def _network_flags(trt: Any, gen: str, strongly_typed: bool = False) -> int:
    flags = 0
    if TABLE[gen].explicit_batch_flag:  # 8.x: implicit batch is still the default
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    elif TABLE[gen].strongly_typed or strongly_typed:  # 11: always (flag accepted, ignored); 10: opt-in
        flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if flag is not None:
            flags |= 1 << int(flag)
    return flags  # 10: explicit batch by default; weak typing so the FP16/INT8 flags apply


def format_parser_error(error: Any) -> str:
    """One ``ParserError`` as text: its description, node index, node name and operator (methods on 10+),
    and the error code's name (``ErrorCode.name`` is a method before 10.16, a property from it)."""
    extra = []
    for attr in ("node_name", "node_operator"):  # TensorRT 10+
        if hasattr(error, attr):
            value = getattr(error, attr)()
            if value:
                extra.append(f"{attr.split('_')[1]} {value}")
    where = f"node {error.node()}" + (f" ({', '.join(extra)})" if extra else "")
    return f"{error.desc()} [{where}, code {enum_name(error.code())}]"


def _parse(trt: Any, network: Any, onnx_path: Path, logger: Any) -> Any:
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return parser
    errors = []
    for i in range(parser.num_errors):
        text = format_parser_error(parser.get_error(i))
        _LOG.error("ONNX parser error %d/%d: %s", i + 1, parser.num_errors, text)
        errors.append(text)
    raise LsaEdgeError(
        f"TensorRT's ONNX parser rejected {onnx_path} with {len(errors)} error(s):\n  "
        + "\n  ".join(errors or ["(no details; see the TensorRT log above)"])
        + "\nCheck the ONNX opset and operators against this TensorRT version "
        "(try 'polygraphy inspect model')."
    )


def _find_input(network: Any, input_name: str) -> tuple[int, ...]:
    names = []
    for i in range(network.num_inputs):
        t = network.get_input(i)
        names.append(t.name)
        if t.name == input_name:
            shape = tuple(int(d) for d in t.shape)
            if not shape or any(d < 1 for d in shape[1:]):
                raise LsaEdgeError(
                    f"input {input_name!r} has shape {shape}; only the batch (first) dimension may be dynamic"
                )
            return shape
    raise LsaEdgeError(f"the ONNX model has no input {input_name!r}; its inputs are {names}")


def _layers(network: Any) -> list[Any]:
    return [network.get_layer(i) for i in range(network.num_layers)]


def _has_qdq(trt: Any, network: Any) -> bool:
    kinds = {trt.LayerType.QUANTIZE, trt.LayerType.DEQUANTIZE}
    return any(layer.type in kinds for layer in _layers(network))


def _has_half(trt: Any, network: Any) -> bool:
    return any(
        layer.get_output(j).dtype == trt.DataType.HALF
        for layer in _layers(network)
        for j in range(layer.num_outputs)
    )


def _set_flag(trt: Any, config: Any, name: str) -> None:
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:  # e.g. FP16/INT8 on TensorRT 11: capability, not version, decides
        raise LsaEdgeError(
            f"TensorRT {trt.__version__} has no BuilderFlag.{name}; build from an ONNX that carries the "
            "precision (the FP16 or Q/DQ ONNX that 'lsa-edge build' writes)"
        )
    config.set_flag(flag)


def _configure_precision(
    trt: Any,
    gen: str,
    typed: bool,
    builder: Any,
    network: Any,
    config: Any,
    precision: str,
    *,
    calibrator: Any,
    calib_shapes: dict[str, tuple[int, ...]] | None,
    input_name: str,
    int8_fp16_fallback: bool,
) -> str:
    """Set the precision flags for ``gen``; returns how INT8 is obtained ("qdq", "calibrator" or "").
    ``typed``: a strongly typed network (all of 11; 10 when asked): the ONNX's types decide, no flags."""
    if precision == "fp32":
        tf32 = getattr(trt.BuilderFlag, "TF32", None)
        if tf32 is not None:  # TF32 is on by default on Ampere+; an fp32 engine is the reference
            config.clear_flag(tf32)
        return ""
    if precision == "fp16":
        if typed:
            if not _has_half(trt, network):
                raise LsaEdgeError(
                    "a strongly typed network (all of TensorRT 11; 10 when asked) takes FP16 from the ONNX itself, "
                    "but this graph has no FP16 tensors. Build from the FP16 ONNX that "
                    "'lsa-edge build --precision fp16' writes (or convert with ModelOpt AutoCast)."
                )
            return ""
        _set_flag(trt, config, "FP16")
        return ""
    # int8
    qdq = _has_qdq(trt, network)
    if typed:
        if calibrator is not None:
            raise LsaEdgeError(
                "a strongly typed network (all of TensorRT 11; 10 when asked) has no implicit INT8 (calibrators "
                "and caches; TensorRT 11 removed them); build from the Q/DQ ONNX"
            )
        if not qdq:
            raise LsaEdgeError(
                "a strongly typed network (all of TensorRT 11; 10 when asked) takes INT8 from Q/DQ nodes only, "
                "and this ONNX has no "
                "QuantizeLinear/DequantizeLinear nodes; build from the Q/DQ ONNX that "
                "'lsa-edge build --precision int8' writes"
            )
        return "qdq"
    _set_flag(trt, config, "INT8")
    if int8_fp16_fallback:  # layers without Q/DQ (and DLA) run FP16 instead of FP32
        _set_flag(trt, config, "FP16")
    if qdq:
        if calibrator is not None:
            _LOG.warning("the ONNX has Q/DQ nodes (explicit quantization): the calibration cache is ignored")
        return "qdq"
    if calibrator is None:
        raise LsaEdgeError(
            "INT8 needs either a Q/DQ ONNX (explicit quantization) or a calibration cache, and this "
            "ONNX has no Q/DQ nodes and no cache was given"
        )
    if TABLE[gen].implicit_int8_deprecated:
        _LOG.warning("implicit INT8 (calibration cache) is deprecated since TensorRT 10.1 and removed in 11")
    config.int8_calibrator = calibrator
    if calib_shapes:  # the calibrator's batches fix every input's shape while calibrating
        profile = builder.create_optimization_profile()
        for name, shape in calib_shapes.items():
            profile.set_shape(name, shape, shape, shape)
        config.set_calibration_profile(profile)
    return "calibrator"


def _configure_dla(trt: Any, builder: Any, network: Any, config: Any, dla_core: int) -> None:
    cores = int(getattr(builder, "num_DLA_cores", 0))
    if dla_core >= cores:
        raise LsaEdgeError(
            f"DLA core {dla_core} requested but this device has {cores} DLA core(s) (AGX Orin and "
            "Orin NX have 2, Orin Nano and Thor none; TensorRT 10.8-10.x and 11.0-11.3 have no DLA: 10.7 was "
            "the last 10.x with it, 11.4.1 brings it back on AGX Orin with JetPack 7.2.2)"
        )
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = dla_core
    _set_flag(trt, config, "GPU_FALLBACK")
    can_run = getattr(config, "can_run_on_DLA", None)
    if can_run is not None:
        layers = _layers(network)
        on_gpu = [layer.name for layer in layers if not can_run(layer)]
        if on_gpu:  # GPU fallback is silent in TensorRT: say it here
            _LOG.warning(
                "DLA core %d: %d of %d layers cannot run on DLA and fall back to the GPU: %s%s",
                dla_core,
                len(on_gpu),
                len(layers),
                ", ".join(on_gpu[:8]),
                " ..." if len(on_gpu) > 8 else "",
            )


def _lsa_edge_command(
    onnx_path: Path, out_dir: Path, precision: str, batch: Sequence[int] | None, dla_core: int | None
) -> str:
    """The ``lsa-edge build`` line that rebuilds an engine (for its sidecar)."""
    parts = ["lsa-edge build", shlex.quote(str(onnx_path)), f"--precision {precision}"]
    if batch is not None:
        parts.append("--batch " + ",".join(str(n) for n in batch))
    parts.append(f"--out {shlex.quote(str(out_dir))}")
    if dla_core is not None:
        parts.append(f"--dla-core {dla_core}")
    return " ".join(parts)


def _load_timing_cache(config: Any, path: Path | None) -> Any:
    if path is None:
        return None
    data = path.read_bytes() if path.exists() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, False):
        _LOG.warning("timing cache %s does not match this TensorRT/GPU; starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    elif data:
        _LOG.info("using timing cache %s", path)
    return cache


def _save_timing_cache(config: Any, path: Path | None) -> None:
    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is None:
        return
    _atomic_write(path, memoryview(cache.serialize()))
    _LOG.info("saved timing cache %s", path)


def _atomic_write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(data)


def _card_dict(card: Any, onnx_path: Path) -> dict[str, Any] | None:
    """The card for the sidecar: the one given, else the ONNX's own (``metadata_props``), else None."""
    if card is None:
        from .export import read_card

        try:
            card = read_card(onnx_path)
        except Exception as err:  # no card (the detector), onnx not installed, unreadable: TensorRT decides
            _LOG.warning("%s: the engine's sidecar will carry no model card (%s)", onnx_path.name, err)
            return None
    return card.to_dict() if hasattr(card, "to_dict") else dict(card)


# -------------------------------------------------------------------------------------------------- build


def _check_options(version: str, spec: EngineSpec) -> Any:
    """Refuse option combinations this TensorRT cannot build; returns the calibrator to use (a
    cache-only one for ``spec.calibration.cache``), or None."""
    gen = generation(version)
    precision, cache = spec.precision, spec.calibration.cache
    if spec.options.version_compatible and Version(version) < Version("8.6"):
        raise ConfigError(f"version-compatible engines need TensorRT 8.6 or later; this is {version}")
    if spec.options.strongly_typed and not TABLE[gen].can_type_strongly:
        raise ConfigError(f"strongly typed networks need TensorRT 10 or later; this is {version}")
    if cache is None:
        return spec.calibration.calibrator
    if precision != "int8" or not TABLE[gen].has_calibrators:
        raise ConfigError(
            "a calibration cache applies to --precision int8 on TensorRT 8.5/10 only "
            f"(got precision {precision}, TensorRT {version})"
        )
    from lsa_edge.calibration.trt_calibrator import cache_calibrator

    return cache_calibrator(cache)


def _typed_network(
    trt: Any, builder: Any, logger: Any, onnx_path: Path, precision: str, strongly_typed: bool | None
) -> tuple[Any, Any, bool]:
    """The parsed network, its parser (which owns the weights: keep it alive until the build ends) and
    whether it is strongly typed.

    Strongly typed: always on 11; on 10 when asked (True), or — left to us (None) — on 10.12+ for FP16 when
    the graph carries it (the FP16 ONNX): the weak-typing flags are deprecated there. INT8 stays weakly
    typed on 10: a strongly typed Q/DQ graph would run its unquantized layers in FP32, which is neither what
    the accuracy gate measured (INT8 + FP16 for the rest) nor fast.
    """
    version = str(trt.__version__)
    gen = generation(version)
    deprecated = TABLE[gen].strongly_typed_opt_in and weak_typing_deprecated(version) and precision != "fp32"
    auto_typed = deprecated and strongly_typed is None and precision == "fp16"
    typed = TABLE[gen].strongly_typed or bool(strongly_typed) or auto_typed
    if deprecated and not typed:
        _LOG.warning(
            "TensorRT %s deprecates BuilderFlag.FP16/INT8 (weak typing); building %s with them%s",
            version,
            precision.upper(),
            ": the Q/DQ graph's unquantized layers run FP16 as the accuracy gate measured"
            if precision == "int8"
            else "",
        )
    network = builder.create_network(_network_flags(trt, gen, typed))
    parser = _parse(trt, network, onnx_path, logger)
    if auto_typed and not _has_half(trt, network):
        _LOG.warning(
            "TensorRT %s deprecates BuilderFlag.FP16 (weak typing), but %s carries no FP16 tensors: building "
            "it with the deprecated flag. Build from the FP16 ONNX that 'lsa-edge build --precision fp16' "
            "writes for a strongly typed engine (what TensorRT 11 requires).",
            version,
            onnx_path.name,
        )
        network = builder.create_network(_network_flags(trt, gen, False))
        return network, _parse(trt, network, onnx_path, logger), False
    return network, parser, typed


def _batch_profile(
    network: Any, input_name: str, batch: tuple[int, int, int] | None
) -> tuple[tuple[int, int, int], tuple[int, ...], bool]:
    """(min, opt, max) batch, the input's C×H×W, and whether the input's shape is fixed (no profile)."""
    input_shape = _find_input(network, input_name)
    chw = input_shape[1:]
    if batch is None:
        if input_shape[0] < 1:
            raise LsaEdgeError(
                f"the ONNX input {input_name!r} has a dynamic batch; pass batch=(min, opt, max)"
            )
        return (input_shape[0],) * 3, chw, True
    if input_shape[0] != -1 and not (batch[0] == batch[2] == input_shape[0]):
        raise LsaEdgeError(
            f"the ONNX input {input_name!r} has a fixed batch of {input_shape[0]}; export it with a "
            f"dynamic batch to build the profile {tuple(batch)}"
        )
    return tuple(batch), chw, input_shape[0] != -1  # type: ignore[return-value]


class _Network(NamedTuple):
    """The parsed network and the shape of its input, as :func:`_parse_network` finds them."""

    builder: Any
    network: Any
    parser: Any  # owns the weights: keep it alive until the build ends
    typed: bool  # strongly typed
    input_name: str
    batch: tuple[int, int, int]  # (min, opt, max)
    chw: tuple[int, ...]
    static: bool  # the input's shape is fixed: no optimization profile


def _require_file(onnx_path: Path) -> None:
    if not onnx_path.is_file():
        raise LsaEdgeError(f"ONNX model not found: {onnx_path}")


def _parse_network(trt: Any, spec: EngineSpec) -> _Network:
    """Parse ``spec.onnx`` into a network (typed as :func:`_typed_network` decides) and read its input's
    batch profile and C×H×W."""
    logger = trt_logger(trt)
    builder = trt.Builder(logger)
    network, parser, typed = _typed_network(
        trt, builder, logger, spec.onnx, spec.precision, spec.options.strongly_typed
    )
    name = spec.profile.input_name
    profile, chw, static = _batch_profile(network, name, spec.profile.batch)
    return _Network(builder, network, parser, typed, name, profile, chw, static)


def _calib_shapes(calibrator: Any, net: _Network) -> dict[str, tuple[int, ...]]:
    """Every input's shape while calibrating: the calibrator's own, else the input at the opt batch."""
    shapes = {net.input_name: tuple(getattr(calibrator, "shape", None) or (net.batch[1], *net.chw))}
    shapes.update({k: tuple(v) for k, v in (getattr(calibrator, "shapes", None) or {}).items()})
    return shapes


def _builder_config(trt: Any, net: _Network, spec: EngineSpec, calibrator: Any) -> tuple[Any, str]:
    """The builder config: batch profile, workspace, precision flags (and calibrator), DLA, version
    compatibility and timing cache; returns it and how INT8 is obtained (see :func:`_configure_precision`)."""
    lo, opt, hi = net.batch
    chw = net.chw
    config = net.builder.create_builder_config()
    if not net.static:  # a network without dynamic dimensions gets TensorRT's default profile
        profile = net.builder.create_optimization_profile()
        profile.set_shape(net.input_name, (lo, *chw), (opt, *chw), (hi, *chw))
        config.add_optimization_profile(profile)
    opts = spec.options
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_mib) << 20)
    calib_shapes = _calib_shapes(calibrator, net)
    int8_source = _configure_precision(
        trt,
        generation(str(trt.__version__)),
        net.typed,  # a strongly typed 10 build follows 11's rules: the ONNX's types decide
        net.builder,
        net.network,
        config,
        spec.precision,
        calibrator=calibrator,
        calib_shapes=None if net.static else calib_shapes,
        input_name=net.input_name,
        int8_fp16_fallback=opts.int8_fp16_fallback,
    )
    if opts.dla_core is not None:
        _configure_dla(trt, net.builder, net.network, config, opts.dla_core)
    if opts.version_compatible:
        _set_flag(trt, config, "VERSION_COMPATIBLE")
    _load_timing_cache(config, opts.timing_cache)
    return config, int8_source


def _serialize(net: _Network, config: Any, key: EngineKey, spec: EngineSpec, log: logging.Logger) -> Path:
    """Build the engine, save the timing cache and write the engine file; returns its path."""
    engine_path = spec.out_dir / f"{key.file_stem()}.engine"
    log.info(
        "building %s (%s, TensorRT %s, %s sm_%s, batch %s%s)",
        engine_path.name,
        key.precision,
        key.tensorrt,
        key.gpu,
        key.compute_capability.replace(".", ""),
        net.batch,
        f", DLA {key.dla_core}" if key.dla_core is not None else "",
    )
    serialized = net.builder.build_serialized_network(net.network, config)
    if serialized is None:
        raise LsaEdgeError(
            f"TensorRT {key.tensorrt} could not build an engine from {spec.onnx} ({key.precision}); its errors "
            "are logged above (logger 'lsa_edge.tensorrt')"
        )
    _save_timing_cache(config, spec.options.timing_cache)
    _atomic_write(engine_path, memoryview(serialized))
    return engine_path


def _calib_file(int8_source: str, calibration: Calibration, calibrator: Any) -> Any:
    """The calibration cache trtexec's --calib reads: the same one (the on-device calibrator has written
    its own by now); None unless INT8 came from a calibrator."""
    if int8_source != "calibrator":
        return None
    return calibration.cache or getattr(calibrator, "cache_path", None)


def _trtexec_line(spec: EngineSpec, engine_path: Path, gen: str, net: _Network, calib_file: Any) -> str:
    """The trtexec line that rebuilds this engine (for its sidecar)."""
    opts = spec.options
    return trtexec_command(
        spec.onnx,
        engine_path,
        spec.precision,
        gen,
        batch=None if net.static else net.batch,
        input_name=net.input_name,
        input_chw=net.chw,
        workspace_mib=opts.workspace_mib,
        calibration_cache=calib_file,
        timing_cache=opts.timing_cache,
        dla_core=opts.dla_core,
        int8_fp16_fallback=opts.int8_fp16_fallback,
        strongly_typed=TABLE[gen].typed_flag(net.typed),
    )


def _write_build_sidecar(
    spec: EngineSpec,
    engine_path: Path,
    key: EngineKey,
    net: _Network,
    card_dict: dict[str, Any] | None,
    int8_source: str,
    calib_file: Any,
) -> EngineResult:
    """The engine's sidecar: key, card, build options and the two rebuild lines (lsa-edge, trtexec); returns
    what was built."""
    gen = generation(key.tensorrt)
    opts = spec.options
    batch = None if net.static else net.batch
    lsa = spec.rebuild_command or _lsa_edge_command(
        spec.onnx, spec.out_dir, spec.precision, batch, opts.dla_core
    )
    result = EngineResult(
        engine_path, sidecar_path(engine_path), key, gen, net.typed, int8_source, net.static,
        engine_path.stat().st_size,
    )  # fmt: skip
    write_sidecar(
        engine_path,
        key,
        card_dict,
        build_options={
            "generation": gen,
            "onnx_file": spec.onnx.name,
            "input_name": net.input_name,
            "input_chw": list(net.chw),
            "static_shape": net.static,
            "workspace_mib": opts.workspace_mib,
            "int8": int8_source or None,
            "int8_fp16_fallback": bool(opts.int8_fp16_fallback) if spec.precision == "int8" else None,
            "calibration_cache": str(calib_file) if calib_file is not None else None,
            "timing_cache": str(opts.timing_cache) if opts.timing_cache is not None else None,
            "dla_core": opts.dla_core,
            "gpu_fallback": opts.dla_core is not None,
            "version_compatible": bool(opts.version_compatible),
            "strongly_typed": net.typed,
            "engine_bytes": result.engine_bytes,
        },
        # trtexec is the alternative without lsa-edge: its engine gets no sidecar (the runtime cannot check it).
        rebuild_command={"lsa_edge": lsa, "trtexec": _trtexec_line(spec, engine_path, gen, net, calib_file)},
    )
    return result


def build_engine(spec: EngineSpec, log: logging.Logger | None = None) -> EngineResult:
    """Build the TensorRT engine ``spec`` describes, with the local TensorRT; returns what was written.

    The file is named :meth:`EngineKey.file_stem` + ``.engine`` in ``spec.out_dir`` and gets a sidecar
    ``.engine.json`` with the key, the model card, the build options and the rebuild commands. The
    generation's rules (:mod:`._trt_generations`) decide typing, flags and calibration; option combinations
    this TensorRT cannot build are refused before parsing.

    log: where this function's messages go (TensorRT's own go to "lsa_edge.tensorrt").
    """
    log = log or _LOG
    _require_file(spec.onnx)
    trt = require("tensorrt", "building TensorRT engines")
    calibrator = _check_options(str(trt.__version__), spec)
    gpu, cc = gpu_info()
    card_dict = _card_dict(spec.card, spec.onnx)
    sha = spec.model_sha256 or sha256_file(spec.onnx)
    net = _parse_network(trt, spec)
    config, int8_source = _builder_config(trt, net, spec, calibrator)
    key = EngineKey(sha, spec.precision, str(trt.__version__), gpu, cc, net.batch, spec.options.dla_core)
    engine_path = _serialize(net, config, key, spec, log)
    calib_file = _calib_file(int8_source, spec.calibration, calibrator)
    result = _write_build_sidecar(spec, engine_path, key, net, card_dict, int8_source, calib_file)
    log.info("wrote %s (%.1f MB) and its sidecar", engine_path, result.engine_bytes / 1e6)
    return result
