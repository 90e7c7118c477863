"""The PyTorch backend of the runtime: a training checkpoint run eagerly (CUDA when available).

Lives in the training package (it needs torch and the model code); the core reaches it through
``lsa_edge.package.select_backend(..., "torch")`` by import path, never at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from lsa_edge.errors import ConfigError

from .checkpoint import load_model
from .model import LSAModel

log = logging.getLogger(__name__)


class TorchBackend:
    name = "torch"
    max_batch = None

    def __init__(self, checkpoint: str | Path, device: str | None = None) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.path = Path(checkpoint)
        self.model: LSAModel | None
        self.model, self.card, _ = load_model(checkpoint, self.device)
        log.info("PyTorch backend on %s (%s)", self.device, self.path.name)

    @torch.inference_mode()
    def predict(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """N×3×H×W normalised faces → N×40 probabilities; ConfigError once :meth:`close` ran."""
        model = self.model
        if model is None:
            raise ConfigError(f"the PyTorch backend for {self.path.name} was closed; create a new one")
        outs = []
        for i in range(0, len(faces), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(faces[i : i + batch_size], dtype=np.float32)).to(
                self.device
            )
            outs.append(torch.sigmoid(model(x)).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, len(self.card.attributes)), np.float32)

    def close(self) -> None:
        self.model = None
