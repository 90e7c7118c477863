"""Run two artifacts of one model on the same face crops and measure how far they agree.

Artifacts: a checkpoint (torch), an ONNX (FP32, FP16 or Q/DQ INT8; ONNX Runtime), a TensorRT engine
(TensorRT, a GPU and cuda-python or pycuda), a build folder (its engine when it has one, else its ``cpu_onnx``).
Both must share the card's preprocessing, so one batch of crops feeds both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable  # typing: Predict is subscripted at run time (Python 3.8)

import numpy as np

from lsa_edge.card import ModelCard
from lsa_edge.errors import ConfigError, LsaEdgeError
from lsa_edge.manifest import MANIFEST

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Artifact:
    label: str  # what the user named, e.g. "build/int8/model_int8_cpu.onnx"
    kind: str  # checkpoint | onnx | engine
    card: ModelCard
    predict: Predict  # N×3×H×W float32 → N×C probabilities


def open_artifact(path: str | Path, device: str = "cpu") -> Artifact:
    """Load ``path`` (checkpoint, run folder, .onnx, build folder or .engine) as a predictor."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"{path} does not exist (expected a checkpoint, an ONNX, a build folder or an engine)"
        )
    if path.is_dir() and (path / MANIFEST).exists():
        from lsa_edge._manifest import check_files, member

        from .from_bundle import read_bundle

        m = read_bundle(path)
        check_files(path, m.to_json())  # as the runtime does: every listed file present and of its sha256
        member(path, m.cpu_onnx, '"cpu_onnx"')  # a named file that is missing: say which
        if m.engine:  # the engine is what the device runs: compare that, or fail saying so
            try:
                return open_artifact(path / m.engine, device)
            except LsaEdgeError as err:
                raise LsaEdgeError(
                    f"{path}'s engine cannot run here ({err}); to compare its CPU model pass "
                    f"{path / str(m.cpu_onnx)} instead"
                ) from err
        return open_artifact(path / str(m.cpu_onnx), device)
    if path.suffix == ".onnx":
        from lsa_edge.backends import OnnxRuntimeBackend

        from .export import read_card

        card = read_card(path)  # first: a truncated or foreign file is a usage error naming it
        backend = OnnxRuntimeBackend(path)
        return Artifact(str(path), "onnx", card, backend.predict)
    if path.suffix in (".engine", ".plan", ".trt"):
        from lsa_edge.backends.tensorrt import TensorRTBackend
        from lsa_edge.engine_meta import read_sidecar

        doc = read_sidecar(path)
        if not doc.get("card"):
            raise ConfigError(f"{path}'s sidecar has no model card; is it an lsa-edge attribute engine?")
        engine = TensorRTBackend(path)
        return Artifact(str(path), "engine", ModelCard.from_dict(doc["card"]), engine.predict)
    from lsa_edge._lazy import require

    torch = require("torch", "running a checkpoint")
    from lsa_edge.training.checkpoint import load_model

    model, card, _ = load_model(path, device)

    def predict(x: np.ndarray, batch: int = 64) -> np.ndarray:
        outs = []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                t = torch.from_numpy(np.ascontiguousarray(x[i : i + batch])).to(device)
                outs.append(torch.sigmoid(model(t)).float().cpu().numpy())
        return np.concatenate(outs)

    return Artifact(str(path), "checkpoint", card, predict)


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    faces: int
    max_abs_diff: float
    mean_abs_diff: float
    p99_abs_diff: float
    decision_agreement: float  # % of face×attribute decisions equal (A's card thresholds)
    per_attribute: dict[str, dict[str, float]]  # name → agreement %, mean |Δp|, (accuracy_a, accuracy_b)
    accuracy_a: float | None  # % mean accuracy where labels exist
    accuracy_b: float | None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def compare_probs(
    a: str, b: str, pa: np.ndarray, pb: np.ndarray, card: ModelCard, labels: np.ndarray | None = None
) -> Comparison:
    thr = np.asarray(card.thresholds, dtype=np.float32)
    da, db = pa >= thr, pb >= thr
    diff = np.abs(pa.astype(np.float64) - pb)
    per: dict[str, dict[str, float]] = {}
    for k, name in enumerate(card.attributes):
        row = {
            "agreement": float((da[:, k] == db[:, k]).mean() * 100),
            "mean_abs_diff": float(diff[:, k].mean()),
        }
        if labels is not None:
            y = labels[:, k].astype(bool)
            row["accuracy_a"] = float((da[:, k] == y).mean() * 100)
            row["accuracy_b"] = float((db[:, k] == y).mean() * 100)
        per[name] = row
    acc_a = acc_b = None
    if labels is not None:
        y = labels.astype(bool)
        acc_a, acc_b = float((da == y).mean() * 100), float((db == y).mean() * 100)
    return Comparison(
        a=a,
        b=b,
        faces=len(pa),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        p99_abs_diff=float(np.percentile(diff, 99)),
        decision_agreement=float((da == db).mean() * 100),
        per_attribute=per,
        accuracy_a=acc_a,
        accuracy_b=acc_b,
    )


def same_preprocessing(a: ModelCard, b: ModelCard) -> None:
    """Both artifacts must turn an aligned face into the same tensor (the alignment template may differ:
    a build measures it with the detector after training)."""
    keys = ("input_size", "color_order", "mean", "std", "aligned_crop", "resize")
    if any(getattr(a.preprocessing, k) != getattr(b.preprocessing, k) for k in keys):
        raise ConfigError(
            f"the two artifacts expect different inputs ({a.preprocessing.input_size} {a.preprocessing.color_order} "
            f"vs {b.preprocessing.input_size} {b.preprocessing.color_order}); compare artifacts of one model"
        )
    if tuple(a.attributes) != tuple(b.attributes):
        raise ConfigError(
            "the two artifacts predict different attribute lists; compare artifacts of one model"
        )
