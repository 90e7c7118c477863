"""The build's first steps, each a function from typed inputs to a frozen artifact (Polygraphy-loader
style: the order is fixed by what each step needs, not by state):

    Workspace ─ load_fp32 ─▶ Fp32Model ─ load_validation ─▶ Validation ─ export ─▶ Fp32Model (exported)
    Fp32Model ─ check_exclusions ─ measure_template ─▶ Fp32Model ─ lower_opset16 ─▶ Opset16 | None
    Workspace ─ copy_detector ─▶ DetectorFiles

The precision steps (FP16, INT8 and their accuracy gates) are in :mod:`.reduce`, the manifest in
:mod:`.manifest_writer`; :mod:`.build` chains them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lsa_edge._fileio import copy_atomic
from lsa_edge._lazy import require
from lsa_edge.card import ModelCard
from lsa_edge.errors import ConfigError, DataError, LsaEdgeError
from lsa_edge.manifest import DETECTOR_DIR, MODEL_ONNX, opset16_name

from ._trt_generations import GENERATIONS as TABLE
from .config import DEFAULT_GENERATION, BuildConfig

log = logging.getLogger(__name__)

Timings = dict  # step name → seconds


@dataclass(frozen=True)
class Workspace:
    """Where one build reads and writes: the input, the options, the folder written now (a staged folder
    beside ``final`` while building) and where the build ends up."""

    model: Path  # a checkpoint (best.pt or its run folder) or an FP32 lsa-edge ONNX
    cfg: BuildConfig
    out: Path  # where files are written now
    final: Path  # where they end up (log lines and hints name these)

    @property
    def from_checkpoint(self) -> bool:
        return self.model.suffix != ".onnx"

    @property
    def opset(self) -> int:
        """17 (native LayerNormalization, what TensorRT 10/11 fuse best) unless the target's table says
        otherwise: 8.5's parser has no LayerNormalization, and at opset 16 torch writes the decomposed form."""
        if self.cfg.opset is not None:
            return self.cfg.opset
        return TABLE[self.cfg.tensorrt or DEFAULT_GENERATION].export_opset


@dataclass(frozen=True)
class Fp32Model:
    """The FP32 graph (``out/model.onnx``; for a checkpoint not yet exported) and its card."""

    path: Path
    card: ModelCard
    parity: float | None = None  # max |Δp| against torch (None: not measured)
    timings: Timings = field(default_factory=dict)


@dataclass(frozen=True)
class Validation:
    """Faces for parity and the accuracy gates: labelled (the gate) or built-in (numerics only)."""

    faces: Any  # lsa_edge.calibration.dataset.Faces
    source: str | None
    labelled: bool
    timings: Timings = field(default_factory=dict)


@dataclass(frozen=True)
class Opset16:
    """A graph rewritten at opset 16 for TensorRT 8.5, checked against its source with ONNX Runtime."""

    source: str  # the graph's name, e.g. model.onnx
    path: Path  # the rewrite, e.g. out/model_opset16.onnx
    parity: float  # max |Δp| against the source
    seconds: float


def load_fp32(ws: Workspace) -> Fp32Model:
    """The card of a checkpoint, or an FP32 ONNX copied into the bundle with its card."""
    from .export import read_card

    dst = ws.out / MODEL_ONNX
    if ws.from_checkpoint:
        from lsa_edge.training.checkpoint import read_checkpoint

        run_folder = ws.model.is_dir() and not (ws.model / "best.pt").exists()
        if run_folder and any(ws.model.glob("*.onnx")):
            raise ConfigError(
                f"{ws.model} is a build or package folder, not a training run (no best.pt); build "
                f"from its FP32 graph: lsa-edge build {ws.model / MODEL_ONNX} ..."
            )
        return Fp32Model(dst, ModelCard.from_dict(read_checkpoint(ws.model)["card"]))
    if not ws.model.is_file():
        raise ConfigError(f"{ws.model} does not exist")
    card = read_card(ws.model)
    _require_fp32(ws.model, card)
    if ws.cfg.opset is not None or not ws.cfg.simplify:
        log.warning("--opset/--no-simplify apply to exports from a checkpoint; %s is used as it is", ws.model)
    copy_atomic(ws.model, dst)
    parity = card.build.get("export", {}).get("parity_max_abs_diff")
    if parity is None:
        log.warning("%s carries no export parity figure (exported by an older lsa-edge?)", ws.model)
    return Fp32Model(dst, card, parity)


