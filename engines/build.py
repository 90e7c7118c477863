"""``lsa-edge build``: checkpoint or FP32 ONNX → a deployable folder for one precision.

One artifact step at a time (each a function from typed inputs to a frozen artifact, chained here; the
order follows from what each step needs):

    checkpoint ─ export (+ onnxsim, parity) ─▶ FP32 ONNX ─ template ─ opset-16 rewrite (TensorRT 8.5)
        ─ FP16 ONNX | calibrate → Q/DQ INT8 ONNX (gated against FP32 on labelled validation faces)
        ─ detector ─ manifest (cards, lint per TensorRT generation, device commands) ─ bundle
        ─ engines where TensorRT is importable (:mod:`.from_bundle`), otherwise the bundle and its commands

Steps: :mod:`.steps` (FP32, validation faces, export, template, opset 16, detector) and :mod:`.reduce`
(FP16, INT8, gates); the manifest: :mod:`.manifest_writer`; trtexec recipes: :mod:`.trtexec`; DEPLOY.md:
:mod:`.deploy`; the on-device build: :mod:`.from_bundle`; options and their defaults: :mod:`.config`.
The output folder::

    DIR/manifest.json            what was built, how it was checked, the device commands (+ the card)
    DIR/build_config.json        the resolved BuildConfig of this build
    DIR/model.onnx               FP32, model card in metadata_props
    DIR/model_fp16.onnx          fp16: FP16 weights/activations, softmax/norms/sigmoid FP32 (TensorRT 10/11)
    DIR/model_int8_trt.onnx      int8: Q/DQ s8/s8, per-channel weights (TensorRT 8.5/10/11)
    DIR/model_int8_cpu.onnx      int8: Q/DQ u8/s8 (ONNX Runtime on CPUs)
    DIR/calibration.cache        int8: TensorRT's implicit-quantization cache (TensorRT 8.5)
    DIR/detector/                the face detector's ONNX (+ licence notice), built beside the model
    DIR/engines/                 TensorRT engines + sidecars (only where TensorRT ran)
    DIR/DEPLOY.md                the commands to run on the device

Every ONNX carries its own card (its precision and its own accuracy check). The manifest is written before
any engine is attempted, so a failed engine build still leaves a complete bundle. torch is needed only
when the input is a checkpoint; everything else needs onnx and onnxruntime.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsa_edge._fileio import (
    check_writable,
    refuse_overwrite,
    same_or_inside,
    staged_dir,
    write_json_atomic,
    write_text_atomic,
)
from lsa_edge._verify import sha256_file
from lsa_edge.errors import ConfigError, LsaEdgeError
from lsa_edge.manifest import BUILD_CONFIG, DEPLOY_MD, MODEL_ONNX, Manifest

from .config import DEFAULT_GENERATION, DETECTOR_BATCH, BuildConfig, Precision, check_batch
from .deploy import deploy_text
from .from_bundle import build_engines, build_from_manifest, read_bundle, read_manifest
from .manifest_writer import BuildResult, compose_manifest, write_manifest
from .reduce import Reduced, reduce_fp16, reduce_int8, reference
from .steps import (
    Fp32Model,
    Opset16,
    Validation,
    Workspace,
    check_exclusions,
    copy_detector,
    export,
    load_fp32,
    load_validation,
    lower_opset16,
    measure_template,
)
from .trtexec import tensorrt_commands

__all__ = [  # the public names of engines.build before the split, re-exported
    "DEFAULT_GENERATION",
    "DETECTOR_BATCH",
    "Build",
    "BuildConfig",
    "Precision",
    "build",
    "build_engines",
    "build_from_manifest",
    "check_batch",
    "deploy_text",
    "read_bundle",
    "read_manifest",
    "sha256_file",
    "tensorrt_commands",
    "write_manifest",
]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _logged_as(tmp: Path, final: Path) -> Iterator[None]:
    """While a build is staged in the hidden folder ``tmp``, log lines name the files where they will be
    (``final``), not the temporary folder the user never sees ("wrote build/fp16/model_fp16.onnx")."""
    pairs = [(str(tmp.resolve()), str(final.resolve())), (str(tmp), str(final))]
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # a bad format is logging's own error to report
            return record
        if any(t in text for t, _ in pairs):
            for t, f in pairs:
                text = text.replace(t, f)
            record.msg, record.args = text, None
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)


def _preflight(model: Path, final: Path, cfg: BuildConfig) -> None:
    """Refuse, before any work, an --out that would swallow the input, is a file, is someone's folder or
    cannot be written, and --require-engine where there is no TensorRT."""
    from_checkpoint = model.suffix != ".onnx"
    if from_checkpoint and model.exists() and same_or_inside(model, final):
        raise ConfigError(
            f"--out {final} holds the input {model}: the build would replace the folder and the "
            "checkpoint with it. Choose another --out"
        )
    if final.exists() and not final.is_dir():
        raise ConfigError(f"--out {final} is a file; give a folder for the build")
    refuse_overwrite(final, cfg.overwrite)
    check_writable(final, "--out")
    if cfg.require_engine:  # known now, not after the build
        from .tensorrt import tensorrt_version

        if tensorrt_version() is None:
            raise LsaEdgeError(
                "TensorRT is not installed here and --require-engine was given; nothing was built. Build "
                "the bundle without --require-engine and run 'lsa-edge build --from-bundle DIR' on the device"
            )


def build(model: str | Path, cfg: BuildConfig) -> Manifest:
    """Build into a temporary folder beside ``cfg.out`` and rename it into place once the bundle is complete:
    a failure leaves no empty or half-filled folder, and a previous build there stays until the new one is
    whole (``cfg.overwrite``; without it a non-empty ``cfg.out`` is refused before any work). Engines are
    then added to the finished bundle, as ``--from-bundle`` would (each file atomically), so a failed engine
    build still leaves a complete bundle. Returns the manifest as written."""
    model, final = Path(model), Path(cfg.out)
    _preflight(model, final, cfg)
    with staged_dir(final, overwrite=cfg.overwrite) as tmp, _logged_as(tmp, final):
        manifest = bundle(Workspace(model, cfg, tmp, final))
    return engines(Workspace(model, cfg, final, final), manifest)


def bundle(ws: Workspace) -> Manifest:
    """Every step up to a complete bundle in ``ws.out``: the ONNX files, manifest.json, DEPLOY.md and
    build_config.json."""
    cfg = ws.cfg
    fp32 = load_fp32(ws)
    val = load_validation(cfg, fp32.card) if cfg.precision != "fp32" or ws.from_checkpoint else None
    if ws.from_checkpoint and val is not None:
        fp32 = export(ws, val)
    check_exclusions(ws, fp32)
    fp32 = measure_template(cfg, fp32)
    lowered = lower_opset16(ws, fp32.card, MODEL_ONNX, val)  # TensorRT 8.5's graph, before the gates
    reduced = _reduce(ws, fp32, lowered, val)
    detector = copy_detector(ws) if cfg.detector else {}
    manifest = compose_manifest(_result(ws, fp32, val, lowered, reduced, detector), cfg)
    write_manifest(ws.out, manifest)  # a complete bundle before any engine is attempted
    write_text_atomic(ws.out / DEPLOY_MD, deploy_text(manifest))
    write_json_atomic(ws.out / BUILD_CONFIG, cfg.to_json())
    return manifest


def _reduce(ws: Workspace, fp32: Fp32Model, lowered: Opset16 | None, val: Validation | None) -> Reduced:
    """The precision step: nothing for FP32; FP16 or INT8 gated against FP32's reference."""
    if ws.cfg.precision == "fp32" or val is None:  # FP16/INT8 always load validation faces
        return Reduced()
    ref = reference(fp32, val)
    if ws.cfg.precision == "fp16":
        return reduce_fp16(ws, fp32, lowered, ref)
    return reduce_int8(ws, fp32, val, ref)


