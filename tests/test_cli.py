"""The CLI contract, and that the core and `lsa-edge --help` work where torch is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lsa_edge.cli import main

HEAVY = (
    "torch",
    "transformers",
    "onnx",
    "onnxruntime",
    "onnxsim",
    "tensorrt",
    "pycuda",
    "scipy",
    "h5py",
    "matplotlib",
)

NO_HEAVY = textwrap.dedent(
    f"""
    import sys
    class _Block:
        # Behave as if these packages were not installed.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {HEAVY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
    sys.meta_path.insert(0, _Block())
    """
)


def _run_py(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", NO_HEAVY + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )


def test_core_and_help_without_heavy_dependencies(tmp_path):
    code = """
    import importlib, pkgutil, contextlib, io
    import lsa_edge, lsa_edge.cli
    from lsa_edge.errors import MissingDependencyError
    for mod in pkgutil.walk_packages(lsa_edge.__path__, "lsa_edge."):
        if mod.name.startswith("lsa_edge.training"):
            continue
        importlib.import_module(mod.name)
    try:
        import lsa_edge.training
    except MissingDependencyError as e:
        assert "lsa-edge[train]" in str(e), e
    else:
        raise AssertionError("lsa_edge.training imported without torch")
    from lsa_edge.cli import main
    for cmd in ([], ["run"], ["eval"], ["bench"], ["build"], ["check"], ["compare"], ["export"], ["export", "triton"], ["export", "deepstream"], ["train"], ["prior"], ["doctor"], ["convert-detector"]):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main([*cmd, "--help"])
            except SystemExit as e:
                assert e.code == 0, (cmd, e.code)
        assert "usage: lsa-edge" in out.getvalue()
    rc = main(["train", "--data", ".", "--out", "run"])
    assert rc == 1, rc
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy})
    assert not heavy, heavy
    print("OK")
    """.replace("{heavy}", repr(set(HEAVY)))
    res = _run_py(code, tmp_path)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
    assert "pip install 'lsa-edge[train]'" in res.stderr  # the training command names the extra to install


def test_core_and_help_without_opencv(tmp_path):
    """On a Jetson without JetPack's OpenCV (lsa-edge does not install PyPI's there): everything imports,
    every --help works, doctor reports it, and a command that needs OpenCV names the fix."""
    code = """
    import contextlib, importlib, io, pkgutil, sys
    class _NoCv2:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "cv2":
                raise ModuleNotFoundError(f"No module named {name!r}")
    sys.meta_path.insert(0, _NoCv2())
    import lsa_edge
    from lsa_edge.cli import COMMANDS, main
    for mod in pkgutil.walk_packages(lsa_edge.__path__, "lsa_edge."):
        if not mod.name.startswith("lsa_edge.training"):
            importlib.import_module(mod.name)
    for cmd in COMMANDS:
        name = cmd.register.__module__.rsplit(".", 1)[-1]
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main([{"detector": "convert-detector"}.get(name, name), "--help"])
            except SystemExit as e:
                assert e.code == 0, (name, e.code)
        assert "usage: lsa-edge" in out.getvalue()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["doctor", "--no-cameras"]) == 0
    assert "not importable" in out.getvalue(), out.getvalue()
    assert main(["run", "--source", "demo:1", "--max-frames", "1"]) == 1
    assert "cv2" not in sys.modules
    print("OK")
    """
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
    assert "OpenCV (cv2) is needed but could not be imported" in res.stderr
    assert "lsa-edge[opencv]" in res.stderr or "nvidia-opencv" in res.stderr  # which one: by platform


def test_console_script_and_module_entry_points(tmp_path):
    script = Path(sys.executable).parent / "lsa-edge"
    assert script.exists(), f"console script not installed beside {sys.executable}"
    for argv in ([str(script), "--help"], [sys.executable, "-m", "lsa_edge", "--version"]):
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "lsa-edge" in res.stdout


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["train", "--bogus"])
    assert e.value.code == 2


def test_bad_data_folder_is_one_clear_line(tmp_path, capsys):
    pytest.importorskip("torch")
    rc = main(["eval", str(tmp_path / "missing.pt"), "--data", str(tmp_path)])
    assert rc == 2  # a model path that does not exist is a usage error
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_prior_command_table_json_and_png(tmp_path, capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("matplotlib")
    rc = main(["prior", "--json", str(tmp_path / "p.json"), "--png", str(tmp_path / "p.png")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Eyeglasses" in out and "correlation dictionary" in out
    d = json.loads((tmp_path / "p.json").read_text())
    assert len(d["dictionary"]) == 40 and d["regions"][0] == "head_top"
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_config_file_gives_defaults_and_flags_override(tmp_path):
    pytest.importorskip("torch", reason="config files are checked against TrainConfig (training: torch)")
    from lsa_edge import ConfigError
    from lsa_edge.cli import build_parser
    from lsa_edge.cli.train import config_from_args

    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 5\nlr: 0.01\ndevice: cpu\nmodel:\n  backbone: resnet18\n  d_model: 128\n")
    args = build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--config", str(cfg), "--lr", "0.002", "--prior", "off"]
    )
    d = config_from_args(args)
    assert (
        d["epochs"] == 5 and d["lr"] == 0.002 and d["device"] == "cpu"
    )  # file, flag, file (no flag default wins)
    assert d["model"] == {"backbone": "resnet18", "d_model": 128, "balance": "no_prior"}
    cfg.write_text("epochs: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config_from_args(
            build_parser().parse_args(["train", "--data", "d", "--out", "o", "--config", str(cfg)])
        )
    pytest.importorskip("torch")
    from lsa_edge.training.trainer import TrainConfig

    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="unknown model option"):
        TrainConfig.from_dict({"model": {"backbnoe": "resnet18"}})


def test_prior_flag_conflicts_and_resume_comparison():
    from lsa_edge import ConfigError
    from lsa_edge.cli import build_parser
    from lsa_edge.cli.train import config_from_args

    base = ["train", "--data", "d", "--out", "o"]
    with pytest.raises(ConfigError, match="contradicts"):
        config_from_args(build_parser().parse_args([*base, "--prior", "off", "--balance", "prior_only"]))
    pytest.importorskip("torch")
    from lsa_edge.training.model import LSAConfig
    from lsa_edge.training.trainer import TrainConfig, check_resumable

    cfg = TrainConfig(data="d", out="o")
    saved = json.loads(json.dumps({**cfg.to_dict(), "data": "d", "out": "o"}))  # tuples became lists
    check_resumable(saved, cfg)  # equal settings: no error
    with pytest.raises(ConfigError, match="lr: saved"):
        check_resumable(saved, TrainConfig(data="d", out="o", lr=0.5))
    # a run saved before an option existed (top level or in the model) resumes; a changed one does not
    older = {k: v for k, v in saved.items() if k != "unlabelled_align"}
    older["model"] = {k: v for k, v in saved["model"].items() if k not in ("value_proj", "attn_dropout")}
    check_resumable(older, cfg)
    with pytest.raises(ConfigError, match=r"\(model\.value_proj: saved True, now False\)"):
        check_resumable(older, TrainConfig(data="d", out="o", model=LSAConfig(value_proj=False)))
    # a config.json holds paths as typed; a checkpoint, and the comparison, their portable names
    typed = TrainConfig(data="d", out="o", init="/far/away/runs/full/best.pt", unlabelled_data="/x/faces")
    check_resumable({**saved, "init": typed.init, "unlabelled_data": typed.unlabelled_data}, typed)
    with pytest.raises(ConfigError, match=r"init: saved 'other/best\.pt', now 'full/best\.pt'"):
        check_resumable({**saved, "init": "runs/other/best.pt", "unlabelled_data": "faces"}, typed)
