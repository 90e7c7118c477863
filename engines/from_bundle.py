"""On the device: build the TensorRT engines a bundle's manifest describes (``lsa-edge build --from-bundle``).

Reads the manifest as untrusted input (:meth:`lsa_edge.manifest.Manifest.from_json` with the build keys),
checks the bundle's files against their recorded sha256 before minutes of building, writes the opset-16
graph an older bundle lacks on a TensorRT 8.5 device, builds the model's (and the detector's) engine with
:func:`.tensorrt.build_engine` and records them, with checksums, in a new manifest.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from packaging.version import Version

from lsa_edge._lazy import available
from lsa_edge._manifest import check_build_keys
from lsa_edge._verify import sha256_file
from lsa_edge.engine_meta import sidecar_path
from lsa_edge.errors import ConfigError, LsaEdgeError
from lsa_edge.manifest import (
    DEPLOY_MD,
    ENGINES_DIR,
    MANIFEST,
    TIMING_CACHE,
    DetectorEntry,
    Manifest,
    opset16_name,
)

from ._trt_generations import GENERATIONS as TABLE
from .config import BuildConfig
from .engine_spec import BuilderOptions, EngineSpec, Profile
from .manifest_writer import write_manifest

__all__ = ["build_engines", "build_from_manifest", "read_bundle", "read_manifest"]

log = logging.getLogger(__name__)


def read_manifest(bundle: str | Path, for_build: bool = False) -> dict[str, Any]:
    """A bundle's manifest as its JSON object, checked as the runtime loader checks it; ``for_build``: also
    every key building engines reads (:data:`lsa_edge._manifest.BUILD_SCHEMA`). PackageError naming the file."""
    return read_bundle(bundle, for_build).to_json()


def read_bundle(bundle: str | Path, for_build: bool = False) -> Manifest:
    """A bundle's :class:`Manifest` (a folder, or its manifest.json); usage errors for other paths."""
    bundle = Path(bundle)
    path = bundle / MANIFEST if bundle.is_dir() else bundle
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; create a bundle with: lsa-edge build MODEL --out {bundle}")
    if path.suffix.lower() != ".json":  # a model, an engine, an image … given where the bundle goes: usage
        raise ConfigError(
            f"--from-bundle takes a bundle folder (or its {MANIFEST}), got the file {path}; "
            f"give the folder that `lsa-edge build MODEL --out DIR` wrote"
        )
    # The runtime loader's checks (JSON object, format, types, names inside the folder): PackageError
    return Manifest.read(path.parent, path.name, for_build=for_build)


