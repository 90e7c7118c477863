"""Checkpoints: weights plus everything needed to rebuild, feed and trace the model.

``best.pt`` holds: format, model config, state dict, the model card (preprocessing, attributes,
thresholds), the correlation dictionary with its prompts and encoder, data and label budget, seed,
metrics, git commit and library versions. ``last.pt`` adds optimizer, scheduler and RNG state for resume.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path
from typing import Any

import torch

from lsa_edge._fileio import atomic_write
from lsa_edge.card import ModelCard
from lsa_edge.errors import CheckpointError

from .model import LSAConfig, LSAModel
from .prior import CorrelationDictionary

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "lsa-edge-checkpoint"
CHECKPOINT_VERSION = 1


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's tensors (names, dtypes, shapes and bytes), independent of pickling."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def git_commit() -> str:
    """The lsa-edge repository's commit (with "-dirty" for uncommitted changes), or "" for an installed wheel."""

    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5)
        return res.stdout.strip() if res.returncode == 0 else ""

    here = Path(__file__).resolve().parent
    try:
        top = git("rev-parse", "--show-toplevel")
        pyproject = Path(top) / "pyproject.toml" if top else None
        if pyproject is None or not pyproject.exists() or 'name = "lsa-edge"' not in pyproject.read_text():
            return ""  # not our repository (e.g. a wheel installed inside someone else's checkout)
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return commit + ("-dirty" if commit and dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def save_checkpoint(
    path: Path, model: LSAModel, card: ModelCard, meta: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    card = card.with_updates(weights_sha256=state_sha256(state))
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": state,
        "card": card.to_dict(),
        "prior": model.prior_info.to_state() if model.prior_info is not None else None,
        "meta": meta,
        "versions": {"torch": str(torch.__version__)},
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:  # an interrupted save never leaves a half-written checkpoint
        torch.save(ckpt, f)


_ONNX_SECOND_FIELDS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42}  # ModelProto fields 2..8 after ir_version


def sniff_file(path: Path) -> str | None:
    """One line saying what ``path`` is when its first bytes show it is not a torch file (an ONNX model
    renamed .pt, a text file), or None (a zip or pickle: torch.load decides). Reads 512 bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as err:
        return f"{path} cannot be read ({err.strerror}); check the path and its permissions"
    if not head or head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # empty (torch's case), zip, pickle
        return None
    if len(head) > 2 and head[0] == 0x08 and head[1] < 0x80 and head[2] in _ONNX_SECOND_FIELDS:
        return (
            f"{path} is an ONNX model, not a torch checkpoint; pass it as .onnx (rename it to "
            f"{path.with_suffix('.onnx').name}): lsa-edge reads ONNX models by their ending"
        )
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return (
            f"{path} is a text file, not an lsa-edge checkpoint (a .pt written by lsa-edge train: best.pt or "
            "last.pt in the run folder)"
        )
    return (
        f"{path} is not an lsa-edge checkpoint (neither a torch zip nor a pickle; starts with {head[:8].hex()}); "
        "give a .pt written by lsa-edge train (best.pt or last.pt in the run folder)"
    )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} does not exist; train one with: lsa-edge train --data DIR --out RUN_DIR"
        )
    what = sniff_file(path)
    if what is not None:
        raise CheckpointError(what)
    try:
        # weights_only: a checkpoint is data (tensors, numbers, strings); loading never runs pickled code.
        # TorchVersion (a str subclass) was stored by early 0.1 checkpoints; it is safe to allow.
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file, some with a page of advice
        log.debug("torch.load(%s) failed: %s", path, err)
        detail = "empty file" if path.is_file() and path.stat().st_size == 0 else type(err).__name__
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint ({detail}: truncated by an interrupted copy, damaged, "
            "or not a checkpoint). Use the run's other checkpoint (best.pt / last.pt), copy it again, or train "
            "again (-vv shows torch's message)"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an lsa-edge checkpoint (no format tag {CHECKPOINT_FORMAT!r})")
    version = ckpt.get("version", 0)
    if not isinstance(version, int):
        raise CheckpointError(f"{path} is a damaged lsa-edge checkpoint (version {version!r})")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer lsa-edge (checkpoint version {ckpt['version']}); upgrade"
        )
    return ckpt


def load_model(path: str | Path, device: str = "cpu") -> tuple[LSAModel, ModelCard, dict[str, Any]]:
    """Rebuild the model from a checkpoint (no text encoder needed). Returns (model in eval mode, card, raw)."""
    ckpt = read_checkpoint(path)
    try:
        config = LSAConfig.from_dict({**ckpt["model_config"], "pretrained": False})
        prior = CorrelationDictionary.from_state(ckpt["prior"]) if ckpt.get("prior") else None
        model = LSAModel(config, prior)  # the stored dictionary, never a rebuilt one: no text encoder
        card = ModelCard.from_dict(ckpt["card"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:  # tagged, but incomplete or damaged
        raise CheckpointError(
            f"{path} is an incomplete or damaged lsa-edge checkpoint ({type(err).__name__}: {err}); "
            "use the run's other checkpoint (best.pt / last.pt) or train again"
        ) from err
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: weights do not fit the stored model config ({err})") from err
    return model.to(device).eval(), card, ckpt
