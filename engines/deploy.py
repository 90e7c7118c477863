"""DEPLOY.md: what to run on the device, in words, for a bundle's manifest. Pure text; no tensorrt."""

from __future__ import annotations

from typing import Any

from lsa_edge.manifest import Manifest

from .trtexec import IMPLICIT_INT8_85, as_manifest, tensorrt_commands

__all__ = ["deploy_text"]


def _or(value: Any) -> Any:
    return "?" if value is None else value


def deploy_text(manifest: Manifest | dict[str, Any]) -> str:
    """DEPLOY.md for a manifest whose build keys are checked (:func:`lsa_edge._manifest.check_build_keys`);
    the commands are derived from those keys when the manifest does not record them."""
    m = as_manifest(manifest)
    cmds = m.tensorrt_commands or tensorrt_commands(m)
    lines = [
        "# Deploying this build",
        "",
        f"Precision {m.precision}, model `{_or(m.source)}`, built by lsa-edge "
        f"{_or(m.lsa_edge)} on {_or(m.created)}.",
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
    if IMPLICIT_INT8_85 in cmds:
        lines += [
            "TensorRT 8.5, implicit INT8 from the FP32 ONNX and this calibration cache (alternative):",
            "",
            "```",
            cmds[IMPLICIT_INT8_85],
            "```",
            "",
        ]
    lines += [
        "Engines built with trtexec carry no lsa-edge sidecar, so the runtime cannot check them against the",
        "device's TensorRT and GPU; prefer `lsa-edge build --from-bundle .`.",
        "",
    ]
    return "\n".join(lines)
