"""Every numeric, device and path flag of eval/bench/train/build/compare/prior is checked before the long
work: a bad value is a usage error (exit 2) naming the flag and the value, never "… please report it", never
silently replaced by the default, and never after minutes of decoding, training or measuring."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lsa_edge.cli import main
from lsa_edge.errors import ConfigError
from lsa_edge.package import DEFAULT_MODEL_DIR

MODEL = DEFAULT_MODEL_DIR / "model.onnx"


def _never(monkeypatch, target, name):
    def called(*a, **k):
        raise AssertionError(f"{name} ran before the flags were checked")

    monkeypatch.setattr(target, name, called)


def _usage_error(argv, capsys, *fragments):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert "please report" not in err, err
    for f in fragments:
        assert f in err, (argv, f, err)
    return err


# ------------------------------------------------------------------------------------------------ eval
EVAL_CASES = [
    (["--batch-size", "0"], ["--batch-size", "got 0", "≥ 1"]),
    (["--batch-size", "-3"], ["--batch-size", "got -3"]),
    (["--workers", "0"], ["--workers", "got 0"]),  # was `args.workers or 4`: silently 4
    (["--workers", "-1"], ["--workers", "got -1"]),
    (["--device", "cuda:banana"], ["--device", "cuda:banana", "cuda:N"]),
    (["--pipeline", "--frame", "0,0,0.1,0.1"], ["--frame", "--pipeline"]),
    (["--face", "largest"], ["--face", "add --pipeline"]),
    (["--detector", "short"], ["--detector", "add --pipeline"]),
    (["--frame", "0,0,5,5"], ["--frame", "[0, 1]", "0,0,5,5"]),
    (["--frame", "nan,0,1,1"], ["--frame", "[0, 1]"]),
    (["--frame", "0.5,0,0.2,1"], ["x1 > x0"]),
]


@pytest.mark.parametrize(
    "flags,fragments", EVAL_CASES, ids=lambda v: " ".join(v) if v and v[0][0] == "-" else ""
)
def test_eval_flags(flags, fragments, tmp_path, capsys, monkeypatch):
    import lsa_edge.data as data

    _never(monkeypatch, data, "load_dataset")
    _usage_error(["eval", str(MODEL), "--data", str(tmp_path), *flags], capsys, *fragments)


def test_evaluation_api_checks_batch_size_before_decoding(monkeypatch):
    import lsa_edge.evaluation as ev

    _never(monkeypatch, ev, "load_crops")
    with pytest.raises(ConfigError, match="batch_size"):
        ev.predict_aligned(None, None, None, batch_size=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers"):
        ev.predict_aligned(None, None, None, workers=-1)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- bench
BENCH_CASES = [
    (["--warmup", "-5"], ["--warmup", "got -5"]),
    (["--warmup", "-2"], ["--warmup", "got -2"]),  # accepted before: measured 3 frames
    (["--frames", "2"], ["--frames", "got 2"]),
    (["--faces", "0"], ["--faces", "got 0"]),
    (["--faces", "1,x"], ["--faces", "1,x"]),
    (["--threads", "-1"], ["--threads", "got -1"]),
    (["--threads", "1000000000"], ["--threads", "≤ 1024"]),
    (["--min-face-size", "nan"], ["--min-face-size", "nan"]),
    (["--backends", "onnxruntime,bogus"], ["unknown backend 'bogus'"]),
    (["--plot", "PLOT.txt"], ["--plot", ".txt", ".png"]),
]


@pytest.mark.parametrize(
    "flags,fragments", BENCH_CASES, ids=lambda v: " ".join(v) if v and v[0][0] == "-" else ""
)
def test_bench_flags_before_measuring(flags, fragments, tmp_path, capsys, monkeypatch):
    import lsa_edge.cli.bench as bench
    import lsa_edge.pipeline as pipeline

    _never(monkeypatch, bench, "measure")
    _never(monkeypatch, pipeline, "Pipeline")
    flags = [str(tmp_path / "p.txt") if f == "PLOT.txt" else f for f in flags]
    _usage_error(["bench", "--model", str(MODEL), *flags], capsys, *fragments)


def test_bench_renders_frames_lazily():
    """The clip is not held in memory (~0.9 MB a frame): at most a frame or two is alive while measuring."""
    import weakref

    import numpy as np

    from lsa_edge.cli.bench import measure

    refs, most_alive = [], 0

    class Res:
        def __init__(self):
            self.timings_ms = {"total": 1.0, "detect": 0.5}
            self.faces = [1]

    class Pipe:
        class detector:
            class runner:  # a ModelRunner: predict is what is timed
                predict = staticmethod(lambda x: x)

        class backend:
            predict = staticmethod(lambda x: x)

        def predict(self, img):
            nonlocal most_alive
            assert isinstance(img, np.ndarray) and img.shape == (480, 640, 3)
            refs.append(weakref.ref(img))
            most_alive = max(most_alive, sum(r() is not None for r in refs))
            return Res()

    r = measure(Pipe(), 1, 20, 3)
    assert r["frames"] == 20 and len(refs) == 23
    assert Pipe.detector.runner.predict(5) == Pipe.backend.predict(6) - 1 == 5  # unwrapped again
    assert most_alive <= 2  # rendering all 23 up front kept 23 alive


# ----------------------------------------------------------------------------------------------- train
def _train(tmp_path, *flags):
    return ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--no-progress", *flags]


TRAIN_CASES = [
    (["--batch-size", "0"], ["--batch-size", "got 0"]),
    (["--epochs", "0"], ["--epochs", "got 0"]),
    (["--threads", "-1"], ["--threads", "got -1"]),
    (["--threads", "0"], ["--threads", "got 0"]),
    (["--workers", "0"], ["--workers", "got 0"]),
    (["--input-size", "0x0"], ["--input-size", "0x0"]),
    (["--input-size", "100x112"], ["--input-size", "100x112"]),
    (["--d-model", "0"], ["--d-model", "got 0"]),
    (["--d-model", "6", "--layers", "1"], ["d_model"]),
    (["--layers", "0"], ["--layers", "got 0"]),
    (["--lr", "nan"], ["--lr", "nan"]),
    (["--lr", "inf"], ["--lr", "inf"]),
    (["--lr", "0"], ["--lr", "got 0"]),
    (["--tau", "nan"], ["--tau", "nan"]),
    (["--tau", "-1"], ["--tau", "got -1"]),
    (["--warmup-epochs", "nan"], ["--warmup-epochs", "nan"]),
    (["--weight-decay", "-0.1"], ["--weight-decay"]),
    (["--backbone-lr-mult", "inf"], ["--backbone-lr-mult"]),
    (["--ema", "nan"], ["--ema", "nan"]),
    (["--distill-weight", "2"], ["--distill-weight", "got 2"]),
    (["--stop-after", "0"], ["--stop-after", "got 0"]),
    (["--label-count", "0"], ["--label-count", "got 0"]),
    (["--label-fraction", "0"], ["--label-fraction"]),
    (["--val-fraction", "1"], ["--val-fraction"]),
    (["--max-val", "-1"], ["--max-val", "got -1"]),
    (["--seed", "-1"], ["--seed", "got -1"]),
    (["--device", "cuda:banana"], ["--device", "cuda:banana"]),
    (["--eval-every", "0"], ["--eval-every"]),
]


@pytest.mark.parametrize(
    "flags,fragments", TRAIN_CASES, ids=lambda v: " ".join(v) if v and v[0][0] == "-" else ""
)
def test_train_flags_before_any_data_is_read(flags, fragments, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import lsa_edge.training.trainer as trainer

    _never(monkeypatch, trainer, "prepare_data")
    _never(monkeypatch, trainer, "load_dataset")
    _usage_error(_train(tmp_path, *flags), capsys, *fragments)


def test_world_size_without_torchrun_is_a_usage_error(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import lsa_edge.training.trainer as trainer

    _never(monkeypatch, trainer, "prepare_data")
    for k in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    _usage_error(_train(tmp_path), capsys, "WORLD_SIZE=2", "RANK", "torchrun")
    monkeypatch.setenv("WORLD_SIZE", "two")
    _usage_error(_train(tmp_path), capsys, "WORLD_SIZE", "'two'")


CONFIG_CASES = [
    ("c.json", "[1, 2]", ["c.json", "mapping", "list"]),
    ("c.yaml", "model: 5", ["c.yaml", "model", "5", "mapping"]),
    ("c.yaml", 'epochs: "ten"', ["c.yaml", "epochs", "'ten'", "integer"]),
    ("c.yaml", "seed: [1]", ["c.yaml", "seed", "[1]", "integer"]),
    ("c.yaml", "model: {input_size: 5}", ["c.yaml", "input_size", "5", "list of 2 integers"]),
    ("c.yaml", "model: {tau: nan}", ["tau", "nan"]),
    ("c.yaml", "lr: [1]", ["c.yaml", "lr", "number"]),
    ("c.yaml", "augment: 3", ["c.yaml", "augment", "mapping"]),
    ("c.yaml", "augment: {hflip: yes_please}", ["c.yaml", "hflip", "number"]),
    ("c.yaml", "teachers: [1]", ["c.yaml", "teachers", "list of strings"]),
    ("c.yaml", "resume: 3", ["c.yaml", "resume", "true or false"]),
]


@pytest.mark.parametrize("name,text,fragments", CONFIG_CASES, ids=[c[1] for c in CONFIG_CASES])
def test_config_file_types_name_the_file_key_and_value(name, text, fragments, tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import lsa_edge.training.trainer as trainer

    _never(monkeypatch, trainer, "prepare_data")
    cfg = tmp_path / name
    cfg.write_text(text + "\n")
    _usage_error(_train(tmp_path, "--config", str(cfg)), capsys, *fragments)


def test_a_single_teacher_path_is_one_teacher_not_its_characters(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import lsa_edge.training.trainer as trainer

    _never(monkeypatch, trainer, "prepare_data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("teachers: runs/t/best.pt\n")
    assert main(_train(tmp_path, "--config", str(cfg))) == 1  # a missing checkpoint, named whole
    err = capsys.readouterr().err
    assert "runs/t/best.pt does not exist" in err and "checkpoint r " not in err
    assert trainer.TrainConfig(teachers="a/best.pt").teachers == ["a/best.pt"]  # type: ignore[arg-type]
    assert trainer.TrainConfig.from_dict({"teachers": "a.pt"}).teachers == ["a.pt"]


def test_train_config_api_refuses_what_the_cli_refuses():
    pytest.importorskip("torch")
    from lsa_edge.training.model import LSAConfig
    from lsa_edge.training.trainer import TrainConfig

    for kwargs in (
        {"lr": float("nan")},
        {"batch_size": 0},
        {"threads": 0},
        {"workers": -1},
        {"stop_after": 0},
        {"device": "cuda:banana"},
        {"epochs": "ten"},
        {"model": 5},
    ):
        with pytest.raises(ConfigError):
            TrainConfig(**kwargs)  # type: ignore[arg-type]
    for kwargs in (
        {"layers": 0},
        {"d_model": 0},
        {"heads": 0},
        {"input_size": (0, 0)},
        {"tau": float("inf")},
    ):
        with pytest.raises(ConfigError):
            LSAConfig(**kwargs)  # type: ignore[arg-type]
    assert TrainConfig(out=__import__("pathlib").Path("runs/x")).out == "runs/x"


# ------------------------------------------------------------------------------------- prior, compare
PRIOR_CASES = [
    (["--tau", "nan"], ["--tau", "nan"]),
    (["--tau", "inf"], ["--tau", "inf"]),
    (["--tau", "0"], ["--tau", "got 0"]),
    (["--input-size", "0x0"], ["--input-size"]),
]


@pytest.mark.parametrize(
    "flags,fragments", PRIOR_CASES, ids=lambda v: " ".join(v) if v and v[0][0] == "-" else ""
)
def test_prior_flags_before_the_encoder(flags, fragments, capsys, monkeypatch):
    pytest.importorskip("torch")
    import lsa_edge.training.text as text

    _never(monkeypatch, text, "TextEncoder")
    _usage_error(["prior", "--no-png", *flags], capsys, *fragments)


COMPARE_CASES = [
    (["--split", "validation"], ["--split", "validation"]),
    (["--count", "0"], ["--count", "got 0"]),
    (["--count", "-5"], ["--count", "-5"]),
    (["--workers", "0"], ["--workers", "got 0"]),
]


@pytest.mark.parametrize(
    "flags,fragments", COMPARE_CASES, ids=lambda v: " ".join(v) if v and v[0][0] == "-" else ""
)
def test_compare_flags(flags, fragments, tmp_path, capsys, monkeypatch):
    import lsa_edge.engines.compare as compare

    _never(monkeypatch, compare, "open_artifact")
    try:
        _usage_error(["compare", str(MODEL), str(MODEL), "--data", str(tmp_path), *flags], capsys, *fragments)
    except SystemExit as e:  # argparse's own choices: exit 2 as well
        assert e.code == 2
        assert "--split" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------- build
BUILD_CASES = [
    (["--max-accuracy-drop", "nan"], ["--max-accuracy-drop", "nan"]),
    (["--max-accuracy-drop", "inf"], ["--max-accuracy-drop", "inf"]),
    (["--max-accuracy-drop", "-1"], ["--max-accuracy-drop"]),
    (["--workspace", "0"], ["--workspace", "got 0"]),  # was `args.workspace or 1024`: silently 1024
    (["--workers", "0"], ["--workers", "got 0"]),
    (["--calib-count", "0"], ["--calib-count", "got 0"]),
    (["--val-count", "0"], ["--val-count", "got 0"]),
    (["--opset", "5"], ["--opset", "got 5"]),
    (["--seed", "-1"], ["--seed", "got -1"]),
    (["--batch", "0,8,16"], ["--batch"]),
    (["--dla-core", "-1"], ["--dla-core"]),
]


@pytest.mark.parametrize(
    "flags,fragments", BUILD_CASES, ids=lambda v: " ".join(v) if v and v[0][0] == "-" else ""
)
def test_build_flags_before_the_build(flags, fragments, tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnx")
    import lsa_edge.engines.build as build

    _never(monkeypatch, build.Build, "run")
    _usage_error(["build", str(MODEL), "--out", str(tmp_path / "b"), *flags], capsys, *fragments)
    assert not (tmp_path / "b").exists()


# --------------------------------------------------------------------------------------- output paths
def test_quoted_tilde_in_output_flags_is_the_home_folder(tmp_path, monkeypatch):
    from lsa_edge.cli import build_parser

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    p = build_parser()
    cases = [
        (["eval", "--data", "~/d", "--json", "~/e.json"], ("json", "data")),
        (["bench", "--json", "~/b.json", "--plot", "~/b.png"], ("json", "plot")),
        (["compare", "A", "B", "--data", "d", "--json", "~/c.json"], ("json",)),
        (["prior", "--json", "~/p.json", "--png", "~/p.png"], ("json", "png")),
        (["check", "m.onnx", "--json", "~/k.json"], ("json",)),
        (["doctor", "--json", "~/d.json"], ("json",)),
        (["train", "--data", "d", "--out", "~/run", "--config", "~/c.yaml"], ("out", "config")),
        (["build", "--out", "~/b"], ("out",)),
        (["build", "--from-bundle", "~/b"], ("from_bundle",)),
        (["convert-detector", "--tflite", "~/d.tflite", "--out", "~/det"], ("out", "tflite")),
    ]
    for argv, names in cases:
        args = p.parse_args(argv)
        for n in names:
            value = getattr(args, n)
            assert value.startswith(str(home)), (argv, n, value)
    assert p.parse_args(["prior"]).png == "lsa_prior.png"


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", str(MODEL), "--data", "DATA"],
        ["bench", "--model", str(MODEL)],
        ["compare", str(MODEL), str(MODEL), "--data", "DATA"],
        ["check", str(MODEL)],
        ["doctor", "--no-cameras"],
        ["prior", "--no-png"],
    ],
    ids=lambda a: a[0],
)
def test_json_under_a_file_or_onto_a_folder_is_refused(argv, tmp_path, capsys):
    if argv[0] == "prior":
        pytest.importorskip("torch")
    (tmp_path / "data").mkdir()  # outputs inside the data set are refused for another reason
    argv = [str(tmp_path / "data") if a == "DATA" else a for a in argv]
    a_file = tmp_path / "photo.jpg"
    a_file.write_bytes(b"\xff\xd8 not really")
    _usage_error([*argv, "--json", str(a_file / "out.json")], capsys, "--json", "is a file, not a folder")
    _usage_error([*argv, "--json", str(tmp_path)], capsys, "--json", "is a folder")
    assert a_file.read_bytes() == b"\xff\xd8 not really"


def test_out_folders_that_are_files_are_refused(tmp_path, capsys):
    a_file = tmp_path / "photo.jpg"
    a_file.write_bytes(b"x")
    if __import__("importlib").util.find_spec("onnx"):  # without onnx, build says to install it first
        _usage_error(["build", str(MODEL), "--out", str(a_file)], capsys, "--out", "is a file")
        _usage_error(["build", str(MODEL), "--out", str(a_file / "sub")], capsys, "--out", "is a file")
    _usage_error(["prior", "--png", str(a_file / "p.png")], capsys, "--png", "is a file")
    _usage_error(["prior", "--png", str(tmp_path)], capsys, "--png", "is a folder")
    _usage_error(
        ["convert-detector", "--tflite", str(a_file), "--out", str(a_file)], capsys, "--out", "is a file"
    )
    if __import__("importlib").util.find_spec("torch"):
        _usage_error(_train(tmp_path, "--out", str(a_file)), capsys, "--out", "is a file")
        _usage_error(_train(tmp_path, "--out", str(a_file / "run")), capsys, "--out", "is a file")
    assert a_file.read_bytes() == b"x"


# -------------------------------------------------------------------------------- a closed stdout (| head)
def _closed_stdout_run(argv, tmp_path):
    """Run the CLI with stdout a pipe whose reader has gone (``| head -c 0``)."""
    r, w = os.pipe()
    os.close(r)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lsa_edge", "-q", *argv],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=300,
            cwd=tmp_path,
        )
    finally:
        os.close(w)
    return proc


def test_bench_json_survives_a_closed_stdout(tmp_path):
    out = tmp_path / "b.json"
    proc = _closed_stdout_run(
        ["bench", "--faces", "1", "--frames", "5", "--warmup", "0", "--json", str(out)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["results"][0]["frames"] == 5
    assert "Traceback" not in proc.stderr and "please report" not in proc.stderr
    assert "Exception ignored" not in proc.stderr


def test_eval_writes_the_json_before_the_table(tmp_path, monkeypatch):
    """A table that cannot be printed (stdout closed) comes after the file is written."""
    import lsa_edge.cli.eval as eval_cmd

    order = []
    import lsa_edge.evaluation as evaluation

    monkeypatch.setattr(evaluation, "evaluate_model", lambda *a, **k: {"r": 1})
    monkeypatch.setattr(eval_cmd, "print_result", lambda *a, **k: order.append("table"))
    real = eval_cmd.write_json
    monkeypatch.setattr(eval_cmd, "write_json", lambda p, o: (order.append("json"), real(p, o))[1])
    assert main(["eval", "--data", str(tmp_path / "data"), "--json", str(tmp_path / "e.json")]) == 0
    assert order == ["json", "table"]


def test_the_console_drops_output_after_a_broken_pipe_instead_of_exiting(monkeypatch):
    from lsa_edge.cli import _common

    class Broken:
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def isatty(self):
            return False

        def fileno(self):
            raise OSError("no descriptor")

    monkeypatch.setattr(sys, "stdout", Broken())
    monkeypatch.setattr(_common, "_STDOUT_CLOSED", False)
    c = _common.console()
    c.print("a table")  # rich's default: SystemExit(1)
    c.print("more")
    _common.echo("plain")
    assert _common._STDOUT_CLOSED


# ------------------------------------------------------------------------- .pt files that are not checkpoints
def test_a_pt_that_is_onnx_or_text_says_what_it_is(tmp_path, capsys):
    pytest.importorskip("torch")
    from lsa_edge.errors import CheckpointError
    from lsa_edge.training.checkpoint import read_checkpoint

    onnx_pt = tmp_path / "m_as.pt"
    onnx_pt.write_bytes(MODEL.read_bytes())
    text_pt = tmp_path / "notpt.pt"
    text_pt.write_text("hi\n")
    junk_pt = tmp_path / "junk.pt"
    junk_pt.write_bytes(bytes(range(1, 200)))
    for path, expect in (
        (onnx_pt, "is an ONNX model, not a torch checkpoint; pass it as .onnx"),
        (text_pt, "is a text file, not an lsa-edge checkpoint"),
        (junk_pt, "is not an lsa-edge checkpoint"),
    ):
        with pytest.raises(CheckpointError) as e:
            read_checkpoint(path)
        msg = str(e.value)
        assert expect in msg and "\n" not in msg and "weights_only" not in msg, msg
    for argv in (
        ["prior", "--no-png", "--checkpoint", str(onnx_pt)],
        ["eval", str(onnx_pt), "--data", str(tmp_path)],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "pass it as .onnx" in err and "please report" not in err and "file an issue" not in err.lower()


def test_a_broken_pipe_outside_rich_ends_quietly(monkeypatch, capsys):
    """A plain print() into a closed pipe reaches main(): exit 0, no "please report it"."""
    import lsa_edge.cli.doctor as doctor
    from lsa_edge.cli import _common

    monkeypatch.setattr(_common, "_STDOUT_CLOSED", False)  # main() sets it: later tests must print again

    def boom(*a, **k):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(doctor, "run", boom)  # register() binds the module's run at parse time
    monkeypatch.setattr(sys, "stdout", type("S", (), {"fileno": lambda self: -1, "write": boom})())
    assert main(["doctor", "--no-cameras"]) == 0
    assert "please report" not in capsys.readouterr().err
    assert _common._STDOUT_CLOSED


def test_csv_format_without_attributes_csv_names_the_file(tmp_path, capsys):
    assert main(["eval", str(MODEL), "--data", str(tmp_path), "--format", "csv"]) == 1
    err = capsys.readouterr().err
    assert "attributes.csv not found" in err and "please report" not in err


# ----------------------------------------------------------------------------------------------- train
def test_train_flag_defaults_are_the_dataclass_defaults():
    """Every train flag left out is None, so the TrainConfig / LSAConfig default applies; the help text
    shows that default, read from the dataclass source without importing torch (checked here against the
    imported dataclasses)."""
    import dataclasses

    pytest.importorskip("torch")
    from lsa_edge.cli import _train_flags, build_parser
    from lsa_edge.cli.train import config_from_args
    from lsa_edge.training.model import LSAConfig
    from lsa_edge.training.trainer import TrainConfig

    owners = {"train": TrainConfig, "model": LSAConfig}
    read = _train_flags.field_defaults()
    for owner, cls in owners.items():
        real = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        literal = {k: v for k, v in real.items() if k in read[owner]}
        assert read[owner] == literal, owner  # every literal default read, each equal to the real one
        assert len(literal) >= len(real) - 1  # all but num_attributes (a constant's name)
    args = build_parser().parse_args(["train", "--data", "D", "--out", "O"])
    assert config_from_args(args) == {"model": {}, "data": "D", "out": "O"}  # nothing but the dataclass
    fields = {o: {f.name for f in dataclasses.fields(c)} for o, c in owners.items()}
    for flag in _train_flags.FLAGS:
        assert flag.field in fields[flag.owner], flag.name
        assert getattr(args, flag.dest) is None, flag.name  # left out: the dataclass decides
        if "{default}" in flag.help:  # the help shows the real default
            real = next(f.default for f in dataclasses.fields(owners[flag.owner]) if f.name == flag.field)
            assert read[flag.owner][flag.field] == real, flag.name
    for name in _train_flags.SHARED_FIELDS:
        assert name in fields["train"] and getattr(args, name) is None
    # the flag lists are the table: every TrainConfig field a flag can set is set by exactly one flag
    settable = {f.field for f in _train_flags.FLAGS if f.owner == "train"} | set(_train_flags.SHARED_FIELDS)
    assert settable == fields["train"] - {"data", "out", "model", "augment", "progress"}


def test_train_help_shows_the_dataclass_defaults(capsys):
    from lsa_edge.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in (
        "epochs (default: 12)",
        "(default: 64)",
        "(default: 0.001)",
        "(default: 128x112)",
        "(default: mobilenet_v2)",
    ):
        assert text in out, text


def test_train_flags_reach_the_config():
    from lsa_edge.cli import build_parser
    from lsa_edge.cli.train import config_from_args

    argv = [
        "train",
        "--data",
        "D",
        "--out",
        "O",
        "--epochs",
        "3",
        "--regions",
        "coarse",
        "--input-size",
        "64x48",
    ]
    argv += ["--teacher", "a.pt", "--teacher", "b.pt", "--no-pretrained", "--workers", "2", "--device", "cpu"]
    d = config_from_args(build_parser().parse_args([*argv, "--zero-init-attention", "--balance-init", "0.2"]))
    assert (
        d["epochs"] == 3 and d["workers"] == 2 and d["device"] == "cpu" and d["teachers"] == ["a.pt", "b.pt"]
    )
    assert d["model"] == {
        "region_set": "coarse",
        "input_size": [64, 48],
        "pretrained": False,
        "zero_init_attention": True,
        "balance_init": 0.2,
    }
    # a switch left out leaves the field to the config file or the default
    assert "zero_init_attention" not in config_from_args(build_parser().parse_args(argv))["model"]


def test_workers_default_is_read_from_the_dataclasses(monkeypatch, capsys):
    """--workers' help and its value when left out come from EvalOptions (eval, compare) and TrainConfig
    (train, read from its source without torch), never restated."""
    import dataclasses

    from lsa_edge.cli import _common, _train_flags
    from lsa_edge.evaluation import EvalOptions

    real = next(f.default for f in dataclasses.fields(EvalOptions) if f.name == "workers")
    assert _common.default_workers() == real and _common.check_workers(None) == real
    monkeypatch.setattr(_common, "default_workers", lambda: 7)
    assert _common.check_workers(None) == 7
    for cmd in ("eval", "compare"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "(default: 7)" in capsys.readouterr().out.replace("\n", " ").replace("  ", " "), cmd
    read = _train_flags.field_defaults()
    patched = {**read, "train": {**read["train"], "workers": 9}}
    monkeypatch.setattr(_train_flags, "field_defaults", lambda: patched)
    monkeypatch.setattr("lsa_edge.cli.train.field_defaults", _train_flags.field_defaults)
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "image decoding threads (default: 9)" in out