def _require_fp32(path: Path, card: ModelCard) -> None:
    """``build`` reduces precision itself: its input must be the FP32 graph."""
    onnx = require("onnx", "reading an ONNX model")
    proto = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in proto.graph.node}
    half = any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    stated = card.build.get("precision", "fp32")
    if ops & {"QuantizeLinear", "DequantizeLinear"} or half or stated != "fp32":
        what = "Q/DQ (INT8)" if ops & {"QuantizeLinear", "DequantizeLinear"} else "FP16" if half else stated
        raise ConfigError(
            f"{path} is a {what} model; lsa-edge build starts from the FP32 graph: pass the build's "
            "model.onnx or the checkpoint"
        )


def _builtin_validation(cfg: BuildConfig, card: ModelCard) -> Validation:
    from lsa_edge.calibration.builtin import builtin_faces

    log.warning(
        "no --calib-data: the labelled accuracy gate is SKIPPED. %s numerics are checked against FP32 "
        "on built-in faces (the demo portrait, augmented): decisions must agree on ≥ %.1f%% of "
        "face×attribute pairs. Pass --calib-data DIR (labelled faces) for the accuracy gate.",
        "Export" if cfg.precision == "fp32" else cfg.precision.upper(),
        100 - cfg.max_accuracy_drop,
    )
    t0 = time.perf_counter()
    faces = builtin_faces(card.preprocessing, count=min(cfg.val_count or 64, 64), seed=cfg.seed)
    seconds = time.perf_counter() - t0
    return Validation(faces, faces.source, faces.labels is not None, {"load_validation_faces": seconds})


