"""lsa-edge: face attribute recognition with language-driven spatial-semantic cross-attention (LSA),
from training to TensorRT on Jetson.

    from lsa_edge import Pipeline
    with Pipeline("build/fp16") as pipe:          # None: the default model shipped with lsa-edge
        for result in pipe.stream("csi://0"):
            print([(f.track_id, f.labels) for f in result.faces])

The core (this package) needs numpy and OpenCV only (plus ONNX Runtime or TensorRT to run a model).
Training lives in ``lsa_edge.training`` (torch, transformers), building in ``lsa_edge.engines``, INT8 in
``lsa_edge.calibration``; each heavy import happens when its feature is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The public names, imported when first used (PEP 562): ``import lsa_edge`` (and so ``lsa-edge``'s start-up,
# before its Ctrl-C handling is in place) stays instant; ``from lsa_edge import Pipeline`` works as always.
_EXPORTS = {
    "ATTRIBUTES": "attributes",
    "AlignmentTemplate": "card",
    "ModelCard": "card",
    "Preprocessing": "card",
    "FaceDataset": "data",
    "load_dataset": "data",
    "FaceDetector": "detector",
    "CalibrationError": "errors",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "EngineMismatchError": "errors",
    "GpuUnavailableError": "errors",
    "LsaEdgeError": "errors",
    "MissingDependencyError": "errors",
    "PackageError": "errors",
    "attribute_metrics": "metrics",
    "ModelPackage": "package",
    "Pipeline": "pipeline",
    "Face": "results",
    "FrameResult": "results",
    "open_source": "sources",
    "TrackerConfig": "track",
}

__all__ = [*sorted(_EXPORTS), "__version__"]
_HEAVY = {"training", "engines", "calibration"}  # import these explicitly (they need torch, onnx, ...)

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .attributes import ATTRIBUTES as ATTRIBUTES
    from .card import AlignmentTemplate as AlignmentTemplate
    from .card import ModelCard as ModelCard
    from .card import Preprocessing as Preprocessing
    from .data import FaceDataset as FaceDataset
    from .data import load_dataset as load_dataset
    from .detector import FaceDetector as FaceDetector
    from .errors import CalibrationError as CalibrationError
    from .errors import CheckpointError as CheckpointError
    from .errors import ConfigError as ConfigError
    from .errors import DataError as DataError
    from .errors import EngineMismatchError as EngineMismatchError
    from .errors import GpuUnavailableError as GpuUnavailableError
    from .errors import LsaEdgeError as LsaEdgeError
    from .errors import MissingDependencyError as MissingDependencyError
    from .errors import PackageError as PackageError
    from .metrics import attribute_metrics as attribute_metrics
    from .package import ModelPackage as ModelPackage
    from .pipeline import Pipeline as Pipeline
    from .results import Face as Face
    from .results import FrameResult as FrameResult
    from .sources import open_source as open_source
    from .track import TrackerConfig as TrackerConfig


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name.startswith("_") or name in _HEAVY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        try:  # a submodule used as an attribute (lsa_edge.sources after only ``import lsa_edge``)
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
