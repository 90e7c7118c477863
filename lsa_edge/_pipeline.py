"""The parts of :class:`lsa_edge.pipeline.Pipeline` that hold no state of their own: its arguments
checked, frames checked and converted, faces aligned into the batch, the per-thread batch buffers, the
face detector chosen for a package, and a frame's faces assembled into results.

numpy and OpenCV at import, like the pipeline; the backends import their runtimes when chosen.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _args
from ._args import integer, number, path_like, shown
from .backends.base import Backend

if TYPE_CHECKING:  # the detector module imports OpenCV: named for the types only
    from .detector import FaceDetector
from .backends.triton import is_triton, parse_address
from .card import ModelCard, Preprocessing
from .data.images import to_uint8_3ch
from .errors import ConfigError, DataError, LsaEdgeError, unknown_choice
from .package import BACKENDS, ModelPackage
from .preprocess import align_keypoints, usable_cpus, worker
from .results import Face
from .track import Tracker, TrackerConfig

log = logging.getLogger("lsa_edge.pipeline")  # the pipeline's messages, wherever the code lives

_MAX_PIXELS = 8192 * 8192  # larger frames are refused before any conversion (a mistake, not a camera)


def align_into(img: np.ndarray, keypoints: list[np.ndarray], pre: Preprocessing, crops: np.ndarray) -> None:
    """Warp each face straight into its batch slot (frame's channel order; normalize() puts them into
    the card's). With two faces or more, every other face is warped on the preprocessing worker: OpenCV
    releases the GIL, so one face's shrink and warp overlap another's Python work and OpenCV calls."""

    def run(faces: range) -> None:
        for j in faces:
            align_keypoints(img, keypoints[j], pre, out=crops[j])

    n = len(keypoints)
    if n < 2 or usable_cpus() < 2:
        run(range(n))
        return
    others = worker().submit(run, range(1, n, 2))
    try:
        run(range(0, n, 2))
    finally:
        others.result()  # the slots must be written (or the error raised) before the batch is read


_TRACKING = 'True or "on" (a default TrackerConfig), a TrackerConfig, or False or "off" (no tracking)'


def _tracking(value: Any) -> TrackerConfig | None:
    """``tracking=`` → the tracker's configuration, or None for no tracking."""
    if isinstance(value, TrackerConfig):
        return value
    if isinstance(value, (bool, np.bool_)):
        return TrackerConfig() if value else None
    if isinstance(value, str) and value.strip().lower() in ("on", "off"):
        return TrackerConfig() if value.strip().lower() == "on" else None
    hint = " None and numbers are refused so that tracking is never switched on or off by accident."
    if isinstance(value, str) and value.strip().lower() == "auto":
        hint = (
            " 'auto' is lsa-edge run's per-source choice (on for cameras, streams and videos, off for "
            "unrelated images); in Python pass True or False."
        )
    raise ConfigError(f"Pipeline(tracking=...): got {shown(value)}; accepted: {_TRACKING}.{hint}")


def check_arguments(
    model: Any,
    backend: Any,
    detector: Any,
    min_face_size: Any,
    detector_threshold: Any,
    max_faces: Any,
    tracking: Any,
    max_batch: Any,
    threads: Any,
) -> TrackerConfig | None:
    """Pipeline's arguments, checked before anything is opened (its contract: no model is loaded for a
    call that cannot run); returns the tracker's configuration. The arguments it hands on (min_face_size,
    max_faces, threads) are checked by the same :mod:`._args` definitions FaceDetector and select_backend
    use, so the rule and the message exist once."""
    w = "Pipeline"
    if model is not None and not isinstance(model, ModelPackage):
        path_like(
            w,
            "model",
            model,
            "None (the shipped default), a build folder, an .onnx, an .engine or a .pt path",
        )
    if is_triton(backend):
        parse_address(backend)  # a malformed address fails here, before a model is opened
    elif isinstance(backend, Backend):
        pass  # an open backend, shared (the caller closes it)
    elif not isinstance(backend, str) or backend not in BACKENDS:
        raise ConfigError(
            f"Pipeline(backend=...): {unknown_choice('backend', backend, BACKENDS)}; or triton://HOST:PORT"
        )
    path_like(w, "detector", detector, '"full", "short" or the path of a BlazeFace ONNX')
    _args.min_face_size(w, min_face_size)  # also FaceDetector's and select_backend's: one definition each
    if detector_threshold is not None:
        number(
            w,
            "detector_threshold",
            detector_threshold,
            lo=0.0,
            hi=1.0,
            lo_open=True,
            hi_open=True,
            accepted="None (the model's) or a score between 0 and 1, exclusive",
        )
    _args.max_faces(w, max_faces)
    integer(w, "max_batch", max_batch, lo=1, accepted="an int ≥ 1 (faces per attribute-model call)")
    _args.threads(w, threads)
    return _tracking(tracking)


class BatchBuffers(threading.local):
    """Per thread: the n×H×W×3 uint8 crops and n×3×H×W float32 model input of a frame's faces, as views
    of buffers kept across frames, doubled when a frame has more faces, so a frame allocates nothing for
    its faces. A thread's buffers go with the thread."""

    batch: tuple[np.ndarray, np.ndarray] | None = None

    def __init__(self, input_size: tuple[int, int]) -> None:
        self.size = input_size

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n×H×W×3 uint8 crops and n×3×H×W float32 model input (views; this thread's)."""
        bufs = self.batch
        if bufs is None or len(bufs[0]) < n:
            h, w = self.size
            cap = max(n, 2 * len(bufs[0]) if bufs is not None else 4)
            bufs = (np.empty((cap, h, w, 3), np.uint8), np.empty((cap, 3, h, w), np.float32))
            self.batch = bufs
        return bufs[0][:n], bufs[1][:n]


def as_frame(frame: Any) -> np.ndarray:
    """Any frame a user may hand over → H×W×3 uint8 (channel order kept), or DataError saying what
    was received. Shape and size are checked before any conversion touches the pixels, so a huge or
    odd array costs nothing to refuse."""
    if frame is None:
        raise DataError("the frame is None (a camera read that failed?); skip it or check the source")
    if isinstance(frame, np.ndarray) and type(frame) is not np.ndarray:
        frame = np.asarray(frame)  # np.matrix, masked arrays: their plain pixels
    if isinstance(frame, np.ndarray):
        shape = frame.shape
        if frame.ndim not in (2, 3) or (frame.ndim == 3 and shape[2] not in (1, 3, 4)):
            raise DataError(
                f"the frame has shape {shape}; expected H×W×3 (or H×W gray, H×W×1, H×W×4 with alpha)"
                + ("; pass one frame of the batch at a time" if frame.ndim == 4 else "")
            )
        h, w = shape[:2]
        if h * w == 0 or (frame.ndim == 3 and shape[2] == 0):
            raise DataError(f"the frame is empty (shape {shape})")
        if h < 16 or w < 16:
            raise DataError(f"the frame is {w}×{h} pixels; faces need a frame of at least 16×16")
        if h * w > _MAX_PIXELS:
            raise DataError(f"the frame is {w}×{h} pixels; resize frames above 8192×8192 before the pipeline")
        if not frame.dtype.isnative:  # big-endian data (FITS, some PNG readers): the same values
            frame = frame.astype(frame.dtype.newbyteorder("="))
        if frame.dtype.kind == "f":
            lo, hi = float(frame.min()), float(frame.max())  # NaN and ±inf show in these two
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise DataError("the frame holds NaN or infinite values")
            if lo < 0.0 or hi > 1.0:
                raise DataError(
                    f"a float frame must hold values in [0, 1], got {lo:.4g} to {hi:.4g}; divide by 255 "
                    "or pass uint8"
                )
            if frame.dtype not in (np.float32, np.float64):  # float16, long double: in [0, 1] now
                frame = frame.astype(np.float32)
    try:
        return to_uint8_3ch(frame, "frame")  # any common kind → H×W×3 uint8, channel order kept
    except ValueError as err:
        raise DataError(str(err)) from None


def assemble_faces(
    names: tuple[str, ...],
    dets: list,
    smoothed: np.ndarray,
    labels: list,
    ids: np.ndarray,
    need: np.ndarray,
    confirmed: list,
) -> list[Face]:
    """The frame's :class:`Face` results: one per detection, with its smoothed probabilities (rows of NaN:
    none yet), labels, track id, whether it was inferred this frame and whether its track is confirmed."""
    # One conversion per array (tolist gives the floats float() would), not one per value.
    rows, unset = smoothed.tolist(), np.isnan(smoothed).any(axis=1).tolist()
    return [
        Face(
            box=d.box,
            score=d.score,
            keypoints=d.keypoints,
            track_id=track_id,
            attributes={} if no_attrs else dict(zip(names, row)),
            labels=tuple(lab),
            fresh=fresh,
            confirmed=bool(conf),
        )
        for d, row, no_attrs, lab, track_id, fresh, conf in zip(
            dets, rows, unset, labels, ids.tolist(), need.tolist(), confirmed
        )
    ]


def make_tracker(
    cfg: TrackerConfig | None, detector_threshold: float | None, card: ModelCard
) -> Tracker | None:
    """The tracker for ``cfg`` (None: no tracking); the user's detector threshold is what starts a track."""
    if cfg is None:
        return None
    if detector_threshold is not None:  # the user's threshold is what starts a track
        cfg = replace(cfg, high_score=detector_threshold, low_score=min(cfg.low_score, detector_threshold))
    return Tracker(cfg, card.attributes, card.thresholds)


def open_detector(
    package: ModelPackage,
    backend: Backend,
    tracker: Tracker | None,
    detector: str | Path,
    dev: tuple[str, int | None] | None,
    detector_threshold: float | None,
    min_face_size: float,
    max_faces: int | None,
) -> tuple[FaceDetector, Backend | None]:
    """(the face detector, the TensorRT detector engine it runs or None): the build's own engine where the
    attribute model runs on TensorRT, else the build's own ONNX (for the default "full"), else the one
    asked for. The caller closes both; on an error nothing is left open."""
    from .detector import FaceDetector

    runner, engine = None, None
    on_trt = backend.name == "tensorrt"
    if on_trt:  # listed, removed from the package: it would run the detector here
        package.require_present("detector_engine")
    if package.detector_engine is not None and on_trt:
        from .backends.tensorrt import TensorRTBackend

        try:
            gpu = dev[1] if dev is not None and dev[1] is not None else 0
            engine = TensorRTBackend(package.detector_engine, device=gpu)
            runner = engine.detector_runner()
        except LsaEdgeError as err:
            log.warning("detector engine not usable (%s); running the detector's ONNX instead", err)
    det_model = detector
    if runner is None and detector == "full":  # the build's own detector would run: it must be there
        package.require_present("detector_onnx")
    if package.detector_onnx is not None and detector == "full":  # the build's own, unless asked
        det_model = package.detector_onnx
    # With tracking, the detector reports down to the tracker's low score: weak detections may
    # keep an existing track alive (ByteTrack's second stage) but never start one.
    low = tracker.config.low_score if tracker is not None else detector_threshold
    try:
        det = FaceDetector(
            det_model, runner=runner, min_score=low or None, min_face_size=min_face_size, max_faces=max_faces
        )
    except BaseException:
        if engine is not None:
            engine.close()
        raise
    return det, engine


def warn_template(card: ModelCard) -> None:
    """A warning when the card's alignment template was not measured with the detector."""
    from .alignment import is_estimated

    if not is_estimated(card.preprocessing.template):
        log.warning(
            "%s's alignment template is CelebA's mean landmarks, not measured with the detector; "
            "alignment will be a few pixels off (lsa-edge build --calib-data DATASET measures it)",
            card.name,
        )