def load_validation(cfg: BuildConfig, card: ModelCard) -> Validation:
    """Labelled validation faces (the val split, else test) or, without data, built-in ones."""
    from lsa_edge.calibration.dataset import is_dataset, load_faces

    src = cfg.val_data or cfg.calib_data
    if src is None:
        if cfg.precision == "int8":
            raise ConfigError(
                "INT8 calibration needs real faces: pass --calib-data DIR (a data set: CelebA, generic CSV "
                "or LFWA layout, or a folder of face pictures from the robot's camera), e.g. "
                "--calib-data ../shared/data/celeba-10k"
            )
        return _builtin_validation(cfg, card)
    if not (cfg.data_format or is_dataset(src)):
        raise ConfigError(
            f"{src} is an image folder without labels; the accuracy gate needs a labelled data set: "
            "add --val-data DIR (CelebA, generic CSV or LFWA layout)"
        )
    last: Exception | None = None
    for split in ("val", "test"):
        try:
            t0 = time.perf_counter()
            faces = load_faces(
                src, card.preprocessing, split=split, count=cfg.val_count, seed=cfg.seed,
                fmt=cfg.data_format, workers=cfg.workers, progress=cfg.progress,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            if split != "val":
                log.warning("%s has no validation split; the accuracy gate uses its %s split", src, split)
            log.info("validation faces: %s", faces.source)
            return Validation(
                faces, faces.source, faces.labels is not None, {"load_validation_faces": seconds}
            )
        except DataError as err:
            last = err
    raise DataError(f"no validation faces in {src}: {last}")


def export(ws: Workspace, val: Validation) -> Fp32Model:
    """checkpoint → ``out/model.onnx`` (simplified, parity-checked on the validation faces)."""
    from lsa_edge.training.checkpoint import load_model

    from .export import export_onnx, read_card

    model, card, _ = load_model(ws.model, "cpu")
    parity_faces = val.faces.tensors(card.preprocessing)[:256]
    res = export_onnx(
        model, card, ws.out / MODEL_ONNX, parity_faces, opset=ws.opset, simplify=ws.cfg.simplify
    )
    timings = {"export": res.export_seconds, "simplify": res.simplify_seconds}
    return Fp32Model(res.path, read_card(res.path), res.parity_max_abs_diff, timings)


def check_exclusions(ws: Workspace, fp32: Fp32Model) -> None:
    """--exclude-nodes must name nodes of the FP32 graph; checked before calibration spends minutes."""
    if not ws.cfg.exclude_nodes:
        return
    onnx = require("onnx", "checking --exclude-nodes")
    nodes = {n.name for n in onnx.load(str(fp32.path)).graph.node}
    missing = [n for n in ws.cfg.exclude_nodes if n not in nodes]
    if missing:
        onnx_file = ws.final / MODEL_ONNX if ws.from_checkpoint else ws.model
        raise ConfigError(
            f"--exclude-nodes names nodes the graph does not have: {', '.join(missing)}; list them with: "
            f"lsa-edge check {onnx_file} --nodes"
            + (" (after an FP32 build of the checkpoint into that folder)" if ws.from_checkpoint else "")
        )


def measure_template(cfg: BuildConfig, fp32: Fp32Model) -> Fp32Model:
    """The alignment template measured with the face detector when the card still has CelebA's means."""
    from lsa_edge.alignment import estimate_for_dataset, is_estimated
    from lsa_edge.calibration.dataset import is_dataset
    from lsa_edge.data import load_dataset

    pre = fp32.card.preprocessing
    src = cfg.calib_data or cfg.val_data
    if is_estimated(pre.template):
        return fp32
    if src is None or not (cfg.data_format or is_dataset(src)):
        log.warning(
            "the card's alignment template is CelebA's mean landmarks, not measured with the face "
            "detector; give --calib-data DATASET to measure it (detect + align will be less exact)"
        )
        return fp32
    t0 = time.perf_counter()
    est = estimate_for_dataset(load_dataset(src, cfg.data_format).split("train"), pre)
    card = fp32.card.with_updates(preprocessing=replace(pre, template=est.template))
    timings = {**fp32.timings, "alignment_template": time.perf_counter() - t0}
    return replace(fp32, card=card, timings=timings)


def lower_opset16(ws: Workspace, card: ModelCard, name: str, val: Validation | None) -> Opset16 | None:
    """``name`` at opset 16 for TensorRT 8.5 (which cannot parse opset 17's LayerNormalization; see
    :mod:`.opset`), checked against it with ONNX Runtime; None when 8.5 parses ``name`` already or the
    rewrite cannot express it (then 8.5 is left unbuildable, with a warning — an error only when 8.5 is the
    target)."""
    from lsa_edge.backends import OnnxRuntimeBackend

    from .lint import lint_report
    from .opset import lower_to_opset16

    src = ws.out / name
    if not any(e.severity == "error" for e in lint_report(src, "8.5").findings):
        return None  # already parses on 8.5 (an opset-16 export, or a graph without opset-17 ops)
    t0 = time.perf_counter()
    if val is None:  # an FP32 build from an ONNX loads no faces; the rewrite is checked on built-in ones
        from lsa_edge.calibration.builtin import builtin_faces

        faces = builtin_faces(card.preprocessing, count=32, seed=ws.cfg.seed)
    else:
        faces = val.faces
    x = faces.tensors(card.preprocessing)[:64]
    dst = src.with_name(opset16_name(src.name))
    try:
        lower_to_opset16(src, dst)
        diff = float(np.abs(OnnxRuntimeBackend(src).predict(x) - OnnxRuntimeBackend(dst).predict(x)).max())
        tol = 1e-4 if name == MODEL_ONNX else 2e-2  # Q/DQ: a rounding flip moves one step
        if diff > tol:
            raise LsaEdgeError(
                f"{dst.name} differs from {name} by up to {diff:.3g} (allowed {tol:g}): the opset-16 "
                "rewrite does not hold for this graph"
            )
    except LsaEdgeError as err:
        dst.unlink(missing_ok=True)
        if ws.cfg.tensorrt == "8.5":
            raise
        log.warning(
            "no graph for TensorRT 8.5 (%s); this bundle serves TensorRT 10 and 11. For 8.5 build from "
            "the checkpoint with --trt 8.5 (an opset-16 export).",
            err,
        )
        return None
    log.info("%s (TensorRT 8.5): max |Δp| vs %s %.2g on %d faces", dst.name, name, diff, len(x))
    return Opset16(name, dst, diff, time.perf_counter() - t0)


def copy_detector(ws: Workspace) -> dict[str, Path]:
    """The face detector's ONNX (+ licence notice) into ``out/detector/``, and its FP16 graph when the model
    is reduced (strongly typed TensorRT, 10 opt-in and 11 always, takes FP16 from the graph)."""
    from lsa_edge.models import detector_path

    from .fp16 import convert_fp16

    src = detector_path()
    dst_dir = ws.out / DETECTOR_DIR
    dst_dir.mkdir(exist_ok=True)
    dst = dst_dir / src.name
    copy_atomic(src, dst)
    for extra in ("NOTICE", "PROVENANCE.json"):
        if (src.parent / extra).exists():
            copy_atomic(src.parent / extra, dst_dir / extra)
    files = {f"{DETECTOR_DIR}/{src.name}": dst}
    if ws.cfg.precision != "fp32":
        half = convert_fp16(dst, dst_dir / f"{src.stem}_fp16.onnx")
        files[f"{DETECTOR_DIR}/{half.name}"] = half
    return files
