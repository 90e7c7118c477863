"""The build's :class:`~lsa_edge.manifest.Manifest`: composed from the artifacts of the build steps, each
model ONNX given a card describing that file, every graph linted against every TensorRT generation, and
written (atomically) beside them.

Which graph each generation builds, whether strongly typed and which accuracy check describes it come from
:mod:`._trt_generations` (one table); the file names from :mod:`lsa_edge.manifest`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsa_edge import __version__
from lsa_edge._fileio import atomic_path, write_json_atomic
from lsa_edge._lazy import require
from lsa_edge._verify import sha256_file
from lsa_edge.card import ModelCard
from lsa_edge.errors import LsaEdgeError
from lsa_edge.manifest import (
    CPU_ONNX,
    DETECTOR_DIR,
    GENERATIONS,
    MANIFEST,
    MANIFEST_FORMAT,
    MODEL_FP16_ONNX,
    MODEL_INT8_CPU_ONNX,
    MODEL_INT8_TRT_ONNX,
    MODEL_ONNX,
    DetectorEntry,
    Manifest,
)

from ._trt_generations import GENERATIONS as TABLE
from .accuracy import AccuracyCheck
from .config import DETECTOR_BATCH, BuildConfig

__all__ = ["BuildResult", "compose_manifest", "write_manifest"]

log = logging.getLogger(__name__)


def write_manifest(out: Path, manifest: Manifest) -> Path:
    return write_json_atomic(Path(out) / MANIFEST, manifest.to_json())


@dataclass(frozen=True)
class BuildResult:
    """Everything the build steps produced, as the manifest records it."""

    source: str  # the input's file name
    out: Path  # the folder the files are in now
    card: ModelCard  # the FP32 model's card (measured template included)
    parity: float | None
    checks: dict[str, AccuracyCheck]
    files: dict[str, Path]  # name in the bundle → path
    opset16: dict[str, str]  # graph → its opset-16 rewrite
    opset16_parity: dict[str, float]
    calibration: dict[str, Any] | None
    validation_source: str | None
    labelled: bool
    timings: dict[str, float]
    target: str  # the TensorRT generation `onnx` is for
    tensorrt_local: str | None
    from_checkpoint: bool


def _by_generation(r: BuildResult, precision: str) -> tuple[dict[str, str], dict[str, bool], dict[str, str]]:
    """(graph, strongly typed, accuracy check) per generation, from the table; 8.5 builds its opset-16 graph."""
    by_gen = {g: TABLE[g].onnx_by_precision[precision] for g in GENERATIONS}
    by_gen["8.5"] = r.opset16.get(by_gen["8.5"], by_gen["8.5"])
    typed = {g: TABLE[g].typed_by_precision[precision] for g in GENERATIONS}
    gate = {
        g: TABLE[g].gate_by_precision[precision]
        for g in GENERATIONS
        if precision in TABLE[g].gate_by_precision
    }
    if "int8_trt_fp16_85" in r.checks:  # 8.5 builds the opset-16 Q/DQ graph: its own gate
        gate["8.5"] = "int8_trt_fp16_85"
    return by_gen, typed, gate


def compose_manifest(r: BuildResult, cfg: BuildConfig) -> Manifest:
    """The manifest of a finished bundle (before any engine): cards written into every model ONNX, each
    graph linted for every generation (the target must pass), the device commands derived."""
    from .trtexec import tensorrt_commands

    p = cfg.precision
    by_gen, typed, gate = _by_generation(r, p)
    cards = store_cards(r, cfg)
    h, w = r.card.preprocessing.input_size
    m = Manifest(
        format=MANIFEST_FORMAT,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        lsa_edge=__version__,
        source=r.source,
        precision=p,
        onnx=by_gen[r.target],
        onnx_by_tensorrt=by_gen,
        strongly_typed_by_tensorrt=typed,
        tensorrt_target=r.target,
        cpu_onnx=CPU_ONNX[p],
        engine=None,
        parity_max_abs_diff=r.parity,
        # Mean-accuracy points lost against FP32 by what the target TensorRT runs (see accuracy_by_tensorrt).
        accuracy_delta=r.checks[gate[r.target]].delta_points if gate else 0.0,
        accuracy_by_tensorrt={g: r.checks[c].delta_points for g, c in gate.items()},
        accuracy={k: c.to_dict() for k, c in r.checks.items()},
        max_accuracy_drop=cfg.max_accuracy_drop,
        # What the checks above ran on: labelled faces (an accuracy gate) or built-in ones (numerics only).
        validation={
            "faces": r.validation_source,
            "labelled": r.labelled,
            "gate": "accuracy" if r.labelled else "numerics only: decisions agree with FP32 (no labels)",
        },
        # graph → the same graph at opset 16 (TensorRT 8.5 parses no LayerNormalization), and their parity
        opset16=dict(r.opset16),
        opset16_parity_max_abs_diff=dict(r.opset16_parity),
        input={"name": "faces", "shape": ["batch", 3, h, w], "dtype": "float32"},
        output={"name": "probs", "shape": ["batch", len(r.card.attributes)], "dtype": "float32"},
        batch=tuple(cfg.batch),  # type: ignore[arg-type]
        workspace_mib=cfg.workspace_mib,
        dla_core=cfg.dla_core,
        timings_s={k: round(v, 3) for k, v in r.timings.items()},
        calibration=r.calibration or None,
        detector=detector_entry(r, cfg) if cfg.detector else None,
        tensorrt_local=r.tensorrt_local,
        files={
            name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            for name, path in sorted(r.files.items())
        },
        card=cards[by_gen[r.target]].to_dict(),
    )
    m = m.replace(tensorrt_compatibility=compatibility(r, m))
    return m.replace(tensorrt_commands=tensorrt_commands(m))


def compatibility(r: BuildResult, m: Manifest) -> dict[str, Any]:
    """Lint every ONNX against every TensorRT generation (lsa-edge check); the target must pass."""
    from .lint import lint_report

    result: dict[str, Any] = {}
    for gen in GENERATIONS:
        files = {"model": m.onnx_for(gen) or MODEL_ONNX}
        if m.detector:
            files["detector"] = (m.detector.onnx_by_tensorrt or {})[gen]
        errors = []
        for role, name in files.items():
            rep = lint_report(r.out / name, gen)
            errors += [f"{role} {name}: {f.rule}: {f.message}" for f in rep.findings if f.severity == "error"]
        result[gen] = {"ok": not errors, "errors": errors}
    if not result[r.target]["ok"]:
        hint = (
            " Build from the checkpoint with --trt 8.5 (it exports opset 16)."
            if r.target == "8.5" and not r.from_checkpoint
            else ""
        )
        raise LsaEdgeError(
            f"this build cannot be built by TensorRT {r.target}: "
            + " | ".join(result[r.target]["errors"])
            + hint
        )
    for gen, res in result.items():
        if not res["ok"]:
            log.warning("not buildable with TensorRT %s: %s", gen, res["errors"][0])
    return result


def _per_file(r: BuildResult) -> dict[str, dict[str, Any]]:
    """The build facts each model ONNX's card carries: its precision and its own checks."""
    checks = {k: c.to_dict() for k, c in r.checks.items()}
    per_file: dict[str, dict[str, Any]] = {
        MODEL_ONNX: {"precision": "fp32"},
        MODEL_FP16_ONNX: {
            "precision": "fp16",
            "accuracy": {k: v for k, v in checks.items() if k.startswith("fp16")},
        },
        MODEL_INT8_TRT_ONNX: {
            "precision": "int8",
            "quantization": "Q/DQ s8/s8 per-channel (TensorRT)",
            "accuracy": {k: v for k, v in checks.items() if k.startswith("int8_trt")},
            "calibration": r.calibration,
        },
        MODEL_INT8_CPU_ONNX: {
            "precision": "int8",
            "quantization": "Q/DQ u8/s8 per-channel (ONNX Runtime CPU)",
            "accuracy": {k: v for k, v in checks.items() if k == "int8_cpu"},
            "calibration": r.calibration,
        },
    }
    for name, lowered in r.opset16.items():  # the same model at opset 16, for TensorRT 8.5
        per_file[lowered] = {
            **per_file[name],
            "opset16_of": name,
            "opset16_parity_max_abs_diff": r.opset16_parity.get(lowered),
        }
    return per_file


