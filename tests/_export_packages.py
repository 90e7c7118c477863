"""Packages for the serving-export tests: the shipped default package, copied and re-labelled as an FP16
or INT8 build (with TensorRT's calibration cache), or given a fake TensorRT engine with its sidecar."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lsa_edge.package import DEFAULT_MODEL_DIR

CACHE = "TRT-8502-EntropyCalibration2\nfaces: 3c010a14\nprobs: 3c000000\n"


def package(tmp: Path, precision: str = "fp32", engine: bool = False, cache: bool = True) -> Path:
    root = tmp / f"pkg-{precision}{'-engine' if engine else ''}"
    shutil.copytree(DEFAULT_MODEL_DIR, root)
    doc = json.loads((root / "manifest.json").read_text())
    doc["precision"] = precision
    if precision == "int8" and cache:
        (root / "calibration.cache").write_text(CACHE)
    if engine:
        from lsa_edge.card import ModelCard
        from lsa_edge.engine_meta import EngineKey, write_sidecar

        name = f"engines/model_{precision}_trt10.engine"
        (root / "engines").mkdir()
        (root / name).write_bytes(b"not a real engine")
        key = EngineKey("0" * 64, precision, "10.3.0.26", "NVIDIA H100", "9.0", tuple(doc["batch"]))
        write_sidecar(root / name, key, ModelCard.from_dict(doc["card"]).to_dict())
        doc["engine"] = name
    (root / "manifest.json").write_text(json.dumps(doc, indent=2))
    return root
