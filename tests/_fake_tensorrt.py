"""A minimal stand-in for the ``tensorrt`` module, per API generation, that records what the builder does.

It models only the parts of NVIDIA's Python API that lsa-edge calls, with the members each generation
has: 8.5 has NetworkDefinitionCreationFlag.EXPLICIT_BATCH and no STRONGLY_TYPED; 10 has both (EXPLICIT_BATCH
deprecated); 11 has no BuilderFlag.FP16/INT8, no int8_calibrator/set_calibration_profile and no
calibrator classes. Using a member a generation lacks raises AttributeError, as the real module would.
"""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version


@dataclass
class FakeTensor:
    name: str
    shape: tuple[int, ...]
    dtype: Any = None


@dataclass
class FakeLayer:
    name: str
    type: Any
    outputs: list[FakeTensor] = field(default_factory=list)
    dla_ok: bool = True

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    def get_output(self, j: int) -> FakeTensor:
        return self.outputs[j]


@dataclass
class FakeParserError:
    text: str
    node_index: int
    error_code: Any
    name: str | None = None

    def desc(self) -> str:
        return self.text

    def node(self) -> int:
        return self.node_index

    def code(self) -> Any:
        return self.error_code


def make_tensorrt(
    version: str = "10.3.0.26",
    *,
    input_shape: tuple[int, ...] = (-1, 3, 128, 112),
    layer_kinds: tuple[str, ...] = ("CONVOLUTION", "ACTIVATION"),
    half: bool = False,
    parse_errors: tuple[str, ...] = (),
    dla_cores: int = 0,
    build_ok: bool = True,
) -> types.ModuleType:
    """A fake ``tensorrt`` of ``version``; ``trt.calls`` records (what, value) pairs in call order.

    layer_kinds: LayerType names of the parsed network's layers ("QUANTIZE"/"DEQUANTIZE" make it Q/DQ).
    half: the layers' outputs are HALF (an FP16 ONNX) instead of FLOAT.
    """
    v = Version(version)
    gen = "11" if v.major >= 11 else "10" if v.major == 10 else "8.5"
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    calls: list[tuple[str, Any]] = []
    trt.calls = calls

    ncf = {
        "8.5": {"EXPLICIT_BATCH": 0, "EXPLICIT_PRECISION": 1},
        "10": {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1},
    }
    trt.NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", ncf.get(gen, {"STRONGLY_TYPED": 0, "PREFER_AOT_PYTHON_PLUGINS": 1})
    )
    flags = ["TF32", "GPU_FALLBACK", "REFIT"]
    if gen != "11":
        flags += ["FP16", "INT8"]
    if v >= Version("8.6"):
        flags += ["VERSION_COMPATIBLE"]
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM"])
    trt.DeviceType = enum.IntEnum("DeviceType", ["GPU", "DLA"])
    trt.LayerType = enum.IntEnum(
        "LayerType", ["CONVOLUTION", "ACTIVATION", "QUANTIZE", "DEQUANTIZE", "SHAPE"]
    )
    trt.DataType = enum.IntEnum("DataType", ["FLOAT", "HALF", "INT8"])
    trt.ErrorCode = enum.IntEnum("ErrorCode", ["SUCCESS", "UNSUPPORTED_NODE", "INVALID_NODE"])

    class ILogger:
        Severity = enum.IntEnum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"])

        def __init__(self) -> None:
            self.base_initialised = True

    trt.ILogger = ILogger
    trt.Logger = ILogger

    if gen != "11":

        class _CalibratorBase:
            def __init__(self) -> None:
                self.base_initialised = True

        trt.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (_CalibratorBase,), {})
        trt.IInt8MinMaxCalibrator = type("IInt8MinMaxCalibrator", (_CalibratorBase,), {})

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.inputs: list[FakeTensor] = []
            self.layers: list[FakeLayer] = []

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        def get_input(self, i: int) -> FakeTensor:
            return self.inputs[i]

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i: int) -> FakeLayer:
            return self.layers[i]

    class OnnxParser:
        def __init__(self, network: Network, logger: Any) -> None:
            assert isinstance(logger, ILogger)
            self.network = network
            self.errors = [
                FakeParserError(text, i, trt.ErrorCode.UNSUPPORTED_NODE)
                for i, text in enumerate(parse_errors)
            ]

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parse_from_file", path))
            if self.errors:
                return False
            dtype = trt.DataType.HALF if half else trt.DataType.FLOAT
            self.network.inputs.append(FakeTensor("faces", input_shape, trt.DataType.FLOAT))
            for i, kind in enumerate(layer_kinds):
                out = FakeTensor(f"t{i}", input_shape, dtype)
                self.network.layers.append(FakeLayer(f"layer{i}_{kind.lower()}", trt.LayerType[kind], [out]))
            return True

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> FakeParserError:
            return self.errors[i]

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytes(data)

        def serialize(self) -> bytes:
            return self.data + b"+timed"

    class Config:
        def __init__(self) -> None:
            self.flags: set[Any] = set()
            self.profiles: list[Profile] = []
            self.pool_limits: dict[Any, int] = {}
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.timing_cache: TimingCache | None = None
            if gen != "11":
                self.int8_calibrator = None
                self.calibration_profile: Profile | None = None

        def set_flag(self, flag: Any) -> None:
            calls.append(("set_flag", flag.name))
            self.flags.add(flag)

        def clear_flag(self, flag: Any) -> None:
            calls.append(("clear_flag", flag.name))
            self.flags.discard(flag)

        def add_optimization_profile(self, profile: Profile) -> int:
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pool_limits[pool] = size

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls.append(("create_timing_cache", bytes(data)))
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> TimingCache | None:
            return self.timing_cache

        def can_run_on_DLA(self, layer: FakeLayer) -> bool:
            return layer.dla_ok

    if gen != "11":

        def set_calibration_profile(self: Config, profile: Profile) -> None:
            self.calibration_profile = profile

        Config.set_calibration_profile = set_calibration_profile

    class Builder:
        def __init__(self, logger: Any) -> None:
            assert isinstance(logger, ILogger)
            self.num_DLA_cores = dla_cores
            self.network: Network | None = None
            self.config: Config | None = None

        def create_network(self, flags: int = 0) -> Network:
            calls.append(("create_network", flags))
            self.network = Network(flags)
            return self.network

        def create_builder_config(self) -> Config:
            self.config = Config()
            trt.last_config = self.config
            return self.config

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            calls.append(("build_serialized_network", sorted(f.name for f in config.flags)))
            trt.last_network = network
            return b"PLAN:" + version.encode() if build_ok else None

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, data: bytes) -> Any:
            calls.append(("deserialize_cuda_engine", bytes(data)))
            return types.SimpleNamespace(plan=bytes(data)) if data.startswith(b"PLAN:") else None

    trt.OnnxParser = OnnxParser
    trt.Builder = Builder
    trt.Runtime = Runtime
    return trt
