"""Learning from unlabelled faces (training/unlabelled.py): the unlabelled part never carries a label, the
labelled images cycle through an epoch of unlabelled ones, the consistency loss keeps only confident
pseudo-labels and ramps up, and a run with it trains, logs and resumes exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _helpers import make_celeba_copy  # noqa: E402

from lsa_edge.cli import main  # noqa: E402
from lsa_edge.data import load_dataset, select_labelled  # noqa: E402
from lsa_edge.training.data import AugmentConfig  # noqa: E402
from lsa_edge.training.unlabelled import (  # noqa: E402
    STRONG,
    Consistency,
    labelled_order,
    unlabelled_part,
    weak,
)

TINY_MODEL = ["--backbone", "test_tiny", "--input-size", "64x48", "--d-model", "32", "--no-progress"]
ONE_EPOCH = ["--batch-size", "8", "--threads", "1", "--epochs", "1"]  # a tiny run, one epoch


@pytest.fixture(scope="module")
def small_celeba(celeba_dir, tmp_path_factory):
    return make_celeba_copy(celeba_dir, tmp_path_factory.mktemp("celeba") / "c", n=240)  # 80 per split


def test_the_unlabelled_part_is_the_rest_of_train_with_no_labels(small_celeba):
    train = load_dataset(small_celeba).split("train")
    labelled = select_labelled(train, select_rate=10)
    rest = unlabelled_part(train, labelled, "on")
    assert rest is not None and len(rest) + len(labelled) == len(train)
    assert not set(rest.image_ids) & set(labelled.image_ids)
    assert rest.labels.shape == (len(rest), 40) and not rest.labels.any()  # nothing to leak
    assert unlabelled_part(train, labelled, "off") is None
    assert unlabelled_part(train, train, "auto") is None  # every image labelled: nothing to learn from
    assert unlabelled_part(train, labelled, "auto") is not None


def test_labelled_images_cycle_in_shuffled_passes():
    order = labelled_order(10, 35, seed=0, epoch=3).tolist()
    assert len(order) == 35
    for k in range(3):  # each full pass is a permutation
        assert sorted(order[10 * k : 10 * k + 10]) == list(range(10))
    assert order == labelled_order(10, 35, seed=0, epoch=3).tolist()  # the seed and epoch decide it
    assert order != labelled_order(10, 35, seed=0, epoch=4).tolist()


def test_views_are_weak_for_the_teacher_and_strong_for_the_student():
    w = weak(AugmentConfig(blur=0.5, jpeg=0.5, erase=0.3))
    assert w.blur == w.jpeg == w.erase == 0.0 and w.rotate_deg == AugmentConfig().rotate_deg
    assert STRONG.erase > 0 and STRONG.jpeg > 0 and STRONG.rotate_deg > AugmentConfig().rotate_deg


def test_only_confident_pseudo_labels_count_and_the_weight_ramps_up():
    c = Consistency(weak(AugmentConfig()), STRONG, weight=2.0, threshold=0.8, ramp_steps=10)
    probs = torch.tensor([[0.95, 0.5, 0.1, 0.7]])
    logits = torch.zeros(1, 4)  # the student says 0.5 everywhere
    first = float(c(logits, probs, step=0))
    # two confident pairs (0.95, 0.1) of four; BCE(0.5, p) is log 2 for any p
    expected = 2.0 * (1 / 10) * 2 * np.log(2) / 4
    assert first == pytest.approx(expected, rel=1e-5)
    assert float(c(logits, probs, step=50)) == pytest.approx(expected * 10, rel=1e-5)  # fully ramped
    assert "pseudo-labels kept 50.0%" in c.epoch_summary() and c.steps == 0


def test_a_run_with_unlabelled_images_trains_logs_and_resumes_exactly(small_celeba, tmp_path, capfd):
    from lsa_edge.training.checkpoint import read_checkpoint

    common = ["--data", str(small_celeba), *TINY_MODEL, "--select-rate", "10", "--batch-size", "8"]
    common += ["--threads", "1", "--epochs", "2", "--ema", "0.9", "--unlabelled", "on"]
    assert main(["train", "--out", str(tmp_path / "a"), *common]) == 0
    assert "pseudo-labels kept" in capfd.readouterr().err
    last = read_checkpoint(tmp_path / "a" / "last.pt")
    data = last["meta"]["data"]
    assert data["labelled_images"] == 8 and data["unlabelled_images"] == 72  # 80 training images
    assert last["ema"]["updates"] == 2 * (72 // 8)  # an epoch: one pass over the unlabelled images
    assert last["meta"]["train_config"]["unlabelled"] == "on"
    # stopped after one epoch and resumed: the same weights, bit for bit
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--stop-after", "1"]) == 0
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--resume"]) == 0
    b = read_checkpoint(tmp_path / "b" / "last.pt")
    for k, v in last["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    # with --unlabelled off the same selection trains on its 8 labels alone
    assert (
        main(["train", "--out", str(tmp_path / "c"), *common[:-2], "--epochs", "1", "--unlabelled", "off"])
        == 0
    )
    c = read_checkpoint(tmp_path / "c" / "last.pt")
    assert c["meta"]["data"]["unlabelled_images"] == 0 and c["ema"]["updates"] == 1


def test_judge_of_predicts_in_eval_mode_and_restores_the_mode():
    from lsa_edge.training.unlabelled import judge_of

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.9)).train()
    x = torch.randn(5, 4)
    p = judge_of(net)(x)
    assert torch.equal(p, torch.sigmoid(net[0](x)))  # dropout off while judging
    assert net.training and ((p > 0) & (p < 1)).all()


def test_a_distillation_round_lets_the_frozen_teacher_judge_the_unlabelled_faces(
    small_celeba, tmp_path, monkeypatch
):
    from lsa_edge.training.checkpoint import read_checkpoint
    from lsa_edge.training.trainer import Teachers

    common = ["--data", str(small_celeba), *TINY_MODEL, "--select-rate", "10", "--batch-size", "8"]
    common += ["--threads", "1", "--epochs", "1", "--unlabelled", "on"]
    assert main(["train", "--out", str(tmp_path / "round1"), *common, "--ema", "0.9"]) == 0
    judges = []
    real_views = Consistency.views

    def spy(self, faces, judge, *args):
        judges.append(judge)
        return real_views(self, faces, judge, *args)

    monkeypatch.setattr(Consistency, "views", spy)
    teacher = str(tmp_path / "round1" / "best.pt")
    args = ["--teacher", teacher, "--ema", "0.9"]  # an EMA too: the teachers still judge, not the EMA
    assert main(["train", "--out", str(tmp_path / "round2"), *common, *args]) == 0
    assert judges and all(isinstance(j, Teachers) for j in judges)  # not the student or its EMA
    meta = read_checkpoint(tmp_path / "round2" / "best.pt")["meta"]
    assert meta["teachers"][0]["weights_sha256"] and meta["data"]["unlabelled_images"] == 72


def test_alignment_shifts_pseudo_labels_to_the_labelled_rates():
    from lsa_edge.training.unlabelled import labelled_rates

    rates = labelled_rates(np.array([[1, 0], [0, 0], [0, 0], [0, 0]]))
    assert rates.tolist() == pytest.approx([2 / 6, 1 / 6])  # (k + 1) / (n + 2): never 0
    c = Consistency(weak(AugmentConfig()), STRONG, 1.0, 0.7, 0, align_to=torch.tensor([0.1, 0.9]))
    probs = torch.full((8, 2), 0.5)
    out = c.align(probs, probs.mean(0))
    assert out[0].tolist() == pytest.approx(
        [0.1, 0.9], abs=1e-5
    )  # a judge at 0.5 everywhere, moved to the rates
    # the running mean moves slowly: a second batch at other values shifts by the old marginal mostly
    out2 = c.align(torch.full((8, 2), 0.9), torch.tensor([0.9, 0.9]))
    assert c.marginal.tolist() == pytest.approx([0.504, 0.504], abs=1e-6)
    assert float(out2[0, 0]) == pytest.approx(0.496, abs=1e-3)  # logit 0.9 + logit 0.1 − logit 0.504
    assert "alignment |Δlogit|" in c.epoch_summary()
    plain = Consistency(weak(AugmentConfig()), STRONG, 1.0, 0.7, 0)
    assert plain.align(probs, probs.mean(0)) is probs  # off: untouched


def test_a_run_with_alignment_resumes_exactly(small_celeba, tmp_path):
    from lsa_edge.training.checkpoint import read_checkpoint

    common = ["--data", str(small_celeba), *TINY_MODEL, "--select-rate", "10", "--batch-size", "8"]
    common += ["--threads", "1", "--epochs", "2", "--ema", "0.9", "--unlabelled", "on", "--unlabelled-align"]
    assert main(["train", "--out", str(tmp_path / "a"), *common]) == 0
    a = read_checkpoint(tmp_path / "a" / "last.pt")
    assert a["unlabelled_marginal"].shape == (40,) and a["meta"]["train_config"]["unlabelled_align"] is True
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--stop-after", "1"]) == 0
    assert main(["train", "--out", str(tmp_path / "b"), *common, "--resume"]) == 0
    b = read_checkpoint(tmp_path / "b" / "last.pt")
    assert torch.equal(a["unlabelled_marginal"], b["unlabelled_marginal"])
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def _face_folder(celeba_dir, dst, n=12):
    """A folder of unlabelled face photos at two depths, one corrupt file and one faceless image."""
    import shutil

    from PIL import Image

    src = sorted((celeba_dir / "img_align_celeba").glob("*.jpg"))[-n:]  # test-split images, any will do
    (dst / "more").mkdir(parents=True)
    for k, f in enumerate(src):
        shutil.copy(f, dst / ("more" if k % 2 else ".") / f.name)
    (dst / "broken.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (120, 120), (128, 128, 128)).save(dst / "wall.png")
    return dst


def test_faces_from_a_folder_are_detected_aligned_and_skips_counted(celeba_dir, tmp_path, caplog):
    from lsa_edge.card import celeba_preprocessing
    from lsa_edge.training.unlabelled import faces_from_folder, join_unlabelled

    folder = _face_folder(celeba_dir, tmp_path / "faces")
    crops = faces_from_folder(folder, celeba_preprocessing((64, 48)), workers=2, progress=False)
    assert crops.images.shape[1:] == (64, 48, 3) and crops.images.dtype == np.uint8
    assert len(crops) >= 10 and not crops.labels.any()  # CelebA's faces are found; nothing is labelled
    assert any(s.endswith("broken.jpg") for s in crops.skipped)
    assert any(s.endswith("wall.png") for s in crops.skipped)
    assert "skipped (1 unreadable" in caplog.text
    held_out = {sorted((folder / "more").iterdir())[0].name}  # named like one of --data's test images
    fewer = faces_from_folder(folder, celeba_preprocessing((64, 48)), progress=False, exclude=held_out)
    assert len(fewer) == len(crops) - 1 and "left out 1 images named like" in caplog.text
    both = join_unlabelled([crops, None, crops])
    assert len(both) == 2 * len(crops) and both.images.shape[0] == len(both.labels)
    from lsa_edge import ConfigError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images"):
        faces_from_folder(tmp_path / "empty", celeba_preprocessing((64, 48)))
    with pytest.raises(ConfigError, match="not a folder"):
        faces_from_folder(tmp_path / "faces" / "wall.png", celeba_preprocessing((64, 48)))


def test_a_run_learns_from_a_folder_of_faces(small_celeba, celeba_dir, tmp_path, capsys):
    from lsa_edge import ConfigError
    from lsa_edge.training.checkpoint import read_checkpoint

    folder = _face_folder(celeba_dir, tmp_path / "faces", n=24)
    common = ["--data", str(small_celeba), *TINY_MODEL, *ONE_EPOCH]
    # every label used, the folder's faces the only unlabelled ones (auto: on because a folder is given)
    args = ["--unlabelled", "auto", "--unlabelled-data", str(folder)]
    assert main(["train", "--out", str(tmp_path / "a"), *common, *args]) == 0
    data = read_checkpoint(tmp_path / "a" / "last.pt")["meta"]["data"]
    assert data["labelled_images"] == 80 and 20 <= data["unlabelled_images"] <= 24
    assert data["unlabelled_data"].endswith("faces")
    # the folder changed: resuming would change the schedule, so it is refused
    (folder / "more" / sorted((folder / "more").iterdir())[0].name).unlink()
    assert main(["train", "--out", str(tmp_path / "a"), *common, *args, "--resume"]) == 2
    assert "unlabelled faces, now there are" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--unlabelled off"):
        from lsa_edge.training.trainer import TrainConfig

        TrainConfig(data=str(small_celeba), unlabelled="off", unlabelled_data=str(folder))
    with pytest.raises(ConfigError, match="validation and test images"):
        TrainConfig(data=str(small_celeba), unlabelled="on", unlabelled_data=str(small_celeba))


def test_init_starts_from_a_checkpoints_weights_and_refuses_another_model(small_celeba, tmp_path):
    from lsa_edge import ConfigError
    from lsa_edge.training import create_model
    from lsa_edge.training.checkpoint import read_checkpoint
    from lsa_edge.training.model import LSAConfig
    from lsa_edge.training.trainer import init_from

    common = ["--data", str(small_celeba), *TINY_MODEL, *ONE_EPOCH]
    assert main(["train", "--out", str(tmp_path / "a"), *common]) == 0
    ck = read_checkpoint(tmp_path / "a" / "best.pt")
    config = LSAConfig.from_dict({**ck["model_config"], "dropout": 0.3})  # a training-only option may differ
    model = create_model(config, prior=None if config.head != "lsa" else _prior_of(ck))
    init_from(model, str(tmp_path / "a" / "best.pt"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, ck["state_dict"][k]), k
    other = create_model(LSAConfig.from_dict({**ck["model_config"], "d_model": 16}), prior=_prior_of(ck))
    with pytest.raises(ConfigError, match="d_model: checkpoint 32, this run 16"):
        init_from(other, str(tmp_path / "a" / "best.pt"))
    # through the CLI: a fine-tuning run, its config naming the checkpoint without this machine's path
    assert (
        main(["train", "--out", str(tmp_path / "b"), *common, "--init", str(tmp_path / "a" / "best.pt")]) == 0
    )
    assert read_checkpoint(tmp_path / "b" / "best.pt")["meta"]["train_config"]["init"] == "a/best.pt"


def _prior_of(ck):
    from lsa_edge.training.prior import CorrelationDictionary

    return CorrelationDictionary.from_state(ck["prior"])


def _label_budget():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "label_budget.py"
    spec = importlib.util.spec_from_file_location("label_budget", path)
    lb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lb)
    return lb


def test_label_budget_imports_the_chosen_rows_of_an_earlier_summary_without_replacing_runs(tmp_path):
    import argparse
    import json

    lb = _label_budget()
    args = argparse.Namespace(
        imports=[tmp_path / "old.json"], out=tmp_path / "cache", budgets=[322, 8041], variants=["lsa", "linear"],
        unlabelled=["on"], seeds=[0], seeds_large=[0], data="d", no_progress=True, threads=None,
    )  # fmt: skip

    def row(b, v, u, k, **change):
        cfg = lb.recipe(b, v, u, k, args)
        return {"budget": b, "variant": v, "unlabelled": u, "seed": k, "recipe": lb.BUDGETS[b],
                "epochs": cfg.epochs, "batch_size": cfg.batch_size, "test_mean_accuracy": 0.8, **change}  # fmt: skip

    rows = [row(322, "lsa", "on", 0), row(322, "lsa", "off", 0), row(322, "linear", "on", 0), row(322, "lsa", "on", 1),
            row(8041, "lsa", "off", 0), row(8041, "linear", "off", 0, epochs=3)]  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps({"rows": rows, "machine": "that one"}))
    done = tmp_path / "cache" / "322" / "linear" / "on" / "seed0"
    done.mkdir(parents=True)
    (done / "result.json").write_text('{"mine": true}')
    lb.import_rows(args)
    found = sorted(
        str(p.parent.relative_to(tmp_path / "cache")) for p in (tmp_path / "cache").rglob("result.json")
    )
    assert found == ["322/linear/on/seed0", "322/lsa/on/seed0", "8041/lsa/off/seed0"]
    assert json.loads((done / "result.json").read_text()) == {"mine": True}  # a run of its own stays
    imported = json.loads((tmp_path / "cache" / "322" / "lsa" / "on" / "seed0" / "result.json").read_text())
    assert imported["imported_from"] == {"file": str(tmp_path / "old.json"), "machine": "that one"}
    assert imported["test_mean_accuracy"] == 0.8  # 8041/linear (another number of epochs) was not imported
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(SystemExit, match=r"not a summary\.json"):
        lb.import_rows(argparse.Namespace(**{**vars(args), "imports": [tmp_path / "bad.json"]}))


def test_label_budget_runs_without_unlabelled_faces_match_the_steps_and_warm_up():
    """benchmarks/label_budget.py: "off" differs from "on" in the unlabelled faces only — the same steps
    (within one epoch), the same warm-up in steps, about as many validations."""
    import argparse

    lb = _label_budget()
    args = argparse.Namespace(data="d", no_progress=True, threads=None)
    for budget in (322, 804, 1608, 4020):
        on, off = (lb.recipe(budget, "lsa", u, 0, args) for u in ("on", "off"))
        labels = -(-lb.TRAIN_SIZE // on.select_rate)
        per_on, per_off = (lb.TRAIN_SIZE - labels) // on.batch_size, labels // off.batch_size
        assert on.unlabelled == "on" and off.unlabelled == "off" and off.model == on.model
        assert 0 <= per_off * off.epochs - per_on * on.epochs < per_off  # rounded up by less than an epoch
        assert int(off.warmup_epochs * per_off) == int(on.warmup_epochs * per_on)
        assert off.epochs // off.eval_every == on.epochs // on.eval_every
    linear = lb.recipe(322, "linear", "on", 1, args)
    assert linear.model.head == "linear" and linear.seed == 1
    first = lb.recipe(322, "lsa-prior-first", "on", 0, args).model
    assert (first.balance, first.balance_init) == ("learned", 0.1)
    assert lb.recipe(8041, "lsa", "off", 0, args).select_rate is None


def test_label_budget_training_variants_change_the_recipe_not_the_model():
    """lsa-strong-labelled / linear-strong-labelled: the labelled faces' augmentation, nothing else, and the
    same change for both heads (so their pair compares the heads)."""
    import argparse
    import dataclasses

    lb = _label_budget()
    args = argparse.Namespace(data="d", no_progress=True, threads=None)
    base, linear = (lb.recipe(322, v, "on", 0, args) for v in ("lsa", "linear"))
    strong, strong_linear = (lb.recipe(322, v, "on", 0, args) for v in ("lsa-strong-labelled", "linear-strong-labelled"))  # fmt: skip
    assert strong.model == base.model and strong_linear.model == linear.model
    assert strong.augment == strong_linear.augment
    assert strong.augment.erase == 0.5 > base.augment.erase and strong.augment.scale == (0.85, 1.15)
    assert strong.augment.jpeg == base.augment.jpeg == 0.0  # no camera degradations on the labelled faces
    assert dataclasses.replace(strong, augment=base.augment) == base
    assert ("lsa-strong-labelled", "linear-strong-labelled") in lb.PAIRS
    both = lb.recipe(322, "lsa-prior-only-strong-labelled", "on", 0, args)
    assert (
        both.augment == strong.augment and both.model == lb.recipe(322, "lsa-prior-only", "on", 0, args).model
    )
    assert both.model.balance == "prior_only"


def test_label_budget_long_lfw_and_student_variants_change_one_thing_each(tmp_path):
    """-long: more epochs; -lfw: LFW's images beside --data as more unlabelled faces; -student: the -long run
    of the same budget, head and seed as a frozen teacher, refused with the command to run until it has
    finished. Each pair of heads is trained alike."""
    import argparse
    import dataclasses

    lb = _label_budget()
    args = argparse.Namespace(
        data=str(tmp_path / "data" / "celeba-10k"), out=tmp_path / "cache", no_progress=True, threads=None
    )
    for head, base in (
        ("lsa", lb.recipe(322, "lsa", "on", 0, args)),
        ("linear", lb.recipe(322, "linear", "on", 0, args)),
    ):
        long, lfw, student = (
            lb.recipe(322, f"{head}-{v}", "on", 2, args) for v in ("long", "lfw", "student")
        )
        assert long.epochs == lb.LONG_EPOCHS > base.epochs
        assert dataclasses.replace(long, epochs=base.epochs, seed=0) == base
        assert Path(lfw.unlabelled_data) == tmp_path / "data" / "lfwa" / "images"
        assert dataclasses.replace(lfw, unlabelled_data=None, seed=0) == base
        assert student.teachers == [
            str(tmp_path / "cache" / "322" / f"{head}-long" / "on" / "seed2" / "best.pt")
        ]
        assert student.epochs == base.epochs and dataclasses.replace(student, teachers=[], seed=0) == base
    with pytest.raises(
        SystemExit, match=r"finished lsa-long run.*--variants lsa-long --unlabelled on --seeds 2"
    ):
        lb.run_one(args, 322, "lsa-student", "on", 2)
    # an imported teacher row (its figures, no checkpoint) would be "finished" to the command above: say so
    imported = tmp_path / "cache" / "322" / "lsa-long" / "on" / "seed2"
    imported.mkdir(parents=True)
    (imported / "result.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"only an imported result.*remove its result.json and run it first"):
        lb.run_one(args, 322, "lsa-student", "on", 2)
    assert {("lsa-long", "linear-long"), ("lsa-lfw", "linear-lfw"), ("lsa-student", "linear-student")} <= set(
        lb.PAIRS
    )


def test_label_budget_refuses_cached_runs_of_another_recipe(tmp_path):
    """A recipe file edited after a run was cached: the run's result no longer describes the recipe, so the
    benchmark names the run and what differs instead of mixing both under one name."""
    import argparse
    import json

    lb = _label_budget()
    args = argparse.Namespace(out=tmp_path, budgets=[322], variants=["lsa", "linear"], unlabelled=["on"],
                              seeds=[0, 1], seeds_large=[0], data="d", no_progress=True, threads=None)  # fmt: skip
    runs = lb.planned_runs(args)
    for run in runs:
        folder = lb.run_dir(args, *run)
        folder.mkdir(parents=True)
        config = lb.recipe(*run, args).to_dict()
        (folder / "config.json").write_text(json.dumps({**config, "threads": 7, "out": "elsewhere"}))
        (folder / "result.json").write_text("{}")
    assert lb.stale_runs(args, runs) == {}  # folders and threads may differ
    edited = lb.run_dir(args, 322, "lsa", "on", 1)
    config = json.loads((edited / "config.json").read_text())
    config["model"]["balance"], config["lr"] = "prior_only", 0.01
    (edited / "config.json").write_text(json.dumps(config))
    killed = lb.run_dir(args, 322, "linear", "on", 1)  # killed before its first epoch: trained afresh
    (killed / "result.json").unlink()
    (killed / "config.json").write_text(json.dumps({**config, "epochs": 99}))
    stale = lb.stale_runs(args, runs)
    assert stale == {
        edited: ["lr: saved 0.01, now 0.001", "model.balance: saved 'prior_only', now 'learned'"]
    }
    with pytest.raises(
        SystemExit, match=r"(?s)1 cached run.*seed1: lr: saved 0\.01.*Move those folders away"
    ):
        lb.run_all(args)


def test_label_budget_says_which_runs_are_finished_under_way_and_still_to_run(tmp_path):
    import argparse

    lb = _label_budget()
    args = argparse.Namespace(out=tmp_path, budgets=[322, 1608], variants=["lsa", "linear"], unlabelled=["on"],
                              seeds=[0, 1], seeds_large=[0], data="d", no_progress=True, threads=None)  # fmt: skip
    runs = lb.planned_runs(args)
    assert len(runs) == 6  # two seeds at 322, one at 1608, two variants
    for run, leave in [((322, "lsa", "on", 0), "result.json"), ((322, "linear", "on", 0), "result.json"),
                       ((322, "lsa", "on", 1), "last.pt"), ((1608, "lsa", "on", 0), "config.json")]:  # fmt: skip
        lb.run_dir(args, *run).mkdir(parents=True)
        (lb.run_dir(args, *run) / leave).write_text("{}")
    finished, under_way, todo = lb.plan_state(args, runs)
    assert (finished, under_way) == (2, 1)  # config.json alone is a run not started
    assert todo == {(322, "lsa", "on"): [1], (322, "linear", "on"): [1], (1608, "lsa", "on"): [0],
                    (1608, "linear", "on"): [0]}  # fmt: skip
    message = lb.plan_message(args, runs, most=3)
    assert message.startswith(
        "6 planned run(s): 2 finished, 1 under way (resumed from their last epoch), 3 not"
    )
    assert "  1608 lsa unlabelled on: seed 0" in message and message.endswith("… and 1 more")
    for run in runs:
        lb.run_dir(args, *run).mkdir(parents=True, exist_ok=True)
        (lb.run_dir(args, *run) / "result.json").write_text("{}")
    assert lb.plan_message(args, runs) == "6 planned run(s): 6 finished."


def test_label_budget_pairs_the_models_seed_by_seed():
    """The per-seed goals: a − b for each seed both models ran, per budget and unlabelled setting; a seed one
    model lacks is left out, not compared with another seed."""
    lb = _label_budget()

    def row(b, v, u, k, acc):
        return {"budget": b, "variant": v, "unlabelled": u, "seed": k, "test_mean_accuracy": acc}

    rows = [row(322, "lsa", "on", 0, 0.860), row(322, "linear", "on", 0, 0.862), row(322, "lsa", "on", 1, 0.865),
            row(322, "linear", "on", 1, 0.860), row(322, "lsa", "on", 2, 0.9), row(322, "lsa-prior-off", "on", 0, 0.85),
            row(322, "lsa", "off", 0, 0.80), row(322, "linear", "off", 0, 0.70)]  # fmt: skip
    pairs = lb.paired(rows)
    assert [(p["budget"], p["unlabelled"], p["a"], p["b"], p["seeds"]) for p in pairs] == [
        (322, "off", "lsa", "linear", [0]),
        (322, "on", "lsa", "linear", [0, 1]),
        (322, "on", "lsa", "lsa-prior-off", [0]),
    ]
    assert pairs[1]["diff"] == pytest.approx([-0.2, 0.5])
    assert pairs[0]["diff"] == pytest.approx([10.0]) and pairs[2]["diff"] == pytest.approx([1.0])


def test_label_budget_times_a_resumed_run_over_every_epoch_not_only_the_validated_ones():
    """log.csv has a row per validation: a resumed run validated every 4th epoch took 4 × each row's epoch."""
    lb = _label_budget()
    history = [{"epoch": 4, "epoch_s": 100.0}, {"epoch": 8, "epoch_s": 110.0}, {"epoch": 9, "epoch_s": 120.0}]
    assert lb.resumed_wall(history) == pytest.approx(4 * 100 + 4 * 110 + 120)
    assert lb.resumed_wall([{"epoch": e, "epoch_s": 60.0} for e in (1, 2, 3)]) == pytest.approx(180)


