"""The PyTorch backend of the runtime: a training checkpoint run eagerly (CUDA when available).

Lives in the training package (it needs torch and the model code); the core reaches it through
``lsa_edge.package.select_backend(..., "torch")`` by import path, never at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model

log = logging.getLogger(__name__)


class TorchBackend:
    name = "torch"
    max_batch = None

    def __init__(self, checkpoint: str | Path, device: str | None = None) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.card, _ = load_model(checkpoint, self.device)
        log.info("PyTorch backend on %s (%s)", self.device, Path(checkpoint).name)

    @torch.inference_mode()
    def predict(self, faces: np.ndarray, batch_size: int = 64) -> np.ndarray:
        outs = []
        for i in range(0, len(faces), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(faces[i : i + batch_size], dtype=np.float32)).to(
                self.device
            )
            outs.append(torch.sigmoid(self.model(x)).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, len(self.card.attributes)), np.float32)

    def close(self) -> None:
        self.model = None
