"""Inference backends behind one interface: ``predict(faces) -> probs``.

faces: N×3×H×W float32, normalised with the model card's preprocessing; probs: N×40 float32.
One module per backend; each imports its runtime lazily. So far: ONNX Runtime (CPU and other providers).
"""

from __future__ import annotations

from .onnxruntime import OnnxRuntimeBackend

__all__ = ["OnnxRuntimeBackend"]
