"""Model files shipped inside the package: the face detector (BlazeFace, converted to ONNX; see NOTICE and
PROVENANCE.json here). Paths only; nothing is loaded on import.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, unknown_choice

HERE = Path(__file__).resolve().parent
DETECTORS = {"full": "blazeface_full_range.onnx", "short": "blazeface_short_range.onnx"}


def detector_path(variant: str = "full") -> Path:
    """The shipped BlazeFace ONNX: ``full`` range (192×192, faces up to ~5 m) or ``short`` (128×128, ~2 m)."""
    if variant not in DETECTORS:
        raise ConfigError(unknown_choice("detector variant", variant, DETECTORS))
    path = HERE / DETECTORS[variant]
    if not path.is_file():
        raise ConfigError(
            f"the shipped detector {path.name} is missing from {HERE}; reinstall lsa-edge, or recreate it with "
            "lsa-edge convert-detector"
        )
    return path
