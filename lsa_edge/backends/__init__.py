"""Inference backends behind one interface: ``predict(faces) -> probs``.

faces: N×3×H×W float32, normalised with the model card's preprocessing; probs: N×40 float32.
One module per backend, each importing its runtime lazily: ``onnxruntime`` (CPU, CUDA, TensorRT
providers), ``tensorrt`` (engines; CUDA through cuda-python or pycuda); the PyTorch backend lives in ``lsa_edge.training.backend``.
Which one runs a model: :func:`lsa_edge.package.select_backend`.
"""

from __future__ import annotations

from .onnxruntime import OnnxRuntimeBackend

__all__ = ["OnnxRuntimeBackend"]
