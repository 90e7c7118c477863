"""The alignment template, estimated with the runtime's own face detector on the aligned training images.

No landmark file exists for our data, and the detector's keypoints are not CelebA's landmarks (BlazeFace's
"mouth centre" sits lower than the mouth corners' midpoint, its ears are tragions). So the template is
measured where it is used: run the detector on aligned training faces, map its keypoints into the model
input through the same crop training used (:func:`lsa_edge.preprocess.crop_aligned`), and take the
per-keypoint median. Keypoints that move more across aligned faces (the nose tip with head yaw, the ears)
get less weight in the similarity fit: inverse variance, normalised to 1 for the steadiest.

numpy only; the detector is passed in (anything with ``detect(image, color_order) -> [FaceDetection]``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .card import KEYPOINTS, AlignmentTemplate, Preprocessing
from .errors import DataError
from .preprocess import crop_transform, similarity_transform

log = logging.getLogger(__name__)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def is_estimated(template: AlignmentTemplate | None) -> bool:
    """True for a template measured with the detector (not CelebA's mean landmarks)."""
    return template is not None and template.source.startswith("median BlazeFace")


def estimate_for_dataset(ds, pre: Preprocessing, count: int = 500, detector=None) -> TemplateEstimate:
    """:func:`estimate_template` on up to ``count`` evenly spaced images of ``ds`` (a FaceDataset)."""
    from .data import read_image
    from .detector import FaceDetector

    step = max(1, len(ds) // count)
    images = (img for i in range(0, len(ds), step) if (img := read_image(ds.path(i))) is not None)
    if detector is not None:  # the caller's: leave it open
        return estimate_template(images, pre, detector, ds.frame)
    with FaceDetector() as det:
        return estimate_template(images, pre, det, ds.frame)


@dataclass(frozen=True)
class TemplateEstimate:
    template: AlignmentTemplate
    images: int  # aligned images the detector was run on
    detected: int  # images with a face (the most confident one is used)
    spread: tuple[float, ...]  # per keypoint: RMS distance from the median, fraction of the input width


def estimate_template(
    images: Iterable[np.ndarray],
    pre: Preprocessing,
    detector,
    frame: tuple[float, float, float, float] | None = None,
    name: str = "blazeface-on-training-faces",
) -> TemplateEstimate:
    """Median detector keypoints of the training ``images`` (H×W×3 uint8 RGB) in model-input fractions.

    frame: as in :func:`~lsa_edge.preprocess.crop_aligned` (None for aligned images).
    """
    points, seen = [], 0
    out_h, out_w = pre.input_size
    for img in images:
        seen += 1
        faces = detector.detect(img, "RGB")
        if not faces:
            continue
        best = max(faces, key=lambda f: f.score)
        m = crop_transform(img.shape[:2], pre, frame)
        points.append(_apply(m, best.keypoints_array()) / [out_w, out_h])
    if len(points) < 10:
        raise DataError(
            f"the face detector found faces in only {len(points)} of {seen} aligned images; "
            "a template needs at least 10 (are these aligned face images in the card's frame?)"
        )
    pts = np.stack(points)  # N×K×2 fractions
    median = np.median(pts, axis=0)
    aspect = np.array([1.0, out_h / out_w])  # distances in units of the input width
    var = (((pts - median) * aspect) ** 2).sum(axis=2).mean(axis=0)
    weights = var.min() / np.maximum(var, 1e-12)
    template = AlignmentTemplate(
        name=name,
        points=tuple((round(float(x), 5), round(float(y), 5)) for x, y in median),
        weights=tuple(round(float(w), 4) for w in weights),
        source=(
            f"median BlazeFace keypoints on {len(points)} aligned training faces; weights = inverse variance"
        ),
        keypoints=KEYPOINTS,
    )
    spread = tuple(float(v) for v in np.sqrt(var))
    log.info(
        "alignment template from %d of %d faces; spread (× input width): %s",
        len(points),
        seen,
        ", ".join(f"{k} {s:.3f}" for k, s in zip(KEYPOINTS, spread)),
    )
    return TemplateEstimate(template, seen, len(points), spread)


def alignment_error(image: np.ndarray, keypoints: np.ndarray, pre: Preprocessing, frame=None) -> float:
    """How far detect + align puts an aligned image from its training crop, in model-input pixels.

    The RMS displacement, over the input's pixel grid, between the similarity transform fitted to the
    detected ``keypoints`` (frame pixels) and the crop training applies to the same ``image``.
    """
    if pre.template is None:
        raise DataError("the card has no alignment template")
    out_h, out_w = pre.input_size
    dst = np.asarray(pre.template.points) * [out_w, out_h]
    m_align = similarity_transform(keypoints, dst, pre.template.weights)
    m_crop = crop_transform(image.shape[:2], pre, frame)
    ys, xs = np.mgrid[0:out_h:8, 0:out_w:8]
    grid = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1).astype(np.float64)
    # Input pixel → image (inverse of the crop) → input again through the alignment.
    a, t = m_crop[:, :2], m_crop[:, 2]
    img_pts = (grid - t) @ np.linalg.inv(a).T
    moved = _apply(m_align, img_pts)
    return float(np.sqrt(((moved - grid) ** 2).sum(axis=1).mean()))
