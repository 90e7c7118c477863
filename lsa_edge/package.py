"""A model package on disk, whatever form it takes, and the backend that runs it.

Forms: a build folder (``manifest.json`` from ``lsa-edge build``: ONNX files, maybe engines, the
detector), a single lsa-edge ONNX, a TensorRT engine with its sidecar, or a training checkpoint. The card
always comes with it (ONNX metadata, sidecar, checkpoint); preprocessing is never guessed.

``select_backend(package, "auto")`` picks TensorRT (an engine that matches this machine), then ONNX
Runtime on the GPU (its TensorRT provider, else CUDA's; the CPU provider only for ops they lack), then
ONNX Runtime on the CPU, and logs what it chose and why each better option was
not taken — never a silent fallback. An explicit backend or device that cannot run is an error saying
what to do (``device="cuda"`` for an ONNX model where ONNX Runtime has no CUDA provider: install
onnxruntime-gpu).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from . import _args
from ._args import device_text, parse_device, shown
from ._lazy import available, require
from .backends.triton import is_triton
from .card import ModelCard
from .errors import (
    ConfigError,
    GpuUnavailableError,
    LsaEdgeError,
    MissingDependencyError,
    PackageError,
    unknown_choice,
)

if TYPE_CHECKING:
    from .backends.base import Backend

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
CARD_KEY = "lsa_edge.card"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"


@dataclass(frozen=True)
class ModelPackage:
    """Where each form of one model lives (paths that exist, or None)."""

    card: ModelCard
    source: Path  # what the user named
    precision: str = "fp32"
    cpu_onnx: Path | None = None  # for ONNX Runtime on a CPU
    gpu_onnx: Path | None = None  # for ONNX Runtime's CUDA/TensorRT providers
    engine: Path | None = None  # TensorRT engine (with sidecar)
    checkpoint: Path | None = None  # torch
    detector_onnx: Path | None = None  # the face detector beside the model (None: the shipped one)
    detector_engine: Path | None = None
    # Files the manifest names that are not there (a package slimmed for one device): (slot, name) pairs,
    # slot one of the path fields above. Loading works; opening one of them is an error naming it.
    absent: tuple[tuple[str, str], ...] = ()

    def missing(self, slot: str) -> str | None:
        """The name the manifest gives ``slot`` when that file is absent; None otherwise."""
        return dict(self.absent).get(slot)

    def require_present(self, slot: str) -> None:
        """PackageError naming the file when ``slot``'s file is listed but absent (it is about to be opened)."""
        name = self.missing(slot)
        if name is not None:
            from ._manifest import missing_file

            raise missing_file(self.source, name, _ROLES[slot])

    @classmethod
    def open(cls, path: str | Path | None = None) -> ModelPackage:
        """Open a build folder, ONNX, engine or checkpoint; None opens the default model shipped inside lsa-edge."""
        if path is None:
            if not (DEFAULT_MODEL_DIR / "manifest.json").exists():
                raise ConfigError(
                    "no default model is installed with this lsa-edge; pass --model (a build folder from "
                    "lsa-edge build, an .onnx, an .engine or a checkpoint)"
                )
            path = DEFAULT_MODEL_DIR
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"model {p} does not exist (a build folder, .onnx, .engine or checkpoint .pt)")
        if p.is_dir() and (p / "manifest.json").exists():
            try:
                return cls._from_manifest(p)
            except PackageError as err:
                if p.resolve() != DEFAULT_MODEL_DIR.resolve():
                    raise
                raise PackageError(  # the user did not build it: say how to get it back
                    f"{err} — this is the model installed with lsa-edge; restore it with: "
                    "pip install --force-reinstall --no-deps lsa-edge"
                ) from None
        if p.suffix == ".onnx":
            return cls(card=read_onnx_card(p), source=p, cpu_onnx=p, gpu_onnx=p)
        if p.suffix in (".engine", ".plan"):
            from .engine_meta import read_sidecar

            doc = read_sidecar(p)
            if not doc.get("card"):
                raise ConfigError(f"{p}'s sidecar holds no model card; is it an lsa-edge attribute engine?")
            return cls(
                card=ModelCard.from_dict(doc["card"]), source=p, precision=doc["key"].precision, engine=p
            )
        if p.is_dir() and (p / "best.pt").exists():
            p = p / "best.pt"
        elif p.is_dir():
            _not_a_package(p)
        if p.suffix in (".pt", ".pth"):
            require("torch", "running a checkpoint")
            from .plugins import checkpoint_loader

            return cls(card=checkpoint_loader().read_card(p), source=p, checkpoint=p)
        raise ConfigError(
            f"cannot tell what {p} is; pass a build folder (with manifest.json), an .onnx, an .engine or a .pt"
        )

    @classmethod
    def _from_manifest(cls, root: Path) -> ModelPackage:
        """A build folder, checked: the manifest is validated, every file it lists is present and matches
        its recorded sha256 (cached, see :mod:`._verify`), and every file it names lies inside ``root``."""
        from ._manifest import card_from, check_files, member
        from .manifest import Manifest

        m = Manifest.read(root)
        doc = m.to_json()
        card = card_from(root, doc)
        gone = check_files(root, doc, missing_ok=True)  # a file that is there is checked; absent ones below
        prec = m.precision
        gpu = m.gpu_onnx()  # the graph a strongly typed TensorRT builds: it carries the precision itself
        det = m.detector
        names: dict[str, str | None] = {
            "cpu_onnx": m.cpu_onnx,
            "engine": m.engine,
            "detector_onnx": det.onnx if det else None,
            "detector_engine": det.engine if det else None,
        }
        paths = {slot: member(root, name, _ROLES[slot], must_exist=False) for slot, name in names.items()}
        absent = tuple((slot, name) for slot, name in names.items() if name and paths[slot] is None)
        _warn_absent(root, sorted({*gone, *(name for _, name in absent)}))
        return cls(
            card=card,
            source=root,
            precision=prec,
            gpu_onnx=member(root, gpu, f"the {prec} model for a GPU", must_exist=False),
            absent=absent,
            **paths,
        )


