"""The runtime in one object: frame → detect → align → batched attributes → track/smooth → FrameResult.

    with Pipeline("build/fp16") as pipe:            # a build folder, .onnx, .engine, checkpoint; None = default
        for result in pipe.stream("csi://0"):         # or pipe.predict(frame_bgr) for one frame
            for face in result.faces:
                print(face.track_id, face.labels)

Every face of a frame goes through the attribute model in one batched call (split only above the
backend's maximum batch). Alignment is the same code training and calibration use
(:func:`lsa_edge.preprocess.align_keypoints` with the card's template). Every result carries per-stage
timings in milliseconds. numpy and OpenCV at import; the backends import their runtimes when chosen.

Threads: one Pipeline may be called from several threads (see :class:`Pipeline` for what runs side by
side and what one frame at a time); one Pipeline per camera keeps each camera's tracks its own.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from itertools import compress
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import _args
from ._args import integer, number, parse_device, path_like, shown
from .card import ModelCard
from .data.images import to_uint8_3ch
from .errors import ConfigError, DataError, LsaEdgeError, unknown_choice
from .package import BACKENDS, ModelPackage, select_backend
from .preprocess import align_keypoints, normalize, usable_cpus, worker
from .results import Face, FrameResult
from .track import Tracker, TrackerConfig

log = logging.getLogger(__name__)

_MAX_PIXELS = 8192 * 8192  # larger frames are refused before any conversion (a mistake, not a camera)


def _align_into(img: np.ndarray, keypoints: list[np.ndarray], pre: Any, crops: np.ndarray) -> None:
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


def _check_arguments(
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
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ConfigError(f"Pipeline(backend=...): {unknown_choice('backend', backend, BACKENDS)}")
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


class Pipeline:
    """Face attributes for whole frames.

    model: a build folder, an lsa-edge ``.onnx``, a TensorRT ``.engine`` or a checkpoint; None = the
    default model shipped with lsa-edge. backend: auto | tensorrt | onnxruntime | torch (auto logs what it
    picked and why). detector: "full" (BlazeFace full range, faces up to ~5 m) or "short", or an ONNX path;
    the build folder's own detector (engine where TensorRT runs) wins when present. min_face_size: faces
    smaller than this (larger box side, frame pixels) are ignored — attributes of tiny faces are noise.
    detector_threshold: the detection score (0 to 1, exclusive) that starts a face (None: the model's).
    max_faces: at most this many faces a frame (None: all). tracking: True or "on" (default
    :class:`TrackerConfig`), a TrackerConfig, or False or "off" (every face inferred every frame, no
    smoothing, track_id −1); anything else (None, 0, "auto") is a ConfigError, so tracking is never
    switched by accident. max_batch: faces per attribute-model call (an int ≥ 1). threads: ONNX Runtime
    intra-op threads for the attribute model (0 = its choice). device: where the attribute model runs —
    None or "auto" (the backend's choice, logged), "cpu", "cuda" or "cuda:N"; a device that cannot be
    honoured is an error (e.g. "cuda" for an ONNX model where ONNX Runtime has no CUDA provider: install
    onnxruntime-gpu), never a silent CPU run. The face detector's ONNX runs on the CPU (a TensorRT
    detector engine on the chosen GPU). Every argument is checked before a model is opened: a wrong type
    or value is a :class:`ConfigError` naming the argument.

    The faces reach the backend in a batch buffer the pipeline reuses for the next frame (one per
    thread): a backend must copy what it keeps after ``predict`` returns.

    Threads: :meth:`predict`, :meth:`stream` and :meth:`stream_frames` may be called from several threads
    at once (each ``stream`` generator by one thread at a time, as every generator). Checking and
    converting the frame, face detection and building the result always run concurrently: every thread
    has its own detector input and batch buffers. Without tracking, alignment and the attribute model
    run concurrently too. ONNX Runtime and PyTorch take concurrent calls; a TensorRT engine (the
    attribute model's or the detector's) runs one call at a time on its single execution context, and
    the process's one preprocessing worker thread takes the threads' band and warp tasks in turn. With
    tracking, the stateful part of a frame —
    association, the re-infer decision, alignment and the attribute model for the faces it chose, and
    smoothing — runs under one lock, one frame at a time, so the tracker never sees half a frame.
    Frames from several threads then form ONE track history, in the order they reach the tracker:
    faces from two cameras fed into one tracked Pipeline are matched against each other's tracks
    (a track may jump between cameras) and the smoothing mixes them. Use one Pipeline per camera (or
    ``tracking=False``). Frame numbers drawn when ``index`` is not given come from one counter shared
    by all threads. :meth:`reset` waits for the frame in the tracker; :meth:`close` waits for the calls
    under way in other threads, and ``predict`` raises :class:`ConfigError` afterwards.
    """

    def __init__(
        self,
        model: str | Path | ModelPackage | None = None,
        *,
        backend: str = "auto",
        detector: str | Path = "full",
        min_face_size: float = 24.0,
        detector_threshold: float | None = None,
        max_faces: int | None = None,
        tracking: bool | str | TrackerConfig = True,
        max_batch: int = 16,
        threads: int = 0,
        device: str | None = None,
    ) -> None:
        # Every argument is checked before anything is opened: a wrong type or value is a ConfigError
        # naming it, never a TypeError from inside (or one at the first frame).
        track_cfg = _check_arguments(
            model,
            backend,
            detector,
            min_face_size,
            detector_threshold,
            max_faces,
            tracking,
            max_batch,
            threads,
        )
        dev = parse_device(device, "Pipeline(device=...):")
        max_batch = int(max_batch)  # numpy scalars → Python's
        detector_threshold = None if detector_threshold is None else float(detector_threshold)
        # The lifetime state first: close() works whatever fails below.
        self._lock = threading.Lock()  # the tracker: one frame at a time from assign() to update()
        self._cond = threading.Condition()  # guards _inflight and _closed; close() waits on it
        self._inflight = 0  # predict calls under way; close waits for them
        self._closed = False
        self.package = model if isinstance(model, ModelPackage) else ModelPackage.open(model)
        self.card: ModelCard = self.package.card
        if self.card.preprocessing.template is None:
            raise ConfigError(
                f"{self.package.source}'s card has no alignment template; it cannot align detected faces"
            )
        self.tracker = self._make_tracker(track_cfg, detector_threshold)
        self.backend = select_backend(self.package, backend, threads, device)
        self._det_engine = None
        try:
            self.max_batch = min(max_batch, getattr(self.backend, "max_batch", None) or max_batch)
            self.detector = self._open_detector(detector, dev, detector_threshold, min_face_size, max_faces)
        except BaseException:
            self.close()
            raise
        self._thr = np.asarray(self.card.thresholds, dtype=np.float32)
        self._buffers = threading.local()  # per thread: the batch buffers of _batch_buffers
        self._count = itertools.count()  # frame numbers (next() on it is atomic under the GIL)
        self._warn_template()

    def _make_tracker(self, cfg: TrackerConfig | None, detector_threshold: float | None) -> Tracker | None:
        if cfg is None:
            return None
        if detector_threshold is not None:  # the user's threshold is what starts a track
            cfg = replace(
                cfg, high_score=detector_threshold, low_score=min(cfg.low_score, detector_threshold)
            )
        return Tracker(cfg, self.card.attributes, self.card.thresholds)

    def _open_detector(
        self,
        detector: str | Path,
        dev: tuple[str, int | None] | None,
        detector_threshold: float | None,
        min_face_size: Any,
        max_faces: Any,
    ) -> Any:
        """The face detector: the build's own engine where the attribute model runs on TensorRT, else the
        build's own ONNX (for the default "full"), else the one asked for."""
        from .detector import FaceDetector

        runner = None
        on_trt = getattr(self.backend, "name", "") == "tensorrt"
        if on_trt:  # listed, removed from the package: it would run the detector here
            self.package.require_present("detector_engine")
        if self.package.detector_engine is not None and on_trt:
            from .backends.tensorrt import TensorRTBackend

            try:
                gpu = dev[1] if dev is not None and dev[1] is not None else 0
                self._det_engine = TensorRTBackend(self.package.detector_engine, device=gpu)
                runner = self._det_engine.detector_runner()
            except LsaEdgeError as err:
                log.warning("detector engine not usable (%s); running the detector's ONNX instead", err)
        det_model = detector
        if runner is None and detector == "full":  # the build's own detector would run: it must be there
            self.package.require_present("detector_onnx")
        if self.package.detector_onnx is not None and detector == "full":  # the build's own, unless asked
            det_model = self.package.detector_onnx
        # With tracking, the detector reports down to the tracker's low score: weak detections may
        # keep an existing track alive (ByteTrack's second stage) but never start one.
        low = self.tracker.config.low_score if self.tracker is not None else detector_threshold
        return FaceDetector(
            det_model,
            runner=runner,
            min_score=low or None,
            min_face_size=min_face_size,
            max_faces=max_faces,
        )

    def _warn_template(self) -> None:
        from .alignment import is_estimated

        if not is_estimated(self.card.preprocessing.template):
            log.warning(
                "%s's alignment template is CelebA's mean landmarks, not measured with the detector; "
                "alignment will be a few pixels off (lsa-edge build --calib-data DATASET measures it)",
                self.card.name,
            )

    # ------------------------------------------------------------------------------------------ frames
    def predict(
        self,
        frame: Any,
        color_order: Literal["BGR", "RGB"] = "BGR",
        index: int | None = None,
        timestamp: float | None = None,
    ) -> FrameResult:
        """Faces and attributes of one H×W×3 uint8 frame (BGR as OpenCV delivers it, or RGB).

        Grayscale, 16-bit and float frames are converted; None, empty or otherwise unusable frames raise
        :class:`DataError` saying what was received. Safe from several threads: see :class:`Pipeline`
        for what runs concurrently (detection always; with tracking, the rest one frame at a time).
        """
        t0 = time.perf_counter()
        with self._cond:  # counted in flight: close() waits until this call is done with the models
            if self._closed:
                raise ConfigError("this Pipeline was closed; create a new one")
            self._inflight += 1
        try:
            return self._predict(frame, color_order, index, timestamp, t0)
        finally:
            with self._cond:
                self._inflight -= 1
                self._cond.notify_all()

    def _predict(
        self, frame: Any, color_order: str, index: int | None, timestamp: float | None, t0: float
    ) -> FrameResult:
        img = self._frame(frame)
        n = next(self._count)
        idx = n if index is None else index
        timings: dict[str, float] = {}

        t = time.perf_counter()
        dets = self.detector.detect(img, color_order)  # per-thread buffers: runs concurrently
        timings["detect"] = (time.perf_counter() - t) * 1000

        if self.tracker is None:
            n = len(dets)
            need = np.ones(n, dtype=bool)
            ids, confirmed = np.full(n, -1, dtype=np.int64), [True] * n
            probs = self._infer(img, dets, need, color_order, timings)
            names = self.card.attributes
            smoothed, labels = probs, [tuple(compress(names, on)) for on in (probs >= self._thr).tolist()]
        else:
            with self._lock:  # association → inference → smoothing: one frame at a time (see the class)
                dets, ids, need, confirmed = self._track(dets, timings)
                probs = self._infer(img, dets, need, color_order, timings)
                t = time.perf_counter()
                smoothed, labels = self.tracker.update(ids, probs, need)
                timings["track"] += (time.perf_counter() - t) * 1000

        faces = self._faces(dets, smoothed, labels, ids, need, confirmed)
        timings["total"] = (time.perf_counter() - t0) * 1000
        return FrameResult(
            index=idx,
            timestamp=time.monotonic() if timestamp is None else timestamp,
            size=(img.shape[0], img.shape[1]),
            faces=tuple(faces),
            timings_ms=timings,
        )

    def _infer(
        self, img: np.ndarray, dets: list, need: np.ndarray, color_order: str, timings: dict[str, float]
    ) -> np.ndarray:
        """M×C probabilities of the faces marked in ``need``: aligned into this thread's batch buffer,
        one batched call (split only above max_batch)."""
        t = time.perf_counter()
        pre = self.card.preprocessing
        todo = np.flatnonzero(need)
        crops, batch = self._batch_buffers(len(todo))
        _align_into(img, [dets[i].keypoints_array() for i in todo], pre, crops)
        timings["align"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        probs = (
            self.backend.predict(normalize(crops, pre, input_order=color_order, out=batch), self.max_batch)
            if len(todo)
            else np.zeros((0, len(self.card.attributes)), np.float32)
        )
        timings["infer"] = (time.perf_counter() - t) * 1000
        return probs

    def _track(self, dets: list, timings: dict[str, float]) -> tuple[list, np.ndarray, np.ndarray, list]:
        """(detections kept, track ids, which need inference, which tracks are confirmed). Under the lock."""
        t = time.perf_counter()
        boxes = np.asarray([d.box for d in dets], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray([d.score for d in dets], dtype=np.float64)
        ids = self.tracker.assign(boxes, scores)
        keep = ids >= 0  # a weak detection that matched no track is not a face we report
        dets, boxes, ids = [d for d, k in zip(dets, keep) if k], boxes[keep], ids[keep]
        need = self.tracker.needs_inference(ids, boxes)
        confirmed = self.tracker.confirmed(ids)
        timings["track"] = (time.perf_counter() - t) * 1000
        return dets, ids, need, confirmed

    def _faces(
        self,
        dets: list,
        smoothed: np.ndarray,
        labels: list,
        ids: np.ndarray,
        need: np.ndarray,
        confirmed: list,
    ) -> list[Face]:
        # One conversion per array (tolist gives the floats float() would), not one per value.
        names = self.card.attributes
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

    __call__ = predict

    def _batch_buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n×H×W×3 uint8 crops and n×3×H×W float32 model input: views of buffers kept across frames
        (per thread), doubled when a frame has more faces, so a frame allocates nothing for its faces."""
        h, w = self.card.preprocessing.input_size
        bufs = getattr(self._buffers, "batch", None)
        if bufs is None or len(bufs[0]) < n:
            cap = max(n, 2 * len(bufs[0]) if bufs is not None else 4)
            bufs = (np.empty((cap, h, w, 3), np.uint8), np.empty((cap, 3, h, w), np.float32))
            self._buffers.batch = bufs
        return bufs[0][:n], bufs[1][:n]

    def stream(self, source: Any, **source_options: Any) -> Iterator[FrameResult]:
        """Results for every frame of ``source`` (a URI, path, camera index, open Source or iterator of
        frames; see :func:`lsa_edge.sources.open_source`). A frame that cannot be processed is skipped with a
        warning; a lost live source reconnects (the source logs it). Timings gain ``read``: the wait for
        the source. Several threads may each stream their own source through one Pipeline (each frame
        as :meth:`predict`); with tracking, their frames interleave into one track history."""
        for result, _ in self.stream_frames(source, **source_options):
            yield result

    def stream_frames(self, source: Any, **source_options: Any) -> Iterator[tuple[FrameResult, Any]]:
        """As :meth:`stream`, with each source :class:`~lsa_edge.sources.Frame` (to draw on or save)."""
        from .sources import open_source

        with open_source(source, **source_options) as src:
            frames = iter(src)
            while True:
                t = time.perf_counter()
                frame = next(frames, None)
                read_ms = (time.perf_counter() - t) * 1000  # waiting for the source (decode, camera)
                if frame is None:
                    return
                try:
                    res = self.predict(frame.image, "BGR", frame.index, frame.timestamp)
                except DataError as err:
                    log.warning("frame %d of %s skipped: %s", frame.index, frame.source, err)
                    continue
                timings = {"read": read_ms, **res.timings_ms}
                yield FrameResult(res.index, res.timestamp, res.size, res.faces, timings, frame.source), frame

    def reset(self) -> None:
        """Forget all tracks (e.g. when the camera moves to another scene); waits for a frame in the tracker."""
        if self.tracker is not None:
            with self._lock:
                self.tracker.reset()

    @staticmethod
    def _frame(frame: Any) -> np.ndarray:
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
                raise DataError(
                    f"the frame is {w}×{h} pixels; resize frames above 8192×8192 before the pipeline"
                )
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

    # ------------------------------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Release the models, after the :meth:`predict` calls already under way in other threads have
        finished (tracked or not); later calls raise ConfigError. Not from inside ``predict``."""
        cond = getattr(self, "_cond", None)
        if cond is None:  # __init__ failed before the lifetime state existed
            self._close_parts()
            return
        with cond:
            self._closed = True
            cond.wait_for(lambda: self._inflight == 0)
            self._close_parts()

    def _close_parts(self) -> None:
        for part in (
            getattr(self, "backend", None),
            getattr(self, "_det_engine", None),
            getattr(self, "detector", None),
        ):
            close = getattr(part, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """What runs: the model file and backend (with ONNX Runtime's providers), and the detector."""
        b = self.backend
        what = getattr(b, "path", None) or getattr(self.package, "checkpoint", None) or self.package.source
        providers = getattr(getattr(b, "session", None), "get_providers", lambda: [])()
        how = f"{b.name}" + (
            f" [{', '.join(p.replace('ExecutionProvider', '') for p in providers)}]" if providers else ""
        )
        det = getattr(self.detector, "model_path", None) or "TensorRT engine"
        return f"{self.card.name}: {Path(str(what)).name} on {how}; detector {Path(str(det)).name}"
