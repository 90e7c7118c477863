"""Inference backends behind one contract, :class:`~lsa_edge.backends.base.Backend`: ``predict(faces) -> probs``.

faces: N×3×H×W float32, normalised with the model card's preprocessing; probs: N×40 float32. Every backend
also has ``name``, ``max_batch``, ``input_shape``, ``num_outputs``, ``describe()``, ``close()`` and is a
context manager (:mod:`.base`; the face detector's runners follow the same :class:`ModelRunner` contract).
One module per backend, each importing its runtime lazily: ``onnxruntime`` (CPU, CUDA, TensorRT
providers; also the one ONNX Runtime session opener the detector uses), ``tensorrt`` (engines; CUDA through
cuda-python or pycuda); the PyTorch backend lives in ``lsa_edge.training.backend``.
Which one runs a model: :func:`lsa_edge.package.select_backend`.
"""

from __future__ import annotations

from .base import Backend, ModelRunner
from .onnxruntime import OnnxRuntimeBackend

__all__ = ["Backend", "ModelRunner", "OnnxRuntimeBackend"]