_ROLES = {
    "cpu_onnx": '"cpu_onnx" (the model for ONNX Runtime on a CPU)',
    "engine": '"engine" (the TensorRT engine)',
    "detector_onnx": '"detector"."onnx" (the face detector)',
    "detector_engine": '"detector"."engine" (the face detector\'s TensorRT engine)',
}
_warned: set[tuple[str, tuple[str, ...]]] = set()


def _warn_absent(root: Path, names: list[str]) -> None:
    """One warning per package and set of absent files (a slimmed package is loaded again and again)."""
    key = (str(root.resolve()), tuple(names))
    if names and key not in _warned:
        _warned.add(key)
        log.warning(
            "%s lists %d file(s) that are not there: %s. Fine if the package was slimmed for this device; "
            "running with a backend or detector that needs one of them fails naming it",
            root / "manifest.json",
            len(names),
            ", ".join(names),
        )


def _not_a_package(folder: Path) -> None:
    """A folder that is neither a build folder nor a finished training run: say which it looks like."""
    run = [n for n in ("config.json", "last.pt", "log.csv") if (folder / n).is_file()]
    if (folder / "last.pt").is_file():
        raise ConfigError(
            f"{folder} is a training run without best.pt (it stopped before its first validation); run its "
            f"latest weights with --model {folder / 'last.pt'}, or continue training with: lsa-edge train "
            f"--out {folder} --resume (with the run's other options)"
        )
    if run:
        raise ConfigError(
            f"{folder} looks like a training run ({', '.join(run)}) that stopped before it saved a checkpoint: "
            "it has no best.pt or last.pt, so there is nothing to run; train it again with lsa-edge train "
            f"--out {folder}"
        )
    raise ConfigError(
        f"{folder} is a folder without manifest.json or best.pt; pass a build folder (from lsa-edge build), "
        "a training run folder, an .onnx, an .engine or a .pt"
    )


def read_onnx_card(path: Path) -> ModelCard:
    """The card in an ONNX file's metadata, read with ONNX Runtime (the runtime needs no onnx package)."""
    ort = require("onnxruntime", "reading an ONNX model")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        meta = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as err:  # ORT's own exception types
        raise ConfigError(f"{path} is not a loadable ONNX model: {err}") from err
    text = meta.custom_metadata_map.get(CARD_KEY)
    if text is None:
        raise ConfigError(
            f"{path} has no lsa-edge model card in its metadata; was it exported by lsa-edge build?"
        )
    return ModelCard.from_json(text)


def _gpu_providers() -> list[str]:
    """ONNX Runtime's GPU execution providers here, best first (TensorRT's, then CUDA's)."""
    if not available("onnxruntime"):
        return []
    have = require("onnxruntime").get_available_providers()
    return [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in have]