def _target(cfg: BuildConfig) -> tuple[str, str | None]:
    """(TensorRT generation the manifest's `onnx` is for, the local TensorRT version or None)."""
    from .tensorrt import generation, tensorrt_version

    local = tensorrt_version()
    if cfg.tensorrt:
        return cfg.tensorrt, local
    return (generation(local) if local else DEFAULT_GENERATION), local


def _result(
    ws: Workspace,
    fp32: Fp32Model,
    val: Validation | None,
    lowered: Opset16 | None,
    reduced: Reduced,
    detector: dict[str, Path],
) -> BuildResult:
    rewrites = [r for r in (lowered, *reduced.lowered) if r is not None]
    target, local = _target(ws.cfg)
    timings = {**(val.timings if val else {}), **fp32.timings}
    if lowered is not None:
        timings[f"opset16_{Path(lowered.source).stem}"] = lowered.seconds
    timings.update(reduced.timings)  # the reduced graph's own rewrite is timed there, in its place
    return BuildResult(
        source=ws.model.name,
        out=ws.out,
        card=fp32.card,
        parity=fp32.parity,
        checks=dict(reduced.checks),
        files={MODEL_ONNX: fp32.path, **{r.path.name: r.path for r in rewrites}, **reduced.files, **detector},
        opset16={r.source: r.path.name for r in rewrites},
        opset16_parity={r.path.name: r.parity for r in rewrites},
        calibration=reduced.calibration,
        validation_source=val.source if val else None,
        labelled=val.labelled if val else True,
        timings=timings,
        target=target,
        tensorrt_local=local,
        from_checkpoint=ws.from_checkpoint,
    )


def engines(ws: Workspace, manifest: Manifest) -> Manifest:
    """The bundle's engines with the local TensorRT, or the bundle as it is (with a warning) where there is
    none or the build fails — an error with ``--require-engine``."""
    commands = manifest.tensorrt_commands or {}
    how = f"copy {ws.final} to the device and run in it: {commands.get('lsa_edge')}"
    if manifest.tensorrt_local is None:
        if ws.cfg.require_engine:
            raise LsaEdgeError(f"TensorRT is not installed here and --require-engine was given; {how}")
        log.warning(
            "TensorRT is not installed here, so no engine was built. %s is a build bundle: %s", ws.final, how
        )
        return manifest
    try:
        return build_engines(ws.final, manifest, ws.cfg)
    except LsaEdgeError as err:
        if ws.cfg.require_engine:
            raise
        log.warning("no engine was built (%s); %s is still a complete build bundle: %s", err, ws.final, how)
        return manifest


class Build:
    """One build run (the API before the step chain): ``Build(model, cfg).run()`` is :func:`build`, as
    the manifest's JSON object."""

    def __init__(self, model: str | Path, cfg: BuildConfig) -> None:
        self.model = Path(model)
        self.cfg = cfg

    def run(self) -> dict[str, Any]:
        build(self.model, self.cfg)
        return read_manifest(self.cfg.out)  # as JSON has it (lists, not tuples), like every later reader
