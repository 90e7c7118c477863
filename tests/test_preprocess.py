"""Alignment and normalisation: the one preprocessing implementation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lsa_edge import ConfigError, ModelCard
from lsa_edge.card import KEYPOINTS, Preprocessing, celeba_preprocessing
from lsa_edge.data import read_image
from lsa_edge.preprocess import align_keypoints, crop_aligned, normalize, similarity_transform


def test_celeba_preprocessing_keeps_the_input_aspect():
    pre = celeba_preprocessing((128, 112))
    x0, y0, x1, y1 = pre.aligned_crop
    assert (x0, x1) == (0.0, 1.0)
    # crop aspect (in CelebA's 178×218 frame) equals the input's 112/128
    assert (x1 - x0) * 178 / ((y1 - y0) * 218) == pytest.approx(112 / 128, rel=1e-3)
    eyes = np.array(pre.template.points[:2])
    assert eyes[0, 0] < 0.5 < eyes[1, 0] and eyes[0, 1] == eyes[1, 1]  # image-left is the subject's right eye
    assert pre.template.points[3][1] > pre.template.points[2][1] > eyes[0, 1]  # mouth below nose below eyes


def test_crop_aligned_same_result_at_any_source_resolution(celeba_dir):
    pre = celeba_preprocessing((128, 112))
    half = read_image(celeba_dir / "img_align_celeba" / "000002.jpg")
    full = cv2.resize(half, (178, 218), interpolation=cv2.INTER_CUBIC)
    a, b = crop_aligned(half, pre), crop_aligned(full, pre)
    assert a.shape == b.shape == (128, 112, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 6  # same geometry, different blur


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (6, 2))
    ang, s, t = np.deg2rad(17), 1.8, np.array([12.0, -7.0])
    r = s * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ r.T + t
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], r, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)
    # zero weights ignore outliers
    dst_bad = dst.copy()
    dst_bad[5] += 50
    m2 = similarity_transform(src, dst_bad, [1, 1, 1, 1, 1, 0])
    assert np.allclose(m2[:, :2], r, atol=1e-9)
    with pytest.raises(ConfigError):
        similarity_transform(src, dst, [1, 0, 0, 0, 0, 0])
    with pytest.raises(ConfigError, match="K×2"):
        similarity_transform(src, dst[:5])
    with pytest.raises(ConfigError, match="K weights"):
        similarity_transform(src, dst, [1, 1, 1])


def test_align_keypoints_undoes_a_rotation_and_zoom(celeba_dir):
    pre = celeba_preprocessing((128, 112))
    face = crop_aligned(read_image(celeba_dir / "img_align_celeba" / "000003.jpg"), pre)
    h, w = pre.input_size
    pts = np.array(pre.template.points) * [w, h]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.6)
    m[:, 2] += [120, 90]
    scene = cv2.warpAffine(face, m, (400, 360))
    kps = pts @ m[:, :2].T + m[:, 2]
    back = align_keypoints(scene, kps, pre)
    err = np.abs(back.astype(int) - face.astype(int))[4:-4, 4:-4].mean()
    assert err < 4.0, f"mean abs pixel error {err:.2f} after align"


def test_normalize_layout_and_colour_order():
    pre = Preprocessing(input_size=(16, 16), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    img = np.zeros((16, 16, 3), np.uint8)
    img[..., 0] = 255
    x = normalize(img, pre)
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32
    assert x[0, 0].min() == 1.0 and x[0, 1].max() == -1.0
    bgr = normalize(
        img, Preprocessing(input_size=(16, 16), color_order="BGR", mean=(0.5,) * 3, std=(0.5,) * 3)
    )
    assert bgr[0, 2].min() == 1.0


def test_card_round_trip_and_validation():
    card = ModelCard(
        name="x",
        preprocessing=celeba_preprocessing((128, 112)),
        regions=("eyes",),
        model={"backbone": "resnet18"},
    )
    again = ModelCard.from_json(card.to_json())
    assert again == card and again.preprocessing.template.keypoints == KEYPOINTS
    d = card.to_dict()
    d["format_version"] = 99
    with pytest.raises(ConfigError, match="newer"):
        ModelCard.from_dict(d)
    with pytest.raises(ConfigError):
        Preprocessing(input_size=(8, 8))
    with pytest.raises(ConfigError):
        ModelCard(name="x", preprocessing=celeba_preprocessing(), thresholds=(0.5,))


def test_shrinking_warp_averages_instead_of_aliasing():
    from lsa_edge.preprocess import warp

    stripes = np.zeros((400, 400, 3), np.uint8)
    stripes[:, ::2] = 255  # 1-pixel stripes: sampling picks black or white, averaging gives grey
    m = np.array([[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]])
    out = warp(stripes, m, (100, 100))
    assert abs(float(out[10:-10, 10:-10].mean()) - 127.5) < 3 and out[10:-10, 10:-10].std() < 3
    # the pre-shrink keeps geometry: a bright square lands where the map sends it
    img = np.zeros((400, 400, 3), np.uint8)
    img[200:240, 120:160] = 255
    out = warp(img, m, (100, 100))
    ys, xs = np.nonzero(out[..., 0] > 128)
    assert abs(ys.mean() - 54.9) < 0.6 and abs(xs.mean() - 34.9) < 0.6


def test_lfw_frame_crop_matches_celeba_geometry(lfwa_dir):
    from lsa_edge.data import LFW_FRAME

    pre = celeba_preprocessing((128, 112))
    img = read_image(lfwa_dir / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg")
    crop = crop_aligned(img, pre, LFW_FRAME)
    assert crop.shape == (128, 112, 3)
    full = crop_aligned(img, pre)
    assert np.abs(crop.astype(int) - full.astype(int)).mean() > 10  # the frame really selects a sub-box


def _whole_frame_warp(image, m, out_size):
    """The former implementation: shrink the whole frame with INTER_AREA, then warpAffine."""
    import cv2

    out_h, out_w = out_size
    scale = float(np.linalg.svd(m[:, :2], compute_uv=False).max())
    if scale < 0.8:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        m = np.concatenate([m[:, :2] @ np.diag([w / nw, h / nh]), m[:, 2:]], axis=1)
    m_idx = m.copy()
    m_idx[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(
        image, m_idx, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def test_warp_of_a_region_matches_the_whole_frame_warp():
    """Cutting the face's region out before warping (the runtime's speed-up) changes pixels only by the
    resampling grid: mean ≤ 2 and max ≤ 16 grey levels (measured 1.6 and 8) at a 5× shrink; within one grey level when enlarging."""
    import cv2

    from lsa_edge.preprocess import warp

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), (0, 0), 3)
    for scale in (1.2, 0.5, 0.2):
        m = np.array([[scale, 0.0, -700 * scale], [0.0, scale, -400 * scale]])
        diff = np.abs(warp(frame, m, (128, 112)).astype(int) - _whole_frame_warp(frame, m, (128, 112)))
        assert diff.mean() <= 2.0 and diff.max() <= 16, (scale, diff.mean(), diff.max())
        if scale > 1:  # no shrink: only warpAffine's fixed-point rounding differs
            assert diff.max() <= 1


# -------------------------------------------------------- the optimised paths against the reference code
# tests/_reference.py keeps the code these functions had before they were made faster. Normalisation and
# the warp are compared exactly (the lookup table is built with the same float32 operations); the
# closed-form similarity fit to 1e-12, and the crops it aligns pixel for pixel (see _same_pixels).


def _real_crops(celeba_dir, lfwa_dir, pre, n=6) -> np.ndarray:
    paths = sorted((celeba_dir / "img_align_celeba").glob("*.jpg"))[:n]
    paths += sorted((lfwa_dir / "images").rglob("*.jpg"))[:n]
    return np.stack([crop_aligned(read_image(p), pre) for p in paths])


@pytest.mark.parametrize(
    "pre",
    [
        celeba_preprocessing((160, 144)),
        Preprocessing(input_size=(64, 48), color_order="BGR", mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.25)),
    ],
)
def test_normalize_through_the_table_equals_the_arithmetic(celeba_dir, lfwa_dir, pre):
    import _reference as ref

    crops = _real_crops(celeba_dir, lfwa_dir, pre)
    crops[0, :4] = 0  # both ends of the range
    crops[0, 4:8] = 255
    for order in ("RGB", "BGR"):
        want = ref.normalize(crops, pre, order)
        assert np.array_equal(normalize(crops, pre, order), want)
        out = np.full(want.shape, np.nan, np.float32)  # a dirty reused buffer
        assert normalize(crops, pre, order, out=out) is out and np.array_equal(out, want)
        assert np.array_equal(normalize(crops[3], pre, order), want[3:4])  # one H×W×3 crop
        as_float = crops[:2].astype(np.float64)  # not uint8: the formula itself
        assert np.array_equal(normalize(as_float, pre, order), ref.normalize(as_float, pre, order))
    with pytest.raises(ConfigError, match="out must be"):
        normalize(crops, pre, out=np.empty((1, 3, *pre.input_size), np.float32))


def test_warp_equals_the_reference_bit_for_bit(lfwa_dir):
    """Cut-out without a copy, one SVD, output into a given slot: the same pixels as before, for rotations,
    enlargements and shrinks (INTER_AREA first), faces reaching out of the frame, both resize modes."""
    import _reference as ref

    from lsa_edge.demo import scene
    from lsa_edge.preprocess import warp

    rng = np.random.default_rng(5)
    images = [read_image(p) for p in sorted((lfwa_dir / "images").rglob("*.jpg"))[:3]] + [scene(4, 2)]
    for img in images:
        h, w = img.shape[:2]
        for _ in range(12):
            ang, s = rng.uniform(-0.6, 0.6), float(np.exp(rng.uniform(np.log(0.15), np.log(2.5))))
            m = s * np.array([[np.cos(ang), -np.sin(ang), 0.0], [np.sin(ang), np.cos(ang), 0.0]])
            m[:, 2] = rng.uniform(-1, 0.3, 2) * [w * s, h * s]
            m[0, 1] += rng.uniform(-0.05, 0.05)  # not quite a similarity
            for resize in ("area", "linear"):
                want = ref.warp(img, m, (80, 72), resize)
                assert np.array_equal(warp(img, m, (80, 72), resize), want)
                slot = np.zeros((3, 80, 72, 3), np.uint8)
                assert np.shares_memory(warp(img, m, (80, 72), resize, out=slot[1]), slot)
                assert np.array_equal(slot[1], want) and not slot[[0, 2]].any()
    img = images[-1]  # any memory layout: windows are read in place, other layouts copied as before
    m = np.array([[0.6, 0.1, -100.0], [-0.1, 0.6, -80.0]])
    for view in (img[..., ::-1], img[::-1], img[:, ::2], np.asfortranarray(img), img[50:400, 30:600]):
        assert np.array_equal(warp(view, m, (80, 72)), ref.warp(view, m, (80, 72)))
    with pytest.raises(ConfigError, match="out must be"):
        warp(images[0], np.eye(2, 3), (80, 72), out=np.zeros((72, 80, 3), np.uint8))
    with pytest.raises(ConfigError, match="invertible"):  # not LinAlgError from inside numpy
        warp(images[0], np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]]), (80, 72))
    with pytest.raises(ConfigError, match="2×3"):
        warp(images[0], np.eye(3), (80, 72))


def test_similarity_fit_and_alignment_equal_the_reference():
    import _reference as ref

    rng = np.random.default_rng(9)
    for _ in range(200):
        src = rng.uniform(0, 300, (6, 2))
        dst = rng.uniform(0, 150, (6, 2))
        if rng.random() < 0.3:
            dst[:, 0] = -dst[:, 0]  # a mirrored target: the fit must refuse the reflection
        weights = rng.uniform(0, 1, 6)
        weights[rng.random(6) < 0.2] = 0.0
        if (weights > 0).sum() < 2:
            continue
        for wt in (None, weights):
            np.testing.assert_allclose(
                similarity_transform(src, dst, wt),
                ref.similarity_transform(src, dst, wt),
                rtol=1e-12,
                atol=1e-9,
            )
    from dataclasses import replace

    from lsa_edge.card import AlignmentTemplate
    from lsa_edge.demo import scene

    celeba = celeba_preprocessing((160, 144))
    measured = AlignmentTemplate(  # all weights positive, as a measured template has them
        "test", celeba.template.points, (0.94, 1.0, 0.16, 0.37, 0.07, 0.08), "test"
    )
    img = scene(1, 0)
    kps = np.array([[285, 230], [345, 231], [316, 265], [315, 290], [255, 245], [375, 247]], float)
    for pre in (celeba, replace(celeba, template=measured)):
        for shift in rng.normal(0, 40, (10, 2)):
            k = kps + shift + rng.normal(0, 2, kps.shape)
            want = ref.align_keypoints(img, k, pre)
            _same_pixels(align_keypoints(img, k, pre), want)
            out = np.empty_like(want)
            assert align_keypoints(img, k, pre, out=out) is out
            _same_pixels(out, want)


def _same_pixels(got: np.ndarray, want: np.ndarray) -> None:
    """The closed-form fit differs from the SVD's by ~1e-14 relative: a warp coordinate could round the
    other way at a sub-pixel boundary (never seen in 69 M pixels), so allow 1e-4 of the values one grey
    level apart and nothing more."""
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-4


def test_the_worker_is_remade_in_a_forked_child(monkeypatch):
    """A child made by fork inherits the pool object but not its thread: it must get a pool of its own
    (otherwise a letterbox or alignment there would wait forever)."""
    import os

    from lsa_edge import preprocess

    pool = preprocess.worker()
    assert preprocess.worker() is pool and pool.submit(lambda: 7).result() == 7
    monkeypatch.setattr(os, "getpid", lambda: -1)
    child = preprocess.worker()
    assert child is not pool and child.submit(lambda: 8).result() == 8
