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

__version__ = "0.1.0"

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
from .errors import LsaEdgeError as LsaEdgeError
from .errors import MissingDependencyError as MissingDependencyError
from .metrics import attribute_metrics as attribute_metrics
from .package import ModelPackage as ModelPackage
from .pipeline import Pipeline as Pipeline
from .results import Face as Face
from .results import FrameResult as FrameResult
from .sources import open_source as open_source
from .track import TrackerConfig as TrackerConfig
