"""The exception hierarchy. Every error a user can cause derives from :class:`LsaEdgeError`.

Messages say what was received, what is accepted, and what to do next. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CalibrationError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "EngineMismatchError",
    "GpuUnavailableError",
    "LsaEdgeError",
    "MissingDependencyError",
    "PackageError",
    "unknown_choice",
]


class LsaEdgeError(Exception):
    """Base class of all errors raised by lsa-edge for bad input or a bad environment."""


class MissingDependencyError(LsaEdgeError, ImportError):
    """An optional dependency needed by the chosen feature is not installed."""


class ConfigError(LsaEdgeError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataError(LsaEdgeError):
    """A data set is missing, malformed, or does not match the expected attributes."""


class CheckpointError(LsaEdgeError):
    """A checkpoint cannot be read or is not an lsa-edge checkpoint."""


class PackageError(LsaEdgeError):
    """A model package (build folder) is damaged or incomplete, or its manifest.json is invalid: a file it
    names is missing, differs from its recorded sha256, or lies outside the folder."""


class EngineMismatchError(LsaEdgeError):
    """A serialized engine does not match the running TensorRT / GPU; the message names the rebuild command."""


class GpuUnavailableError(LsaEdgeError):
    """No usable CUDA GPU: no NVIDIA driver, no device, or a driver too old for the installed CUDA binding."""


class CalibrationError(LsaEdgeError):
    """INT8 calibration failed or lost more accuracy than allowed."""


def unknown_choice(kind: str, name: object, choices: Iterable[str]) -> str:
    """'unknown backbone 'resnet19'; available: a, b. Did you mean 'resnet18'?'"""
    import difflib

    options = list(choices)
    close = difflib.get_close_matches(str(name), options, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}; available: {', '.join(options)}.{hint}"
