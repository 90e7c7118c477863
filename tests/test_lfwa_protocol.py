"""benchmarks/lfwa_protocol.py: LFWA's own protocol over seeds (the recipes, the order of the runs, the table)."""

from __future__ import annotations

import argparse
import importlib.util
import json
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
                                 "threads": None, "no_progress": True, "jobs": 1, "imports": [],
                                 **change})  # fmt: skip


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
    """Runs side by side: ``submit`` queues a run, ``wait`` finishes the newest one under way (so the CelebA
    model, submitted first, finishes last), or the oldest with ``oldest=True``; ``fail`` names runs that
    raise."""

    def __init__(self, fail=(), oldest=False) -> None:
        self.log: list = []
        self.fail = set(fail)
        self.oldest = oldest
        self.most_under_way = 0

    def submit(self, recipe: str, seed: int):
        from concurrent.futures import Future

        self.log.append(("submit", recipe, seed))
        fut: Future = Future()
        fut.run = (recipe, seed)
        return fut

    def wait(self, handles: list) -> list:
        self.most_under_way = max(self.most_under_way, len(handles))
        fut = handles[0] if self.oldest else handles[-1]
        recipe, seed = fut.run
        self.log.append(("done", recipe, seed))
        if (recipe, seed) in self.fail:
            fut.set_exception(RuntimeError("no such data"))
        else:
            fut.set_result(_row(recipe, seed))
        return [fut]


def _row(recipe, seed, acc=0.86, init="celeba_init/best.pt"):
    return {"recipe": recipe, "recipe_file": f"{recipe}.yaml", "seed": seed, "data": "lfwa", "init": init,
            "test_mean_accuracy": acc, "test_balanced_accuracy": 0.79, "test_mean_accuracy_tuned": acc,
            "majority": 0.7175, "wall_s": 600.0}  # fmt: skip


def test_lfwa_protocol_fine_tunes_only_once_the_celeba_model_is_there(tmp_path):
    lp = _lfwa_protocol()
    args = _args(tmp_path, seeds=[0, 1, 0], jobs=2)  # a seed named twice runs once
    assert lp.planned_runs(args)[0] == (lp.INIT, 0) and len(lp.planned_runs(args)) == 5
    pool = _Pool()
    rows, failed = lp.schedule(args, pool.submit, pool.wait)
    assert [(r["recipe"], r["seed"]) for r in rows] == lp.planned_runs(
        args
    ) and not failed  # the planned order
    submitted = [e[1:] for e in pool.log if e[0] == "submit"]
    assert sorted(submitted) == sorted(lp.planned_runs(args))  # each run once
    assert pool.most_under_way == 2  # --jobs runs at a time, never more
    celeba_done = pool.log.index(("done", lp.INIT, 0))
    for seed in (0, 1):
        assert pool.log.index(("submit", "lfwa", seed)) > celeba_done  # fine-tuning waits for its start
        assert pool.log.index(("submit", "lfwa_imagenet", seed)) < celeba_done  # ImageNet-only runs beside it
    # the CelebA model done first: its fine-tunings go before the ImageNet run still waiting for a slot
    pool = _Pool(oldest=True)
    lp.schedule(args, pool.submit, pool.wait)
    assert [e[1:] for e in pool.log if e[0] == "submit"] == [
        (lp.INIT, 0), ("lfwa_imagenet", 0), ("lfwa", 0), ("lfwa", 1), ("lfwa_imagenet", 1)
    ]  # fmt: skip
    # --init names a CelebA model: no CelebA run, --jobs of them at once
    pool = _Pool()
    args = _args(tmp_path, init="given/best.pt", jobs=4)
    assert lp.planned_runs(args) == [("lfwa", 0), ("lfwa", 1), ("lfwa_imagenet", 0), ("lfwa_imagenet", 1)]
    lp.schedule(args, pool.submit, pool.wait)
    assert [e[0] for e in pool.log[:4]] == ["submit"] * 4
    # only the ImageNet recipe: no CelebA model needed
    assert lp.planned_runs(_args(tmp_path, recipes=["lfwa_imagenet"])) == [
        ("lfwa_imagenet", 0),
        ("lfwa_imagenet", 1),
    ]


