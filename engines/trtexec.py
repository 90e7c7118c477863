"""The ``trtexec`` recipes of a bundle: the device commands for every TensorRT generation
(``manifest.json``'s ``tensorrt_commands`` and DEPLOY.md), derived from a :class:`~lsa_edge.manifest.Manifest`.

Pure: no tensorrt, no onnx. One line per engine comes from :func:`.tensorrt.trtexec_command`; which graph,
precision and typing each generation gets comes from the manifest and :mod:`._trt_generations`.
"""

from __future__ import annotations

from typing import Any

from lsa_edge.manifest import CALIBRATION_CACHE, ENGINES_DIR, GENERATIONS, MODEL_ONNX, TIMING_CACHE, Manifest

from ._trt_generations import GENERATIONS as TABLE
from .tensorrt import trtexec_command

__all__ = ["as_manifest", "tensorrt_commands"]

FROM_BUNDLE = "lsa-edge build --from-bundle ."  # run inside the copied bundle
IMPLICIT_INT8_85 = "trtexec_implicit_int8_8.5"  # the key of 8.5's implicit-INT8 alternative


def as_manifest(manifest: Manifest | dict[str, Any]) -> Manifest:
    """A Manifest for callers that still pass the JSON object (already checked by whoever read it)."""
    return manifest if isinstance(manifest, Manifest) else Manifest._from_checked(manifest)


def _not_buildable_hint(gen: str) -> str:
    if gen != "8.5":
        return ""
    return (
        " (on the device, with onnx installed, lsa-edge build --from-bundle writes the opset-16 graph "
        "8.5 needs; or rebuild the bundle with this lsa-edge, which adds it)"
    )


def _lines(m: Manifest, gen: str) -> list[str]:
    """mkdir + the model's trtexec line (+ the detector's) for TensorRT ``gen``."""
    chw = m.input_chw
    lines = [
        f"mkdir -p {ENGINES_DIR}",
        trtexec_command(
            m.onnx_for(gen) or MODEL_ONNX,
            f"{ENGINES_DIR}/model_{m.precision}_trt{gen}.engine",
            m.precision,
            gen,
            batch=tuple(m.batch),  # type: ignore[arg-type]
            input_name=m.input_name,
            input_chw=chw,
            workspace_mib=m.workspace_mib,  # type: ignore[arg-type]
            timing_cache=TIMING_CACHE,
            dla_core=m.dla_core,
            strongly_typed=TABLE[gen].typed_flag(m.strongly_typed(gen)),
        ),
    ]
    det = m.detector
    if det:
        lines.append(
            trtexec_command(
                (det.onnx_by_tensorrt or {})[gen],
                f"{ENGINES_DIR}/detector_{det.precision}_trt{gen}.engine",
                det.precision,
                gen,
                batch=tuple(det.batch) if det.batch else None,  # type: ignore[arg-type]
                input_name=(det.input or {})["name"],
                input_chw=tuple((det.input or {})["shape"][1:]) if det.batch else None,
                workspace_mib=m.workspace_mib,  # type: ignore[arg-type]
                timing_cache=TIMING_CACHE,
                strongly_typed=TABLE[gen].typed_flag(det.strongly_typed(gen)),
            )
        )
    return lines


def tensorrt_commands(manifest: Manifest | dict[str, Any]) -> dict[str, Any]:
    """The device commands for every TensorRT generation, run inside the bundle folder."""
    m = as_manifest(manifest)
    cmds: dict[str, Any] = {"lsa_edge": FROM_BUNDLE, "trtexec": {}}
    compat = m.tensorrt_compatibility or {}
    for gen in GENERATIONS:
        if not compat.get(gen, {"ok": True})["ok"]:
            cmds.setdefault("not_buildable", {})[gen] = compat[gen]["errors"][0] + _not_buildable_hint(gen)
            continue
        cmds["trtexec"][gen] = _lines(m, gen)
    if m.precision == "int8" and "8.5" in cmds["trtexec"]:  # 8.5 can also quantize implicitly with our cache
        cmds[IMPLICIT_INT8_85] = trtexec_command(
            (m.opset16 or {}).get(MODEL_ONNX, MODEL_ONNX),
            f"{ENGINES_DIR}/model_int8_implicit_trt8.5.engine",
            "int8",
            "8.5",
            batch=tuple(m.batch),  # type: ignore[arg-type]
            input_name=m.input_name,
            input_chw=m.input_chw,
            workspace_mib=m.workspace_mib,  # type: ignore[arg-type]
            calibration_cache=CALIBRATION_CACHE,
            timing_cache=TIMING_CACHE,
        )
    return cmds
