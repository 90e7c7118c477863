"""A strict stand-in for the ``tensorrt`` module, generated from NVIDIA's real API of each generation.

The classes, methods, properties, enum members and enum values are the real ones of the version asked
for: they come from ``tests/data/tensorrt_api/<version>.json``, which ``scripts/tensorrt_api.py`` reads out
of NVIDIA's real bindings wheels (8.6.1, 10.3.0, 10.13.3.9, 11.4.0.106) and binding sources (8.5.2). On top
of that skeleton, the behaviour lsa-edge relies on is modelled (a builder that records its flags, a parser
that yields layers or errors, a runtime whose engines compute on fake GPU memory). So, as with the real
module:

* a name the real module of that version lacks raises ``AttributeError`` (``BuilderFlag.FP16`` on 11,
  ``Runtime.engine_host_code_allowed`` on 8.5, ``ParserError.node_name`` before 10);
* setting an attribute a real class lacks, or a read-only property, raises ``AttributeError`` (pybind11
  classes have no ``__dict__``); Python subclasses (loggers, calibrators) may set anything, as in reality;
* enum members are ints with the real values, and ``.name`` is a method where the real one is (ErrorCode
  before 10.16), a property elsewhere;
* a real name the fake does not model raises ``NotImplementedError`` when used: extend the fake.

Fake-only state lives under ``trt._fake`` (calls, the last network/config, the names used) and in
underscore attributes, never in public names.
"""

from __future__ import annotations

import json
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
from packaging.version import Version

API_DIR = Path(__file__).parent / "data" / "tensorrt_api"
# (from, below, data file): the real API that stands for a running version (as in scripts/tensorrt_api.py).
_DATA_FOR = (
    ("8.5", "8.6", "8.5.2"),
    ("8.6", "9", "8.6.1"),
    ("10", "10.12", "10.3.0"),
    ("10.12", "11", "10.13.3.9"),
    ("11", "99", "11.4.0.106"),
)


def api_version_for(version: str) -> str:
    v = Version(version)
    for lo, hi, data in _DATA_FOR:
        if Version(lo) <= v < Version(hi):
            return data
    raise ValueError(f"no TensorRT API data stands for {version}")


@lru_cache(maxsize=None)
def load_api(data_version: str) -> dict[str, Any]:
    return json.loads((API_DIR / f"{data_version}.json").read_text())


# Names lsa-edge used, per API data version, across every fake of the session ("Class.member", "Enum.MEMBER"
# or a module-level name): what tests/conftest.py writes when LSA_EDGE_TRT_USAGE is set, and what
# `scripts/tensorrt_api.py conformance` tabulates.
USAGE: dict[str, set[str]] = {}


def _record(fake: Any, name: str) -> None:
    fake.used.add(tuple(name.rsplit(".", 1)) if "." in name else ("", name))
    USAGE.setdefault(fake.data_version, set()).add(name)


# ---------------------------------------------------------------------------------------- strict classes

_PROPERTY_KINDS = {"property", "readonly_property", "static_property"}
_METHOD_KINDS = {"method", "static_method"}


