"""The PyTorch backend of the runtime: a training checkpoint run eagerly (CUDA when available).

Lives in the training package (it needs torch and the model code); the core reaches it through
``lsa_edge.package.select_backend(..., "torch")`` by import path, never at import time. It is a
:class:`lsa_edge.backends.base.Backend` like the ONNX Runtime and TensorRT backends.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lsa_edge.backends.base import BackendBase

from .checkpoint import load_model
from .model import LSAModel

log = logging.getLogger(__name__)


class TorchBackend(BackendBase):
    """A checkpoint's model: ``predict(faces N×3×H×W float32) -> probs N×C float32`` (sigmoid of the
    logits). device: a torch device ("cpu", "cuda", "cuda:1"); None: CUDA when torch sees a GPU."""

    name = "torch"
    max_batch = None

    def __init__(self, checkpoint: str | Path, device: str | None = None) -> None:
        self.path = Path(checkpoint)
        self.label = self.path.name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model: LSAModel | None
        self.model, self.card, _ = load_model(checkpoint, self.device)
        h, w = self.card.preprocessing.input_size
        self.input_shape = (None, 3, int(h), int(w))
        self.num_outputs = len(self.card.attributes)
        log.info("PyTorch backend on %s (%s)", self.device, self.path.name)

    def _handle(self) -> Any:
        return self.model

    @torch.inference_mode()
    def _run(self, model: Any, x: np.ndarray) -> np.ndarray:
        return torch.sigmoid(model(torch.from_numpy(x).to(self.device))).float().cpu().numpy()

    def _release(self) -> None:
        self.model = None
