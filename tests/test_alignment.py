"""The alignment template measured with the shipped face detector, and detect + align against the
training crop on real aligned CelebA faces."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from lsa_edge.alignment import alignment_error, estimate_for_dataset, estimate_template, is_estimated
from lsa_edge.card import celeba_preprocessing
from lsa_edge.data import load_dataset, read_image
from lsa_edge.detector import FaceDetector
from lsa_edge.errors import DataError
from lsa_edge.preprocess import align_keypoints, crop_aligned

PRE = celeba_preprocessing((128, 112))


@pytest.fixture(scope="module")
def detector():
    with FaceDetector() as det:
        yield det


@pytest.fixture(scope="module")
def estimate(celeba_dir, detector):
    return estimate_for_dataset(load_dataset(celeba_dir).split("train"), PRE, count=200, detector=detector)


def test_template_from_the_detector(estimate):
    t = estimate.template
    assert estimate.detected >= 0.97 * estimate.images >= 190
    assert is_estimated(t) and not is_estimated(PRE.template)
    pts = np.asarray(t.points)
    mean = np.asarray(PRE.template.points)
    assert np.abs(pts[:2] - mean[:2]).max() < 0.02  # the eyes sit where CelebA's alignment put them
    assert pts[0, 0] < pts[2, 0] < pts[1, 0] and pts[0, 1] < pts[2, 1] < pts[3, 1]  # eyes, nose, mouth
    w = dict(zip(t.keypoints, t.weights))
    assert min(w["right_eye"], w["left_eye"]) > 0.5 and max(w["right_ear"], w["left_ear"]) < 0.2


def test_detect_and_align_lands_on_the_training_crop(celeba_dir, detector, estimate):
    """Stated tolerance at 128×112: median ≤ 4 px, 90th percentile ≤ 8 px RMS displacement over the input."""
    val = load_dataset(celeba_dir).split("val")
    pre = replace(PRE, template=estimate.template)
    errs, errs_mean, crops_mae = [], [], []
    for i in range(0, len(val), 10):
        img = read_image(val.path(i))
        faces = detector.detect(img, "RGB")
        assert faces, val.image_ids[i]
        kps = max(faces, key=lambda f: f.score).keypoints_array()
        errs.append(alignment_error(img, kps, pre))
        errs_mean.append(alignment_error(img, kps, PRE))
        a, b = align_keypoints(img, kps, pre), crop_aligned(img, pre)
        crops_mae.append(np.abs(a.astype(float) - b).mean())
    errs = np.asarray(errs)
    assert np.median(errs) <= 4.0 and np.percentile(errs, 90) <= 8.0, (
        np.median(errs),
        np.percentile(errs, 90),
    )
    assert np.median(errs) < np.median(errs_mean)  # measuring beats CelebA's mean landmarks
    assert np.median(crops_mae) < 25  # same face, same framing (grey levels of 255)


def test_no_faces_no_template(detector):
    grey = (np.full((109, 89, 3), 128, np.uint8) for _ in range(20))
    with pytest.raises(DataError, match="found faces in only 0 of 20"):
        estimate_template(grey, PRE, detector)