class _Strict:
    """Base of every generated class: public names are exactly the real class's."""

    _api_name = ""
    _members: dict[str, str] = {}  # noqa: RUF012  (replaced per generated class)
    _fake: Any = None
    _generated: type | None = None  # the generated class itself; its Python subclasses are not strict

    def __getattribute__(self, attr: str) -> Any:
        if not attr.startswith("_"):
            gen = type(self)._generated
            # record what lsa-edge itself uses (not the tests' or the fake's own look-ups)
            if gen is not None and attr in gen._members and _caller_is_product():
                _record(gen._fake, f"{gen._api_name}.{attr}")
        return object.__getattribute__(self, attr)

    def __getattr__(self, attr: str) -> Any:  # only when normal lookup failed
        gen = type(self)._generated
        if attr.startswith("_") or gen is None:
            raise AttributeError(attr)
        if attr in gen._members:
            raise NotImplementedError(
                f"the fake does not model tensorrt.{gen._api_name}.{attr} ({gen._members[attr]}); "
                "model it in tests/_fake_tensorrt.py"
            )
        raise AttributeError(
            f"'tensorrt.{gen._api_name}' object has no attribute '{attr}' (TensorRT {gen._fake.version})"
        )

    def __setattr__(self, attr: str, value: Any) -> None:
        cls = type(self)
        if attr.startswith("_") or cls is not cls._generated:  # internals, or a Python subclass
            object.__setattr__(self, attr, value)
            return
        kind = cls._members.get(attr)
        if kind is None:
            raise AttributeError(
                f"'tensorrt.{cls._api_name}' object has no attribute '{attr}' (TensorRT {cls._fake.version})"
            )
        if kind != "property":
            raise AttributeError(f"can't set {kind} 'tensorrt.{cls._api_name}.{attr}'")
        if _caller_is_product():
            _record(cls._fake, f"{cls._api_name}.{attr}")
        object.__setattr__(self, attr, value)

    def _init_property(self, name: str, value: Any) -> None:
        """Give a real read/write property its initial value, where this version has it."""
        if type(self)._generated is not None and name in type(self)._generated._members:
            object.__setattr__(self, name, value)


def _caller_is_product() -> bool:
    return sys._getframe(2).f_globals.get("__name__", "").startswith("lsa_edge")


def _own_members(impl: type) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    for klass in reversed(impl.__mro__):
        if klass in (object, _Strict):
            continue
        for k, v in vars(klass).items():
            if k in ("__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"):
                continue
            ns[k] = v
    return ns


def _generate(fake: Any, name: str, impl: type | None, bases: tuple[type, ...] = (_Strict,)) -> type:
    """The class ``name`` of ``fake``'s API, with ``impl``'s behaviour for the members this version has."""
    members = fake.api["classes"][name]["members"]
    ns: dict[str, Any] = {}
    for k, v in _own_members(impl or object).items():
        if k.startswith("_"):
            ns[k] = v
            continue
        if k not in members:  # the behaviour pool serves every version; this one lacks the name
            continue
        real = members[k]
        is_prop = isinstance(v, property)
        if (real in _PROPERTY_KINDS) != is_prop or (real in _METHOD_KINDS) != callable(v):
            raise TypeError(
                f"fake drift: tensorrt.{name}.{k} is a {real} in TensorRT {fake.version}, the fake defines "
                f"a {'property' if is_prop else type(v).__name__}"
            )
        ns[k] = v
    ns.update(_api_name=name, _members=members, _fake=fake)
    cls = type(name.rsplit(".", 1)[-1], bases, ns)
    cls._generated = cls
    return cls


class _Unmodelled:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"the fake does not model creating tensorrt.{type(self)._api_name}")


# ------------------------------------------------------------------------------------------------- enums


class _EnumMeta(type):
    """Records which members lsa-edge reads (``trt.BuilderFlag.FP16``)."""

    def __getattribute__(cls, name: str) -> Any:
        if not name.startswith("_"):
            members = type.__getattribute__(cls, "__members__")
            fake = type.__getattribute__(cls, "_fake_ns")
            if name in members and fake is not None and _caller_is_product():
                _record(fake, f"{type.__getattribute__(cls, '_qualname')}.{name}")
        return type.__getattribute__(cls, name)