def select_backend(
    package: ModelPackage, backend: str = "auto", threads: int = 0, device: str | None = None
) -> Backend:
    """The :class:`~lsa_edge.backends.base.Backend` (``predict(faces) -> probs``) for ``package``; logs the
    choice and the reasons.

    backend: auto | tensorrt | onnxruntime | torch, or ``triton://HOST[:PORT]`` — a Triton server's
    ``lsa_edge_attributes`` model (:mod:`lsa_edge.backends.triton`; device and threads are then the server's).
    device: None or "auto" — the best this machine offers (the choice is logged, a CPU run of a package
    built for a GPU is a warning); "cpu" — ONNX Runtime's CPU provider or PyTorch on the CPU (never
    TensorRT); "cuda" or "cuda:N" — GPU N (default 0) through a TensorRT engine, ONNX Runtime's
    TensorRT/CUDA provider or PyTorch, and an error saying what to install when none of them can: a
    device asked for is never silently replaced by the CPU. threads: ONNX Runtime intra-op threads."""
    if not isinstance(package, ModelPackage):
        raise ConfigError(
            f"select_backend(package=...): got {shown(package)}; accepted: a ModelPackage, e.g. "
            "ModelPackage.open(path)"
        )
    if is_triton(backend):  # a remote model: the Triton server picks its own device
        from .backends.triton import TritonBackend

        remote = TritonBackend(backend, card=package.card)
        log.info("backend: %s", remote.describe())
        return remote
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ConfigError(unknown_choice("backend", backend, BACKENDS) + "; or triton://HOST:PORT")
    threads = _args.threads("select_backend", threads)
    dev = parse_device(device)
    want, index = (None, None) if dev is None else dev
    if backend == "tensorrt":
        if want == "cpu":
            raise ConfigError(
                "backend tensorrt runs on a GPU, but device 'cpu' was asked for; for the CPU use backend "
                "onnxruntime (or auto), or drop the device to run TensorRT"
            )
        return cast("Backend", _tensorrt(package, must=True, device=index or 0))  # must: never None
    if backend == "torch":
        return _torch(package, dev)
    reasons: list[str] = []
    if backend == "auto":
        if want == "cpu":
            reasons.append("device cpu asked for (TensorRT runs on a GPU)")
        else:
            trt = _tensorrt(package, must=False, reasons=reasons, device=index or 0)
            if trt is not None:
                return trt
    if backend in ("auto", "onnxruntime"):
        chosen = _onnxruntime(package, want, index, threads, reasons)
        if chosen is not None:
            return chosen
        if want == "cuda" and (backend == "onnxruntime" or package.checkpoint is None):
            _no_gpu(package, device_text(dev), reasons)
        if backend == "onnxruntime":
            raise ConfigError(
                f"{package.source} has no ONNX file; build one with: lsa-edge build {package.source}"
            )
    if package.checkpoint is not None:
        log.info("backend: PyTorch (%s)%s", package.checkpoint.name, _why(reasons))
        return _torch(package, dev)
    raise LsaEdgeError(f"nothing can run {package.source} here:{_why(reasons)}")


def _onnxruntime(
    package: ModelPackage, want: str | None, index: int | None, threads: int, reasons: list[str]
) -> Backend | None:
    """ONNX Runtime for ``package`` on the device asked for (None: a GPU provider where there is one, else
    the CPU); None, with the reasons, when it cannot run there."""
    from .backends import OnnxRuntimeBackend

    if want != "cpu":
        gpu = _gpu_providers()
        if gpu and package.gpu_onnx is not None:
            try:
                chosen = OnnxRuntimeBackend(package.gpu_onnx, (*gpu, "CPUExecutionProvider"), threads, index)
            except GpuUnavailableError as err:  # listed, but none loads: no driver, CUDA libraries missing
                if want == "cuda":
                    raise
                log.warning("ONNX Runtime's GPU providers are not usable here: %s", err)
                reasons.append(f"ONNX Runtime's GPU providers do not load ({err})")
            else:
                active = [p for p in chosen.session.get_providers() if p in gpu]
                log.info(
                    "backend: ONNX Runtime %s (%s)%s",
                    " + ".join(active),
                    package.gpu_onnx.name,
                    _why(reasons),
                )
                return chosen
        elif package.gpu_onnx is None:
            reasons.append("no ONNX for a GPU")
        else:
            reasons.append("ONNX Runtime has no GPU provider here")
        if want == "cuda":
            return None
    package.require_present("cpu_onnx")  # named by the manifest, removed: the CPU would open it now
    if package.cpu_onnx is None:
        return None
    if want == "cpu":
        log.info("backend: ONNX Runtime CPU (%s) — device cpu asked for", package.cpu_onnx.name)
    else:
        # Loud when the package was built for a GPU: running it on the CPU is a fallback, not a choice.
        built_for_gpu = package.engine is not None or package.missing("engine")
        level = logging.WARNING if built_for_gpu else logging.INFO
        log.log(level, "backend: ONNX Runtime CPU (%s)%s", package.cpu_onnx.name, _why(reasons))
    return OnnxRuntimeBackend(package.cpu_onnx, ("CPUExecutionProvider",), threads)


