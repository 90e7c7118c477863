"""``lsa-edge export triton``: a Triton Inference Server model repository for GPU servers.

Two models: ``lsa_edge_attributes`` (the attribute model: ONNX Runtime, with its TensorRT accelerator at the
package's precision, or the package's TensorRT engine as a plan) and ``lsa_edge_detector`` (BlazeFace, the
detector the runtime would use with this package). Each ``config.pbtxt`` carries what a client needs to
feed and read the model (the card's preprocessing and thresholds, the detector's decoding) in ``parameters``.

The accelerator parameter names are the Triton ONNX Runtime backend's (its README, "ONNX Runtime with
TensorRT optimization"): precision_mode, max_workspace_size_bytes, int8_calibration_table_name,
int8_use_native_calibration_table, trt_engine_cache_enable, trt_engine_cache_path. Build stage: imports
the core, and onnx through :mod:`.serving`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from lsa_edge._fileio import staged_dir
from lsa_edge.errors import ConfigError

from ._pbtxt import Enum, Message, render
from .serving import ServingSource, Tensor, detector_path, read_source

ATTRIBUTES_MODEL = "lsa_edge_attributes"
DETECTOR_MODEL = "lsa_edge_detector"
LABELS = "labels.txt"
CALIBRATION_TABLE = "calibration.cache"  # TensorRT's native cache, as ONNX Runtime's TensorRT EP reads it
PLATFORMS = ("auto", "onnxruntime", "tensorrt")
KINDS = ("gpu", "cpu")
DETECTOR_MAX_BATCH = 8  # frames per detector call


@dataclass(frozen=True)
class TritonOptions:
    """How the repository is served (``lsa-edge export triton``'s flags)."""

    platform: str = "auto"  # auto (the engine where the package has one) | onnxruntime | tensorrt
    instances: int = 1  # model instances per device
    instance_kind: str = "gpu"  # gpu | cpu (onnxruntime only)
    max_queue_delay_us: int = 100  # dynamic batcher: how long a request may wait for others, µs
    trt_cache_path: Optional[str] = (
        None  # where the server sees 1/ (ONNX Runtime's TensorRT caches, INT8 table)
    )
    detector: bool = True  # also write lsa_edge_detector

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ConfigError(f"--platform must be one of {', '.join(PLATFORMS)}, got {self.platform!r}")
        if self.instance_kind not in KINDS:
            raise ConfigError(f"--instance-kind must be gpu or cpu, got {self.instance_kind!r}")
        if not isinstance(self.instances, int) or self.instances < 1:
            raise ConfigError(f"--instances must be a whole number ≥ 1, got {self.instances!r}")
        if not isinstance(self.max_queue_delay_us, int) or self.max_queue_delay_us < 0:
            raise ConfigError(f"--queue-delay-us must be microseconds ≥ 0, got {self.max_queue_delay_us!r}")


@dataclass
class ExportResult:
    """What an export wrote (paths relative to its folder, with what each is) and what to tell the user."""

    out: Path
    files: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _tensor(t: Tensor, **extra: object) -> Message:
    msg: Message = [("name", t.name), ("data_type", Enum("TYPE_FP32")), ("dims", list(t.dims))]
    return msg + list(extra.items())


def _parameters(values: dict[str, str]) -> Message:
    return [("parameters", [("key", k), ("value", [("string_value", v)])]) for k, v in values.items()]


def card_parameters(src: ServingSource) -> dict[str, str]:
    """The card's preprocessing and thresholds, as strings a client parses (JSON where it is a list)."""
    card, pre = src.card, src.card.preprocessing
    return {
        "lsa_edge.model": card.name,
        "lsa_edge.precision": src.precision,
        "lsa_edge.input_size_hw": json.dumps(list(pre.input_size)),
        "lsa_edge.color_order": pre.color_order,
        "lsa_edge.mean": json.dumps(list(pre.mean)),
        "lsa_edge.std": json.dumps(list(pre.std)),
        "lsa_edge.normalisation": "x = (pixel / 255 - mean) / std per channel, planar CHW float32",
        "lsa_edge.alignment_template": json.dumps(
            None
            if pre.template is None
            else {"keypoints": pre.template.keypoints, "points": pre.template.points}
        ),
        "lsa_edge.attributes": json.dumps(list(card.attributes)),
        "lsa_edge.thresholds": json.dumps([round(t, 6) for t in card.thresholds]),
    }


def _accelerator(src: ServingSource, opts: TritonOptions, notes: list[str]) -> tuple[Message, Optional[Path]]:
    """ONNX Runtime's TensorRT accelerator at the package's precision (and the INT8 table to copy)."""
    if src.precision == "fp32" or opts.instance_kind == "cpu":
        if src.precision != "fp32":
            notes.append(
                f"--instance-kind cpu: the {src.precision} TensorRT accelerator is left out (FP32 on CPU)"
            )
        return [], None
    params = {
        "precision_mode": src.precision.upper(),
        "max_workspace_size_bytes": str(src.workspace_mib << 20),
    }
    table = None
    if src.precision == "int8":
        if src.calibration_cache is None:
            raise ConfigError(
                f"{src.root} is an INT8 package without its calibration cache (calibration.cache), which ONNX "
                "Runtime's TensorRT needs for model.onnx; copy the whole build folder, or export with "
                "--platform tensorrt where the package has an engine"
            )
        table = src.calibration_cache
        params["int8_calibration_table_name"] = CALIBRATION_TABLE
        params["int8_use_native_calibration_table"] = "1"  # TensorRT's own cache format (TRT-<ver>-<algo>)
    # The package's optimisation profile, so TensorRT builds one engine for every batch the batcher forms
    # instead of rebuilding as larger batches arrive.
    shape = "x".join(str(d) for d in src.input.dims)
    for key, n in zip(("min", "opt", "max"), src.batch):
        params[f"trt_profile_{key}_shapes"] = f"{src.input.name}:{n}x{shape}"
    if opts.trt_cache_path:
        params["trt_engine_cache_enable"] = "1"
        params["trt_engine_cache_path"] = opts.trt_cache_path
    elif table is not None:
        notes.append(
            "ONNX Runtime reads the INT8 table from trt_engine_cache_path (unset: the server's working folder); "
            "pass --trt-cache-path with the version folder as the server sees it, e.g. "
            f"/models/{ATTRIBUTES_MODEL}/1"
        )
    accel: Message = [("name", "tensorrt")] + [
        ("parameters", [("key", k), ("value", v)]) for k, v in params.items()
    ]
    return [("optimization", [("execution_accelerators", [("gpu_execution_accelerator", accel)])])], table


def _batching(src: ServingSource, opts: TritonOptions) -> Message:
    _lo, opt, hi = src.batch
    preferred = sorted({opt, hi})
    return [
        ("max_batch_size", hi),
        (
            "dynamic_batching",
            [("preferred_batch_size", preferred), ("max_queue_delay_microseconds", opts.max_queue_delay_us)],
        ),
    ]


def _instances(opts: TritonOptions) -> Message:
    kind = "KIND_GPU" if opts.instance_kind == "gpu" else "KIND_CPU"
    return [("instance_group", [("count", opts.instances), ("kind", Enum(kind))])]


def attributes_config(
    src: ServingSource, opts: TritonOptions, platform: str, notes: list[str]
) -> tuple[str, Optional[Path]]:
    """The attribute model's config.pbtxt text, and the calibration table to copy beside model.onnx."""
    table = None
    accel: Message = []
    if platform == "tensorrt_plan":
        if opts.instance_kind == "cpu":
            raise ConfigError("--instance-kind cpu cannot run a TensorRT plan; use --platform onnxruntime")
    else:
        accel, table = _accelerator(src, opts, notes)
    msg: Message = [("name", ATTRIBUTES_MODEL), ("platform", platform)]
    msg += _batching(src, opts)[:1]
    msg += [("input", _tensor(src.input)), ("output", _tensor(src.output, label_filename=LABELS))]
    msg += _batching(src, opts)[1:] + _instances(opts) + accel
    msg += _parameters(card_parameters(src))
    return render(msg) + "\n", table


def detector_config(path: Path, opts: TritonOptions) -> str:
    """The face detector's config.pbtxt: BlazeFace on ONNX Runtime, its decoding in ``parameters``."""
    import onnx

    from lsa_edge.detector import DETECTOR_METADATA_KEY

    from .serving import _tensor as tensor_of

    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    inputs = [tensor_of(v, path) for v in proto.graph.input]
    outputs = [tensor_of(v, path) for v in proto.graph.output]
    dynamic = all(t.dynamic_batch for t in inputs + outputs)
    msg: Message = [("name", DETECTOR_MODEL), ("platform", "onnxruntime_onnx")]
    msg += [("max_batch_size", DETECTOR_MAX_BATCH if dynamic else 0)]
    if dynamic:
        msg += [("input", _tensor(t)) for t in inputs] + [("output", _tensor(t)) for t in outputs]
    else:  # max_batch_size 0: Triton wants the whole shape, the batch dimension included
        full = [replace(t, dims=t.full_dims()) for t in inputs + outputs]
        msg += [("input", _tensor(t)) for t in full[: len(inputs)]]
        msg += [("output", _tensor(t)) for t in full[len(inputs) :]]
    if dynamic:
        msg += [("dynamic_batching", [("max_queue_delay_microseconds", opts.max_queue_delay_us)])]
    msg += _instances(opts)
    params = {
        "lsa_edge.detector": meta.get(DETECTOR_METADATA_KEY, "{}"),
        "lsa_edge.preprocessing": "letterbox the frame to the square input, RGB, uint8 0..255 mapped linearly "
        "onto input_range, planar CHW float32",
        "lsa_edge.decoding": "anchors: lsa_edge.detector.generate_anchors(BlazeFaceConfig.from_json(<lsa_edge.detector>)); "
        "lsa_edge.detector.decode + non_max_suppression",
    }
    return render(msg + _parameters(params)) + "\n"


def choose_platform(src: ServingSource, opts: TritonOptions) -> tuple[str, str]:
    """(Triton platform, why) for the attribute model."""
    if opts.platform == "tensorrt":
        if src.engine is None:
            raise ConfigError(
                f"--platform tensorrt: {src.root} has no TensorRT engine; build one on a machine with the "
                f"server's TensorRT and GPU (lsa-edge build --from-bundle {src.root}), or use --platform onnxruntime"
            )
        return "tensorrt_plan", f"the package's engine {src.engine.name} (--platform tensorrt)"
    if opts.platform == "auto" and src.engine is not None and opts.instance_kind == "gpu":
        return "tensorrt_plan", (
            f"the package's engine {src.engine.name} (it loads only with the TensorRT and GPU it was built for; "
            "--platform onnxruntime for the portable ONNX)"
        )
    why = "--platform onnxruntime" if opts.platform == "onnxruntime" else "no engine in the package"
    return "onnxruntime_onnx", f"model.onnx with ONNX Runtime ({why})"


def _engine_note(engine: Path) -> str:
    from lsa_edge.engine_meta import read_sidecar

    key = read_sidecar(engine)["key"]
    return (
        f"the plan was built with TensorRT {key.tensorrt} for {key.gpu} (compute capability "
        f"{key.compute_capability}), batch {key.batch[0]}..{key.batch[2]}: Triton's TensorRT must be that version "
        "and the GPU that kind, else the model fails to load"
    )


def _readme(src: ServingSource, platform: str, opts: TritonOptions) -> str:
    pre = src.card.preprocessing
    h, w = pre.input_size
    model_file = "model.plan (TensorRT engine)" if platform == "tensorrt_plan" else "model.onnx"
    lines = [
        "# lsa-edge model repository for Triton Inference Server",
        "",
        f"Written by `lsa-edge export triton` from {src.root.name} ({src.card.name}, {src.precision}).",
        "",
        "Serve it with:",
        "",
        "    tritonserver --model-repository REPO",
        "",
        "(for example in NVIDIA's container: `docker run --gpus all -v $PWD/REPO:/models "
        "nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository /models`).",
        "",
        f"## {ATTRIBUTES_MODEL}",
        "",
        f"- {platform}, 1/{model_file}; up to {src.batch[2]} faces per request batch (dynamic batching).",
        f"- input `{src.input.name}`: FP32 [batch, 3, {h}, {w}], an aligned face crop ({pre.color_order}), "
        "normalised as x = (pixel / 255 - mean) / std per channel; mean, std, colour order, input size and "
        "the alignment template are in the config's `parameters` (lsa_edge.*).",
        f"- output `{src.output.name}`: FP32 [batch, {src.output.dims[0]}] sigmoid probabilities, in the order of "
        f"{LABELS}; an attribute is present when its probability reaches its threshold (`lsa_edge.thresholds`).",
        "- Faces must be aligned to the card's template (similarity transform of the detector's keypoints), as "
        "`lsa-edge run` does; an unaligned box crop loses accuracy.",
    ]
    if src.precision == "int8" and platform == "onnxruntime_onnx":
        lines += [
            "- INT8 through ONNX Runtime's TensorRT provider with TensorRT's calibration table "
            f"(1/{CALIBRATION_TABLE}). ONNX Runtime looks for it in trt_engine_cache_path; "
            + (
                "that is set in config.pbtxt."
                if opts.trt_cache_path
                else "set that parameter to the absolute "
                f"path of 1/ as the server sees it (e.g. /models/{ATTRIBUTES_MODEL}/1) or start the server there."
            ),
        ]
    if opts.detector:
        lines += [
            "",
            f"## {DETECTOR_MODEL}",
            "",
            "- BlazeFace (MediaPipe, Apache-2.0), 1/model.onnx: input FP32 [batch, 3, S, S] (the frame "
            "letterboxed to S×S, RGB, mapped onto the range in `lsa_edge.detector`); outputs box regressors and "
            "score logits per anchor. Decode with lsa_edge.detector (anchors, decode, non_max_suppression) using "
            "the configuration in the `lsa_edge.detector` parameter.",
        ]
    return "\n".join(lines) + "\n"


def write_repository(
    model: str | Path, out: str | Path, opts: TritonOptions, overwrite: bool = False
) -> ExportResult:
    """Write the model repository for ``model`` (a build folder or an lsa-edge ONNX) into ``out``, staged:
    ``out`` is complete or untouched. A non-empty ``out`` needs ``overwrite``."""
    src = read_source(model)
    platform, why = choose_platform(src, opts)
    res = ExportResult(Path(out))
    res.notes.append(f"{ATTRIBUTES_MODEL}: {platform}: {why}")
    config, table = attributes_config(src, opts, platform, res.notes)
    if platform == "tensorrt_plan" and src.engine is not None:
        res.notes.append(_engine_note(src.engine))
    det = detector_path(src) if opts.detector else None
    det_config = detector_config(det, opts) if det is not None else None
    with staged_dir(out, overwrite=overwrite) as tmp:
        m = tmp / ATTRIBUTES_MODEL
        (m / "1").mkdir(parents=True)
        _write(res, tmp, f"{ATTRIBUTES_MODEL}/config.pbtxt", config, f"{platform}, {src.precision}")
        _write(
            res, tmp, f"{ATTRIBUTES_MODEL}/{LABELS}", "\n".join(src.card.attributes) + "\n", "attribute names"
        )
        if platform == "tensorrt_plan":
            _copy(res, tmp, src.engine, f"{ATTRIBUTES_MODEL}/1/model.plan", "TensorRT engine")
        else:
            _copy(res, tmp, src.onnx, f"{ATTRIBUTES_MODEL}/1/model.onnx", "FP32 ONNX (with the card)")
        if table is not None:
            _copy(
                res,
                tmp,
                table,
                f"{ATTRIBUTES_MODEL}/1/{CALIBRATION_TABLE}",
                "INT8 calibration table (TensorRT)",
            )
        if det is not None and det_config is not None:
            (tmp / DETECTOR_MODEL / "1").mkdir(parents=True)
            _write(res, tmp, f"{DETECTOR_MODEL}/config.pbtxt", det_config, "onnxruntime_onnx, fp32")
            _copy(res, tmp, det, f"{DETECTOR_MODEL}/1/model.onnx", f"face detector ({det.name})")
        _write(res, tmp, "README.md", _readme(src, platform, opts), "how to serve it")
    return res


def _write(res: ExportResult, root: Path, name: str, text: str, what: str) -> None:
    (root / name).write_text(text, encoding="utf-8")
    res.files.append((name, what))


def _copy(res: ExportResult, root: Path, src: Optional[Path], name: str, what: str) -> None:
    assert src is not None  # the caller checked
    shutil.copyfile(src, root / name)
    res.files.append((name, what))
