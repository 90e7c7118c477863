"""``lsa-edge export deepstream``: an nvinfer secondary-GIE config for the attribute model, beside the ONNX
(and the engine or INT8 cache) it names, the attribute names and thresholds for the parser
(samples/deepstream_parser.py), and a README.

nvinfer normalises with y = net-scale-factor × (x − offsets[c]): one scale for every channel. The card's
per-channel std becomes their mean, and the largest error that causes (in normalised units, over pixel
values 0..255) is computed and written, not hidden. Build stage: imports the core and :mod:`.serving`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from lsa_edge._fileio import staged_dir
from lsa_edge.card import Preprocessing
from lsa_edge.errors import ConfigError

from .serving import ServingSource, read_source
from .triton_repo import ExportResult

CONFIG = "config_infer_secondary_lsa.txt"
ATTRIBUTES_JSON = "lsa_attributes.json"
NETWORK_MODE = {"fp32": 0, "int8": 1, "fp16": 2}  # nvinfer's network-mode


@dataclass(frozen=True)
class DeepStreamOptions:
    """The SGIE's place in the pipeline (``lsa-edge export deepstream``'s flags)."""

    operate_on_gie_id: int = 1  # the detector GIE whose objects (faces) this one classifies
    operate_on_class_ids: tuple[int, ...] = (0,)  # the face class(es) of that detector
    gie_unique_id: int = 2  # this GIE's id (the tensor meta's unique_id)
    gpu_id: int = 0

    def __post_init__(self) -> None:
        for name in ("operate_on_gie_id", "gie_unique_id", "gpu_id"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a whole number ≥ 0, got {v!r}")
        if self.gie_unique_id == self.operate_on_gie_id:
            raise ConfigError(
                f"--gie-unique-id {self.gie_unique_id} equals --operate-on-gie-id: each GIE needs its own id"
            )
        if not self.operate_on_class_ids or any(c < 0 for c in self.operate_on_class_ids):
            raise ConfigError(f"--operate-on-class-ids must be ids ≥ 0, got {self.operate_on_class_ids!r}")


@dataclass(frozen=True)
class Normalisation:
    """nvinfer's single-scale form of the card's normalisation, and what it costs."""

    net_scale_factor: float  # 1 / (255 × mean std)
    offsets: tuple[float, float, float]  # 255 × mean, per channel (in the model's colour order)
    max_error: float  # largest |y_nvinfer − y_card| over channels and pixel values 0..255, normalised units
    worst_channel: int  # where it occurs


def normalisation(pre: Preprocessing) -> Normalisation:
    """The card's y = (x/255 − mean[c]) / std[c] as nvinfer's y = s × (x − o[c]) with s from the mean std.

    Per channel the error is |x/255 − mean[c]| × |1/std[c] − 1/std̄|, largest at x = 0 or 255."""
    std = sum(pre.std) / len(pre.std)
    errors = [max(m, 1.0 - m) * abs(1.0 / s - 1.0 / std) for m, s in zip(pre.mean, pre.std)]
    worst = max(range(len(errors)), key=lambda c: errors[c])
    return Normalisation(
        net_scale_factor=1.0 / (255.0 * std),
        offsets=tuple(255.0 * m for m in pre.mean),  # type: ignore[arg-type]
        max_error=errors[worst],
        worst_channel=worst,
    )


def _model_files(src: ServingSource) -> tuple[Path, Path | None, str]:
    """(ONNX to ship, INT8 calibration file or None, why) for nvinfer at the package's precision."""
    if src.precision != "int8":
        return src.onnx, None, f"{src.precision.upper()}: nvinfer builds model.onnx with network-mode"
    if src.calibration_cache is not None:
        return (
            src.onnx,
            src.calibration_cache,
            "INT8: model.onnx with TensorRT's calibration cache (implicit INT8)",
        )
    if src.qdq_onnx is not None:
        return src.qdq_onnx, None, "INT8: the Q/DQ graph (explicit INT8, no calibration file needed)"
    raise ConfigError(
        f"{src.root} is an INT8 package with neither calibration.cache nor model_int8_trt.onnx; copy the whole "
        "build folder, or build it again with lsa-edge build --precision int8"
    )


