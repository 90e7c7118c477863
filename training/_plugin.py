"""The training package's plugin for the runtime core: checkpoints (``.pt``) read and run with PyTorch.

Registered when this package is imported, and found by the core through the ``lsa_edge.plugins`` entry
point (pyproject.toml) when it is not, so ``Pipeline("run/best.pt")`` works without importing training
first. The core (:mod:`lsa_edge.plugins`) never names this package.
"""

from __future__ import annotations

from pathlib import Path

from lsa_edge.card import ModelCard
from lsa_edge.plugins import register_checkpoint_loader


def read_card(path: Path) -> ModelCard:
    """The model card stored in a training checkpoint."""
    from .checkpoint import read_checkpoint

    return ModelCard.from_dict(read_checkpoint(path)["card"])


def open_backend(path: Path, device: str | None = None):  # -> TorchBackend
    """The PyTorch backend running ``path`` on ``device`` (None: CUDA where there is one)."""
    from .backend import TorchBackend

    return TorchBackend(path, device)


def register() -> None:
    """Lend the core checkpoint support (idempotent)."""
    register_checkpoint_loader("torch", read_card=read_card, open_backend=open_backend)


register()
