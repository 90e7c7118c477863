"""Unaligned photos to aligned face crops, the way the runtime sees a frame: decode, detect, choose the face
the photo is about, align it to the model's template. One loop for everything that does this offline —
evaluation through the pipeline (:func:`lsa_edge.evaluation.predict_pipeline`), the unlabelled faces of a
folder in training, calibration faces from a folder — so they cannot drift apart.

numpy and OpenCV; the detector is passed in (anything with ``detect(image, color_order) -> [FaceDetection]``).

    with FaceDetector(None, min_face_size=24.0) as det:
        for chunk in detect_and_align(lambda i: read_image(paths[i]), len(paths), det, card.preprocessing):
            chunk.crops  # K×H×W×3 uint8 RGB, chunk.kept: their positions; chunk.unreadable, chunk.faceless
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Literal, get_args

import numpy as np

from .card import Preprocessing
from .errors import ConfigError
from .preprocess import align_keypoints

__all__ = ["AlignedChunk", "FaceChoice", "choose_face", "detect_and_align"]

FaceChoice = Literal["central", "largest", "score"]
FACE_CHOICES = get_args(FaceChoice)


def choose_face(faces: list, image_shape: tuple[int, int], how: FaceChoice = "central"):
    """The face an image's labels describe: the one nearest the image centre (LFW and most attribute data
    sets centre their subject), the largest, or the most confident."""
    if how == "score":
        return max(faces, key=lambda f: f.score)
    if how == "largest":
        return max(faces, key=lambda f: f.width * f.height)
    h, w = image_shape
    return min(
        faces,
        key=lambda f: ((f.box[0] + f.box[2]) / 2 - w / 2) ** 2 + ((f.box[1] + f.box[3]) / 2 - h / 2) ** 2,
    )


@dataclass(frozen=True)
class AlignedChunk:
    """Consecutive images through detect + align; every position of the chunk is in exactly one list."""

    crops: np.ndarray  # K×H×W×3 uint8 RGB (like stored crops), K = len(kept); K may be 0
    kept: list[int]  # the positions of the images that gave these crops
    unreadable: list[int]  # positions of images that could not be decoded
    faceless: list[int]  # positions of decoded images where the detector found no face


def detect_and_align(
    read: Callable[[int], np.ndarray | None],
    count: int,
    detector: Any,
    pre: Preprocessing,
    face: FaceChoice = "central",
    workers: int = 4,
    transform: Callable[[np.ndarray, int], np.ndarray] | None = None,
    on_image: Callable[[], object] | None = None,
    chunk: int = 256,
) -> Iterator[AlignedChunk]:
    """Images 0 … ``count`` − 1 through ``detector`` and, where it finds a face, the chosen one aligned to
    ``pre``'s template; yielded ``chunk`` images at a time. Decoding runs on ``workers`` threads at most
    2 × ``workers`` images ahead of detection, so memory stays flat however many images there are and
    however large each is.

    read: ``read(i)`` decodes image ``i`` to H×W×3 uint8 RGB, or returns None when it cannot (it warns).
    transform: ``transform(image, i)`` changes each decoded image before detection (e.g. the controlled
    degradations of ``benchmarks/robustness.py``).
    on_image: called once per image handled (a progress bar's ``update``).
    The arguments are checked when this is called, before any image is read.
    """
    if face not in FACE_CHOICES:
        raise ConfigError(f"face (--face) must be central, largest or score, got {face!r}")
    if pre.template is None:
        raise ConfigError("the model card has no alignment template, so unaligned photos cannot be aligned")
    if count < 0 or chunk < 1 or workers < 1:
        raise ConfigError(
            f"detect_and_align needs count ≥ 0, chunk ≥ 1, workers ≥ 1; got {count}, {chunk}, {workers}"
        )

    # a nested generator, so that the checks above run at the call, not at the first next()
    def chunks() -> Iterator[AlignedChunk]:
        ahead = 2 * workers
        crops: list[np.ndarray] = []
        kept: list[int] = []
        unreadable: list[int] = []
        faceless: list[int] = []
        with ThreadPoolExecutor(max_workers=workers) as pool:  # decoding overlaps detection
            pending: deque[Future] = deque()
            for i in range(count):
                while len(pending) < ahead and i + len(pending) < count:
                    pending.append(pool.submit(read, i + len(pending)))
                img = pending.popleft().result()
                if on_image is not None:
                    on_image()
                if img is None:
                    unreadable.append(i)
                else:
                    if transform is not None:
                        img = np.ascontiguousarray(transform(img, i))
                    faces = detector.detect(img, "RGB")
                    if faces:
                        f = choose_face(faces, img.shape[:2], face)
                        crops.append(align_keypoints(img, f.keypoints_array(), pre))
                        kept.append(i)
                    else:
                        faceless.append(i)
                if (i + 1) % chunk == 0 or i + 1 == count:
                    stacked = np.stack(crops) if crops else np.zeros((0, *pre.input_size, 3), np.uint8)
                    yield AlignedChunk(stacked, kept, unreadable, faceless)
                    crops, kept, unreadable, faceless = [], [], [], []

    return chunks()
