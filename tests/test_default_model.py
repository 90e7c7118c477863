"""The default model shipped in lsa_edge/models/default: provenance in its card, size, accuracy on the
CelebA-10k test split as recorded, and the main command (the whole pipeline on the built-in scene)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from lsa_edge.cli import main
from lsa_edge.package import DEFAULT_MODEL_DIR, ModelPackage


@pytest.fixture(scope="module")
def package():
    return ModelPackage.open(None)


def test_the_default_package_is_small_and_self_describing(package):
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    # two 12.9 MB graphs: opset 17 and its opset-16 rewrite that TensorRT 8.5 (JetPack 5) can parse
    assert size < 30e6, f"{size / 1e6:.1f} MB"
    assert (DEFAULT_MODEL_DIR / "model_opset16.onnx").is_file()
    manifest = json.loads((DEFAULT_MODEL_DIR / "manifest.json").read_text())
    assert manifest["precision"] == "fp32" and manifest["cpu_onnx"] == "model.onnx"
    card = package.card
    t = card.training
    assert t["data"]["name"] == "celeba-10k" and t["data"]["labelled_images"] == 8041
    assert t["recipe"]["model"]["backbone"] == "mobilenet_v2" and t["recipe"]["epochs"] >= 1
    assert t["thresholds_tuned_on"] == "val" and len(card.thresholds) == 40
    assert t["reproduce"].startswith("python scripts/make_default_model.py")
    # Distilled: every teacher named in the recipe is identified by its weights in the provenance.
    assert len(t["teachers"]) == len(t["recipe"]["teachers"]) and t["recipe"]["ema"] > 0
    assert all(len(x["weights_sha256"]) == 64 and x["val_mean_accuracy"] > 0.85 for x in t["teachers"])
    assert not any(part.startswith("/") for part in t["recipe"]["teachers"])  # no machine paths
    assert card.preprocessing.template.source.startswith("median BlazeFace")
    assert card.build["export"]["parity_max_abs_diff"] <= 1e-4
    assert 0.85 < t["test"]["mean_accuracy_tuned"] <= 1


def test_accuracy_on_celeba10k_test_is_what_the_card_says(package, celeba_dir, tmp_path):
    out = tmp_path / "test.json"
    assert (
        main(["eval", "--data", str(celeba_dir), "--split", "test", "--json", str(out)]) == 0
    )  # the default
    res = json.loads(out.read_text())
    recorded = package.card.training["test"]
    assert res["n_images"] == recorded["images"] == 980
    # Recorded with torch at training time, re-measured here through ONNX Runtime.
    assert res["mean_accuracy_tuned"] == pytest.approx(recorded["mean_accuracy_tuned"], abs=0.002)
    assert res["mean_accuracy"] == pytest.approx(recorded["mean_accuracy"], abs=0.002)


def test_the_main_command(tmp_path, capsys):
    video, lines = tmp_path / "demo.avi", tmp_path / "demo.jsonl"
    argv = ["run", "--source", "demo:1", "--max-frames", "4", "--save", str(video), "--json", str(lines)]
    assert main(argv) == 0
    frames = [json.loads(x) for x in lines.read_text().splitlines()]
    assert len(frames) == 4 and all(len(f["faces"]) == 1 for f in frames)
    face = frames[-1]["faces"][0]
    assert face["confirmed"] and face["track_id"] == 1
    # The portrait is of a smiling, beardless astronaut: the shipped model must say so. (It also calls her
    # Male at 0.86 — short hair, no make-up: a real error of a CelebA-trained model, not asserted here.)
    assert face["attributes"]["Smiling"] > 0.5 and {"Smiling", "No_Beard"} <= set(face["labels"])
    assert video.stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "p50 ms" in out and "frames/s" in out
