"""Training of the LSA model (torch, transformers). Imported as ``lsa_edge.training``.

Depends on the ``lsa_edge`` core; the core never imports this package. Importing it needs torch.
"""

from __future__ import annotations

from lsa_edge._lazy import require

# Before any module of this package: on Python 3.8 (JetPack 5's) this says training needs Python >= 3.9,
# instead of failing on newer syntax or an old torch. This file itself must stay Python 3.8 syntax.
require("torch", "training")

from . import _plugin  # noqa: E402, F401  (registers checkpoint support with the core)
from .model import LSAConfig, LSAModel, create_model, list_models  # noqa: E402

__all__ = ["LSAConfig", "LSAModel", "create_model", "list_models"]
