"""The runtime end to end on CPU through ONNX Runtime: real LFWA faces and synthetic scenes, batching,
tracking, bad frames, sources, backend choice, and the run / bench / eval --pipeline commands.

Runs without torch and onnx too (the Python 3.8 stage of CI, as on JetPack 5): then on the shipped default
model instead of a tiny model built here."""

from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from _helpers import make_lfwa_csv_copy

from lsa_edge import Pipeline, TrackerConfig
from lsa_edge.cli import main
from lsa_edge.demo import frames, scene
from lsa_edge.errors import ConfigError, DataError
from lsa_edge.package import DEFAULT_MODEL_DIR, ModelPackage, select_backend

# What building the tiny model's folder here takes (the train and build extras).
CAN_BUILD = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "onnx", "onnxsim"))


@pytest.fixture(scope="module")
def bundle(request, tmp_path_factory):
    """A build folder: the tiny model's (FP32, alignment template measured, detector beside it), built here
    where the train and build extras are installed; else the shipped default model (a build folder too)."""
    if not CAN_BUILD:
        return DEFAULT_MODEL_DIR
    from lsa_edge.engines.build import Build, BuildConfig
    from lsa_edge.training.checkpoint import save_checkpoint

    model, card = request.getfixturevalue("tiny_model")
    celeba_dir = request.getfixturevalue("celeba_dir")
    root = tmp_path_factory.mktemp("runtime")
    save_checkpoint(root / "best.pt", model, card, meta={})
    out = root / "fp32"
    Build(
        root / "best.pt",
        BuildConfig(precision="fp32", out=out, calib_data=str(celeba_dir), val_count=40, progress=False),
    ).run()
    return out


@pytest.fixture(scope="module")
def lfwa_image(lfwa_dir):
    path = sorted((lfwa_dir / "images").rglob("*.jpg"))[0]
    return cv2.imread(str(path))


def test_predict_on_a_real_unaligned_face(bundle, lfwa_image):
    with Pipeline(bundle, tracking=False) as pipe:
        res = pipe.predict(lfwa_image)
        (face,) = res.faces
        x0, y0, x1, y1 = face.box
        assert 60 < (x0 + x1) / 2 < 190 and 60 < (y0 + y1) / 2 < 190  # LFW centres its subject
        assert face.score > 0.5 and face.track_id == -1 and face.fresh
        assert len(face.attributes) == 40 and all(0.0 <= p <= 1.0 for p in face.attributes.values())
        thr = dict(zip(pipe.card.attributes, pipe.card.thresholds))
        assert set(face.labels) == {a for a, p in face.attributes.items() if p >= thr[a]}
        assert set(res.timings_ms) == {"detect", "align", "infer", "total"}
        assert res.timings_ms["total"] >= res.timings_ms["detect"] + res.timings_ms["infer"]
        rgb = pipe.predict(np.ascontiguousarray(lfwa_image[..., ::-1]), "RGB")
        np.testing.assert_allclose(
            list(rgb.faces[0].attributes.values()), list(face.attributes.values()), atol=1e-5
        )


def test_all_faces_of_a_frame_go_in_one_batched_call(bundle):
    with Pipeline(bundle, tracking=False) as pipe:
        calls = []
        real = pipe.backend.predict
        pipe.backend.predict = lambda x, *a: (calls.append(len(x)), real(x, *a))[1]
        res = pipe.predict(scene(4, 0))
        assert len(res.faces) == 4 and calls == [4]
        pipe.max_batch = 3  # above the backend's maximum the batch is split, never dropped
        calls.clear()
        assert len(pipe.predict(scene(4, 0)).faces) == 4 and sum(calls) == 4