def _no_gpu(package: ModelPackage, device: str, reasons: list[str]) -> None:
    """device cuda asked for, nothing here runs ``package`` on a GPU: say what to install or pass."""
    others = [r for r in reasons if "ONNX Runtime" not in r]  # TensorRT's, say; ONNX Runtime's is below
    also = f" (and TensorRT cannot: {'; '.join(others)})" if others else ""
    if package.gpu_onnx is None:
        raise ConfigError(
            f"device {device}: nothing in {package.source} runs on a GPU here ({'; '.join(reasons)}). "
            "Pass device cpu, or build a package for the GPU with lsa-edge build"
        )
    have = require("onnxruntime").get_available_providers() if available("onnxruntime") else []
    raise MissingDependencyError(
        f"device {device}: ONNX Runtime here has no CUDA provider (available: {', '.join(have) or 'none'}), "
        f"so {package.gpu_onnx.name} cannot run on the GPU{also}. Install the GPU build: pip uninstall "
        "onnxruntime && pip install onnxruntime-gpu (on Jetson: the onnxruntime-gpu wheel for your "
        "JetPack), or pass device cpu to run on the CPU"
    )


def _why(reasons: list[str]) -> str:
    return f" — not better options because: {'; '.join(reasons)}" if reasons else ""


def _tensorrt(
    package: ModelPackage, must: bool, reasons: list[str] | None = None, device: int = 0
) -> Backend | None:
    reasons = [] if reasons is None else reasons
    if package.engine is None and package.missing("engine"):
        if must:
            package.require_present("engine")
        msg = f"its engine {package.missing('engine')} is not there (removed from the package)"
    elif package.engine is None:
        msg = f"{package.source} has no TensorRT engine (build one on the device: lsa-edge build --from-bundle {package.source})"
    elif not available("tensorrt"):
        msg = "TensorRT is not installed (on Jetson it comes with JetPack)"
        if must:
            raise MissingDependencyError(f"--backend tensorrt: {msg}")
    else:
        from .backends.tensorrt import TensorRTBackend

        if must:
            return TensorRTBackend(package.engine, device=device)
        try:
            backend = TensorRTBackend(package.engine, device=device)
        except LsaEdgeError as err:  # e.g. an engine for another TensorRT/GPU: say so, then fall back loudly
            log.warning("TensorRT engine %s not usable: %s", package.engine.name, err)
            reasons.append(f"TensorRT engine not usable ({err})")
            return None
        log.info("backend: TensorRT (%s)", package.engine.name)
        return backend
    if must:
        raise ConfigError(msg)
    reasons.append(msg)
    return None


def _torch(package: ModelPackage, device: tuple[str, int | None] | None = None) -> Backend:
    if package.checkpoint is None:
        raise ConfigError(f"the torch backend needs a checkpoint (.pt); {package.source} is not one")
    if device is not None and device[0] == "cuda":
        torch = require("torch", "running a checkpoint")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise GpuUnavailableError(
                f"device {device_text(device)}: PyTorch {torch.__version__} here sees no CUDA GPU (a CPU "
                "build of torch, or no NVIDIA driver); install a CUDA build of torch, or pass device cpu"
            )
        if device[1] is not None and device[1] >= count:
            raise ConfigError(
                f"device {device_text(device)}: PyTorch sees {count} GPU(s), cuda:0 to cuda:{count - 1}"
            )
    # The training package lends it through a plugin (lsa_edge.plugins): the core never imports a stage.
    from .plugins import checkpoint_loader

    loader = checkpoint_loader()
    return loader.open_backend(package.checkpoint, None if device is None else device_text(device))
