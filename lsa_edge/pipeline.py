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

from ._args import parse_device
from ._pipeline import (
    BatchBuffers,
    align_into,
    as_frame,
    assemble_faces,
    check_arguments,
    make_tracker,
    open_detector,
    warn_template,
)
from .backends.base import Backend
from .card import ModelCard
from .detector import Detections
from .errors import ConfigError, DataError
from .package import ModelPackage, select_backend
from .preprocess import normalize
from .results import FrameResult
from .track import Tracker, TrackerConfig

log = logging.getLogger(__name__)


def _small_faces(found: list, tracker: Tracker | None) -> int:
    """Faces the detector left out as too small: with tracking (the detector then reports down to the low
    score) only those scoring enough to start a track. A plain list (a custom detector) counts none."""
    scores = found.small_scores if isinstance(found, Detections) else []
    return len(scores) if tracker is None else sum(s >= tracker.config.high_score for s in scores)


class Pipeline:
    """Face attributes for whole frames.

    model: a build folder, an lsa-edge ``.onnx``, a TensorRT ``.engine`` or a checkpoint; None = the
    default model shipped with lsa-edge. backend: auto | tensorrt | onnxruntime | torch (auto logs what it
    picked and why); ``triton://HOST[:PORT]``, the attribute model on a Triton server (``lsa-edge serve``;
    detection, alignment and tracking stay here, see :mod:`lsa_edge.backends.triton`); or an open
    :class:`~lsa_edge.backends.base.Backend` for the package's model, shared (the Pipeline does not close it). detector: "full" (BlazeFace full range, faces up to ~5 m) or "short", or an ONNX path;
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
        backend: str | Backend = "auto",
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
        track_cfg = check_arguments(
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
        self._det_engine: Backend | None = None  # the TensorRT detector engine, when the detector runs one
        self.package = model if isinstance(model, ModelPackage) else ModelPackage.open(model)
        self.card: ModelCard = self.package.card
        if self.card.preprocessing.template is None:
            raise ConfigError(
                f"{self.package.source}'s card has no alignment template; it cannot align detected faces"
            )
        self.tracker = make_tracker(track_cfg, detector_threshold, self.card)
        self._owns_backend = not isinstance(backend, Backend)
        self.backend: Backend = (
            backend
            if isinstance(backend, Backend)
            else select_backend(self.package, backend, threads, device)
        )
        try:
            self.max_batch = min(max_batch, self.backend.max_batch or max_batch)
            self.detector, self._det_engine = open_detector(
                self.package,
                self.backend,
                self.tracker,
                detector,
                dev,
                detector_threshold,
                min_face_size,
                max_faces,
            )
        except BaseException:
            self.close()
            raise
        self._thr = np.asarray(self.card.thresholds, dtype=np.float32)
        self._buffers = BatchBuffers(self.card.preprocessing.input_size)  # per thread: the batch buffers
        self._count = itertools.count()  # frame numbers (next() on it is atomic under the GIL)
        warn_template(self.card)

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
        self,
        frame: Any,
        color_order: Literal["BGR", "RGB"],
        index: int | None,
        timestamp: float | None,
        t0: float,
    ) -> FrameResult:
        img = as_frame(frame)
        n = next(self._count)
        idx = n if index is None else index
        timings: dict[str, float] = {}

        t = time.perf_counter()
        found = self.detector.detect(img, color_order)  # per-thread buffers: runs concurrently
        dets: list = found
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
                dets, ids, need, confirmed = self._track(self.tracker, dets, timings)
                probs = self._infer(img, dets, need, color_order, timings)
                t = time.perf_counter()
                smoothed, labels = self.tracker.update(ids, probs, need)
                timings["track"] += (time.perf_counter() - t) * 1000

        faces = assemble_faces(self.card.attributes, dets, smoothed, labels, ids, need, confirmed)
        timings["total"] = (time.perf_counter() - t0) * 1000
        return FrameResult(
            index=idx,
            timestamp=time.monotonic() if timestamp is None else timestamp,
            size=(img.shape[0], img.shape[1]),
            faces=tuple(faces),
            timings_ms=timings,
            # with tracking the detector reports down to the low score: count the faces that would have
            # been reported (at least the score that starts a track), not every weak candidate
            small_faces=_small_faces(found, self.tracker),
        )

    def _infer(
        self, img: np.ndarray, dets: list, need: np.ndarray, color_order: str, timings: dict[str, float]
    ) -> np.ndarray:
        """M×C probabilities of the faces marked in ``need``: aligned into this thread's batch buffer,
        one batched call (split only above max_batch)."""
        t = time.perf_counter()
        pre = self.card.preprocessing
        todo = np.flatnonzero(need)
        crops, batch = self._buffers.get(len(todo))
        align_into(img, [dets[i].keypoints_array() for i in todo], pre, crops)
        timings["align"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        probs = (
            self.backend.predict(normalize(crops, pre, input_order=color_order, out=batch), self.max_batch)
            if len(todo)
            else np.zeros((0, len(self.card.attributes)), np.float32)
        )
        timings["infer"] = (time.perf_counter() - t) * 1000
        return probs

    def _track(
        self, tracker: Tracker, dets: list, timings: dict[str, float]
    ) -> tuple[list, np.ndarray, np.ndarray, list]:
        """(detections kept, track ids, which need inference, which tracks are confirmed). Under the lock."""
        t = time.perf_counter()
        boxes = np.asarray([d.box for d in dets], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray([d.score for d in dets], dtype=np.float64)
        ids = tracker.assign(boxes, scores)
        keep = ids >= 0  # a weak detection that matched no track is not a face we report
        dets, boxes, ids = [d for d, k in zip(dets, keep) if k], boxes[keep], ids[keep]
        need = tracker.needs_inference(ids, boxes)
        confirmed = tracker.confirmed(ids)
        timings["track"] = (time.perf_counter() - t) * 1000
        return dets, ids, need, confirmed

    __call__ = predict

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
                yield replace(res, timings_ms=timings, source=frame.source), frame

    def reset(self) -> None:
        """Forget all tracks (e.g. when the camera moves to another scene); waits for a frame in the tracker."""
        if self.tracker is not None:
            with self._lock:
                self.tracker.reset()

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
        # Each part exists once __init__ got that far: the backend, then the detector with its engine.
        owned = ("backend",) if self.__dict__.get("_owns_backend", True) else ()
        for name in (*owned, "_det_engine", "detector"):
            part = self.__dict__.get(name)
            if part is not None:
                part.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """What runs: the model file and backend (with ONNX Runtime's providers), and the detector."""
        det = self.detector.model_path or "TensorRT engine"
        return f"{self.card.name}: {self.backend.describe()}; detector {Path(str(det)).name}"