def config_text(
    src: ServingSource, opts: DeepStreamOptions, onnx_name: str, engine_name: str, calib: str | None
) -> str:
    """The [property] group of the SGIE's config file."""
    pre = src.card.preprocessing
    n = normalisation(pre)
    h, w = pre.input_size
    channels = pre.color_order
    lines = [
        f"# lsa-edge attribute model {src.card.name} ({src.precision}) as a DeepStream secondary GIE.",
        "# Written by lsa-edge export deepstream. Parse the output with samples/deepstream_parser.py.",
        f"# The card normalises (x/255 - mean[c]) / std[c] with std {list(pre.std)}; nvinfer has one scale",
        f"# for all channels, so std is their mean: largest error {n.max_error:.4f} normalised units",
        f"# (channel {channels[n.worst_channel]}, at pixel value 0 or 255).",
        "[property]",
        f"gpu-id={opts.gpu_id}",
        f"net-scale-factor={n.net_scale_factor:.10g}",
        "offsets=" + ";".join(f"{o:.6g}" for o in n.offsets),
        f"model-color-format={0 if pre.color_order == 'RGB' else 1}",
        f"onnx-file={onnx_name}",
        "# nvinfer loads this engine where it matches; else it builds one from onnx-file (minutes) and saves it",
        f"model-engine-file={engine_name}",
    ]
    if calib is not None:
        lines.append(f"int8-calib-file={calib}")
    lines += [
        f"batch-size={src.batch[2]}",
        "# 0 FP32, 1 INT8, 2 FP16",
        f"network-mode={NETWORK_MODE[src.precision]}",
        f"infer-dims=3;{h};{w}",
        "process-mode=2",
        f"gie-unique-id={opts.gie_unique_id}",
        f"operate-on-gie-id={opts.operate_on_gie_id}",
        "operate-on-class-ids=" + ";".join(str(c) for c in opts.operate_on_class_ids),
        "# other: no nvinfer parser; the probabilities are attached as tensor meta for the Python parser",
        "network-type=100",
        "output-tensor-meta=1",
        "maintain-aspect-ratio=0",
    ]
    return "\n".join(lines) + "\n"


def _readme(src: ServingSource, n: Normalisation, why: str) -> str:
    h, w = src.card.preprocessing.input_size
    return "\n".join(
        [
            "# lsa-edge attribute model for DeepStream (nvinfer secondary GIE)",
            "",
            f"Written by `lsa-edge export deepstream` from {src.root.name} ({src.card.name}). {why}.",
            "",
            f"Add `{CONFIG}` as a secondary GIE after a face detector (its gie-unique-id in operate-on-gie-id).",
            f"It outputs `{src.output.name}`: {src.output.dims[0]} sigmoid probabilities per face as tensor meta; "
            f"`samples/deepstream_parser.py` turns them into attribute labels with the thresholds in {ATTRIBUTES_JSON}.",
            "",
            "Accuracy differs from `lsa-edge run`:",
            "",
            f"- nvinfer crops the detector's box and scales it to {w}x{h} without landmark alignment. The model was "
            "trained and calibrated on faces aligned to the card's template (eyes, nose and mouth at fixed places), "
            "as `lsa-edge run` produces them; unaligned, rotated or loosely boxed crops lose accuracy.",
            f"- one normalisation scale for all channels: largest error {n.max_error:.4f} in normalised units.",
            "",
        ]
    )


def write_deepstream(
    model: str | Path, out: str | Path, opts: DeepStreamOptions, overwrite: bool = False
) -> ExportResult:
    """Write the SGIE folder for ``model`` into ``out`` (staged; a non-empty ``out`` needs ``overwrite``)."""
    src = read_source(model)
    onnx, calib, why = _model_files(src)
    n = normalisation(src.card.preprocessing)
    res = ExportResult(Path(out))
    res.notes.append(why)
    res.notes.append(
        f"normalisation: one scale for all channels (mean std); largest error {n.max_error:.4f} normalised units "
        f"(channel {src.card.preprocessing.color_order[n.worst_channel]})"
    )
    res.notes.append(
        "nvinfer crops the detector's box without landmark alignment: accuracy differs from lsa-edge run"
    )
    mode = ("fp32", "int8", "fp16")[NETWORK_MODE[src.precision]]
    engine = (
        src.engine.name
        if src.engine is not None
        else f"{onnx.name}_b{src.batch[2]}_gpu{opts.gpu_id}_{mode}.engine"  # nvinfer's own name for what it saves
    )
    attrs = {
        "model": src.card.name,
        "output_layer": src.output.name,
        "gie_unique_id": opts.gie_unique_id,
        "attributes": list(src.card.attributes),
        "thresholds": [round(t, 6) for t in src.card.thresholds],
    }
    with staged_dir(out, overwrite=overwrite) as tmp:
        shutil.copyfile(onnx, tmp / onnx.name)
        res.files.append((onnx.name, "ONNX for nvinfer"))
        if src.engine is not None:
            shutil.copyfile(src.engine, tmp / engine)
            res.files.append((engine, "TensorRT engine (the device's)"))
        if calib is not None:
            shutil.copyfile(calib, tmp / calib.name)
            res.files.append((calib.name, "INT8 calibration cache"))
        text = config_text(src, opts, onnx.name, engine, calib.name if calib else None)
        (tmp / CONFIG).write_text(text, encoding="utf-8")
        res.files.append((CONFIG, f"nvinfer SGIE config, network-mode={NETWORK_MODE[src.precision]}"))
        (tmp / ATTRIBUTES_JSON).write_text(json.dumps(attrs, indent=2) + "\n", encoding="utf-8")
        res.files.append((ATTRIBUTES_JSON, "names and thresholds for the parser"))
        (tmp / "README.md").write_text(_readme(src, n, why), encoding="utf-8")
        res.files.append(("README.md", "how to use it, what differs"))
    return res