def test_label_budget_plot_draws_the_curve_and_every_variant(tmp_path):
    """The PNG: left, one line per model of the curve and unlabelled setting (the all-labels run closes each;
    a model keeps its colour, dashed without unlabelled faces), budgets written out on the x axis; right,
    where other variants ran, every variant at the smallest budget as a row, best at the top."""
    pytest.importorskip("matplotlib")
    lb = _label_budget()
    rows = [
        {
            "budget": b,
            "labelled": b,
            "variant": v,
            "unlabelled": u,
            "mean": m,
            "std": 0.1,
            "seeds": [0, 1],
            "test_balanced_accuracy": "70.00 ± 0.10",
        }
        for b, v, u, m in [
            (322, "lsa", "on", 86.0),
            (322, "linear", "on", 86.1),
            (322, "lsa", "off", 85.7),
            (804, "lsa", "off", 87.0),
            (8041, "lsa", "-", 90.1),
            (8041, "linear", "-", 90.0),
        ]
    ]
    seen = {}

    def savefig(fig, path, **kw):
        ax = fig.axes[0]
        seen["axes"] = len(fig.axes)
        seen["labels"] = [t.get_text() for t in ax.get_xticklabels()]
        seen["lines"] = {
            c.get_label(): int(np.isfinite(np.asarray(c.lines[0].get_ydata(), float)).sum())
            for c in ax.containers
        }
        seen["gaps"] = {
            c.get_label(): int(np.isnan(np.asarray(c.lines[0].get_ydata(), float)).sum())
            for c in ax.containers
        }
        seen["colours"] = {c.get_label(): c.lines[0].get_color() for c in ax.containers}
        if len(fig.axes) > 1:
            seen["rows"] = [t.get_text() for t in fig.axes[1].get_yticklabels()]
            seen["reference"] = [
                line.get_xdata()[0]
                for line in fig.axes[1].lines
                if line.get_label() == "plain head + unlabelled"
            ]
        Path(path).write_bytes(b"png")

    import matplotlib.figure

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(matplotlib.figure.Figure, "savefig", savefig)
        lb.plot(rows, tmp_path / "curve.png", "t")
        assert (tmp_path / "curve.png").read_bytes() == b"png"
        assert seen["axes"] == 1  # the curve's own models only: no second panel
        assert seen["labels"] == ["322", "804", "8,041"]
        assert seen["lines"] == {"lsa + unlabelled": 2, "lsa": 3, "linear + unlabelled": 2}
        # 322 → 804 are neighbours; from either to 8,041 the budgets between have not run: the line breaks
        assert seen["gaps"] == {"lsa + unlabelled": 1, "lsa": 1, "linear + unlabelled": 1}
        assert (
            seen["colours"]["lsa"]
            == seen["colours"]["lsa + unlabelled"]
            != seen["colours"]["linear + unlabelled"]
        )
        variant = {**rows[0], "variant": "lsa-prior-only", "mean": 86.3}
        lb.plot([*rows, variant], tmp_path / "curve.png", "t")
    assert seen["axes"] == 2 and "lsa-prior-only" not in seen["lines"]  # variants are rows, not lines
    assert seen["rows"] == ["lsa (no unlabelled)", "lsa", "linear", "lsa-prior-only"]  # best at the top
    assert seen["reference"] == [86.1]  # the plain head with unlabelled faces, dotted