def test_lfwa_protocol_goes_on_past_a_failed_run_and_names_every_run_it_lost(tmp_path):
    lp = _lfwa_protocol()
    pool = _Pool(fail=[(lp.INIT, 0), ("lfwa_imagenet", 1)])
    rows, failed = lp.schedule(_args(tmp_path), pool.submit, pool.wait)
    assert [(r["recipe"], r["seed"]) for r in rows] == [("lfwa_imagenet", 0)]
    assert failed == {(lp.INIT, 0): "RuntimeError: no such data", ("lfwa_imagenet", 1): "RuntimeError: no such data",
                      ("lfwa", 0): "not started: the CelebA model it starts from failed",
                      ("lfwa", 1): "not started: the CelebA model it starts from failed"}  # fmt: skip
    assert not [e for e in pool.log if e[1] == "lfwa"]


def test_lfwa_protocol_one_job_runs_in_the_planned_order_and_reports_failures(tmp_path, monkeypatch):
    lp = _lfwa_protocol()
    order: list = []

    def fake_run_one(args, recipe, seed):
        order.append((recipe, seed))
        if (recipe, seed) == ("lfwa", 1):
            raise ValueError("bad image")
        return _row(recipe, seed)

    monkeypatch.setattr(lp, "run_one", fake_run_one)
    args = _args(tmp_path, jobs=1)
    rows, failed = lp.run_all(args)
    # the CelebA model, then the fine-tuning that starts from it, then the ImageNet runs
    assert order == [(lp.INIT, 0), ("lfwa", 0), ("lfwa", 1), ("lfwa_imagenet", 0), ("lfwa_imagenet", 1)]
    assert failed == {("lfwa", 1): "ValueError: bad image"} and len(rows) == 4
    with pytest.raises(SystemExit, match="no such checkpoint"):
        lp.run_all(_args(tmp_path, jobs=1, init=str(tmp_path / "missing.pt")))


def test_lfwa_protocol_refuses_cached_runs_of_another_recipe_or_init(tmp_path):
    import json

    lp = _lfwa_protocol()
    args = _args(tmp_path, jobs=1)
    folder = lp.run_dir(args, "lfwa", 0)
    folder.mkdir(parents=True)
    saved = {**json.loads(json.dumps(lp.config(args, "lfwa", 0).to_dict())), "init": "full_8041/best.pt"}
    (folder / "config.json").write_text(json.dumps(saved))
    (folder / "result.json").write_text(json.dumps(_row("lfwa", 0)))
    stale = lp.stale_runs(args, lp.planned_runs(args))
    assert list(stale) == [folder] and "init" in stale[folder][0]
    with pytest.raises(SystemExit, match="other settings"):
        lp.run_all(args)
    rows, missing = lp.cached_results(_args(tmp_path))  # --report-only leaves it out of the table
    assert rows == [] and len(missing) == 4


def test_lfwa_protocol_summarises_each_recipe_over_its_seeds_against_the_goal(tmp_path):
    lp = _lfwa_protocol()
    rows = [_row("lfwa", 1, 0.860), _row("lfwa", 0, 0.864), _row("lfwa_imagenet", 0, 0.857, None)]
    summary = lp.summarise(rows)
    assert [s["recipe"] for s in summary] == ["lfwa", "lfwa_imagenet"]
    tuned = summary[0]
    assert tuned["seeds"] == [0, 1] and tuned["per_seed"] == [86.4, 86.0]
    assert tuned["test_mean_accuracy"] == "86.20 ± 0.28" and tuned["starts_from"] == "a CelebA-10k model"
    assert summary[1]["starts_from"] == "ImageNet" and summary[1]["std"] == 0.0
    assert lp.goal_line(summary, [0, 1]).endswith("86.20% (met)")
    assert lp.goal_line(summary, [0, 1, 2]).endswith("86.20% (met; provisional: seed 2 still to run)")
    assert lp.goal_line(lp.summarise([_row("lfwa", 0, 0.855)]), [0]).endswith("85.50% (not met)")
    assert lp.goal_line(lp.summarise([_row("lfwa", 0, 0.859996)]), [0]).endswith("86.00% (met)")  # as printed
    assert lp.goal_line(summary[1:], [0]) is None
    args = _args(tmp_path)
    lp.print_report(args, [_row(lp.INIT, 0, 0.90), *rows], missing=["x/lfwa/seed2"])
    written = json.loads((tmp_path / "cache" / "summary.json").read_text())
    assert written["celeba_init"]["test_mean_accuracy"] == 0.90 and written["missing"] == ["x/lfwa/seed2"]
    assert [r["recipe"] for r in written["rows"]] == ["lfwa", "lfwa", "lfwa_imagenet"]