def _make_enum(qualname: str, info: dict[str, Any], fake: Any = None) -> type:
    """A pybind11-like enum: members are instances of the class, not ints — ``int(m)`` works, but
    ``m == 0`` is False and ``1 << m`` raises, as with NVIDIA's (non-arithmetic) enums."""
    short = qualname.rsplit(".", 1)[-1]
    values = {k: v for k, v in info["members"].items() if v is not None}

    def _name(self: Any) -> str:
        return self._name

    def new(cls: type, value: int) -> Any:
        for member in type.__getattribute__(cls, "__members__").values():
            if int(member) == int(value):
                return member
        raise ValueError(f"{value} is not a valid {short}")

    ns: dict[str, Any] = {
        "__new__": new,
        "__int__": lambda self: self._value,
        "__index__": None,  # not an integer for <<, | or indexing
        "__repr__": lambda self: f"<{short}.{self._name}: {self._value}>",
        "__str__": lambda self: f"{short}.{self._name}",
        "__hash__": lambda self: hash(self._value),
        "__eq__": lambda self, other: type(other) is type(self) and other._value == self._value,
        "name": _name if info["name_kind"] == "method" else property(_name),
        "value": property(lambda self: self._value),
        "__members__": {},
        "_fake_ns": fake,
        "_qualname": qualname,
    }
    enum_cls = _EnumMeta(short, (), ns)
    members = type.__getattribute__(enum_cls, "__members__")
    for k, v in values.items():
        member = object.__new__(enum_cls)
        member._value, member._name = int(v), k
        members[k] = member
        setattr(enum_cls, k, member)
    return enum_cls


# --------------------------------------------------------------------------------------- the behaviour


class FakeTensor:
    """ITensor."""

    def __init__(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
        self._init_property("name", name)
        self._init_property("shape", tuple(shape))
        self._init_property("dtype", dtype)


class FakeLayer:
    """ILayer: its type, outputs, and whether DLA can run it (the fake's knob)."""

    def __init__(self, trt: Any, name: str, kind: str, outputs: list[Any], dla_ok: bool = True) -> None:
        self._init_property("name", name)
        self._type = getattr(trt.LayerType, kind)
        self._outputs = outputs
        self._dla_ok = dla_ok

    @property
    def type(self) -> Any:
        return self._type

    @property
    def num_outputs(self) -> int:
        return len(self._outputs)

    def get_output(self, index: int) -> Any:
        return self._outputs[index]


class FakeNetwork:
    """INetworkDefinition, filled by the parser."""

    def __init__(self, flags: int) -> None:
        self._flags = flags
        self._inputs: list[Any] = []
        self._layers: list[Any] = []

    @property
    def num_inputs(self) -> int:
        return len(self._inputs)

    def get_input(self, index: int) -> Any:
        return self._inputs[index]

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def get_layer(self, index: int) -> Any:
        return self._layers[index]

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))


class FakeParserError:
    """ParserError: every field is a method, as in the real class; node_name/operator from 10 on."""

    def __init__(self, text: str, node: int, code: Any) -> None:
        self._text, self._node, self._code = text, node, code

    def desc(self) -> str:
        return self._text

    def node(self) -> int:
        return self._node

    def code(self) -> Any:
        return self._code

    def node_name(self) -> str:
        return f"/block{self._node}/op"

    def node_operator(self) -> str:
        return "GridSample"


class FakeOnnxParser:
    def __init__(self, network: Any, logger: Any) -> None:
        fake = type(self)._fake
        if not isinstance(logger, fake.module.ILogger):
            raise TypeError(
                "OnnxParser(): incompatible function arguments (logger must be a tensorrt.ILogger)"
            )
        self._network = network
        code = fake.module.ErrorCode.UNSUPPORTED_NODE
        self._errors = [fake.module.ParserError._wrap(t, i, code) for i, t in enumerate(fake.parse_errors)]

    def parse_from_file(self, model: str) -> bool:
        fake = type(self)._fake
        trt = fake.module
        fake.calls.append(("parse_from_file", model))
        if self._errors:
            return False
        dtype = trt.DataType.HALF if fake.half else trt.DataType.FLOAT
        self._network._inputs.append(trt.ITensor._wrap("faces", fake.input_shape, trt.DataType.FLOAT))
        for i, kind in enumerate(fake.layer_kinds):
            out = trt.ITensor._wrap(f"t{i}", fake.input_shape, dtype)
            self._network._layers.append(trt.ILayer._wrap(trt, f"layer{i}_{kind.lower()}", kind, [out]))
        return True

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> Any:
        return self._errors[index]


