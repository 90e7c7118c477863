"""Checkpoint → ONNX: a dedicated export wrapper, dynamic batch, onnxsim, the model card in metadata_props,
and a parity check against torch on real face crops.

Imports torch, onnx, onnxsim and onnxruntime lazily (the ``train`` and ``build`` extras).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lsa_edge._fileio import atomic_path
from lsa_edge._lazy import require
from lsa_edge.card import ModelCard
from lsa_edge.errors import ConfigError, LsaEdgeError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

INPUT_NAME = "faces"  # B×3×H×W float32, normalised with the card's mean/std, in the card's colour order
OUTPUT_NAME = "probs"  # B×40 float32 attribute probabilities
CARD_KEY = "lsa_edge.card"  # metadata_props key holding the model card JSON
FP32_PARITY_TOLERANCE = 1e-4  # max |p_torch − p_onnx| over the parity crops
MAX_OPSET = 20  # the newest opset torch's TorchScript exporter writes


class ExportError(LsaEdgeError):
    """Export produced a graph that does not match the torch model."""


def export_wrapper(model: torch.nn.Module) -> torch.nn.Module:
    """The inference graph of an LSA model: normalised faces → probabilities.

    Kept out of the training model (no ``if export:`` branches): the sigmoid is part of the graph, so every
    backend returns probabilities; constant subgraphs (the query projection) are folded by onnxsim.
    """
    require("torch", "ONNX export")  # the extra to install, or the Python needed, when torch is missing
    import torch

    class LSAExport(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = copy.deepcopy(inner).cpu().eval()  # never move or switch the caller's model

        def forward(self, faces: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.inner(faces))

    return LSAExport(model).eval()


@dataclass(frozen=True)
class ExportResult:
    path: Path
    opset: int
    simplified: bool
    parity_max_abs_diff: float
    parity_images: int
    export_seconds: float = 0.0  # torch.onnx.export
    simplify_seconds: float = 0.0  # onnxsim


def export_onnx(
    model: torch.nn.Module,
    card: ModelCard,
    out: str | Path,
    parity_faces: np.ndarray,
    opset: int = 17,
    simplify: bool = True,
    tolerance: float = FP32_PARITY_TOLERANCE,
) -> ExportResult:
    """Export ``model`` to ``out`` and check it against torch.

    parity_faces: N×3×H×W float32 normalised crops (real faces, through the card's preprocessing).
    Raises :class:`ExportError` when ONNX Runtime's probabilities differ by more than ``tolerance``.
    """
    torch = require("torch", "ONNX export")
    onnx = require("onnx", "ONNX export")
    if not 13 <= opset <= MAX_OPSET:
        raise ConfigError(
            f"opset {opset} is not supported: choose 13–{MAX_OPSET} (per-channel Q/DQ needs ≥ 13; TensorRT 8.5 "
            "parses up to 17, the default)"
        )
    if len(parity_faces) == 0:
        raise ExportError("the parity check needs at least one real face crop")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    final = out
    # Only a checked graph gets the real name: written under a temporary one, renamed once parity holds.
    with atomic_path(final) as out:
        wrapper = export_wrapper(model)
        t0 = time.perf_counter()
        proto = _torch_to_onnx(wrapper, card, out, opset)
        t1 = time.perf_counter()
        proto, simplified = _simplify(proto) if simplify else (proto, False)
        t2 = time.perf_counter()
        set_card(proto, card)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(out))
        diff = parity(wrapper, out, parity_faces)
        log.info(
            "exported %s (opset %d%s): max |Δp| vs torch %.2e on %d faces",
            final,
            opset,
            ", simplified" if simplified else "",
            diff,
            len(parity_faces),
        )
        if diff > tolerance:
            raise ExportError(
                f"{final}: ONNX Runtime differs from torch by {diff:.3g} (> {tolerance:g}) in probability"
            )
        # Record how the graph was made and checked in its own card (an ONNX handed to `build` later keeps it).
        export_info = {
            "opset": opset,
            "simplified": simplified,
            "parity_max_abs_diff": diff,
            "parity_faces": len(parity_faces),
            "exporter": f"torch {torch.__version__} (TorchScript)",
        }
        set_card(proto, card.with_updates(build={**card.build, "export": export_info}))
        onnx.save(proto, str(out))
    return ExportResult(final, opset, simplified, diff, len(parity_faces), t1 - t0, t2 - t1)


def _torch_to_onnx(wrapper: torch.nn.Module, card: ModelCard, out: Path, opset: int) -> Any:
    """torch.onnx.export with a dynamic batch axis; returns the loaded graph."""
    torch, onnx = require("torch", "ONNX export"), require("onnx", "ONNX export")
    h, w = card.preprocessing.input_size
    torch.onnx.export(
        wrapper,
        (torch.zeros(2, 3, h, w),),
        str(out),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        opset_version=opset,
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        # The TorchScript exporter: it needs no onnxscript and gives TensorRT-friendly opset-17 graphs. The
        # torch.export-based one (torch's default since 2.9) is the next thing to evaluate here.
        dynamo=False,
    )
    return onnx.load(str(out))


def _simplify(proto: Any) -> tuple[Any, bool]:
    onnxsim = require("onnxsim", "ONNX simplification")
    proto, ok = onnxsim.simplify(proto)
    if not ok:
        raise ExportError("onnxsim could not validate the simplified graph; export with --no-simplify")
    return proto, True


def set_card(proto: Any, card: ModelCard) -> None:
    """Store the model card JSON in the model's metadata_props (replacing an older one)."""
    kept = [p for p in proto.metadata_props if p.key != CARD_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json(indent=None)


def read_card(path: str | Path) -> ModelCard:
    """The model card stored in an exported ONNX file."""
    onnx = require("onnx", "reading an ONNX model card")
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "missing"
        raise ConfigError(f"{path} is {what}; give an lsa-edge ONNX file (or a checkpoint)")
    if path.stat().st_size == 0:
        raise ConfigError(f"{path} is empty (an interrupted copy or export?); copy or export it again")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError for a truncated or non-ONNX file, OSError, ...
        raise ConfigError(
            f"{path} is not a readable ONNX model ({type(err).__name__}: {err}); it may be truncated (an "
            f"interrupted copy or download). Copy or export it again; lsa-edge check {path} tells what is wrong"
        ) from err
    for p in proto.metadata_props:
        if p.key == CARD_KEY:
            try:
                return ModelCard.from_dict(json.loads(p.value))
            except (ValueError, TypeError, KeyError) as err:  # ConfigError is a ValueError
                raise ExportError(
                    f"{path}: its model card is damaged ({type(err).__name__}: {err}); export it again "
                    "from the checkpoint (lsa-edge build CKPT --precision fp32)"
                ) from err
    raise ExportError(
        f"{path} has no lsa-edge model card ({CARD_KEY!r} in metadata_props); was it exported by lsa-edge?"
    )


def parity(wrapper: torch.nn.Module, onnx_path: Path, faces: np.ndarray, batch: int = 64) -> float:
    """Max absolute difference of probabilities between torch and ONNX Runtime (CPU) on ``faces``."""
    torch = require("torch", "ONNX parity")
    ort = require("onnxruntime", "ONNX parity")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for i in range(0, len(faces), batch):
            x = np.ascontiguousarray(faces[i : i + batch], dtype=np.float32)
            ref = wrapper(torch.from_numpy(x)).numpy()
            got = sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
            worst = max(worst, float(np.abs(ref - got).max()))
    return worst
