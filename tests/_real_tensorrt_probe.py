"""Run lsa-edge's TensorRT code against NVIDIA's *real* bindings (imported with stub libraries) and print
what happened as JSON. Started by tests/test_tensorrt_real_bindings.py in a process whose environment
(scripts/tensorrt_api.py: binding_env) makes ``import tensorrt`` the real extension of one version.

Real: the module, its enums and values, ILogger and the calibrator trampolines (subclassed for real; the
base ``get_algorithm`` runs NVIDIA's C++), cuda-python without a driver. Not possible without the engine
libraries: a Builder, Runtime or OnnxParser (their factories return NULL), so the parser error is a
stand-in carrying the real ErrorCode, and calibrator device buffers come from the fake GPU.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import tensorrt as trt

from lsa_edge.backends import _cuda
from lsa_edge.backends._tensorrt_env import enum_name, gpu_info, trt_logger
from lsa_edge.engines import tensorrt as engines_trt
from lsa_edge.errors import LsaEdgeError


def _error(fn):
    try:
        fn()
    except Exception as err:
        return {
            "type": type(err).__name__,
            "lsa_edge_error": isinstance(err, LsaEdgeError),
            "message": str(err),
        }
    return None


def main() -> None:
    out: dict = {"version": trt.__version__, "module": trt.__name__}
    gen = engines_trt.generation(trt.__version__)
    out["generation"] = gen

    # TensorRT's log → Python logging, for every real severity
    records: list = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append([record.getMessage(), record.levelno])

    target = logging.getLogger("lsa_edge.tensorrt")
    target.addHandler(Keep())
    target.setLevel(logging.DEBUG)
    logger = trt_logger(trt)
    out["logger_is_ilogger"] = isinstance(logger, trt.ILogger)
    for name, member in trt.ILogger.Severity.__members__.items():
        logger.log(member, name)
    out["logger_levels"] = dict(records)

    # network creation flags
    out["network_flags"] = {
        "weak": engines_trt._network_flags(trt, gen, False),
        "typed": None if gen == "8.5" else engines_trt._network_flags(trt, gen, True),
    }
    out["flag_values"] = {k: int(v) for k, v in trt.NetworkDefinitionCreationFlag.__members__.items()}
    out["weak_typing_deprecated"] = engines_trt.weak_typing_deprecated(trt.__version__)

    # builder flags through the same helper the builder uses
    class Config:
        def __init__(self) -> None:
            self.set = []

        def set_flag(self, flag) -> None:
            self.set.append([enum_name(flag), int(flag)])

    flags = {}
    for name in ("FP16", "INT8", "TF32", "GPU_FALLBACK"):
        cfg = Config()
        err = _error(lambda cfg=cfg, name=name: engines_trt._set_flag(trt, cfg, name))
        flags[name] = {"set": cfg.set, "error": err}
    out["builder_flags"] = flags

    # parser errors: a stand-in ParserError (no parser can be created) carrying the real ErrorCode
    class ParserError:
        def desc(self) -> str:
            return "No importer registered for op: GridSample"

        def node(self) -> int:
            return 3

        def code(self):
            return trt.ErrorCode.UNSUPPORTED_NODE

    out["parser_error"] = engines_trt.format_parser_error(ParserError())
    out["enum_names"] = {
        "ErrorCode.UNSUPPORTED_NODE": enum_name(trt.ErrorCode.UNSUPPORTED_NODE),
        "ILogger.Severity.WARNING": enum_name(trt.ILogger.Severity.WARNING),
        "DataType.HALF": enum_name(trt.DataType.HALF),
    }

    # the GPU through the real cuda-python (no driver here) and everything that needs it
    out["gpu_info"] = _error(gpu_info)
    out["cuda_python_installed"] = _error(lambda: _cuda._load("cuda-python")) is None
    with tempfile.TemporaryDirectory() as tmp:
        from lsa_edge.backends.tensorrt import TensorRTBackend

        out["backend"] = _error(lambda: TensorRTBackend(Path(tmp) / "m.engine"))
        out["load_engine"] = _error(lambda: engines_trt.load_engine(Path(tmp) / "m.engine"))

        # calibrators: real trampolines, fake GPU buffers
        from _fake_cuda import FakeGpu, install

        from lsa_edge.calibration.cache import write_cache
        from lsa_edge.calibration.trt_calibrator import cache_calibrator, entropy_calibrator

        mp = pytest.MonkeyPatch()
        gpu = FakeGpu()
        install(mp, gpu)
        cal: dict = {"has_classes": hasattr(trt, "IInt8EntropyCalibrator2")}
        rng = np.random.default_rng(0)
        batches = [
            {
                "faces": rng.standard_normal((2, 3, 8, 8)).astype(np.float32),
                "mask": np.ones((2, 1, 8, 8), np.float32),
            }
        ]
        err = _error(lambda: cal.setdefault("obj", entropy_calibrator(batches, Path(tmp) / "d.calib")))
        if err is None:
            c = cal.pop("obj")
            cal["isinstance_base"] = isinstance(c, trt.IInt8EntropyCalibrator2)
            cal["algorithm"] = enum_name(c.get_algorithm())  # NVIDIA's base implementation
            ptrs = c.get_batch(["faces", "mask"])
            cal["pointers"] = len(ptrs or [])
            cal["faces_on_gpu"] = (
                ptrs is not None and gpu.read(ptrs[0], 2 * 3 * 8 * 8 * 4) == batches[0]["faces"].tobytes()
            )
            cal["end"] = c.get_batch(["faces", "mask"])
            c.write_calibration_cache(b"TRT-8502-EntropyCalibration2\nfaces: 3c010204\n")
            cal["cache_written"] = (Path(tmp) / "d.calib").read_bytes().startswith(b"TRT-8502")
            c.close()
            cache = write_cache(Path(tmp) / "m.calib", {"faces": 1 / 127}, algorithm="minmax")
            cc = cache_calibrator(cache)
            cal["cache_calibrator_minmax"] = isinstance(cc, trt.IInt8MinMaxCalibrator)
            cal["cache_algorithm"] = enum_name(cc.get_algorithm())
        else:
            cal["error"] = err
        out["calibrator"] = cal
        mp.undo()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
