"""What a serving export (``lsa-edge export triton|deepstream``) reads from a model package: the FP32 ONNX,
the engine, the calibration cache, the batch profile and the card, in one typed value (:class:`ServingSource`).

Accepted: a build folder (``manifest.json``) or a single lsa-edge ONNX (FP32, batch profile: the build
default). Anything else is a ConfigError saying what was received and what to pass. Shared by
:mod:`.triton_repo` and :mod:`.deepstream`; imports onnx (names and shapes of the graph) when reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from lsa_edge.card import ModelCard
from lsa_edge.errors import ConfigError
from lsa_edge.manifest import CALIBRATION_CACHE, MANIFEST, MODEL_INT8_TRT_ONNX, MODEL_ONNX, Manifest

Dims = Tuple[int, ...]


@dataclass(frozen=True)
class Tensor:
    """One graph input or output: its name and its dims without the batch dimension."""

    name: str
    dims: Dims  # e.g. (3, 160, 144) for the faces, (40,) for the probabilities
    dynamic_batch: bool = True  # the first dimension is symbolic (or -1)
    batch: int = -1  # the first dimension where it is fixed

    def full_dims(self) -> Dims:
        """The dims with the batch dimension (what Triton wants where the model does not batch)."""
        return (self.batch, *self.dims)


@dataclass(frozen=True)
class ServingSource:
    """A model package as the serving exports see it."""

    root: Path  # the build folder (or the ONNX's folder)
    card: ModelCard
    precision: str  # fp32 | fp16 | int8
    onnx: Path  # the FP32 graph (lsa-edge's ONNX with the card)
    qdq_onnx: Optional[Path]  # INT8: the Q/DQ graph for TensorRT, where the package has it
    calibration_cache: Optional[Path]  # INT8: TensorRT's implicit-quantization cache, native format
    engine: Optional[Path]  # a TensorRT engine built on the device (with its sidecar)
    detector_onnx: Optional[Path]  # the package's own detector; None: the shipped one
    batch: tuple[int, int, int]  # (min, opt, max) faces per call
    workspace_mib: int  # TensorRT builder workspace
    input: Tensor
    output: Tensor


def _graph_tensors(path: Path) -> tuple[Tensor, Tensor, Optional[ModelCard]]:
    """The graph's input and output, and the card in its metadata (None where it has none)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx's own errors (DecodeError, ...)
        raise ConfigError(f"{path} is not a readable ONNX model: {err}") from err
    init = {t.name for t in proto.graph.initializer}
    inputs = [t for t in proto.graph.input if t.name not in init]
    if len(inputs) != 1 or len(proto.graph.output) < 1:
        raise ConfigError(
            f"{path} has {len(inputs)} inputs and {len(proto.graph.output)} outputs; an lsa-edge attribute "
            "model has one input (faces) and one output (probabilities)"
        )
    from lsa_edge.package import CARD_KEY

    cards = [ModelCard.from_json(p.value) for p in proto.metadata_props if p.key == CARD_KEY]
    return _tensor(inputs[0], path), _tensor(proto.graph.output[0], path), cards[0] if cards else None


def _tensor(value: object, path: Path) -> Tensor:
    dims = value.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    if not shape or any(v <= 0 for v in shape[1:]):
        raise ConfigError(f"{path}: {value.name!r} has shape {shape}; expected [batch, fixed dims...]")  # type: ignore[attr-defined]
    return Tensor(value.name, tuple(shape[1:]), shape[0] <= 0, shape[0])  # type: ignore[attr-defined]


def _from_manifest(root: Path) -> ServingSource:
    from lsa_edge.engines.config import default
    from lsa_edge.package import ModelPackage

    package = ModelPackage.open(root)  # the manifest and every file it lists, checked (sha256)
    m = Manifest.read(root)
    onnx = root / MODEL_ONNX
    if not onnx.is_file():
        raise ConfigError(
            f"{root} has no {MODEL_ONNX} (received a package without its FP32 ONNX); export again with "
            f"lsa-edge build, or copy the whole build folder"
        )
    inp, out, _ = _graph_tensors(onnx)

    def present(name: Optional[str]) -> Optional[Path]:
        return root / name if name and (root / name).is_file() else None

    return ServingSource(
        root=root,
        card=package.card,
        precision=m.precision,
        onnx=onnx,
        qdq_onnx=present(MODEL_INT8_TRT_ONNX) if m.precision == "int8" else None,
        calibration_cache=present(CALIBRATION_CACHE) if m.precision == "int8" else None,
        engine=package.engine,
        detector_onnx=package.detector_onnx,
        batch=tuple(m.batch or default("batch")),  # type: ignore[arg-type]
        workspace_mib=int(m.workspace_mib or default("workspace_mib")),
        input=inp,
        output=out,
    )


def read_source(model: str | Path) -> ServingSource:
    """The package ``model`` names (a build folder or an lsa-edge ONNX); ConfigError for anything else."""
    p = Path(model)
    if not p.exists():
        raise ConfigError(
            f"model {p} does not exist; pass a build folder (from lsa-edge build) or an lsa-edge .onnx, or "
            "no MODEL for the shipped default model"
        )
    if p.is_dir():
        if not (p / MANIFEST).is_file():
            raise ConfigError(
                f"{p} is a folder without {MANIFEST}; pass a build folder from lsa-edge build (for a checkpoint "
                f"or training run: lsa-edge build {p} first)"
            )
        return _from_manifest(p)
    if p.suffix != ".onnx":
        raise ConfigError(
            f"cannot export {p} (received a {p.suffix or 'file without suffix'}); pass a build folder or an "
            f"lsa-edge .onnx. A checkpoint or engine: make a build folder first with lsa-edge build {p}"
        )
    from lsa_edge.engines.config import default

    inp, out, card = _graph_tensors(p)
    if card is None:
        raise ConfigError(
            f"{p} has no lsa-edge model card in its metadata; was it exported by lsa-edge build?"
        )
    return ServingSource(
        root=p.parent,
        card=card,
        precision="fp32",
        onnx=p,
        qdq_onnx=None,
        calibration_cache=None,
        engine=None,
        detector_onnx=None,
        batch=tuple(default("batch")),  # type: ignore[arg-type]
        workspace_mib=int(default("workspace_mib")),
        input=inp,
        output=out,
    )


def detector_path(src: ServingSource) -> Path:
    """The detector the runtime would use with this package: the package's own, else the shipped full-range."""
    if src.detector_onnx is not None:
        return src.detector_onnx
    from lsa_edge.detector import shipped_model

    return shipped_model("full")