def test_tracking_keeps_ids_and_reinfers_by_policy(bundle):
    cfg = TrackerConfig(min_hits=1, reinfer_every=3, reinfer_growth=float("inf"))
    with Pipeline(bundle, tracking=cfg) as pipe:
        results = [pipe.predict(f) for f in frames(9, faces=4)]
    ids = [sorted(f.track_id for f in r.faces) for r in results]
    assert ids[0] == [1, 2, 3, 4] and all(i == ids[0] for i in ids)
    fresh = [[f.fresh for f in r.faces] for r in results]
    assert all(all(x) for x in fresh[0::3]) and not any(any(x) for x in fresh[1::3])
    assert all(len(f.attributes) == 40 for r in results for f in r.faces)  # carried over when not fresh
    assert "track" in results[0].timings_ms


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (None, "None"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((8, 8, 3), np.uint8), "at least 16×16"),
        (np.zeros((480, 640, 5), np.uint8), "shape"),
        (np.zeros((480, 640, 3), np.int32), "dtype"),
        ("frame.jpg", "numpy array"),
    ],
)
def test_bad_frames_are_clear_errors(bundle, frame, message):
    with Pipeline(bundle, tracking=False) as pipe, pytest.raises(DataError, match=message):
        pipe.predict(frame)


def test_unusual_but_valid_frames(bundle, lfwa_image):
    with Pipeline(bundle, tracking=False) as pipe:
        gray = cv2.cvtColor(lfwa_image, cv2.COLOR_BGR2GRAY)
        assert len(pipe.predict(gray).faces) == 1
        assert len(pipe.predict(lfwa_image.astype(np.uint16) * 257).faces) == 1
        assert len(pipe.predict(lfwa_image.astype(np.float32) / 255).faces) == 1
        assert pipe.predict(np.full((300, 400, 3), 90, np.uint8)).faces == ()  # no face: an empty result
        huge = np.zeros((9000, 9000, 3), np.uint8)
        with pytest.raises(DataError, match="8192"):
            pipe.predict(huge)


def test_stream_a_synthetic_video_file(bundle, tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    for f in frames(12, faces=2):
        writer.write(f)
    writer.release()
    with Pipeline(bundle) as pipe:
        results = list(pipe.stream(str(path)))
    assert [r.index for r in results] == list(range(12))
    assert all(len(r.faces) == 2 and "read" in r.timings_ms for r in results)
    assert len({f.track_id for r in results for f in r.faces}) == 2


def test_backend_choice_is_explicit(bundle, caplog):
    pkg = ModelPackage.open(bundle)
    with pytest.raises(ConfigError, match="no TensorRT engine"):
        select_backend(pkg, "tensorrt")
    with pytest.raises(ConfigError, match="needs a checkpoint"):
        select_backend(pkg, "torch")
    import logging

    with caplog.at_level(logging.INFO):
        b = select_backend(pkg, "auto")
    assert (
        b.name == "onnxruntime" and "not better options because" in caplog.text and "TensorRT" in caplog.text
    )
    with pytest.raises(ConfigError, match=r"unknown backend 'tensorrtt'.*Did you mean 'tensorrt'"):
        select_backend(pkg, "tensorrtt")


def test_torch_backend_matches_onnxruntime(bundle, lfwa_image):
    if not CAN_BUILD:
        pytest.skip("needs the tiny model's checkpoint: torch, transformers, onnx and onnxsim")
    from dataclasses import replace

    # The checkpoint's card has CelebA's mean template, the bundle's the measured one: align alike.
    ckpt = replace(ModelPackage.open(bundle.parent / "best.pt"), card=ModelPackage.open(bundle).card)
    with Pipeline(ckpt, backend="torch", tracking=False) as a, Pipeline(bundle, tracking=False) as b:
        pa, pb = a.predict(lfwa_image).faces[0], b.predict(lfwa_image).faces[0]
    assert a.backend.name == "torch"
    assert max(abs(pa.attributes[k] - pb.attributes[k]) for k in pa.attributes) < 1e-4


def test_model_package_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ModelPackage.open(tmp_path / "nope.onnx")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="cannot tell what"):
        ModelPackage.open(tmp_path / "weights.bin")


