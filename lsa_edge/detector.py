"""BlazeFace face detection (MediaPipe's face detector): SSD anchors, box and keypoint decoding, weighted
NMS, letterboxing, and :class:`FaceDetector`, which runs the shipped ONNX model.

numpy and OpenCV only at import time: ONNX Runtime is imported when a :class:`FaceDetector` is built
without a ``runner`` of its own. The model runs behind the runtime's one model contract
(:class:`lsa_edge.backends.base.ModelRunner`): ``runner.predict(x: N×3×S×S float32) -> (regressors
N×A×16, logits N×A×1)``, so a TensorRT engine (or a plain callable, wrapped) plugs in the same way.

The decoding follows MediaPipe's graph options (``face_detection_{short,full}_range_common.pbtxt``):
``SsdAnchorsCalculator`` with fixed-size anchors, ``TensorsToDetectionsCalculator`` with
``reverse_output_order`` (x before y), scale = input size, sigmoid scores clipped at ±100, and
``NonMaxSuppressionCalculator`` with IoU 0.3 and the WEIGHTED algorithm (a kept face is the score-weighted
mean of the boxes and keypoints it suppresses).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from concurrent.futures import wait
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, List, Literal, Sequence  # subscripted at run time (Python 3.8)

import numpy as np

from . import _args
from ._args import number, path_like, shown
from ._opencv import cv2  # a stand-in naming the fix where OpenCV is missing
from .backends.base import ModelRunner, MultiOutputBase
from .card import KEYPOINTS
from .errors import ConfigError, DataError, unknown_choice
from .preprocess import to_planes, usable_cpus, worker, write_into

__all__ = [
    "DETECTOR_METADATA_KEY",
    "INPUT_NAME",
    "OUTPUT_NAMES",
    "VARIANTS",
    "BlazeFaceConfig",
    "Detections",
    "FaceDetection",
    "FaceDetector",
    "Letterbox",
    "decode",
    "generate_anchors",
    "letterbox",
    "non_max_suppression",
    "shipped_model",
    "to_input_tensor",
]

log = logging.getLogger(__name__)

INPUT_NAME = "image"  # N×3×S×S float32, RGB, values in [-1, 1] (the letterboxed frame)
OUTPUT_NAMES = ("regressors", "logits")  # N×A×16 float32 (input pixels), N×A×1 float32 (score logits)
DETECTOR_METADATA_KEY = "lsa_edge.detector"  # metadata_props key holding BlazeFaceConfig as JSON
VARIANTS = ("full", "short")

Runner = Callable[[np.ndarray], Sequence[np.ndarray]]


@dataclass(frozen=True)
class BlazeFaceConfig:
    """What a BlazeFace model expects and how its raw outputs decode. Stored in the ONNX metadata."""

    variant: Literal["full", "short"]  # full range (faces up to ~5 m) or short range (~2 m)
    input_size: int  # side of the square model input, pixels
    strides: tuple[int, ...]  # one per SSD layer; equal neighbours share a feature map
    interpolated_scale_aspect_ratio: float  # > 0 adds one anchor per layer (MediaPipe's option)
    anchor_offset: float = 0.5  # anchor centre within its cell, fraction of the cell
    num_keypoints: int = 6  # in KEYPOINTS order
    score_clipping: float = 100.0  # |logit| clipped to this before the sigmoid
    min_score: float = 0.5  # default detection threshold (MediaPipe's min_detection_confidence)
    iou_threshold: float = 0.3  # NMS: boxes overlapping more than this form one face
    input_range: tuple[float, float] = (-1.0, 1.0)  # uint8 0..255 maps linearly onto this
    color_order: Literal["RGB", "BGR"] = "RGB"  # channel order of the model input
    keypoints: tuple[str, ...] = KEYPOINTS

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(unknown_choice("BlazeFace variant", self.variant, VARIANTS))
        if self.input_size < 16 or not self.strides or min(self.strides) < 1:
            raise ConfigError(f"bad BlazeFace geometry: input {self.input_size}, strides {self.strides}")
        if len(self.keypoints) != self.num_keypoints:
            raise ConfigError(f"{self.num_keypoints} keypoints but {len(self.keypoints)} keypoint names")

    @classmethod
    def full_range(cls) -> BlazeFaceConfig:
        """192×192, one 48×48 stride-4 layer with one anchor per cell: 2304 anchors."""
        return cls("full", 192, (4,), 0.0)

    @classmethod
    def short_range(cls) -> BlazeFaceConfig:
        """128×128, stride 8 (2 anchors per cell) and 3× stride 16 (6 per cell): 512 + 384 = 896 anchors."""
        return cls("short", 128, (8, 16, 16, 16), 1.0)

    @classmethod
    def for_variant(cls, variant: str) -> BlazeFaceConfig:
        if variant == "full":
            return cls.full_range()
        if variant == "short":
            return cls.short_range()
        raise ConfigError(unknown_choice("BlazeFace variant", variant, VARIANTS))

    @property
    def num_coords(self) -> int:
        return 4 + 2 * self.num_keypoints

    @property
    def num_anchors(self) -> int:
        return len(generate_anchors(self))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BlazeFaceConfig:
        try:
            d = json.loads(text)
            d["strides"] = tuple(d["strides"])
            d["input_range"] = tuple(d["input_range"])
            d["keypoints"] = tuple(d["keypoints"])
            return cls(**d)
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"unreadable BlazeFace configuration in the model metadata: {err}") from err


def generate_anchors(config: BlazeFaceConfig) -> np.ndarray:
    """SSD anchor centres in model order: A×2 (x, y), fractions of the input side.

    MediaPipe's SsdAnchorsCalculator with ``fixed_anchor_size: true`` (every anchor is 1×1, so only centres
    matter): consecutive layers with the same stride share one ceil(S/stride)² feature map; each layer
    contributes one anchor per cell (aspect ratio 1.0) plus one when interpolated_scale_aspect_ratio > 0.
    Order: layer group, then row, then column, then anchor.
    """
    strides = config.strides
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = (j - i) * (2 if config.interpolated_scale_aspect_ratio > 0 else 1)
        side = math.ceil(config.input_size / strides[i])
        c = (np.arange(side, dtype=np.float64) + config.anchor_offset) / side
        xs, ys = np.meshgrid(c, c)  # row-major: y outer, x inner
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(out, axis=0)


def _logit_floor(p: float) -> float:
    """A logit below which the score is surely under ``p`` (−inf where that cannot be said)."""
    return math.log(p / (1.0 - p)) - 1e-3 if 0.0 < p < 1.0 else -math.inf


def _sigmoid(logits: np.ndarray, clip: float) -> np.ndarray:
    z = np.clip(np.asarray(logits, dtype=np.float64), -clip, clip)
    return 1.0 / (1.0 + np.exp(-z))


def decode(
    regressors: np.ndarray,
    logits: np.ndarray,
    anchors: np.ndarray,
    config: BlazeFaceConfig,
    min_score: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one image → candidate faces above ``min_score`` (before NMS).

    regressors: A×16 (or 1×A×16) float, input pixels relative to the anchor: (dx, dy, w, h) then
    (dx, dy) per keypoint. logits: A (or 1×A×1). Returns boxes K×4 (x0, y0, x1, y1), keypoints K×6×2
    (x, y) and scores K, positions as fractions of the input side, sorted by descending score.
    """
    n = len(anchors)
    reg = np.asarray(regressors).reshape(-1, config.num_coords)
    lg = np.asarray(logits, dtype=np.float64).reshape(-1)
    if len(reg) != n or len(lg) != n:
        raise DataError(
            f"BlazeFace output has {len(reg)} boxes and {len(lg)} scores, the {config.variant}-range "
            f"anchors number {n}; is this the {config.variant}-range model?"
        )
    thr = config.min_score if min_score is None else min_score
    # Nearly every anchor is background: compare logits first (sigmoid is monotonic) and decode only the
    # anchors near or above the threshold. The margin absorbs rounding; the exact test follows.
    near = np.flatnonzero(lg >= _logit_floor(thr))
    scores = _sigmoid(lg[near], config.score_clipping)
    above = scores >= thr
    keep, scores = near[above], scores[above]
    reg, anc = reg[keep].astype(np.float64) / config.input_size, anchors[keep]
    centre = reg[:, 0:2] + anc
    half = reg[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = reg[:, 4:].reshape(-1, config.num_keypoints, 2) + anc[:, None, :]
    valid = (half > 0).all(axis=1)  # a negative width or height is not a box
    boxes, kps, scores = boxes[valid], kps[valid], scores[valid]
    order = np.argsort(-scores, kind="stable")
    return boxes[order], kps[order], scores[order]


def _iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """K×K IoU of K boxes (x0, y0, x1, y1); 0 where the union is empty."""
    b = boxes[:, None, :]  # row i: box i against every box, in the order the greedy loop asks
    ix0 = np.maximum(b[..., 0], boxes[:, 0])
    iy0 = np.maximum(b[..., 1], boxes[:, 1])
    ix1 = np.minimum(b[..., 2], boxes[:, 2])
    iy1 = np.minimum(b[..., 3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = areas[:, None] + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def non_max_suppression(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    method: Literal["weighted", "hard"] = "weighted",
    max_faces: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge overlapping candidates into faces.

    boxes K×4 (x0, y0, x1, y1), keypoints K×P×2, scores K. Candidates are taken in descending score; each
    one absorbs the remaining candidates whose IoU with it exceeds ``iou_threshold``. ``weighted``
    (MediaPipe's WEIGHTED): the face's box and keypoints are the score-weighted mean of the absorbed
    group, its score the best one's. ``hard``: the best candidate as it is. Returns the faces in
    descending score.
    """
    if method not in ("weighted", "hard"):
        raise ConfigError(unknown_choice("NMS method", method, ("weighted", "hard")))
    scores = np.asarray(scores)
    if not len(scores) or (max_faces is not None and max_faces < 1):
        p = keypoints.shape[1] if keypoints.ndim == 3 else 0
        return np.zeros((0, 4)), np.zeros((0, p, 2)), np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    # All pairwise overlaps at once (a few dozen candidates), then the greedy pass only reads rows.
    absorbs = _iou_matrix(boxes) > iou_threshold
    np.fill_diagonal(absorbs, True)  # a degenerate (zero-area) box still absorbs itself
    free = np.ones(len(scores), dtype=bool)
    kept, out_b, out_k = [], [], []
    for top in range(len(scores)):
        if not free[top]:
            continue
        group = np.flatnonzero(absorbs[top] & free)  # ascending: top first
        free[group] = False
        if method == "weighted" and len(group) > 1:
            w = scores[group] / scores[group].sum()
            out_b.append(w @ boxes[group])
            out_k.append(
                np.dot(w[None], keypoints[group].reshape(len(group), -1)).reshape(keypoints.shape[1:])
            )
        else:
            out_b.append(boxes[top])
            out_k.append(keypoints[top])
        kept.append(top)
        if len(kept) == max_faces or not free.any():
            break
    return np.stack(out_b), np.stack(out_k), scores[kept]


@dataclass(frozen=True)
class Letterbox:
    """Where a frame sits in the square model input: input = frame × scale + pad (continuous pixels)."""

    size: int  # side of the model input, pixels
    scale_x: float  # input pixels per frame pixel, horizontally
    scale_y: float  # input pixels per frame pixel, vertically
    pad_x: int  # input pixels left of the frame
    pad_y: int  # input pixels above the frame
    frame_size: tuple[int, int]  # (H, W) of the frame

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """…×2 (x, y) input pixels → frame pixels. Continuous coordinates: pixel i spans [i, i+1)."""
        p = np.asarray(points, dtype=np.float64)
        return (p - [self.pad_x, self.pad_y]) / [self.scale_x, self.scale_y]

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """…×2 (x, y) frame pixels → input pixels."""
        p = np.asarray(points, dtype=np.float64)
        return p * [self.scale_x, self.scale_y] + [self.pad_x, self.pad_y]


def _check_frame(frame: Any) -> np.ndarray:
    if frame is None:
        raise DataError("no image: got None (an unreadable file or a camera that returned no frame?)")
    img = np.asarray(frame)
    if img.dtype != np.uint8:
        raise DataError(
            f"the face detector takes uint8 images, got {img.dtype}; convert with .astype(np.uint8)"
        )
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(
            f"the face detector takes H×W×3 colour images, got shape {img.shape}; convert grayscale "
            "with cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) and drop alpha with cv2.COLOR_BGRA2BGR"
        )
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise DataError(f"empty image: shape {img.shape}")
    return img


def _letterbox_geometry(h: int, w: int, size: int) -> tuple[int, int, int, int]:
    """(width, height, pad_x, pad_y) of an H×W frame inside the size×size input."""
    s = size / max(h, w)
    nw, nh = max(1, min(size, round(w * s))), max(1, min(size, round(h * s)))
    return nw, nh, (size - nw) // 2, (size - nh) // 2


def _resize(
    img: np.ndarray, nw: int, nh: int, out: np.ndarray | None = None, split: bool = False
) -> np.ndarray:
    """INTER_AREA to shrink (averaging, no aliasing), INTER_LINEAR to enlarge; into ``out`` when given.

    split: shrink a large frame as two bands, the lower one on a worker thread (see :func:`_band_split`).
    """
    h, w = img.shape[:2]
    if (nw, nh) == (w, h):
        if out is None:
            return img
        out[...] = img
        return out
    interp = cv2.INTER_AREA if nw < w or nh < h else cv2.INTER_LINEAR
    r = _band_split(h, nh) if split and interp == cv2.INTER_AREA and h * w >= _SPLIT_MIN_PIXELS else 0
    if not r or usable_cpus() < 2:
        small = cv2.resize(img, (nw, nh), dst=out, interpolation=interp)
        return small if out is None else write_into(small, out)
    # OpenCV runs an INTER_AREA shrink to this small an output on one thread (it parallelises by output
    # size), and it is the largest CPU cost of a frame outside the models: two bands run side by side.
    out = np.empty((nh, nw, 3), np.uint8) if out is None else out
    top = r * h // nh
    lower = worker().submit(cv2.resize, img[top:], (nw, nh - r), dst=out[r:], interpolation=interp)
    try:
        upper = cv2.resize(img[:top], (nw, r), dst=out[:r], interpolation=interp)
    finally:  # never leave the worker writing into a buffer this thread reuses for its next frame
        wait([lower])
    write_into(upper, out[:r])
    write_into(lower.result(), out[r:])
    return out


_SPLIT_MIN_PIXELS = 200_000  # smaller frames shrink in a fraction of a millisecond: not worth a thread hop


def _band_split(h: int, nh: int) -> int:
    """An output row near the middle whose top edge lies exactly on a source row edge (r·h/nh whole), or 0.

    INTER_AREA weighs each output row by the source rows under it; with the cut on a shared row edge the
    bands above and below see the same rows with the same weights, so resizing them apart gives the same
    pixels (tests compare bit for bit). 640×480 → 192×144 cuts at output row 72 = source row 240.
    """
    step = nh // math.gcd(h, nh)
    r = round(nh / 2 / step) * step
    return r if 0 < r < nh else 0


def letterbox(frame: np.ndarray, size: int, pad_value: int = 0) -> tuple[np.ndarray, Letterbox]:
    """Fit an H×W×3 uint8 frame into a size×size canvas, keeping its aspect ratio, centred.

    Shrinks with INTER_AREA (averaging, no aliasing), enlarges with INTER_LINEAR; the border is
    ``pad_value`` (black, as MediaPipe's BORDER_ZERO). Returns the canvas (same channel order) and the
    mapping back to the frame.
    """
    img = _check_frame(frame)
    h, w = img.shape[:2]
    nw, nh, px, py = _letterbox_geometry(h, w, size)
    canvas = np.full((size, size, 3), pad_value, dtype=np.uint8)
    _resize(img, nw, nh, out=canvas[py : py + nh, px : px + nw])
    return canvas, Letterbox(size, nw / w, nh / h, px, py, (h, w))


def _input_values(x: np.ndarray, config: BlazeFaceConfig) -> np.ndarray:
    """The uint8 → model range formula, elementwise in float32 (also builds the lookup table)."""
    lo, hi = config.input_range
    return x.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)


@lru_cache(maxsize=8)
def _input_lut(config: BlazeFaceConfig) -> np.ndarray:
    """3×256 float32 (one row per channel, all equal): :func:`_input_values` of every uint8 value."""
    lut = np.ascontiguousarray(np.repeat(_input_values(np.arange(256)[None, :], config), 3, axis=0))
    lut.flags.writeable = False
    return lut


def _check_color_order(color_order: str) -> None:
    if color_order not in ("BGR", "RGB"):
        raise ConfigError(unknown_choice("colour order", color_order, ("BGR", "RGB")))


def to_input_tensor(
    canvases: np.ndarray, config: BlazeFaceConfig, color_order: Literal["BGR", "RGB"] = "BGR"
) -> np.ndarray:
    """S×S×3 (or N×S×S×3) uint8 letterboxed canvases → N×3×S×S float32 in the model's range and colours."""
    x = np.asarray(canvases)
    if x.ndim == 3:
        x = x[None]
    _check_color_order(color_order)
    swap = color_order != config.color_order
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:  # not canvases: the formula itself
        y = _input_values(x[..., ::-1] if swap else x, config)
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    out = np.empty((len(x), 3, *x.shape[1:3]), np.float32)
    for i in range(len(x)):
        to_planes(x[i], _input_lut(config), swap, out[i])
    return out


@dataclass(frozen=True)
class FaceDetection:
    """One face in frame pixels (continuous coordinates: pixel i spans [i, i+1))."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1; may reach outside the frame at its edges
    score: float  # sigmoid confidence, 0..1
    keypoints: tuple[tuple[float, float], ...]  # 6 × (x, y) in KEYPOINTS order
    keypoint_names: tuple[str, ...] = field(default=KEYPOINTS, repr=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def keypoints_array(self) -> np.ndarray:
        """6×2 float64 (x, y) frame pixels, in KEYPOINTS order (the alignment's input)."""
        return np.asarray(self.keypoints, dtype=np.float64)

    def keypoint(self, name: str) -> tuple[float, float]:
        if name not in self.keypoint_names:
            raise ConfigError(unknown_choice("keypoint", name, self.keypoint_names))
        return self.keypoints[self.keypoint_names.index(name)]


class Detections(List[FaceDetection]):
    """The faces of one frame, highest score first (a plain list), and ``small_scores``: the scores of the
    faces found but left out as smaller than the detector's ``min_face_size``."""

    def __init__(self) -> None:
        super().__init__()
        self.small_scores: list[float] = []

    @property
    def too_small(self) -> int:
        """How many faces were left out as smaller than ``min_face_size``."""
        return len(self.small_scores)


def shipped_model(variant: str = "full") -> Path:
    """Path of the ONNX model shipped in ``lsa_edge/models`` for ``variant`` (full or short range)."""
    from .models import detector_path

    return detector_path(variant)


class OnnxRuntimeDetectorRunner(MultiOutputBase):
    """The face detector's ONNX with ONNX Runtime, a :class:`~lsa_edge.backends.base.ModelRunner`:
    ``predict(x N×3×S×S float32) -> (regressors N×A×16, logits N×A×1)``. Reads the model's config."""

    name = "onnxruntime"

    def __init__(self, path: Path, providers: Sequence[str] | None, threads: int) -> None:
        from ._lazy import require
        from .backends.onnxruntime import dims, open_session

        require("onnxruntime", "the ONNX Runtime face detector")
        self.path, self.label = path, path.name
        self.session: Any = open_session(
            path,
            list(providers or ["CPUExecutionProvider"]),
            what="the face detector",
            threads=threads,
            spin=False,  # a 1–2 ms model between OpenCV work: a spinning pool only slows that work down
            load_error=DataError,
        )
        log.info("face detector %s on %s", path.name, self.session.get_providers())
        meta = self.session.get_modelmeta().custom_metadata_map
        inp = self.session.get_inputs()[0]
        self.input_name, shape = inp.name, list(inp.shape)
        self.nhwc = len(shape) == 4 and shape[-1] == 3 and shape[1] != 3
        side = shape[1] if self.nhwc else shape[-1]
        if DETECTOR_METADATA_KEY in meta:
            self.config = BlazeFaceConfig.from_json(meta[DETECTOR_METADATA_KEY])
        elif side in (128, 192):  # a model converted elsewhere: MediaPipe's two input sizes
            self.config = BlazeFaceConfig.for_variant("short" if side == 128 else "full")
        else:
            raise ConfigError(
                f"{path}: input shape {shape} is neither BlazeFace short (128) nor full (192) range"
            )
        self.output_names = [o.name for o in self.session.get_outputs()]
        if len(self.output_names) != 2:
            raise ConfigError(f"{path}: expected 2 outputs (regressors, logits), got {self.output_names}")
        # regressors have num_coords values per anchor, logits one: order the outputs by that.
        outputs = self.session.get_outputs()
        if outputs[0].shape[-1] == 1:
            self.output_names.reverse()
            outputs = outputs[::-1]
        self._out_shapes = [dims(o.shape)[1:] for o in outputs]
        size = self.config.input_size
        self.input_shape = (dims(shape)[0], 3, size, size)  # NCHW: an NHWC model is transposed here
        self.max_batch = self.input_shape[0]

    def _handle(self) -> Any:
        return self.session

    def _run(self, session: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.nhwc:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        reg, logits = session.run(self.output_names, {self.input_name: x})
        return reg, logits

    def _empty(self) -> tuple[np.ndarray, ...]:
        return tuple(np.zeros((0, *(d or 0 for d in shape)), np.float32) for shape in self._out_shapes)

    def _release(self) -> None:
        self.session = None  # releases ONNX Runtime's memory


class _CallableRunner(MultiOutputBase):
    """A plain ``runner(x) -> (regressors, logits)`` callable as a ModelRunner (splits at batch_size,
    shape check, close), so the detector has one kind of runner."""

    name = "callable"

    def __init__(self, fn: Runner, config: BlazeFaceConfig) -> None:
        self.fn: Runner | None = fn
        self.size = config.input_size
        self.input_shape = (None, 3, self.size, self.size)

    def _handle(self) -> Any:
        return self.fn

    def _run(self, fn: Runner, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(fn(x))

    def _empty(self) -> tuple[np.ndarray, ...]:
        s = self.size
        return self._run(self._handle(), np.zeros((0, 3, s, s), np.float32))

    def _release(self) -> None:
        self.fn = None


class FaceDetector:
    """BlazeFace on whole frames: ``FaceDetector()(frame) -> list[FaceDetection]``.

    model: an ONNX file, ``"full"``/``"short"`` for the shipped models, or None (the shipped full-range
    model). runner: a :class:`~lsa_edge.backends.base.ModelRunner` (e.g. a TensorRT engine's
    ``detector_runner()``) or any callable taking N×3×S×S float32 (RGB, [-1, 1], letterboxed) and returning
    (regressors N×A×16, logits N×A×1); then ``config`` says which model it is
    (default: full range) and ``model`` is ignored. min_score, iou_threshold: default to the model's
    (0.5, 0.3). min_face_size: faces whose larger box side is below this many frame pixels are dropped.
    max_faces: keep at most this many (highest scores). providers: ONNX Runtime execution providers, in
    order; an unavailable one is an error, never a silent CPU fallback. threads: ONNX Runtime intra-op
    threads (default 1: the model takes ~2 ms on one x86 core; 0 = ONNX Runtime's choice).

    ``detect`` hands the runner an input buffer it reuses for the next frame of the same size (one per
    thread): a runner must copy what it keeps. ``preprocess`` returns a new array every call. ``runner``
    is the ModelRunner in use (a callable passed in is wrapped); :meth:`close` closes the one the
    detector opened itself, never one passed in.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        runner: Runner | None = None,
        config: BlazeFaceConfig | None = None,
        min_score: float | None = None,
        iou_threshold: float | None = None,
        nms: Literal["weighted", "hard"] = "weighted",
        min_face_size: float = 0.0,
        max_faces: int | None = None,
        providers: Sequence[str] | None = None,
        threads: int = 1,
    ) -> None:
        _check_arguments(
            model, runner, config, min_score, iou_threshold, nms, min_face_size, max_faces, providers, threads
        )
        self._owned: ModelRunner | None = None  # the runner this detector opened (and closes)
        if runner is None:
            path = _resolve_model(model)
            ort_runner = OnnxRuntimeDetectorRunner(path, providers, threads)
            if config is not None and config != ort_runner.config:
                raise ConfigError(f"config {config} contradicts the one stored in {path}")
            runner, config, self._owned = ort_runner, ort_runner.config, ort_runner
            self.model_path: Path | None = path
        else:
            self.model_path = None
        self.config = config or BlazeFaceConfig.full_range()
        self.runner: ModelRunner | None = (
            runner if isinstance(runner, ModelRunner) else _CallableRunner(runner, self.config)
        )
        # Checked by _check_arguments (a config's own scores by BlazeFaceConfig): only converted here.
        self.min_score = self.config.min_score if min_score is None else float(min_score)
        self.iou_threshold = self.config.iou_threshold if iou_threshold is None else float(iou_threshold)
        self.nms, self.min_face_size = nms, float(min_face_size)
        self.max_faces = None if max_faces is None else int(max_faces)
        self.anchors = generate_anchors(self.config)
        self._buffers = threading.local()  # per-thread model input, reused while the frame size holds

    @property
    def input_size(self) -> int:
        return self.config.input_size

    def preprocess(
        self, frame: np.ndarray, color_order: Literal["BGR", "RGB"] = "BGR"
    ) -> tuple[np.ndarray, Letterbox]:
        """H×W×3 uint8 frame → (1×3×S×S float32 model input, letterbox mapping).

        :func:`letterbox` then :func:`to_input_tensor`, fused: the frame is resized once and mapped
        straight into the input's image rectangle (the same values, without the canvas in between).
        """
        return self._prepare(frame, color_order, reuse=False)

    def _prepare(self, frame: np.ndarray, color_order: str, reuse: bool) -> tuple[np.ndarray, Letterbox]:
        img = _check_frame(frame)
        _check_color_order(color_order)
        h, w = img.shape[:2]
        size = self.config.input_size
        nw, nh, px, py = _letterbox_geometry(h, w, size)
        key = (h, w, color_order)
        bufs = getattr(self._buffers, "input", None) if reuse else None
        if bufs is None or bufs[0] != key:
            lut = _input_lut(self.config)
            # The border never changes for a frame size: fill it once, rewrite only the image each frame.
            x = np.empty((1, 3, size, size), np.float32)
            x[0] = lut[:, :1, None]  # canvas pad value 0 in every channel
            bufs = (key, x, None if (nw, nh) == (w, h) else np.empty((nh, nw, 3), np.uint8))
            if reuse:
                self._buffers.input = bufs
        _, x, small = bufs
        small = _resize(img, nw, nh, out=small, split=True)
        to_planes(
            small,
            _input_lut(self.config),
            color_order != self.config.color_order,
            x[0, :, py : py + nh, px : px + nw],
        )
        return x, Letterbox(size, nw / w, nh / h, px, py, (h, w))

    def postprocess(self, regressors: np.ndarray, logits: np.ndarray, box: Letterbox) -> Detections:
        """Raw outputs of one image (A×16 and A×1, batch dim optional) → faces in frame pixels (a list, which
        also counts the faces dropped as smaller than ``min_face_size``)."""
        boxes, kps, scores = decode(regressors, logits, self.anchors, self.config, self.min_score)
        boxes, kps, scores = non_max_suppression(boxes, kps, scores, self.iou_threshold, self.nms)
        # A handful of faces: plain float arithmetic per face, the same IEEE operations Letterbox.to_frame
        # does on arrays (input pixels − pad, ÷ scale), without a dozen small numpy calls per frame.
        s, px, py, sx, sy = self.config.input_size, box.pad_x, box.pad_y, box.scale_x, box.scale_y
        h, w = box.frame_size
        faces = Detections()
        for b, k, score in zip(boxes.tolist(), kps.tolist(), scores.tolist()):
            x0, y0, x1, y1 = (
                (b[0] * s - px) / sx,
                (b[1] * s - py) / sy,
                (b[2] * s - px) / sx,
                (b[3] * s - py) / sy,
            )
            if not (0 <= (x0 + x1) / 2 <= w and 0 <= (y0 + y1) / 2 <= h):  # centred in the border
                continue
            if max(x1 - x0, y1 - y0) < self.min_face_size:
                faces.small_scores.append(score)  # counted, never mispredicted: too few pixels to judge
                continue
            points = tuple(((x * s - px) / sx, (y * s - py) / sy) for x, y in k)
            faces.append(FaceDetection((x0, y0, x1, y1), score, points, self.config.keypoints))
            if self.max_faces is not None and len(faces) >= self.max_faces:
                break
        return faces

    def detect(self, frame: np.ndarray, color_order: Literal["BGR", "RGB"] = "BGR") -> Detections:
        """Faces in an H×W×3 uint8 frame (BGR as OpenCV reads it, or RGB), highest score first; the list's
        ``too_small`` counts the faces below ``min_face_size`` that were left out."""
        runner = self.runner
        if runner is None:
            raise ConfigError("this FaceDetector was closed; create a new one")
        x, box = self._prepare(frame, color_order, reuse=True)  # the input buffer is reused per thread
        reg, logits = runner.predict(x)[:2]
        return self.postprocess(np.asarray(reg)[0], np.asarray(logits)[0], box)

    __call__ = detect

    def close(self) -> None:
        """Close the runner this detector opened (its ONNX Runtime session); idempotent."""
        owned, self._owned, self.runner = self._owned, None, None
        if owned is not None:
            owned.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_arguments(
    model: Any,
    runner: Any,
    config: Any,
    min_score: Any,
    iou_threshold: Any,
    nms: Any,
    min_face_size: Any,
    max_faces: Any,
    providers: Any,
    threads: Any,
) -> None:
    """FaceDetector's arguments, checked before a model is opened: ConfigError naming the argument."""
    w = "FaceDetector"
    if model is not None:
        path_like(w, "model", model, 'None, "full", "short" or the path of a BlazeFace ONNX file')
    if runner is not None and not callable(runner) and not isinstance(runner, ModelRunner):
        raise ConfigError(
            f"FaceDetector(runner=...): got {shown(runner)}; accepted: None, a ModelRunner or a callable "
            "taking N×3×S×S float32 and returning (regressors, logits)"
        )
    if config is not None and not isinstance(config, BlazeFaceConfig):
        raise ConfigError(
            f"FaceDetector(config=...): got {shown(config)}; accepted: None or a BlazeFaceConfig "
            "(e.g. BlazeFaceConfig.short_range())"
        )
    between = "None (the model's) or a number between 0 and 1"
    if min_score is not None:
        number(
            w,
            "min_score",
            min_score,
            lo=0,
            hi=1,
            lo_open=True,
            hi_open=True,
            accepted=between + ", exclusive",
        )
    if iou_threshold is not None:
        number(
            w, "iou_threshold", iou_threshold, lo=0, hi=1, lo_open=True, accepted=between + " (0 excluded)"
        )
    if not isinstance(nms, str) or nms not in ("weighted", "hard"):
        raise ConfigError(f"FaceDetector(nms=...): {unknown_choice('NMS method', nms, ('weighted', 'hard'))}")
    _args.min_face_size(w, min_face_size)
    _args.max_faces(w, max_faces)
    if providers is not None and (
        not isinstance(providers, (list, tuple)) or not all(isinstance(p, str) for p in providers)
    ):
        raise ConfigError(
            f"FaceDetector(providers=...): got {shown(providers)}; accepted: None (the CPU) or a list of ONNX "
            "Runtime provider names, e.g. ['CUDAExecutionProvider', 'CPUExecutionProvider']"
        )
    _args.threads(w, threads)


def _resolve_model(model: str | Path | None) -> Path:
    if model is None:
        return shipped_model("full")
    # The built-in names win over a folder of the same name in the current folder (a camera's working
    # folder with full/ or short/ in it): only an existing file called "full" or "short" is a model.
    if isinstance(model, str) and model in VARIANTS and not Path(model).is_file():
        return shipped_model(model)
    path = Path(model)
    if path.is_dir():
        raise DataError(
            f"face detector model {path} is a folder; pass a BlazeFace .onnx file, or 'full' or "
            "'short' for the shipped ones (a build folder's own detector is used when the folder is the model)"
        )
    if not path.is_file():
        raise DataError(f"face detector model {path} not found (use 'full' or 'short' for the shipped ones)")
    return path
