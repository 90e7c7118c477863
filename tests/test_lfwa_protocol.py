"""benchmarks/lfwa_protocol.py: LFWA's own protocol over seeds (the recipes, the order of the runs, the table)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")


def _lfwa_protocol():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "lfwa_protocol.py"
    spec = importlib.util.spec_from_file_location("lfwa_protocol", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(tmp_path: Path, **change) -> argparse.Namespace:
    return argparse.Namespace(**{"out": tmp_path / "cache", "lfwa": "lfwa-dir", "celeba": "celeba-dir",
                                 "recipes": ["lfwa", "lfwa_imagenet"], "seeds": [0, 1], "init": None,
                                 "threads": None, "no_progress": True, **change})  # fmt: skip


def test_lfwa_protocol_recipes_start_from_the_celeba_model_it_trains_or_from_imagenet(tmp_path):
    lp = _lfwa_protocol()
    args = _args(tmp_path)
    celeba = lp.config(args, lp.INIT, 0)
    assert (celeba.data, celeba.select_rate, celeba.init) == ("celeba-dir", None, None)
    assert celeba.out == str(tmp_path / "cache" / "celeba_init")
    tuned = lp.config(args, "lfwa", 1)
    assert (tuned.data, tuned.format, tuned.seed, tuned.val_fraction) == ("lfwa-dir", "lfwa-mat", 1, 0.1)
    assert tuned.init == str(tmp_path / "cache" / "celeba_init" / "best.pt")  # not the file's runs/full_8041
    assert tuned.out == str(tmp_path / "cache" / "lfwa" / "seed1") and not tuned.resume
    scratch = lp.config(args, "lfwa_imagenet", 0)
    assert scratch.init is None and scratch.model.pretrained
    assert lp.config(_args(tmp_path, init="elsewhere/best.pt"), "lfwa", 0).init == "elsewhere/best.pt"
    (tmp_path / "cache" / "lfwa" / "seed1").mkdir(parents=True)
    (tmp_path / "cache" / "lfwa" / "seed1" / "last.pt").write_bytes(b"")
    assert lp.config(args, "lfwa", 1).resume  # an interrupted run continues


class _Pool:
    """Two workers: ``submit`` queues a run, ``wait`` finishes the oldest one under way."""

    def __init__(self, log: list) -> None:
        self.log = log

    def submit(self, recipe: str, seed: int):
        self.log.append(("submit", recipe, seed))
        pool = self

        class Handle:
            run = (recipe, seed)

            def result(self):
                pool.log.append(("done", recipe, seed))
                return {"recipe": recipe, "seed": seed, "data": "d", "test_mean_accuracy": 0.86,
                        "test_balanced_accuracy": 0.8, "wall_s": 60.0}  # fmt: skip

        return Handle()

    def wait(self, handles: list) -> list:
        return handles[:1]


def test_lfwa_protocol_fine_tunes_only_once_the_celeba_model_is_there(tmp_path):
    lp = _lfwa_protocol()
    args = _args(tmp_path)
    assert lp.planned_runs(args)[0] == (lp.INIT, 0) and len(lp.planned_runs(args)) == 5
    log: list = []
    pool = _Pool(log)
    rows = lp.schedule(args, pool.submit, pool.wait)
    assert [(r["recipe"], r["seed"]) for r in rows] == lp.planned_runs(args)  # in the planned order
    celeba_done = log.index(("done", lp.INIT, 0))
    for seed in (0, 1):
        assert log.index(("submit", "lfwa", seed)) > celeba_done  # fine-tuning waits for its start
        assert log.index(("submit", "lfwa_imagenet", seed)) < celeba_done  # ImageNet-only runs beside it
    # --init names a CelebA model: no CelebA run, everything starts at once
    log.clear()
    args = _args(tmp_path, init="given/best.pt")
    assert lp.planned_runs(args) == [("lfwa", 0), ("lfwa", 1), ("lfwa_imagenet", 0), ("lfwa_imagenet", 1)]
    lp.schedule(args, pool.submit, pool.wait)
    assert [e[0] for e in log[:4]] == ["submit"] * 4
    # only the ImageNet recipe: no CelebA model needed
    assert lp.planned_runs(_args(tmp_path, recipes=["lfwa_imagenet"])) == [
        ("lfwa_imagenet", 0),
        ("lfwa_imagenet", 1),
    ]


def test_lfwa_protocol_summarises_each_recipe_over_its_seeds_against_the_goal():
    lp = _lfwa_protocol()

    def row(recipe, seed, acc, init):
        return {"recipe": recipe, "recipe_file": lp.RECIPES[recipe], "seed": seed, "data": "lfwa", "init": init,
                "test_mean_accuracy": acc, "test_balanced_accuracy": 0.79, "test_mean_accuracy_tuned": acc,
                "wall_s": 600.0}  # fmt: skip

    rows = [row("lfwa", 1, 0.860, "celeba_init/best.pt"), row("lfwa", 0, 0.864, "celeba_init/best.pt"),
            row("lfwa_imagenet", 0, 0.857, None)]  # fmt: skip
    summary = lp.summarise(rows)
    assert [s["recipe"] for s in summary] == ["lfwa", "lfwa_imagenet"]
    tuned = summary[0]
    assert tuned["seeds"] == [0, 1] and tuned["per_seed"] == [86.4, 86.0]
    assert tuned["test_mean_accuracy"] == "86.20 ± 0.28" and tuned["starts_from"] == "a CelebA-10k model"
    assert summary[1]["starts_from"] == "ImageNet" and summary[1]["std"] == 0.0
    assert lp.goal_line(summary).endswith("86.20% (met)")
    assert lp.goal_line(lp.summarise([row("lfwa", 0, 0.855, "x/best.pt")])).endswith("85.50% (not met)")
    assert lp.goal_line(summary[1:]) is None