def store_cards(r: BuildResult, cfg: BuildConfig) -> dict[str, ModelCard]:
    """Write into every model ONNX a card describing *that* file: its precision and its own checks."""
    onnx = require("onnx", "writing the model card")
    from .export import set_card

    base = {"export": r.card.build.get("export", {})}
    cards = {}
    for name, info in _per_file(r).items():
        path = r.files.get(name)
        if path is None:
            continue
        card = r.card.with_updates(build={**base, **info, "max_accuracy_drop": cfg.max_accuracy_drop})
        proto = onnx.load(str(path))
        set_card(proto, card)
        with atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
        cards[name] = card
    return cards


def detector_entry(r: BuildResult, cfg: BuildConfig) -> DetectorEntry:
    onnx = require("onnx", "reading the detector")
    name, *half = sorted(k for k in r.files if k.startswith(f"{DETECTOR_DIR}/"))
    proto = onnx.load(str(r.files[name]), load_external_data=False)
    inp = proto.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in inp.type.tensor_type.shape.dim]
    fp16 = half[0] if half else name
    return DetectorEntry(
        onnx=name,
        onnx_by_tensorrt={"8.5": name, "10": fp16, "11": fp16},
        strongly_typed_by_tensorrt={"8.5": False, "10": bool(half), "11": True},
        input={"name": inp.name, "shape": dims},
        # One frame per call; up to 4 (cameras) in one batch where the ONNX has a dynamic batch.
        batch=None if isinstance(dims[0], int) else DETECTOR_BATCH,
        # The detector runs once per frame; FP16 is its precision wherever the model is reduced
        # (BlazeFace is not INT8-calibrated here: its few MACs gain little and its boxes lose a lot).
        precision="fp32" if cfg.precision == "fp32" else "fp16",
        engine=None,
    )
