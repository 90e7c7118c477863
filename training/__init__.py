"""Training of the LSA model (torch, transformers). Imported as ``lsa_edge.training``.

Depends on the ``lsa_edge`` core; the core never imports this package. Importing it needs torch.
"""

from __future__ import annotations

from lsa_edge._lazy import require

require("torch", "training")

from .model import LSAConfig, LSAModel, create_model, list_models  # noqa: E402

__all__ = ["LSAConfig", "LSAModel", "create_model", "list_models"]