def test_run_command_writes_json_lines_and_video(bundle, tmp_path, capsys):
    out, video = tmp_path / "faces.jsonl", tmp_path / "annotated.avi"
    argv = ["run", "--model", str(bundle), "--source", "demo:2", "--max-frames", "6"]
    assert main([*argv, "--json", str(out), "--save", str(video)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(6))
    face = lines[0]["faces"][0]
    assert {"box", "score", "track_id", "attributes", "labels"} <= set(face) and len(face["box"]) == 4
    assert {"detect", "align", "infer", "total", "read"} <= set(lines[0]["timings_ms"])
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert "p95 ms" in capsys.readouterr().out


def test_run_on_an_image_folder_tracks_nothing(bundle, lfwa_dir, tmp_path):
    import shutil

    imgs = tmp_path / "imgs"  # outputs inside the source folder are refused
    imgs.mkdir()
    for p in sorted((lfwa_dir / "images").rglob("*.jpg"))[:3]:
        shutil.copy(p, imgs / p.name)
    (imgs / "broken.jpg").write_bytes(b"nope")
    out = tmp_path / "r.jsonl"
    assert main(["run", "--model", str(bundle), "--source", str(imgs), "--json", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 3 and all(f["track_id"] == -1 for x in lines for f in x["faces"])


def test_run_with_a_missing_source_is_one_clear_line(bundle, tmp_path, capsys):
    assert main(["run", "--model", str(bundle), "--source", str(tmp_path / "missing.mp4")]) in (1, 2)
    err = capsys.readouterr().err
    assert "missing.mp4" in err and "Traceback" not in err


def test_bench_command(bundle, tmp_path):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--model",
                str(bundle),
                "--faces",
                "1,2",
                "--frames",
                "5",
                "--warmup",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())["results"]
    assert [r["faces_requested"] for r in res] == [1, 2] and all(r["fps"] > 0 for r in res)
    assert all(0 <= r["outside_models_share"] < 1 for r in res)
    assert res[1]["faces_found_mean"] == pytest.approx(2, abs=0.5)


def test_eval_pipeline_on_unaligned_images(bundle, lfwa_dir, tmp_path):
    data = make_lfwa_csv_copy(lfwa_dir, tmp_path / "lfwa-mini")
    out = tmp_path / "eval.json"
    argv = ["eval", str(bundle), "--data", str(data), "--split", "test", "--pipeline", "--json", str(out)]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    assert res["pipeline"] and res["n_images"] == 12  # the grey picture has no face
    assert res["images_without_face"] == 1 and res["detection_rate"] == pytest.approx(12 / 13)
    assert res["mean_accuracy_counting_misses"] == pytest.approx(res["mean_accuracy"] * 12 / 13)
    assert 0 < res["mean_accuracy"] <= 1


def test_camera_sample_without_a_display(bundle, tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "samples" / "camera.py"
    spec = importlib.util.spec_from_file_location("camera_sample", path)
    camera = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(camera)
    out = tmp_path / "cam.avi"
    assert camera.main(["demo:2", "--model", str(bundle), "--save", str(out), "--max-frames", "4"]) == 0
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 4


def test_colour_order_reaches_the_model_as_the_card_says(bundle):
    """A pure-red BGR frame: an RGB card's model sees red in channel 0, a BGR card's in channel 2."""
    from dataclasses import replace

    from lsa_edge.detector import FaceDetection

    red = np.zeros((240, 320, 3), np.uint8)
    red[..., 2] = 255  # BGR red
    kps = ((130.0, 100.0), (190.0, 100.0), (160.0, 130.0), (160.0, 160.0), (100.0, 110.0), (220.0, 110.0))
    fake = [FaceDetection(box=(90.0, 60.0, 230.0, 200.0), score=0.9, keypoints=kps)]
    for order, channel in (("RGB", 0), ("BGR", 2)):
        pkg = ModelPackage.open(bundle)
        card = pkg.card.with_updates(preprocessing=replace(pkg.card.preprocessing, color_order=order))
        with Pipeline(replace(pkg, card=card), tracking=False) as pipe:
            seen = []
            pipe.detector.detect = lambda frame, color_order="BGR": fake
            real = pipe.backend.predict
            pipe.backend.predict = lambda x, *a, seen=seen, real=real: (seen.append(x), real(x, *a))[1]
            pipe.predict(red, "BGR")
            pipe.predict(np.ascontiguousarray(red[..., ::-1]), "RGB")  # the same picture handed over as RGB
        for x in seen:
            means = x[0].reshape(3, -1).mean(axis=1)
            assert int(np.argmax(means)) == channel, (order, means)


def test_float_frames_must_be_in_unit_range(bundle, lfwa_image):
    with Pipeline(bundle, tracking=False) as pipe:
        with pytest.raises(DataError, match="divide by 255"):
            pipe.predict(lfwa_image.astype(np.float32))
        with pytest.raises(DataError, match="NaN"):
            pipe.predict(np.full((64, 64, 3), np.nan, np.float32))


def test_new_tracks_are_unconfirmed_until_min_hits(bundle):
    with Pipeline(bundle, tracking=TrackerConfig(min_hits=3)) as pipe:
        flags = [[f.confirmed for f in pipe.predict(img).faces] for img in frames(4, faces=1)]
    assert flags == [[False], [False], [True], [True]]


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("model", ["bundle", "default"])
def test_predict_equals_the_reference_path(request, model, cpus, lfwa_dir, celeba_dir, monkeypatch):
    """Pipeline.predict (fused letterbox, faces warped into a reused batch buffer, table normalisation,
    vectorised result assembly) against the straightforward per-face path of tests/_reference.py with the
    same models: the same faces; boxes and keypoints within 1e-4 px, scores within 1e-9, probabilities
    within 1e-5 (in fact identical here: the same floats reach the same model). Demo scenes with 1/4/16
    faces as ``lsa-edge bench`` renders them, real LFWA and CelebA images, both colour orders, and frame
    sizes that change between calls (buffers re-made). With 2 CPUs the letterbox shrink runs as two bands
    and every other face is warped on the worker thread; with 1 everything runs on the caller's thread."""
    import _reference as ref

    import lsa_edge._pipeline
    import lsa_edge.detector

    for module in (lsa_edge.detector, lsa_edge._pipeline):  # the letterbox bands; the faces' warps
        monkeypatch.setattr(module, "usable_cpus", lambda: cpus)

    pkg = request.getfixturevalue("bundle") if model == "bundle" else None
    frames = [scene(n, i) for n in (1, 4, 16) for i in (0, 7)]
    frames += [cv2.imread(str(p)) for p in sorted((lfwa_dir / "images").rglob("*.jpg"))[:800:100]]
    frames += [cv2.imread(str(p)) for p in sorted((celeba_dir / "img_align_celeba").glob("*.jpg"))[:3]]
    frames.append(scene(16, 3))  # back to a size seen before
    with Pipeline(pkg, tracking=False, min_face_size=0.0) as pipe:
        found = 0
        for frame in frames:
            for order in ("BGR", "RGB"):
                img = frame if order == "BGR" else np.ascontiguousarray(frame[..., ::-1])
                res = pipe.predict(img, order)
                dets, probs = ref.predict(pipe, img, order)
                assert len(res.faces) == len(dets)
                found += len(dets)
                for face, d, p in zip(res.faces, dets, probs):
                    np.testing.assert_allclose(face.box, d.box, rtol=0, atol=1e-4)
                    np.testing.assert_allclose(face.keypoints, d.keypoints, rtol=0, atol=1e-4)
                    assert face.score == pytest.approx(d.score, abs=1e-9)
                    got = [face.attributes[a] for a in pipe.card.attributes]
                    np.testing.assert_allclose(got, p, rtol=0, atol=1e-5)
                    thr = np.asarray(pipe.card.thresholds, np.float32)
                    assert face.labels == tuple(a for a, on in zip(pipe.card.attributes, p >= thr) if on)
        assert found > 2 * (1 + 4 + 15)  # the scenes' faces were all there to compare


def test_faces_below_min_face_size_are_counted_not_predicted():
    """Issue 13's bad input: a face too small for the attributes is skipped and counted in the frame's
    small_faces (and its JSON), never given attributes guessed from a few pixels."""
    from lsa_edge.demo import scene

    frame = scene(4, 0)
    with Pipeline(tracking=False, min_face_size=0.0) as pipe:
        sizes = sorted(max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in pipe.predict(frame).faces)
    assert len(sizes) >= 2
    cut = (sizes[0] + sizes[-1]) / 2  # between the smallest and the largest face
    with Pipeline(tracking=False, min_face_size=cut) as pipe:
        res = pipe.predict(frame)
    kept = [max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in res.faces]
    assert all(s >= cut for s in kept) and res.small_faces == sum(s < cut for s in sizes) >= 1
    assert res.to_dict()["small_faces"] == res.small_faces
    with Pipeline(tracking=True, min_face_size=cut) as pipe:  # the count survives the tracker's path
        assert pipe.predict(frame).small_faces == res.small_faces