def test_lfwa_protocol_imports_a_committed_summary_and_trains_only_what_it_lacks(tmp_path, capsys):
    lp = _lfwa_protocol()
    celeba = {**_row(lp.INIT, 0, 0.9006, None), "recipe_file": "full_8041.yaml", "data": "celeba-10k"}
    summary = {"rows": [{**_row("lfwa", 0, 0.861), "epochs": 10}, {**_row("lfwa", 1, 0.862), "epochs": 10},
                        {**_row("lfwa_imagenet", 0, 0.857, None), "epochs": 3}],  # another recipe's epochs
               "celeba_init": celeba, "machine": "elsewhere"}  # fmt: skip
    committed = tmp_path / "committed.json"
    committed.write_text(json.dumps(summary))
    args = _args(tmp_path, seeds=[0, 1, 2], imports=[committed])
    lp.run_dir(args, "lfwa", 1).mkdir(parents=True)
    (lp.run_dir(args, "lfwa", 1) / "last.pt").write_bytes(b"")  # a run under way here is not replaced
    assert lp.import_rows(args) == [celeba]
    assert "not imported" in capsys.readouterr().out
    imported = json.loads((lp.run_dir(args, "lfwa", 0) / "result.json").read_text())
    assert imported["imported_from"] == {"file": str(committed), "machine": "elsewhere"}
    assert imported["init_test_mean_accuracy"] == 0.9006  # the CelebA model it started from
    assert not (lp.run_dir(args, "lfwa", 1) / "result.json").exists()
    assert not (lp.run_dir(args, "lfwa_imagenet", 0) / "result.json").exists()
    assert not (lp.run_dir(args, lp.INIT, 0) / "result.json").exists()  # no checkpoint: trained again here
    rows, missing = lp.cached_results(args)
    assert [(r["recipe"], r["seed"]) for r in rows] == [("lfwa", 0)] and len(missing) == 6
    assert lp.summarise(rows)[0]["imported"] == [0]  # its wall time is another machine's
    lp.print_report(args, rows, missing, imported=[celeba])  # the CelebA figure of the imported summary
    assert json.loads((tmp_path / "cache" / "summary.json").read_text())["celeba_init"] == celeba
    retrained = {**celeba, "test_mean_accuracy": 0.9012}  # the CelebA model trained again here
    lp.print_report(args, [retrained, *rows], missing, imported=[celeba])
    written = json.loads((tmp_path / "cache" / "summary.json").read_text())
    assert (written["celeba_init"], written["celeba_init_imported"]) == (retrained, celeba)
    committed.write_text(json.dumps(written))  # that summary imported again: both models still named
    assert lp.import_rows(args) == [retrained, celeba]
    lp.print_report(args, [retrained, *rows], missing, imported=[retrained, celeba])
    assert json.loads((tmp_path / "cache" / "summary.json").read_text())["celeba_init_imported"] == celeba
    committed.write_text(json.dumps({"rows": [{"recipe": "lfwa"}]}))
    with pytest.raises(SystemExit, match=r"not a summary\.json"):
        lp.import_rows(args)


def test_lfwa_protocol_says_when_seeds_start_from_different_celeba_models(tmp_path):
    lp = _lfwa_protocol()
    assert lp.init_figure(None) is None and lp.init_figure(str(tmp_path / "celeba_init" / "best.pt")) is None
    (tmp_path / "celeba_init").mkdir()
    (tmp_path / "celeba_init" / "result.json").write_text(json.dumps(_row(lp.INIT, 0, 0.9012, None)))
    assert lp.init_figure(str(tmp_path / "celeba_init" / "best.pt")) == 0.9012
    rows = [
        {**_row("lfwa", k), "init_test_mean_accuracy": fig} for k, fig in enumerate([0.9006, 0.9006, 0.9012])
    ]
    line = lp.init_line(lp.summarise(rows)[0])
    assert line.endswith("seeds 0, 1 from one at 90.06%; seed 2 from one at 90.12%")
    assert lp.init_line(lp.summarise(rows[:2])[0]) is None  # one CelebA model: nothing to say
    assert lp.init_line(lp.summarise([_row("lfwa_imagenet", 0, init=None)])[0]) is None