def build_from_manifest(
    bundle: Path,
    manifest: Manifest | dict[str, Any],
    cfg: BuildConfig | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`build_engines`, for callers holding the manifest's JSON object; returns the new one."""
    return build_engines(bundle, manifest, cfg, overrides).to_json()


def _local_tensorrt(bundle: Path) -> str:
    from .tensorrt import tensorrt_version

    local = tensorrt_version()
    if local is None:
        raise LsaEdgeError(
            "TensorRT is not importable here. On Jetson it comes with JetPack (python3 -c 'import tensorrt'); "
            f"elsewhere run one of the trtexec commands in {bundle / DEPLOY_MD}"
        )
    return local


def _options(m: Manifest, cfg: BuildConfig | None, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """batch, workspace_mib, dla_core: the device's command line, else ``cfg``, else the manifest's."""
    return {
        "batch": tuple(cfg.batch) if cfg else tuple(m.batch or ()),
        "workspace_mib": cfg.workspace_mib if cfg else m.workspace_mib,
        "dla_core": cfg.dla_core if cfg else m.dla_core,
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }


def build_engines(
    bundle: Path,
    manifest: Manifest | dict[str, Any],
    cfg: BuildConfig | None = None,
    overrides: dict[str, Any] | None = None,
) -> Manifest:
    """Build the TensorRT engines a bundle describes, with the local TensorRT; returns (and writes) the
    manifest that records them.

    overrides: batch, workspace_mib, dla_core given on the device's command line (else the manifest's).
    """
    from .tensorrt import build_engine, generation

    bundle = Path(bundle)
    local = _local_tensorrt(bundle)
    gen = generation(local)
    doc = manifest.to_json() if isinstance(manifest, Manifest) else manifest
    check_build_keys(bundle / MANIFEST, doc)  # every key read below: PackageError, not KeyError
    m = _ensure_buildable(bundle, Manifest._from_checked(doc), local)
    det = m.detector
    onnx_name = m.onnx_for(gen) or ""
    needed = [onnx_name, *([(det.onnx_by_tensorrt or {})[gen]] if det else [])]
    missing = [name for name in needed if not (bundle / name).is_file()]
    if missing:
        raise ConfigError(
            f"the bundle {bundle} lacks {', '.join(missing)}, named by its manifest for TensorRT {gen}: copy the "
            "whole folder to the device again (or rebuild it on the desktop with lsa-edge build)"
        )
    _check_bundle_files(bundle, m, needed)  # seconds now, not minutes of building from a damaged ONNX
    opts = _options(m, cfg, overrides)
    rebuild = f"lsa-edge build --from-bundle {bundle}"
    engine = build_engine(_model_spec(bundle, m, gen, opts, rebuild)).engine
    built = [Path(engine)]
    if det:
        det = _detector_engine(bundle, det, gen, int(opts["workspace_mib"]), rebuild)
        built.append(bundle / str(det.engine))
    m = m.replace(engine=str(Path(engine).relative_to(bundle)), tensorrt_local=local, detector=det)
    m = _record_files(bundle, m, built)
    write_manifest(bundle, m)
    log.info("built %s with TensorRT %s", m.engine, local)
    return m


def _model_spec(bundle: Path, m: Manifest, gen: str, opts: dict[str, Any], rebuild: str) -> EngineSpec:
    """The attribute model's engine: the manifest's graph for TensorRT ``gen``, with ``opts`` (see
    :func:`_options`)."""
    onnx = bundle / (m.onnx_for(gen) or "")
    options = BuilderOptions(
        workspace_mib=int(opts["workspace_mib"]),
        dla_core=opts["dla_core"],
        # True where typing is opt-in (10); None: TensorRT's own version decides (10.12+)
        strongly_typed=True if TABLE[gen].typed_flag(m.strongly_typed(gen)) else None,
        timing_cache=bundle / TIMING_CACHE,
    )
    return EngineSpec(
        onnx,
        bundle / ENGINES_DIR,
        m.precision,  # type: ignore[arg-type]
        profile=Profile(batch=tuple(opts["batch"]), input_name=m.input_name),  # type: ignore[arg-type]
        options=options,
        card=m.card,
        model_sha256=sha256_file(onnx),
        rebuild_command=rebuild,
    )


def _detector_engine(
    bundle: Path, det: DetectorEntry, gen: str, workspace_mib: int, rebuild: str
) -> DetectorEntry:
    """The face detector's engine for TensorRT ``gen``, recorded in the returned entry."""
    from .tensorrt import build_engine

    det_onnx = bundle / (det.onnx_by_tensorrt or {})[gen]
    spec = EngineSpec(
        det_onnx,
        bundle / ENGINES_DIR,
        det.precision,  # type: ignore[arg-type]
        profile=Profile(
            batch=tuple(det.batch) if det.batch else None,  # type: ignore[arg-type]
            input_name=(det.input or {})["name"],
        ),
        options=BuilderOptions(
            workspace_mib=workspace_mib,
            strongly_typed=True if TABLE[gen].typed_flag(det.strongly_typed(gen)) else None,
            timing_cache=bundle / TIMING_CACHE,
        ),
        card=None,
        model_sha256=sha256_file(det_onnx),
        rebuild_command=rebuild,
    )
    det_engine = build_engine(spec).engine
    return dataclasses.replace(det, engine=str(Path(det_engine).relative_to(bundle)))


def _record_files(bundle: Path, m: Manifest, built: list[Path]) -> Manifest:
    """The engines and their sidecars get checksums like every other file, so a damaged engine is caught
    when the package is loaded (the manifest is then rewritten atomically: the old one or the new one)."""
    files = dict(m.files or {})  # null in a manifest that records no checksums
    for path in [p for e in built for p in (e, sidecar_path(e))]:
        if path.is_file():
            files[path.relative_to(bundle).as_posix()] = {
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
    return m.replace(files=dict(sorted(files.items())))


def _check_bundle_files(bundle: Path, m: Manifest, needed: list[str]) -> None:
    """The bundle's files against the manifest's sizes and sha256 (the runtime loader's check), before an
    engine is built from them: the graphs this build reads, and every other recorded file that is there
    (one this TensorRT does not need may be absent). Engines recorded by an earlier --from-bundle are left
    out: they are the files about to be rebuilt."""
    from lsa_edge._manifest import check_files

    files = {
        k: v
        for k, v in (m.files or {}).items()
        if not k.startswith(f"{ENGINES_DIR}/") and (k in needed or (bundle / k).is_file())
    }
    if files:
        check_files(bundle, {"files": files})


def _ensure_buildable(bundle: Path, m: Manifest, local: str) -> Manifest:
    """The manifest, when the local TensorRT can parse one of its graphs — after writing the missing opset-16
    graph on a TensorRT 8.5 device where onnx is installed; else raise, saying what to do."""
    from .tensorrt import generation

    gen = generation(local)
    compat = (m.tensorrt_compatibility or {}).get(gen, {"ok": True})
    # The lint's 8.5 table is 8.5's; 8.6 parses more (LayerNormalization): let its own parser decide there.
    if compat["ok"] or (gen == "8.5" and Version(local) >= Version("8.6")):
        return m
    lowered = _lower_in_bundle(bundle, m) if gen == "8.5" and available("onnx") else None
    if lowered is not None:
        return lowered
    from lsa_edge.package import DEFAULT_MODEL_DIR

    shipped = bundle.resolve() == DEFAULT_MODEL_DIR.resolve()  # `lsa-edge build` builds it by default
    how = f"lsa-edge build{'' if shipped else ' MODEL'} --precision {m.precision}"
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


def _opset16_parity(src: Path, dst: Path, m: Manifest) -> float:
    import numpy as np

    from lsa_edge.backends import OnnxRuntimeBackend

    x = np.random.default_rng(0).standard_normal((4, *m.input_chw)).astype(np.float32)
    return float(np.abs(OnnxRuntimeBackend(src).predict(x) - OnnxRuntimeBackend(dst).predict(x)).max())


def _lower_in_bundle(bundle: Path, m: Manifest) -> Manifest | None:
    """On a TensorRT 8.5 device with onnx installed: write the opset-16 graph a bundle lacks (see
    :mod:`.opset`), lint it for 8.5 and record it in the manifest (written). None when it still cannot
    serve 8.5."""
    from .lint import lint_report
    from .opset import lower_to_opset16

    name = m.onnx_for("8.5") or ""
    src = bundle / name
    dst = src.with_name(opset16_name(src.name))
    try:
        lower_to_opset16(src, dst)
    except LsaEdgeError as err:
        log.warning("could not write an opset-16 graph for TensorRT 8.5: %s", err)
        return None
    errors = [
        f"{dst.name}: {f.rule}: {f.message}"
        for f in lint_report(dst, "8.5").findings
        if f.severity == "error"
    ]
    if errors:
        dst.unlink()
        log.warning("the opset-16 graph still does not suit TensorRT 8.5: %s", errors[0])
        return None
    parity = dict(m.opset16_parity_max_abs_diff or {})
    if available("onnxruntime"):  # same function: checked where ONNX Runtime is at hand
        diff = _opset16_parity(src, dst, m)
        parity[dst.name] = diff
        if diff > 1e-3:
            dst.unlink()
            log.warning("the opset-16 graph differs from %s by %.3g: not used", name, diff)
            return None
    compat = {**(m.tensorrt_compatibility or {})}
    compat["8.5"] = {"ok": True, "errors": [], "opset16_written_on_device": True}
    m = m.replace(
        onnx_by_tensorrt={**(m.onnx_by_tensorrt or {}), "8.5": dst.name},
        opset16={**(m.opset16 or {}), name: dst.name},
        opset16_parity_max_abs_diff=parity if parity or m.opset16_parity_max_abs_diff is not None else None,
        tensorrt_compatibility=compat,
        files={**(m.files or {}), dst.name: {"bytes": dst.stat().st_size, "sha256": sha256_file(dst)}},
    )
    write_manifest(bundle, m)
    log.info(
        "wrote %s for TensorRT 8.5 (LayerNormalization decomposed) and recorded it in the manifest", dst.name
    )
    return m
