"""The exception hierarchy. Every error a user can cause derives from :class:`LsaEdgeError`.

Messages say what was received, what is accepted, and what to do next. Imports nothing heavy.
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "EngineMismatchError",
    "LsaEdgeError",
    "MissingDependencyError",
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


class EngineMismatchError(LsaEdgeError):
    """A serialized engine does not match the running TensorRT / GPU; the message names the rebuild command."""


class CalibrationError(LsaEdgeError):
    """INT8 calibration failed or lost more accuracy than allowed."""
