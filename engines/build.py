"""``lsa-edge build``: checkpoint or FP32 ONNX → a deployable folder for one precision.

One artifact step at a time: checkpoint → FP32 ONNX (parity-checked) → FP16 ONNX or Q/DQ INT8 ONNX
(accuracy-gated against FP32 on labelled validation faces) → TensorRT engines where TensorRT is importable,
otherwise a *build bundle* with the exact device commands. The output folder::

    DIR/manifest.json            what was built, how it was checked, the device commands (+ the card)
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
import datetime as dt
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from packaging.version import Version

from lsa_edge import __version__
from lsa_edge._checks import check_number
from lsa_edge._fileio import (
    atomic_path,
    check_writable,
    copy_atomic,
    refuse_overwrite,
    same_or_inside,
    staged_dir,
    write_json_atomic,
    write_text_atomic,
)
from lsa_edge._lazy import available, require

# One definition each, the loader's: the manifest's name and format, precisions, TensorRT generations.
from lsa_edge._manifest import GENERATIONS, MANIFEST, MANIFEST_FORMAT, PRECISIONS, check_build_keys
from lsa_edge._verify import sha256_file
from lsa_edge.card import ModelCard
from lsa_edge.engine_meta import sidecar_path
from lsa_edge.errors import ConfigError, DataError, LsaEdgeError, unknown_choice

from .accuracy import AccuracyCheck, AccuracyGateError, compare_accuracy, enforce

log = logging.getLogger(__name__)

DEFAULT_GENERATION = "10"  # JetPack 6 (Orin): the TensorRT most Jetsons in the field run today
DETECTOR_BATCH = (1, 1, 4)  # frames per detector call: one camera, up to four
Precision = Literal["fp32", "fp16", "int8"]

# Which ONNX each TensorRT generation builds, per precision, and whether the build is strongly typed
# (the ONNX's own types decide; what the accuracy gate measured is what runs).
ONNX_BY_GENERATION = {
    "fp32": {"8.5": "model.onnx", "10": "model.onnx", "11": "model.onnx"},
    # 8.5: the FP32 ONNX + the FP16 builder flag (no strong typing there); 10 and 11: the FP16 ONNX.
    "fp16": {"8.5": "model.onnx", "10": "model_fp16.onnx", "11": "model_fp16.onnx"},
    "int8": {"8.5": "model_int8_trt.onnx", "10": "model_int8_trt.onnx", "11": "model_int8_trt.onnx"},
}
STRONGLY_TYPED = {
    "fp32": {"8.5": False, "10": False, "11": True},
    "fp16": {"8.5": False, "10": True, "11": True},
    # 8.5/10: Q/DQ + INT8 flag + FP16 for the unquantized layers; 11: Q/DQ, the rest FP32.
    "int8": {"8.5": False, "10": False, "11": True},
}
# The accuracy check that describes what each generation runs.
GATE_BY_GENERATION = {
    "fp16": {"8.5": "fp16_all_layers", "10": "fp16", "11": "fp16"},
    "int8": {"8.5": "int8_trt_fp16", "10": "int8_trt_fp16", "11": "int8_trt"},
}
CPU_ONNX = {  # what ONNX Runtime on a CPU should run for each precision
    "fp32": "model.onnx",
    "fp16": "model.onnx",  # x86 ONNX Runtime has no FP16 kernels: model_fp16.onnx runs upcast and slower
    "int8": "model_int8_cpu.onnx",
}


def check_batch(batch: Any, flag: str = "--batch") -> None:
    """A TensorRT optimisation profile: three integers with 1 ≤ MIN ≤ OPT ≤ MAX."""
    ok = (
        isinstance(batch, (tuple, list))
        and len(batch) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in batch)
        and 1 <= batch[0] <= batch[1] <= batch[2]
    )
    if not ok:
        raise ConfigError(f"{flag} must be MIN,OPT,MAX with 1 ≤ MIN ≤ OPT ≤ MAX (e.g. 1,8,16), got {batch}")


@dataclass(frozen=True)
class BuildConfig:
    """Options of one build (the CLI's flags)."""

    precision: Precision = "fp16"
    out: Path = Path("build")
    opset: int | None = None  # ONNX opset; None = 17, or 16 for TensorRT 8.5 (no LayerNormalization)
    simplify: bool = True  # onnxsim after export
    calib_data: str | None = None  # data set or image folder: INT8 calibration faces (train split)
    val_data: str | None = None  # labelled data set for parity and the accuracy gate (val split)
    data_format: str | None = None  # layout of the data sets (default: detected)
    calib_count: int = 512  # calibration faces
    val_count: int | None = 2000  # validation faces for the gate (None = the whole split)
    calib_method: str = "percentile"  # minmax | entropy | percentile
    calib_batch: int = 16  # faces per calibration batch
    max_accuracy_drop: float = 0.5  # mean-accuracy points an FP16/INT8 artifact may lose against FP32
    batch: tuple[int, int, int] = (1, 8, 16)  # TensorRT optimisation profile: min, opt, max faces
    workspace_mib: int = 1024  # TensorRT builder workspace (Orin Nano has 8 GB shared with the CPU)
    dla_core: int | None = None  # build for this DLA core (GPU fallback on); None = GPU
    tensorrt: str | None = None  # target TensorRT generation for the manifest's `onnx`; None = local or 10
    exclude_nodes: tuple[str, ...] = ()  # INT8: nodes kept in float
    fp32_ops: tuple[str, ...] = ()  # FP16: op types kept in FP32 besides the default sensitive ones
    detector: bool = True  # build the face detector beside the model
    require_engine: bool = False  # fail when no TensorRT engine could be built here
    seed: int = 0  # sampling of calibration and validation faces
    workers: int = 4
    progress: bool = True
    overwrite: bool = False  # replace a non-empty `out` (only once the new build is complete)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from lsa_edge.calibration.quantize import METHODS

        if self.precision not in PRECISIONS:
            raise ConfigError(unknown_choice("precision", self.precision, PRECISIONS))
        if self.tensorrt is not None and self.tensorrt not in GENERATIONS:
            raise ConfigError(unknown_choice("TensorRT generation", self.tensorrt, GENERATIONS))
        if self.calib_method not in METHODS:
            raise ConfigError(unknown_choice("calibration method", self.calib_method, METHODS))
        check_batch(self.batch)
        lo, opt, hi = self.batch
        check_number(
            self.max_accuracy_drop, "max_accuracy_drop", flag="--max-accuracy-drop", lo=0, hi=100,
            hint="mean-accuracy points, e.g. 0.5",
        )  # fmt: skip
        check_number(
            self.calib_count, "calib_count", flag="--calib-count", lo=1, integer=True, hint="e.g. 512"
        )
        check_number(
            self.val_count, "val_count", flag="--val-count", lo=1, integer=True, optional=True,
            hint="a number, or 'all' for the whole split",
        )  # fmt: skip
        check_number(self.calib_batch, "calib_batch", lo=1, integer=True)
        check_number(
            self.workspace_mib, "workspace_mib", flag="--workspace", lo=1, integer=True, hint="MiB, e.g. 1024"
        )
        check_number(self.workers, "workers", flag="--workers", lo=1, hi=256, integer=True, hint="e.g. 4")
        check_number(self.seed, "seed", flag="--seed", lo=0, hi=2**32 - 1, integer=True)
        check_number(self.opset, "opset", flag="--opset", lo=13, integer=True, optional=True, hint="e.g. 17")
        check_number(self.dla_core, "dla_core", flag="--dla-core", lo=0, integer=True, optional=True)
        if self.dla_core is not None:
            if self.dla_core < 0:
                raise ConfigError(f"--dla-core must be ≥ 0, got {self.dla_core}")
            if self.precision == "fp32":
                raise ConfigError("DLA runs FP16 or INT8 only; use --precision fp16 or int8 with --dla-core")
            if not lo == opt == hi:
                raise ConfigError(
                    f"DLA has no dynamic shapes: --batch must be N,N,N with --dla-core, got {lo},{opt},{hi}"
                )
        for path, flag in ((self.calib_data, "--calib-data"), (self.val_data, "--val-data")):
            if path is not None and not Path(path).exists():
                raise ConfigError(f"{flag} {path} does not exist")
            if path is not None and not Path(path).is_dir():
                raise ConfigError(
                    f"{flag} {path} is a file; give a folder: a data set (CelebA, generic CSV or LFWA layout) "
                    "or a folder of face pictures"
                )
        if self.fp32_ops:
            onnx = require("onnx", "checking --fp32-ops")
            unknown = [op for op in self.fp32_ops if not onnx.defs.has(op)]
            if unknown:
                raise ConfigError(
                    f"--fp32-ops: {', '.join(unknown)} are not ONNX operators (e.g. Softmax, Mul)"
                )


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


class Build:
    """One build run; call :meth:`run`. Keeps the manifest, timings and checks as it goes."""

    def __init__(self, model: str | Path, cfg: BuildConfig) -> None:
        self.model = Path(model)
        self.cfg = cfg
        self.final = Path(cfg.out)  # where the build ends up
        self.out = self.final  # where files are written now: a staged folder beside it while building
        self.timings: dict[str, float] = {}
        self.checks: dict[str, AccuracyCheck] = {}
        self.files: dict[str, Path] = {}
        self.card: ModelCard | None = None
        self.parity: float | None = None
        self.calibration: dict[str, Any] | None = None
        self.trt85: dict[str, str] = {}  # graph → its opset-16 rewrite for TensorRT 8.5
        self.opset16_parity: dict[str, float] = {}  # rewrite → max |Δp| against its source
        self.val_source: str | None = None
        self.val_labelled = True

    # -- steps --------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Build into a temporary folder beside ``cfg.out`` and rename it into place once the bundle is
        complete: a failure leaves no empty or half-filled folder, and a previous build there stays until the
        new one is whole (``cfg.overwrite``; without it a non-empty ``cfg.out`` is refused before any work).
        Engines are then added to the finished bundle, as ``--from-bundle`` would (each file atomically), so
        a failed engine build still leaves a complete bundle."""
        if self._from_checkpoint and self.model.exists() and same_or_inside(self.model, self.final):
            raise ConfigError(
                f"--out {self.final} holds the input {self.model}: the build would replace the folder and the "
                "checkpoint with it. Choose another --out"
            )
        if self.final.exists() and not self.final.is_dir():
            raise ConfigError(f"--out {self.final} is a file; give a folder for the build")
        refuse_overwrite(self.final, self.cfg.overwrite)
        check_writable(self.final, "--out")
        if self.cfg.require_engine:  # known now, not after the build
            from .tensorrt import tensorrt_version

            if tensorrt_version() is None:
                raise LsaEdgeError(
                    "TensorRT is not installed here and --require-engine was given; nothing was built. Build "
                    "the bundle without --require-engine and run 'lsa-edge build --from-bundle DIR' on the device"
                )
        with staged_dir(self.final, overwrite=self.cfg.overwrite) as tmp, _logged_as(tmp, self.final):
            self.out = tmp
            try:
                manifest = self._bundle()
            finally:
                self.out = self.final
        self.files = {name: self.final / name for name in self.files}
        self._engines(manifest)
        return read_manifest(self.out)  # as JSON has it (lists, not tuples), like every later reader

    def _bundle(self) -> dict[str, Any]:
        self._fp32_onnx()
        val = self._val_faces() if self.cfg.precision != "fp32" or self._from_checkpoint else None
        if val is not None:
            self.val_source, self.val_labelled = val.source, val.labels is not None
        if self._from_checkpoint:
            self._export(val)
        self._check_exclusions()
        self._template()
        self._lower("model.onnx", val)  # TensorRT 8.5's graph, before the gates that measure it
        if self.cfg.precision == "fp16":
            self._fp16(val)
        elif self.cfg.precision == "int8":
            self._int8(val)
        if self.cfg.detector:
            self._detector()
        manifest = self._manifest()
        write_manifest(self.out, manifest)  # a complete bundle before any engine is attempted
        write_text_atomic(self.out / "DEPLOY.md", deploy_text(manifest))
        return manifest

    @property
    def _opset(self) -> int:
        """17 (native LayerNormalization, what TensorRT 10/11 fuse best) unless 8.5 is the target: its parser
        has no LayerNormalization, and at opset 16 torch writes the decomposed form every generation parses."""
        if self.cfg.opset is not None:
            return self.cfg.opset
        return 16 if self.cfg.tensorrt == "8.5" else 17

    @property
    def _from_checkpoint(self) -> bool:
        return self.model.suffix != ".onnx"

    def _fp32_onnx(self) -> None:
        from .export import read_card

        dst = self.out / "model.onnx"
        if self._from_checkpoint:
            from lsa_edge.training.checkpoint import read_checkpoint

            if self.model.is_dir() and not (self.model / "best.pt").exists():
                onnx_files = sorted(p.name for p in self.model.glob("*.onnx"))
                if onnx_files:
                    raise ConfigError(
                        f"{self.model} is a build or package folder, not a training run (no best.pt); build "
                        f"from its FP32 graph: lsa-edge build {self.model / 'model.onnx'} ..."
                    )
            self.card = ModelCard.from_dict(read_checkpoint(self.model)["card"])
        else:
            if not self.model.is_file():
                raise ConfigError(f"{self.model} does not exist")
            self.card = read_card(self.model)
            _require_fp32(self.model, self.card)
            if self.cfg.opset is not None or not self.cfg.simplify:
                log.warning(
                    "--opset/--no-simplify apply to exports from a checkpoint; %s is used as it is",
                    self.model,
                )
            copy_atomic(self.model, dst)
            self.parity = self.card.build.get("export", {}).get("parity_max_abs_diff")
            if self.parity is None:
                log.warning("%s carries no export parity figure (exported by an older lsa-edge?)", self.model)
        self.files["model.onnx"] = dst

    def _val_faces(self) -> Any:
        from lsa_edge.calibration.dataset import is_dataset, load_faces

        src = self.cfg.val_data or self.cfg.calib_data
        if src is None:
            if self.cfg.precision == "int8":
                raise ConfigError(
                    "INT8 calibration needs real faces: pass --calib-data DIR (a data set: CelebA, generic CSV "
                    "or LFWA layout, or a folder of face pictures from the robot's camera), e.g. "
                    "--calib-data ../shared/data/celeba-10k"
                )
            from lsa_edge.calibration.builtin import builtin_faces

            assert self.card is not None
            log.warning(
                "no --calib-data: the labelled accuracy gate is SKIPPED. %s numerics are checked against FP32 "
                "on built-in faces (the demo portrait, augmented): decisions must agree on ≥ %.1f%% of "
                "face×attribute pairs. Pass --calib-data DIR (labelled faces) for the accuracy gate.",
                "Export" if self.cfg.precision == "fp32" else self.cfg.precision.upper(),
                100 - self.cfg.max_accuracy_drop,
            )
            t0 = time.perf_counter()
            faces = builtin_faces(
                self.card.preprocessing, count=min(self.cfg.val_count or 64, 64), seed=self.cfg.seed
            )
            self.timings["load_validation_faces"] = time.perf_counter() - t0
            return faces
        if not (self.cfg.data_format or is_dataset(src)):
            raise ConfigError(
                f"{src} is an image folder without labels; the accuracy gate needs a labelled data set: "
                "add --val-data DIR (CelebA, generic CSV or LFWA layout)"
            )
        assert self.card is not None
        last: Exception | None = None
        for split in ("val", "test"):
            try:
                t0 = time.perf_counter()
                faces = load_faces(
                    src,
                    self.card.preprocessing,
                    split=split,
                    count=self.cfg.val_count,
                    seed=self.cfg.seed,
                    fmt=self.cfg.data_format,
                    workers=self.cfg.workers,
                    progress=self.cfg.progress,
                )
                self.timings["load_validation_faces"] = time.perf_counter() - t0
                if split != "val":
                    log.warning("%s has no validation split; the accuracy gate uses its %s split", src, split)
                log.info("validation faces: %s", faces.source)
                return faces
            except DataError as err:
                last = err
        raise DataError(f"no validation faces in {src}: {last}")

    def _export(self, val: Any) -> None:
        from lsa_edge.training.checkpoint import load_model

        from .export import export_onnx, read_card

        model, card, _ = load_model(self.model, "cpu")
        parity_faces = val.tensors(card.preprocessing)[:256]
        res = export_onnx(
            model, card, self.out / "model.onnx", parity_faces, opset=self._opset, simplify=self.cfg.simplify
        )
        self.parity = res.parity_max_abs_diff
        self.timings["export"] = res.export_seconds
        self.timings["simplify"] = res.simplify_seconds
        self.card = read_card(res.path)

    def _check_exclusions(self) -> None:
        """--exclude-nodes must name nodes of the FP32 graph; checked before calibration spends minutes."""
        if not self.cfg.exclude_nodes:
            return
        onnx = require("onnx", "checking --exclude-nodes")
        nodes = {n.name for n in onnx.load(str(self.out / "model.onnx")).graph.node}
        missing = [n for n in self.cfg.exclude_nodes if n not in nodes]
        if missing:
            onnx_file = self.final / "model.onnx" if self._from_checkpoint else self.model
            raise ConfigError(
                f"--exclude-nodes names nodes the graph does not have: {', '.join(missing)}; list them with: "
                f"lsa-edge check {onnx_file} --nodes"
                + (
                    " (after an FP32 build of the checkpoint into that folder)"
                    if self._from_checkpoint
                    else ""
                )
            )

    def _template(self) -> None:
        """Measure the alignment template with the face detector when the card still has CelebA's means."""
        from dataclasses import replace

        from lsa_edge.alignment import estimate_for_dataset, is_estimated
        from lsa_edge.calibration.dataset import is_dataset
        from lsa_edge.data import load_dataset

        assert self.card is not None
        pre = self.card.preprocessing
        src = self.cfg.calib_data or self.cfg.val_data
        if is_estimated(pre.template):
            return
        if src is None or not (self.cfg.data_format or is_dataset(src)):
            log.warning(
                "the card's alignment template is CelebA's mean landmarks, not measured with the face "
                "detector; give --calib-data DATASET to measure it (detect + align will be less exact)"
            )
            return
        t0 = time.perf_counter()
        est = estimate_for_dataset(load_dataset(src, self.cfg.data_format).split("train"), pre)
        self.timings["alignment_template"] = time.perf_counter() - t0
        self.card = self.card.with_updates(preprocessing=replace(pre, template=est.template))

    def _reference(self, val: Any) -> np.ndarray:
        if not hasattr(self, "_ref"):
            from lsa_edge.backends import OnnxRuntimeBackend

            assert self.card is not None
            self._x = val.tensors(self.card.preprocessing)
            t0 = time.perf_counter()
            self._ref = OnnxRuntimeBackend(self.out / "model.onnx").predict(self._x)
            self.timings["evaluate_fp32"] = time.perf_counter() - t0
        return self._ref

    def _gate(
        self, name: str, path: Path, val: Any, precision: str, label: str | None = None
    ) -> AccuracyCheck:
        """Measure ``path`` against FP32 on the validation faces and enforce the allowed drop."""
        from lsa_edge.backends import OnnxRuntimeBackend

        assert self.card is not None
        ref = self._reference(val)
        t0 = time.perf_counter()
        probs = OnnxRuntimeBackend(path).predict(self._x)
        self.timings[f"evaluate_{name}"] = time.perf_counter() - t0
        labels, label = val.labels, label or path.name
        if labels is None:  # built-in faces: FP32's own decisions are the labels (a numerics check)
            labels = (ref >= np.asarray(self.card.thresholds, dtype=np.float32)).astype(np.uint8)
            label += " [built-in faces, FP32 decisions as labels]"
        check = compare_accuracy(label, ref, probs, labels, self.card.thresholds, self.card.attributes)
        self.checks[name] = check
        log.info("accuracy gate: %s", check.describe())
        enforce(check, self.cfg.max_accuracy_drop, precision)
        return check

    def _gates(self, runs: list[tuple[str, Path, str]], val: Any) -> None:
        """Run every gate (so all deltas are reported), then fail on the first that lost too much."""
        failures = []
        for name, path, label in runs:
            try:
                self._gate(name, path, val, self.cfg.precision, label)
            except AccuracyGateError as err:
                failures.append(err)
        if failures:
            raise failures[0]

    def _fp16(self, val: Any) -> None:
        from .fp16 import FP32_OPS, convert_fp16

        t0 = time.perf_counter()
        path = convert_fp16(
            self.out / "model.onnx", self.out / "model_fp16.onnx", (*FP32_OPS, *self.cfg.fp32_ops)
        )
        self.timings["fp16"] = time.perf_counter() - t0
        self.files["model_fp16.onnx"] = path
        with tempfile.TemporaryDirectory(prefix="lsa-fp16-") as tmp:
            # TensorRT 8.5 has no strong typing: with the FP16 flag it may run any layer in FP16, the
            # softmax and normalisations included. Gate that worst case too (every op in FP16), on the graph
            # 8.5 builds (the opset-16 one: LayerNormalization's primitives in FP16 too).
            every = convert_fp16(
                self.out / self.trt85.get("model.onnx", "model.onnx"), Path(tmp) / "all.onnx", ()
            )
            self._gates(
                [
                    ("fp16", path, "model_fp16.onnx (TensorRT 10/11, strongly typed)"),
                    ("fp16_all_layers", every, "every layer FP16 (TensorRT 8.5's --fp16 worst case)"),
                ],
                val,
            )

    def _int8(self, val: Any) -> None:
        from lsa_edge.calibration.cache import scales_from_ranges, write_cache
        from lsa_edge.calibration.dataset import load_faces, require_enough
        from lsa_edge.calibration.quantize import calibrate, quantize

        assert self.card is not None
        pre = self.card.preprocessing
        src = self.cfg.calib_data or self.cfg.val_data
        assert src is not None  # _val_faces raised otherwise
        t0 = time.perf_counter()
        calib = load_faces(
            src,
            pre,
            split="train",
            count=self.cfg.calib_count,
            seed=self.cfg.seed,
            fmt=self.cfg.data_format,
            workers=self.cfg.workers,
            progress=self.cfg.progress,
        )
        require_enough(calib, min(self.cfg.calib_count, 32), "INT8 calibration")
        overlap = set(calib.names) & set(val.names)
        if overlap:
            log.warning(
                "%d calibration faces are also validation faces; the gate is optimistic", len(overlap)
            )
        self.timings["load_calibration_faces"] = time.perf_counter() - t0
        log.info("calibration faces: %s", calib.source)
        batches = list(calib.batches(pre, self.cfg.calib_batch))
        ranges = calibrate(
            self.out / "model.onnx",
            batches,
            self.out,
            method=self.cfg.calib_method,
            progress=self.cfg.progress,
        )
        self.timings["calibrate"] = ranges.seconds
        ranges.ort_cache.chmod(0o644)  # ONNX Runtime writes it through mkstemp (0600)
        self.files[ranges.ort_cache.name] = ranges.ort_cache
        cache = write_cache(self.out / "calibration.cache", scales_from_ranges(ranges.ranges))
        self.files["calibration.cache"] = Path(cache)
        for flavour, name in (("tensorrt", "model_int8_trt.onnx"), ("cpu", "model_int8_cpu.onnx")):
            t0 = time.perf_counter()
            self.files[name] = quantize(
                self.out / "model.onnx",
                self.out / name,
                ranges,
                flavour,  # type: ignore[arg-type]
                exclude_nodes=self.cfg.exclude_nodes,
                batches=batches,
            )
            self.timings[f"quantize_{flavour}"] = time.perf_counter() - t0
        self.calibration = {
            "method": ranges.method,
            "faces": ranges.images,
            "source": calib.source,
            "tensors": len(ranges.ranges),
            "excluded_nodes": list(self.cfg.exclude_nodes),
            "tensorrt_cache": "calibration.cache",
            "onnxruntime_cache": ranges.ort_cache.name,
        }
        self._int8_gates(self._lower("model_int8_trt.onnx", val), val)  # with TensorRT 8.5's Q/DQ graph

    def _int8_gates(self, lowered: Path | None, val: Any) -> None:
        """Gate each INT8 artifact as what runs it will run it: TensorRT 11 the Q/DQ graph as typed, 10 with
        FP16 for the unquantized layers, 8.5 its opset-16 graph with every float layer FP16, ONNX Runtime
        its CPU flavour."""
        from .fp16 import FP32_OPS, convert_fp16

        with tempfile.TemporaryDirectory(prefix="lsa-int8-fp16-") as tmp:
            # TensorRT 8.5/10 build INT8 with FP16 for the layers left without Q/DQ (attention, norms,
            # sigmoid): gate that combination too, emulated by casting the float parts to FP16.
            mixed = convert_fp16(
                self.out / "model_int8_trt.onnx",
                Path(tmp) / "model_int8_trt_fp16.onnx",
                (*FP32_OPS, "QuantizeLinear", "DequantizeLinear"),
            )
            runs = [
                ("int8_trt", self.out / "model_int8_trt.onnx", "model_int8_trt.onnx (TensorRT 11)"),
                ("int8_trt_fp16", mixed, "model_int8_trt.onnx + FP16 for the rest (TensorRT 10)"),
                ("int8_cpu", self.out / "model_int8_cpu.onnx", "model_int8_cpu.onnx (ONNX Runtime CPU)"),
            ]
            if lowered is not None:  # 8.5 may run every float layer in FP16, the decomposed norms included
                every = convert_fp16(
                    lowered, Path(tmp) / "int8_85.onnx", ("QuantizeLinear", "DequantizeLinear")
                )
                runs.append(
                    ("int8_trt_fp16_85", every, f"{lowered.name} + every float layer FP16 (TensorRT 8.5)")
                )
            self._gates(runs, val)

    def _lower(self, name: str, val: Any) -> Path | None:
        """``name`` at opset 16 for TensorRT 8.5 (which cannot parse opset 17's LayerNormalization; see
        :mod:`.opset`), checked against it with ONNX Runtime; returns the new file, or None when 8.5 parses
        ``name`` already or the rewrite cannot express it (then 8.5 is left unbuildable, with a warning —
        an error only when 8.5 is the target)."""
        from lsa_edge.backends import OnnxRuntimeBackend

        from .lint import lint_report
        from .opset import lower_to_opset16

        src = self.out / name
        if not any(e.severity == "error" for e in lint_report(src, "8.5").findings):
            return None  # already parses on 8.5 (an opset-16 export, or a graph without opset-17 ops)
        t0 = time.perf_counter()
        assert self.card is not None
        if val is None:  # an FP32 build from an ONNX loads no faces; the rewrite is checked on built-in ones
            from lsa_edge.calibration.builtin import builtin_faces

            val = builtin_faces(self.card.preprocessing, count=32, seed=self.cfg.seed)
        x = val.tensors(self.card.preprocessing)[:64]
        dst = src.with_name(src.stem + "_opset16.onnx")
        try:
            lower_to_opset16(src, dst)
            diff = float(
                np.abs(OnnxRuntimeBackend(src).predict(x) - OnnxRuntimeBackend(dst).predict(x)).max()
            )
            tol = 1e-4 if name == "model.onnx" else 2e-2  # Q/DQ: a rounding flip moves one step
            if diff > tol:
                raise LsaEdgeError(
                    f"{dst.name} differs from {name} by up to {diff:.3g} (allowed {tol:g}): the opset-16 "
                    "rewrite does not hold for this graph"
                )
        except LsaEdgeError as err:
            dst.unlink(missing_ok=True)
            if self.cfg.tensorrt == "8.5":
                raise
            log.warning(
                "no graph for TensorRT 8.5 (%s); this bundle serves TensorRT 10 and 11. For 8.5 build from "
                "the checkpoint with --trt 8.5 (an opset-16 export).",
                err,
            )
            return None
        self.files[dst.name] = dst
        self.trt85[name] = dst.name
        self.opset16_parity[dst.name] = diff
        self.timings[f"opset16_{src.stem}"] = time.perf_counter() - t0
        log.info("%s (TensorRT 8.5): max |Δp| vs %s %.2g on %d faces", dst.name, name, diff, len(x))
        return dst

    def _detector(self) -> None:
        from lsa_edge.models import detector_path

        from .fp16 import convert_fp16

        src = detector_path()
        dst_dir = self.out / "detector"
        dst_dir.mkdir(exist_ok=True)
        dst = dst_dir / src.name
        copy_atomic(src, dst)
        for extra in ("NOTICE", "PROVENANCE.json"):
            if (src.parent / extra).exists():
                copy_atomic(src.parent / extra, dst_dir / extra)
        self.files[f"detector/{src.name}"] = dst
        if (
            self.cfg.precision != "fp32"
        ):  # strongly typed TensorRT (10 opt-in, 11 always) takes FP16 from the graph
            half = convert_fp16(dst, dst_dir / f"{src.stem}_fp16.onnx")
            self.files[f"detector/{half.name}"] = half

    # -- manifest and engines -----------------------------------------------------------------------------
    def _target(self) -> tuple[str, str | None]:
        """(TensorRT generation the manifest's `onnx` is for, the local TensorRT version or None)."""
        from .tensorrt import generation, tensorrt_version

        local = tensorrt_version()
        if self.cfg.tensorrt:
            return self.cfg.tensorrt, local
        return (generation(local) if local else DEFAULT_GENERATION), local

    def _manifest(self) -> dict[str, Any]:
        assert self.card is not None
        target, local = self._target()
        p = self.cfg.precision
        by_gen = dict(ONNX_BY_GENERATION[p])
        by_gen["8.5"] = self.trt85.get(by_gen["8.5"], by_gen["8.5"])
        gate = dict(GATE_BY_GENERATION.get(p, {}))
        if "int8_trt_fp16_85" in self.checks:  # 8.5 builds the opset-16 Q/DQ graph: its own gate
            gate["8.5"] = "int8_trt_fp16_85"
        delta = self.checks[gate[target]].delta_points if gate else 0.0
        cards = self._store_cards()
        h, w = self.card.preprocessing.input_size
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "lsa_edge": __version__,
            "source": self.model.name,
            "precision": p,
            "onnx": by_gen[target],
            "onnx_by_tensorrt": by_gen,
            "strongly_typed_by_tensorrt": STRONGLY_TYPED[p],
            "tensorrt_target": target,
            "cpu_onnx": CPU_ONNX[p],
            "engine": None,
            "parity_max_abs_diff": self.parity,
            # Mean-accuracy points lost against FP32 by what the target TensorRT runs (see accuracy_by_tensorrt).
            "accuracy_delta": delta,
            "accuracy_by_tensorrt": {g: self.checks[c].delta_points for g, c in gate.items()},
            "accuracy": {k: c.to_dict() for k, c in self.checks.items()},
            "max_accuracy_drop": self.cfg.max_accuracy_drop,
            # What the checks above ran on: labelled faces (an accuracy gate) or built-in ones (numerics only).
            "validation": {
                "faces": self.val_source,
                "labelled": self.val_labelled,
                "gate": "accuracy"
                if self.val_labelled
                else "numerics only: decisions agree with FP32 (no labels)",
            },
            # graph → the same graph at opset 16 (TensorRT 8.5 parses no LayerNormalization), and their parity
            "opset16": dict(self.trt85),
            "opset16_parity_max_abs_diff": self.opset16_parity,
            "input": {"name": "faces", "shape": ["batch", 3, h, w], "dtype": "float32"},
            "output": {"name": "probs", "shape": ["batch", len(self.card.attributes)], "dtype": "float32"},
            "batch": list(self.cfg.batch),
            "workspace_mib": self.cfg.workspace_mib,
            "dla_core": self.cfg.dla_core,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if self.calibration:
            manifest["calibration"] = self.calibration
        manifest["detector"] = self._detector_entry() if self.cfg.detector else None
        manifest["tensorrt_compatibility"] = self._compatibility(manifest, target)
        manifest["tensorrt_commands"] = tensorrt_commands(manifest)
        manifest["tensorrt_local"] = local
        manifest["files"] = {
            name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            for name, path in sorted(self.files.items())
        }
        manifest["card"] = cards[by_gen[target]].to_dict()
        return manifest

    def _compatibility(self, manifest: dict[str, Any], target: str) -> dict[str, Any]:
        """Lint every ONNX against every TensorRT generation (lsa-edge check); the target must pass."""
        from .lint import lint_report

        result: dict[str, Any] = {}
        for gen in GENERATIONS:
            files = {"model": manifest["onnx_by_tensorrt"][gen]}
            if manifest.get("detector"):
                files["detector"] = manifest["detector"]["onnx_by_tensorrt"][gen]
            errors = []
            for role, name in files.items():
                rep = lint_report(self.out / name, gen)
                errors += [
                    f"{role} {name}: {f.rule}: {f.message}" for f in rep.findings if f.severity == "error"
                ]
            result[gen] = {"ok": not errors, "errors": errors}
        if not result[target]["ok"]:
            hint = (
                " Build from the checkpoint with --trt 8.5 (it exports opset 16)."
                if target == "8.5" and not self._from_checkpoint
                else ""
            )
            raise LsaEdgeError(
                f"this build cannot be built by TensorRT {target}: "
                + " | ".join(result[target]["errors"])
                + hint
            )
        for gen, r in result.items():
            if not r["ok"]:
                log.warning("not buildable with TensorRT %s: %s", gen, r["errors"][0])
        return result

    def _store_cards(self) -> dict[str, ModelCard]:
        """Write into every model ONNX a card describing *that* file: its precision and its own checks."""
        onnx = require("onnx", "writing the model card")
        from .export import set_card

        assert self.card is not None
        base = {"export": self.card.build.get("export", {})}
        checks = {k: c.to_dict() for k, c in self.checks.items()}
        per_file: dict[str, dict[str, Any]] = {
            "model.onnx": {"precision": "fp32"},
            "model_fp16.onnx": {
                "precision": "fp16",
                "accuracy": {k: v for k, v in checks.items() if k.startswith("fp16")},
            },
            "model_int8_trt.onnx": {
                "precision": "int8",
                "quantization": "Q/DQ s8/s8 per-channel (TensorRT)",
                "accuracy": {k: v for k, v in checks.items() if k.startswith("int8_trt")},
                "calibration": self.calibration,
            },
            "model_int8_cpu.onnx": {
                "precision": "int8",
                "quantization": "Q/DQ u8/s8 per-channel (ONNX Runtime CPU)",
                "accuracy": {k: v for k, v in checks.items() if k == "int8_cpu"},
                "calibration": self.calibration,
            },
        }
        for name, lowered in self.trt85.items():  # the same model at opset 16, for TensorRT 8.5
            per_file[lowered] = {
                **per_file[name],
                "opset16_of": name,
                "opset16_parity_max_abs_diff": self.opset16_parity.get(lowered),
            }
        cards = {}
        for name, info in per_file.items():
            path = self.files.get(name)
            if path is None:
                continue
            card = self.card.with_updates(
                build={**base, **info, "max_accuracy_drop": self.cfg.max_accuracy_drop}
            )
            proto = onnx.load(str(path))
            set_card(proto, card)
            with atomic_path(path) as tmp:
                onnx.save(proto, str(tmp))
            cards[name] = card
        return cards

    def _detector_entry(self) -> dict[str, Any]:
        onnx = require("onnx", "reading the detector")
        name, *half = sorted(k for k in self.files if k.startswith("detector/"))
        proto = onnx.load(str(self.files[name]), load_external_data=False)
        inp = proto.graph.input[0]
        dims = [
            d.dim_value if d.HasField("dim_value") else d.dim_param for d in inp.type.tensor_type.shape.dim
        ]
        fp16 = half[0] if half else name
        return {
            "onnx": name,
            "onnx_by_tensorrt": {"8.5": name, "10": fp16, "11": fp16},
            "strongly_typed_by_tensorrt": {"8.5": False, "10": bool(half), "11": True},
            "input": {"name": inp.name, "shape": dims},
            # One frame per call; up to 4 (cameras) in one batch where the ONNX has a dynamic batch.
            "batch": None if isinstance(dims[0], int) else list(DETECTOR_BATCH),
            # The detector runs once per frame; FP16 is its precision wherever the model is reduced
            # (BlazeFace is not INT8-calibrated here: its few MACs gain little and its boxes lose a lot).
            "precision": "fp32" if self.cfg.precision == "fp32" else "fp16",
            "engine": None,
        }

    def _engines(self, manifest: dict[str, Any]) -> None:
        local = manifest["tensorrt_local"]
        how = f"copy {self.out} to the device and run in it: {manifest['tensorrt_commands']['lsa_edge']}"
        if local is None:
            if self.cfg.require_engine:
                raise LsaEdgeError(f"TensorRT is not installed here and --require-engine was given; {how}")
            log.warning(
                "TensorRT is not installed here, so no engine was built. %s is a build bundle: %s",
                self.out,
                how,
            )
            return
        try:
            build_from_manifest(self.out, manifest, self.cfg)
        except LsaEdgeError as err:
            if self.cfg.require_engine:
                raise
            log.warning(
                "no engine was built (%s); %s is still a complete build bundle: %s", err, self.out, how
            )


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


def tensorrt_commands(manifest: dict[str, Any]) -> dict[str, Any]:
    """The device commands for every TensorRT generation, run inside the bundle folder."""
    from .tensorrt import trtexec_command

    p = manifest["precision"]
    lo, opt, hi = manifest["batch"]
    chw = tuple(manifest["input"]["shape"][1:])
    cmds: dict[str, Any] = {"lsa_edge": "lsa-edge build --from-bundle .", "trtexec": {}}
    det = manifest.get("detector")
    compat = manifest.get("tensorrt_compatibility", {})
    for gen in GENERATIONS:
        if not compat.get(gen, {"ok": True})["ok"]:
            hint = (
                " (on the device, with onnx installed, lsa-edge build --from-bundle writes the opset-16 graph "
                "8.5 needs; or rebuild the bundle with this lsa-edge, which adds it)"
                if gen == "8.5"
                else ""
            )
            cmds.setdefault("not_buildable", {})[gen] = compat[gen]["errors"][0] + hint
            continue
        lines = [
            "mkdir -p engines",
            trtexec_command(
                manifest["onnx_by_tensorrt"][gen],
                f"engines/model_{p}_trt{gen}.engine",
                p,
                gen,
                batch=(lo, opt, hi),
                input_name=manifest["input"]["name"],
                input_chw=chw,
                workspace_mib=manifest["workspace_mib"],
                timing_cache="timing.cache",
                dla_core=manifest["dla_core"],
                strongly_typed=manifest["strongly_typed_by_tensorrt"][gen] and gen == "10",
            ),
        ]
        if det:
            lines.append(
                trtexec_command(
                    det["onnx_by_tensorrt"][gen],
                    f"engines/detector_{det['precision']}_trt{gen}.engine",
                    det["precision"],
                    gen,
                    batch=tuple(det["batch"]) if det["batch"] else None,
                    input_name=det["input"]["name"],
                    input_chw=tuple(det["input"]["shape"][1:]) if det["batch"] else None,
                    workspace_mib=manifest["workspace_mib"],
                    timing_cache="timing.cache",
                    strongly_typed=det["strongly_typed_by_tensorrt"][gen] and gen == "10",
                )
            )
        cmds["trtexec"][gen] = lines
    if p == "int8" and "8.5" in cmds["trtexec"]:  # 8.5 can also quantize implicitly with our cache
        fp32_85 = manifest.get("opset16", {}).get("model.onnx", "model.onnx")
        cmds["trtexec_implicit_int8_8.5"] = trtexec_command(
            fp32_85,
            "engines/model_int8_implicit_trt8.5.engine",
            "int8",
            "8.5",
            batch=(lo, opt, hi),
            input_name=manifest["input"]["name"],
            input_chw=chw,
            workspace_mib=manifest["workspace_mib"],
            calibration_cache="calibration.cache",
            timing_cache="timing.cache",
        )
    return cmds


def write_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    return write_json_atomic(Path(out) / MANIFEST, manifest)


def read_manifest(bundle: str | Path, for_build: bool = False) -> dict[str, Any]:
    """A bundle's manifest, checked as the runtime loader checks it; ``for_build``: also every key
    building engines reads (:data:`lsa_edge._manifest.BUILD_SCHEMA`). PackageError naming the file."""
    bundle = Path(bundle)
    path = bundle / MANIFEST if bundle.is_dir() else bundle
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; create a bundle with: lsa-edge build MODEL --out {bundle}")
    if path.suffix.lower() != ".json":  # a model, an engine, an image … given where the bundle goes: usage
        raise ConfigError(
            f"--from-bundle takes a bundle folder (or its {MANIFEST}), got the file {path}; "
            f"give the folder that `lsa-edge build MODEL --out DIR` wrote"
        )
    from lsa_edge._manifest import read_manifest as read_checked

    # The runtime loader's checks (JSON object, format, types, names inside the folder): PackageError
    return read_checked(path.parent, path.name, for_build=for_build)


def build_from_manifest(
    bundle: Path,
    manifest: dict[str, Any],
    cfg: BuildConfig | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the TensorRT engines a bundle describes, with the local TensorRT; updates the manifest.

    overrides: batch, workspace_mib, dla_core given on the device's command line (else the manifest's).
    """
    from .tensorrt import build_engine, generation, tensorrt_version

    local = tensorrt_version()
    if local is None:
        raise LsaEdgeError(
            "TensorRT is not importable here. On Jetson it comes with JetPack (python3 -c 'import tensorrt'); "
            f"elsewhere run one of the trtexec commands in {bundle / 'DEPLOY.md'}"
        )
    gen = generation(local)
    check_build_keys(Path(bundle) / MANIFEST, manifest)  # every key read below: PackageError, not KeyError
    _ensure_buildable(bundle, manifest, local)
    det = manifest.get("detector") or {}
    needed = [manifest["onnx_by_tensorrt"][gen], *([det["onnx_by_tensorrt"][gen]] if det else [])]
    missing = [name for name in needed if not (Path(bundle) / name).is_file()]
    if missing:
        raise ConfigError(
            f"the bundle {bundle} lacks {', '.join(missing)}, named by its manifest for TensorRT {gen}: copy the "
            "whole folder to the device again (or rebuild it on the desktop with lsa-edge build)"
        )
    _check_bundle_files(bundle, manifest, needed)  # seconds now, not minutes of building from a damaged ONNX
    opts = {
        "batch": tuple(cfg.batch) if cfg else tuple(manifest["batch"]),
        "workspace_mib": cfg.workspace_mib if cfg else manifest["workspace_mib"],
        "dla_core": cfg.dla_core if cfg else manifest["dla_core"],
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }
    onnx_name = manifest["onnx_by_tensorrt"][gen]
    typed = bool(manifest.get("strongly_typed_by_tensorrt", {}).get(gen)) and gen == "10"
    engines = bundle / "engines"
    rebuild = f"lsa-edge build --from-bundle {bundle}"
    engine = build_engine(
        bundle / onnx_name,
        engines,
        manifest["precision"],
        batch=tuple(opts["batch"]),
        input_name=manifest["input"]["name"],
        workspace_mib=int(opts["workspace_mib"]),
        dla_core=opts["dla_core"],
        timing_cache=bundle / "timing.cache",
        card=manifest["card"],
        model_sha256=sha256_file(bundle / onnx_name),
        rebuild_command=rebuild,
        strongly_typed=True if typed else None,  # None: TensorRT's own version decides (10.12+)
    )
    manifest["engine"] = str(Path(engine).relative_to(bundle))
    manifest["tensorrt_local"] = local
    built = [Path(engine)]
    det = manifest.get("detector")
    if det:
        built.append(_detector_engine(bundle, det, gen, int(opts["workspace_mib"]), rebuild))
    _record_files(bundle, manifest, built)
    write_manifest(bundle, manifest)
    log.info("built %s with TensorRT %s", manifest["engine"], local)
    return manifest


def _detector_engine(bundle: Path, det: dict[str, Any], gen: str, workspace_mib: int, rebuild: str) -> Path:
    """The face detector's engine for TensorRT ``gen``, recorded in ``det`` (the manifest's "detector")."""
    from .tensorrt import build_engine

    det_onnx = bundle / det["onnx_by_tensorrt"][gen]
    det_engine = build_engine(
        det_onnx,
        bundle / "engines",
        det["precision"],
        batch=tuple(det["batch"]) if det["batch"] else None,
        input_name=det["input"]["name"],
        workspace_mib=workspace_mib,
        timing_cache=bundle / "timing.cache",
        card=None,
        model_sha256=sha256_file(det_onnx),
        rebuild_command=rebuild,
        strongly_typed=True if det.get("strongly_typed_by_tensorrt", {}).get(gen) and gen == "10" else None,
    )
    det["engine"] = str(Path(det_engine).relative_to(bundle))
    return Path(det_engine)


def _record_files(bundle: Path, manifest: dict[str, Any], built: list[Path]) -> None:
    """The engines and their sidecars get checksums like every other file, so a damaged engine is caught
    when the package is loaded (the manifest is then rewritten atomically: the old one or the new one)."""
    files = dict(manifest.get("files") or {})  # null in a manifest that records no checksums
    for path in [p for e in built for p in (e, sidecar_path(e))]:
        if path.is_file():
            files[path.relative_to(bundle).as_posix()] = {
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
    manifest["files"] = dict(sorted(files.items()))


def _check_bundle_files(bundle: Path, manifest: dict[str, Any], needed: list[str]) -> None:
    """The bundle's files against the manifest's sizes and sha256 (the runtime loader's check), before an
    engine is built from them: the graphs this build reads, and every other recorded file that is there
    (one this TensorRT does not need may be absent). Engines recorded by an earlier --from-bundle are left
    out: they are the files about to be rebuilt."""
    from lsa_edge._manifest import check_files

    files = {
        k: v
        for k, v in (manifest.get("files") or {}).items()
        if not k.startswith("engines/") and (k in needed or (Path(bundle) / k).is_file())
    }
    if files:
        check_files(Path(bundle), {**manifest, "files": files})


def _ensure_buildable(bundle: Path, manifest: dict[str, Any], local: str) -> None:
    """Raise, saying what to do, when the bundle has no graph the local TensorRT can parse — after writing
    the missing opset-16 graph on a TensorRT 8.5 device where onnx is installed."""
    from .tensorrt import generation

    gen = generation(local)
    compat = manifest.get("tensorrt_compatibility", {}).get(gen, {"ok": True})
    # The lint's 8.5 table is 8.5's; 8.6 parses more (LayerNormalization): let its own parser decide there.
    if compat["ok"] or (gen == "8.5" and Version(local) >= Version("8.6")):
        return
    if gen == "8.5" and available("onnx") and _lower_in_bundle(bundle, manifest):
        return
    from lsa_edge.package import DEFAULT_MODEL_DIR

    shipped = Path(bundle).resolve() == DEFAULT_MODEL_DIR.resolve()  # `lsa-edge build` builds it by default
    how = f"lsa-edge build{'' if shipped else ' MODEL'} --precision {manifest['precision']}"
    if gen == "8.5":  # bundles from before the opset-16 rewrite (the shipped package keeps one graph)
        how = (
            "pip install onnx, and this command writes the opset-16 graph TensorRT 8.5 needs into the "
            f"bundle; or on the desktop: {how} (it adds one; --trt 8.5 for 8.5 alone), and "
            "lsa-edge build --from-bundle on its output here"
        )
    else:
        how = f"Rebuild the bundle on the desktop with: {how} --trt {gen}"
    raise LsaEdgeError(
        f"this bundle cannot be built by TensorRT {local}: {compat['errors'][0].rstrip('.')}. {how}"
    )


def _lower_in_bundle(bundle: Path, manifest: dict[str, Any]) -> bool:
    """On a TensorRT 8.5 device with onnx installed: write the opset-16 graph a bundle lacks (see
    :mod:`.opset`), lint it for 8.5 and record it in the manifest. False when it still cannot serve 8.5."""
    from .lint import lint_report
    from .opset import lower_to_opset16

    name = manifest["onnx_by_tensorrt"]["8.5"]
    src = Path(bundle) / name
    dst = src.with_name(src.stem + "_opset16.onnx")
    try:
        lower_to_opset16(src, dst)
    except LsaEdgeError as err:
        log.warning("could not write an opset-16 graph for TensorRT 8.5: %s", err)
        return False
    errors = [
        f"{dst.name}: {f.rule}: {f.message}"
        for f in lint_report(dst, "8.5").findings
        if f.severity == "error"
    ]
    if errors:
        dst.unlink()
        log.warning("the opset-16 graph still does not suit TensorRT 8.5: %s", errors[0])
        return False
    if available("onnxruntime"):  # same function: checked where ONNX Runtime is at hand
        import numpy as np

        from lsa_edge.backends import OnnxRuntimeBackend

        x = np.random.default_rng(0).standard_normal((4, *manifest["input"]["shape"][1:])).astype(np.float32)
        diff = float(np.abs(OnnxRuntimeBackend(src).predict(x) - OnnxRuntimeBackend(dst).predict(x)).max())
        manifest.setdefault("opset16_parity_max_abs_diff", {})[dst.name] = diff
        if diff > 1e-3:
            dst.unlink()
            log.warning("the opset-16 graph differs from %s by %.3g: not used", name, diff)
            return False
    manifest["onnx_by_tensorrt"]["8.5"] = dst.name
    manifest.setdefault("opset16", {})[name] = dst.name
    manifest["tensorrt_compatibility"]["8.5"] = {"ok": True, "errors": [], "opset16_written_on_device": True}
    manifest.setdefault("files", {})[dst.name] = {"bytes": dst.stat().st_size, "sha256": sha256_file(dst)}
    write_manifest(bundle, manifest)
    log.info(
        "wrote %s for TensorRT 8.5 (LayerNormalization decomposed) and recorded it in the manifest", dst.name
    )
    return True


def deploy_text(manifest: dict[str, Any]) -> str:
    """DEPLOY.md for a manifest whose build keys are checked (:func:`lsa_edge._manifest.check_build_keys`);
    the commands are derived from those keys when the manifest does not record them."""
    cmds = manifest.get("tensorrt_commands") or tensorrt_commands(manifest)
    lines = [
        "# Deploying this build",
        "",
        f"Precision {manifest['precision']}, model `{manifest.get('source', '?')}`, built by lsa-edge "
        f"{manifest.get('lsa_edge', '?')} on {manifest.get('created', '?')}.",
        "",
        "On the device (Jetson with JetPack, or any machine with TensorRT and `pip install lsa-edge`), in this folder:",
        "",
        "```",
        cmds["lsa_edge"],
        "```",
        "",
        "builds the engines for the device's TensorRT and GPU and records them (with sidecars keyed by model hash,",
        "precision, TensorRT version, GPU and batch profile) in manifest.json. Without lsa-edge, trtexec works too:",
        "",
    ]
    for gen, gen_cmds in cmds["trtexec"].items():
        lines += [f"TensorRT {gen}:", "", "```", *gen_cmds, "```", ""]
    for gen, why in cmds.get("not_buildable", {}).items():
        lines += [f"TensorRT {gen}: not buildable from this bundle — {why}", ""]
    if "trtexec_implicit_int8_8.5" in cmds:
        lines += [
            "TensorRT 8.5, implicit INT8 from the FP32 ONNX and this calibration cache (alternative):",
            "",
            "```",
            cmds["trtexec_implicit_int8_8.5"],
            "```",
            "",
        ]
    lines += [
        "Engines built with trtexec carry no lsa-edge sidecar, so the runtime cannot check them against the",
        "device's TensorRT and GPU; prefer `lsa-edge build --from-bundle .`.",
        "",
    ]
    return "\n".join(lines)