class FakeProfile:
    """IOptimizationProfile."""

    def __init__(self) -> None:
        self._shapes: dict[str, list[tuple[int, ...]]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        self._shapes[input] = [tuple(min), tuple(opt), tuple(max)]

    def get_shape(self, input: str) -> list[tuple[int, ...]]:
        return self._shapes.get(input, [])


class FakeTimingCache:
    """ITimingCache."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)

    def serialize(self) -> Any:
        return type(self)._fake.module.IHostMemory._wrap(self._data + b"+timed")


class FakeHostMemory:
    """IHostMemory: a buffer (memoryview works on it; the generated class also derives from bytes)."""

    @property
    def nbytes(self) -> int:
        return len(self)


class FakeConfig:
    """IBuilderConfig: flags as the real bitmask, profiles, pools, calibration, DLA, timing cache."""

    def __init__(self) -> None:
        trt = type(self)._fake.module
        self._flags = 0
        self._profiles: list[Any] = []
        self._pools: dict[int, int] = {}
        self._calibration_profile: Any = None
        self._timing_cache: Any = None
        self._init_property("default_device_type", trt.DeviceType.GPU)
        self._init_property("DLA_core", -1)
        self._init_property("int8_calibrator", None)

    def set_flag(self, flag: Any) -> None:
        type(self)._fake.calls.append(("set_flag", _name(flag)))
        self._flags |= 1 << int(flag)

    def clear_flag(self, flag: Any) -> None:
        type(self)._fake.calls.append(("clear_flag", _name(flag)))
        self._flags &= ~(1 << int(flag))

    def get_flag(self, flag: Any) -> bool:
        return bool(self._flags & (1 << int(flag)))

    @property
    def flags(self) -> int:
        return self._flags

    def add_optimization_profile(self, profile: Any) -> int:
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self._pools[int(pool)] = int(pool_size)

    def get_memory_pool_limit(self, pool: Any) -> int:
        return self._pools[int(pool)]

    def set_calibration_profile(self, profile: Any) -> bool:
        self._calibration_profile = profile
        return True

    def get_calibration_profile(self) -> Any:
        return self._calibration_profile

    def create_timing_cache(self, serialized_timing_cache: bytes) -> Any:
        type(self)._fake.calls.append(("create_timing_cache", bytes(serialized_timing_cache)))
        return type(self)._fake.module.ITimingCache._wrap(serialized_timing_cache)

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        self._timing_cache = cache
        return True

    def get_timing_cache(self) -> Any:
        return self._timing_cache

    def can_run_on_DLA(self, layer: Any) -> bool:
        return layer._dla_ok


class FakeBuilder:
    def __init__(self, logger: Any) -> None:
        fake = type(self)._fake
        if not isinstance(logger, fake.module.ILogger):
            raise TypeError("Builder(): incompatible function arguments (logger must be a tensorrt.ILogger)")
        if not getattr(logger, "_base_initialised", False):
            raise RuntimeError("the logger's ILogger.__init__ was not called (real TensorRT would crash)")

    @property
    def num_DLA_cores(self) -> int:
        return type(self)._fake.dla_cores

    def create_network(self, flags: int = 0) -> Any:
        fake = type(self)._fake
        fake.calls.append(("create_network", int(flags)))
        network = fake.module.INetworkDefinition._wrap(int(flags))
        fake.last_network = network
        return network

    def create_builder_config(self) -> Any:
        fake = type(self)._fake
        config = fake.module.IBuilderConfig._wrap()
        fake.last_config = config
        return config

    def create_optimization_profile(self) -> Any:
        return type(self)._fake.module.IOptimizationProfile._wrap()

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        fake = type(self)._fake
        trt = fake.module
        names = sorted(k for k, v in trt.BuilderFlag.__members__.items() if config._flags & (1 << int(v)))
        fake.calls.append(("build_serialized_network", names))
        calibrator = config.__dict__.get("int8_calibrator")
        if calibrator is not None:
            if not isinstance(calibrator, trt.IInt8Calibrator):  # pybind11 would refuse it on assignment
                raise TypeError(f"int8_calibrator must be a tensorrt.IInt8Calibrator, got {type(calibrator)}")
            if not getattr(calibrator, "_base_initialised", False):
                raise RuntimeError(
                    "the calibrator's base __init__ was not called (real TensorRT would crash)"
                )
        strongly = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly is not None and network._flags & (1 << int(strongly)):
            weak = [n for n in ("FP16", "INT8") if n in names] + (["int8_calibrator"] if calibrator else [])
            if weak and fake.data_version != "11.4.0.106":  # 10 rejects them; 11 has none of them
                fake.calls.append(("error", f"strongly typed network with {weak}"))
                return None  # TensorRT 10 logs "... not allowed with strongly typed networks" and fails
        if not fake.build_ok:
            return None
        return trt.IHostMemory._wrap(b"PLAN:" + fake.version.encode())


class FakeRuntime:
    def __init__(self, logger: Any) -> None:
        fake = type(self)._fake
        if not isinstance(logger, fake.module.ILogger):
            raise TypeError("Runtime(): incompatible function arguments (logger must be a tensorrt.ILogger)")
        self._init_property("engine_host_code_allowed", False)
        self._init_property("DLA_core", -1)

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> Any:
        fake = type(self)._fake
        data = bytes(serialized_engine)
        fake.calls.append(("deserialize_cuda_engine", data))
        if not data.startswith(b"PLAN:"):
            return None
        return fake.module.ICudaEngine._wrap(fake.engine, data)


class EngineSpec:
    """What a fake engine computes: I/O tensors and ``compute(inputs) -> outputs`` on host arrays; the
    fake GPU (``memory``: read(ptr, nbytes) -> bytes, write(ptr, bytes)) holds the tensors' bytes."""

    def __init__(
        self,
        io: list[tuple[str, str, tuple[int, ...]]],
        compute: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
        memory: Any = None,
        max_batch: int = 16,
    ) -> None:
        self.io, self.compute, self.memory, self.max_batch = io, compute, memory, max_batch


class FakeEngine:
    """ICudaEngine."""

    def __init__(self, spec: EngineSpec | None, plan: bytes) -> None:
        self._spec = spec
        self._plan = plan

    @property
    def num_io_tensors(self) -> int:
        return len(self._spec.io)

    def _io(self, name: str) -> tuple[str, str, tuple[int, ...]]:
        for item in self._spec.io:
            if item[0] == name:
                return item
        raise KeyError(name)

    def get_tensor_name(self, index: int) -> str:
        return self._spec.io[index][0]

    def get_tensor_mode(self, name: str) -> Any:
        mode = type(self)._fake.module.TensorIOMode
        return mode.INPUT if self._io(name)[1] == "input" else mode.OUTPUT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._io(name)[2]

    def get_tensor_dtype(self, name: str) -> Any:
        return type(self)._fake.module.DataType.FLOAT

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        item = self._io(name)[2][1:]
        return [(1, *item), (max(1, self._spec.max_batch // 2), *item), (self._spec.max_batch, *item)]

    def create_execution_context(self) -> Any:
        return type(self)._fake.module.IExecutionContext._wrap(self)


class FakeContext:
    """IExecutionContext: named tensors at device addresses, computed by the engine's spec."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._addresses: dict[str, int] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._calls: list[int] = []

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses[name]

    def set_input_shape(self, name: str, shape: Any) -> bool:
        self._shapes[name] = tuple(shape)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        spec = self._engine._spec
        inputs = {}
        n = None
        for name, mode, _ in spec.io:
            if mode == "input":
                shape = self._shapes[name]
                n = shape[0]
                nbytes = int(np.prod(shape)) * 4
                inputs[name] = np.frombuffer(
                    spec.memory.read(self._addresses[name], nbytes), np.float32
                ).reshape(shape)
        outputs = spec.compute(inputs)
        for name, value in outputs.items():
            spec.memory.write(self._addresses[name], np.ascontiguousarray(value, np.float32).tobytes())
        self._calls.append(n)
        return True


class FakeLogger:
    """ILogger (a trampoline: Python subclasses override ``log``) and Logger."""

    def __init__(self, *args: Any) -> None:
        self._base_initialised = True

    def log(self, severity: Any, msg: str) -> None:
        type(self)._fake.calls.append(("log", _name(severity), msg))


class FakeCalibrator:
    """The IInt8*Calibrator trampolines: the base __init__ must be called; methods are overridden."""

    def __init__(self) -> None:
        self._base_initialised = True

    def get_batch_size(self) -> int:
        return 1

    def get_batch(self, names: list[str]) -> Any:
        return None

    def read_calibration_cache(self) -> Any:
        return None

    def write_calibration_cache(self, cache: Any) -> None:
        return None

    def get_algorithm(self) -> Any:
        algo = type(self)._fake.module.CalibrationAlgoType
        return algo.MINMAX_CALIBRATION if "MinMax" in type(self)._api_name else algo.ENTROPY_CALIBRATION_2


_BEHAVIOUR: dict[str, type] = {
    "Builder": FakeBuilder,
    "INetworkDefinition": FakeNetwork,
    "IBuilderConfig": FakeConfig,
    "IOptimizationProfile": FakeProfile,
    "ITimingCache": FakeTimingCache,
    "IHostMemory": FakeHostMemory,
    "ITensor": FakeTensor,
    "ILayer": FakeLayer,
    "OnnxParser": FakeOnnxParser,
    "ParserError": FakeParserError,
    "Runtime": FakeRuntime,
    "ICudaEngine": FakeEngine,
    "IExecutionContext": FakeContext,
    "ILogger": FakeLogger,
    "Logger": FakeLogger,
    "IInt8Calibrator": FakeCalibrator,
    "IInt8EntropyCalibrator2": FakeCalibrator,
    "IInt8MinMaxCalibrator": FakeCalibrator,
    "IInt8EntropyCalibrator": FakeCalibrator,
    "IInt8LegacyCalibrator": FakeCalibrator,
}
# Objects TensorRT hands out but Python cannot construct (no public constructor in the real module).
_HANDED_OUT = {
    "INetworkDefinition",
    "IBuilderConfig",
    "IOptimizationProfile",
    "ITimingCache",
    "IHostMemory",
    "ITensor",
    "ILayer",
    "ParserError",
    "ICudaEngine",
    "IExecutionContext",
}


def _name(member: Any) -> str:
    n = member.name
    return n() if callable(n) else n


def _nptype(trt_type: Any) -> Any:
    names = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "BOOL": np.bool_}
    names.update({"UINT8": np.uint8, "INT64": np.int64})
    name = _name(trt_type)
    if name not in names:
        raise TypeError(f"Could not resolve TensorRT datatype to an equivalent numpy datatype: {trt_type}")
    return names[name]


# ------------------------------------------------------------------------------------------------ module


class _FakeModule(types.ModuleType):
    def __getattribute__(self, name: str) -> Any:
        public = not name.startswith("_") and name in types.ModuleType.__getattribute__(self, "_public")
        if public and _caller_is_product():
            _record(types.ModuleType.__getattribute__(self, "_fake"), name)
        return types.ModuleType.__getattribute__(self, name)

    def __getattr__(self, name: str) -> Any:  # only for names the module does not have
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"module 'tensorrt' has no attribute '{name}' (TensorRT {self._fake.version})")


def make_tensorrt(
    version: str = "10.3.0.26",
    *,
    input_shape: tuple[int, ...] = (-1, 3, 128, 112),
    layer_kinds: tuple[str, ...] = ("CONVOLUTION", "ACTIVATION"),
    half: bool = False,
    parse_errors: tuple[str, ...] = (),
    dla_cores: int = 0,
    build_ok: bool = True,
    engine: EngineSpec | None = None,
) -> types.ModuleType:
    """A strict fake ``tensorrt`` of ``version`` built from the real API data that stands for it.

    input_shape / layer_kinds / half / parse_errors: what the ONNX parser produces (LayerType names;
    "QUANTIZE"/"DEQUANTIZE" make a Q/DQ network; half: layer outputs are HALF, an FP16 ONNX).
    dla_cores: Builder.num_DLA_cores. build_ok: False makes build_serialized_network return None.
    engine: what deserialized engines compute (EngineSpec), for runtime tests.
    ``trt._fake``: calls (in order), last_network, last_config, used {(class, member)}, api.
    """
    data_version = api_version_for(version)
    fake = types.SimpleNamespace(
        version=version,
        data_version=data_version,
        api=load_api(data_version),
        calls=[],
        used=set(),
        last_network=None,
        last_config=None,
        input_shape=tuple(input_shape),
        layer_kinds=tuple(layer_kinds),
        half=half,
        parse_errors=tuple(parse_errors),
        dla_cores=dla_cores,
        build_ok=build_ok,
        engine=engine,
    )
    trt = _FakeModule("tensorrt")
    trt.__version__ = version
    trt._fake = fake
    fake.module = trt
    api = fake.api
    trt._public = set(api["classes"]) | set(api["enums"]) | set(api["functions"]) | set(api["constants"])
    enums = {q: _make_enum(q, info, fake) for q, info in api["enums"].items()}
    classes: dict[str, type] = {}
    for qual in _base_first(api["classes"]):  # real subclassing (Logger is an ILogger)
        impl = _BEHAVIOUR.get(qual)
        bases = tuple(classes[b] for b in api["classes"][qual]["bases"] if b in classes) or (_Strict,)
        if qual == "IHostMemory":
            bases = (*bases, bytes)
        cls = _generate(fake, qual, impl or _Unmodelled, bases)
        if qual == "IHostMemory":
            cls._wrap = classmethod(lambda c, data: bytes.__new__(c, data))
        elif qual in _HANDED_OUT:
            # TensorRT creates these; the fake does too, through _wrap (Python cannot construct them).
            cls._wrap = classmethod(lambda c, *a: _construct(c, *a))
            cls.__init__ = _no_constructor  # type: ignore[method-assign]
        classes[qual] = cls
    for qual, cls in classes.items():  # nested enums/classes and exported enum values
        for member, kind in api["classes"][qual]["members"].items():
            nested = f"{qual}.{member}"
            if kind == "enum" and nested in enums:
                setattr(cls, member, enums[nested])
            elif kind == "class" and nested in classes:
                setattr(cls, member, classes[nested])
            elif kind == "constant":
                for sub, enum_cls in enums.items():
                    if sub.startswith(qual + ".") and member in enum_cls.__members__:
                        setattr(cls, member, enum_cls.__members__[member])
    for qual, cls in classes.items():
        if "." not in qual:
            setattr(trt, qual, cls)
    for qual, enum_cls in enums.items():
        if "." not in qual:
            setattr(trt, qual, enum_cls)
    for fn in api["functions"]:
        setattr(trt, fn, _nptype if fn == "nptype" else _unmodelled_function(fn))
    dtype = enums.get("DataType")
    for const in api["constants"]:
        member = getattr(dtype, const.upper(), None) if dtype is not None else None
        aliases = {"float32": "FLOAT", "float16": "HALF", "int32": "INT32", "int8": "INT8", "bool": "BOOL"}
        if dtype is not None and const in aliases:
            member = getattr(dtype, aliases[const], None)
        setattr(trt, const, member)
    return trt


def _base_first(classes: dict[str, Any]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name not in classes:
            return
        for base in classes[name]["bases"]:
            visit(base)
        order.append(name)

    for name in classes:
        visit(name)
    return order


def _construct(cls: type, *args: Any) -> Any:
    obj = object.__new__(cls)
    init = _INITS.get(cls._api_name)
    if init is not None:
        init(obj, *args)
    return obj


_INITS = {name: impl.__dict__["__init__"] for name, impl in _BEHAVIOUR.items() if "__init__" in impl.__dict__}


def _no_constructor(self: Any, *args: Any, **kwargs: Any) -> None:
    raise TypeError(f"tensorrt.{type(self)._api_name}: No constructor defined!")


def _unmodelled_function(name: str) -> Callable[..., Any]:
    def fn(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"the fake does not model tensorrt.{name}()")

    fn.__name__ = name
    return fn
