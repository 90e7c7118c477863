"""User mistakes with the files commands read and write end as one line naming the input and the next
step (exit 2 for usage errors), never as "… failed: X … please report it" — and before the long work."""

from __future__ import annotations

import tempfile

import pytest

from lsa_edge.cli import main
from lsa_edge.errors import ConfigError
from lsa_edge.package import DEFAULT_MODEL_DIR

MODEL = DEFAULT_MODEL_DIR / "model.onnx"


def _deny_writes(monkeypatch):
    """Permission errors as a non-root user gets them (we run as root here, where chmod does not bite)."""

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)


def _never(monkeypatch, target, name):
    def called(*a, **k):
        raise AssertionError(f"{name} ran before the output was checked")

    monkeypatch.setattr(target, name, called)


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", str(MODEL), "--data", "DATA"],
        ["bench", "--model", str(MODEL), "--frames", "2"],
        ["compare", str(MODEL), str(MODEL), "--data", "DATA"],
        ["check", str(MODEL)],
        ["doctor", "--no-cameras"],
    ],
    ids=lambda a: a[0],
)
def test_json_into_a_read_only_folder_is_refused_before_the_work(argv, tmp_path, capsys, monkeypatch):
    import lsa_edge.evaluation as evaluation

    _never(monkeypatch, evaluation, "evaluate_model")
    (tmp_path / "data").mkdir()
    argv = [str(tmp_path / "data") if a == "DATA" else a for a in argv]
    _deny_writes(monkeypatch)
    assert main([*argv, "--json", str(tmp_path / "ro" / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "--json" in err and "permission denied" in err and "please report" not in err
    monkeypatch.undo()
    assert main([*argv, "--json", str(tmp_path)]) == 2  # a folder where a file is expected
    assert "is a folder; give a file name" in capsys.readouterr().err


def test_damaged_checkpoints_and_onnx_name_the_file_and_what_to_do(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    truncated_pt = tmp_path / "best.pt"
    truncated_pt.write_bytes(b"PK\x03\x04" + bytes(2000))  # the start of a zip, cut off
    empty_pt = tmp_path / "empty.pt"
    empty_pt.write_bytes(b"")
    truncated_onnx = tmp_path / "model.onnx"
    truncated_onnx.write_bytes(MODEL.read_bytes()[:4000])
    for argv, code, expect in [
        (["build", str(truncated_pt), "--precision", "fp32"], 1, "truncated"),
        (["build", str(empty_pt), "--precision", "fp32"], 1, "empty file"),
        (["compare", str(truncated_onnx), str(MODEL), "--data", str(tmp_path)], 2, "lsa-edge check"),
        (["build", str(DEFAULT_MODEL_DIR), "--precision", "fp32"], 2, "not a training run"),
        (["build", str(truncated_pt), "--out", str(tmp_path), "--overwrite"], 2, "holds the input"),
        (["build", "--from-bundle", str(truncated_onnx)], 2, "takes a bundle folder"),
        (["build", str(MODEL), "--calib-data", str(truncated_pt)], 2, "is a file; give a folder"),
        (
            ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--config", str(tmp_path)],
            2,
            "folder",
        ),
    ]:
        if argv[0] == "build" and "--out" not in argv:
            argv = [*argv, "--out", str(tmp_path / "o")]
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert expect in err and "please report" not in err, (argv, err)
        assert "Check the documentation of torch.load" not in err  # one line, not torch's page
    assert not (tmp_path / "o").exists()


def test_from_bundle_checks_the_folder_before_touching_it(tmp_path, capsys, monkeypatch):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    _deny_writes(monkeypatch)
    assert main(["build", "--from-bundle", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "--from-bundle" in err and "permission denied" in err and "please report" not in err


def test_a_full_disk_at_write_time_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    import errno
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "full" / "d.json"
    assert main(["doctor", "--no-cameras", "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{out}: No space left on device" in err and "free some space" in err
    assert "please report" not in err and ".lsa-edge-tmp-" not in err
    assert not out.exists() and os.listdir(out.parent) == []


def test_os_errors_end_as_one_line_with_both_names_and_a_next_step(capsys, monkeypatch):
    import errno

    import lsa_edge.cli.doctor as doctor

    def collect(cameras):
        raise OSError(errno.EACCES, "Permission denied", "/a/src", None, "/b/dst")

    monkeypatch.setattr(doctor, "collect", collect)
    assert main(["doctor", "--no-cameras"]) == 1
    err = capsys.readouterr().err
    assert "/a/src -> /b/dst: Permission denied" in err and "check its permissions" in err
    assert "please report" not in err and "Traceback" not in err


def _model_copy(tmp_path):
    import shutil

    model = tmp_path / "m.onnx"
    shutil.copyfile(MODEL, model)
    return model


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--data", "DATA", "--split", "all", "--json", "DATA/attributes.csv"],
        ["eval", "MODEL", "--data", "DATA", "--json", "MODEL"],
        ["eval", "MODEL", "--data", "DATA", "--json", "ALIAS"],  # a hard link to the model
        ["compare", "MODEL", str(MODEL), "--data", "DATA", "--json", "MODEL"],
        ["compare", str(MODEL), str(MODEL), "--data", "DATA", "--json", "DATA/attributes.csv"],
        ["check", "MODEL", "--json", "MODEL"],
        ["bench", "--model", "MODEL", "--json", "MODEL"],
        ["bench", "--model", "MODEL", "--plot", "MODEL"],
        ["prior", "--checkpoint", "MODEL", "--json", "MODEL"],
        ["prior", "--checkpoint", "MODEL", "--png", "MODEL"],
        ["run", "--model", "MODEL", "--json", "MODEL", "--overwrite"],
    ],
    ids=lambda a: " ".join(a),
)
def test_json_and_pictures_never_replace_an_input(argv, tmp_path, capsys, monkeypatch):
    import os

    import lsa_edge.evaluation as evaluation

    _never(monkeypatch, evaluation, "evaluate_model")
    data = tmp_path / "ds"
    data.mkdir()
    (data / "attributes.csv").write_text("image_id,Smiling\na.jpg,1\n")
    model = _model_copy(tmp_path)
    os.link(model, tmp_path / "alias.onnx")
    names = {"DATA": str(data), "MODEL": str(model), "ALIAS": str(tmp_path / "alias.onnx")}
    argv = [names.get(a.split("/")[0], a.split("/")[0]) + a[len(a.split("/")[0]) :] for a in argv]
    before = {p: p.read_bytes() for p in (data / "attributes.csv", model)}
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert ("is the" in err or "lies inside" in err) and "please report" not in err
    assert {p: p.read_bytes() for p in before} == before and not (data / "new.json").exists()


def test_an_earlier_json_result_is_still_replaced(tmp_path, capsys):
    out = tmp_path / "doctor.json"
    out.write_text("{}\n")
    assert main(["doctor", "--no-cameras", "--json", str(out)]) == 0
    assert "sections" in out.read_text()


def test_json_through_a_symlink_keeps_the_link(tmp_path, capsys):
    real = tmp_path / "reports" / "doctor.json"
    real.parent.mkdir()
    real.write_text("{}\n")
    link = tmp_path / "doctor.json"
    link.symlink_to(real)
    assert main(["doctor", "--no-cameras", "--json", str(link)]) == 0
    assert link.is_symlink() and "sections" in real.read_text()


def test_json_to_stdout_is_written_directly_and_the_console_moves_to_stderr(capfd):
    import json

    assert main(["run", "--source", "demo:1", "--max-frames", "2", "--json", "/dev/stdout"]) == 0
    out, err = capfd.readouterr()
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [0, 1]  # nothing but JSON
    assert "frames" in err and "exists" not in err
    assert main(["doctor", "--no-cameras", "--json", "/dev/stdout"]) == 0
    out, err = capfd.readouterr()
    assert "sections" in json.loads(out)


@pytest.mark.parametrize("kind", ["symlink", "mount point"])
def test_build_into_a_symlinked_or_mounted_out_folder(kind, tmp_path, capsys, monkeypatch):
    import errno
    import os

    pytest.importorskip("onnx")
    real = tmp_path / "disk" / "build"
    real.mkdir(parents=True)
    out = real
    if kind == "symlink":
        out = tmp_path / "build"
        out.symlink_to(real, target_is_directory=True)
    else:  # Docker's -v ./build:/build: the folder cannot be removed or renamed over
        real_replace, real_rmdir = os.replace, os.rmdir

        def replace(src, dst, *a, **k):
            if str(real) in (os.path.realpath(src), os.path.realpath(dst)):
                raise OSError(errno.EBUSY, "Device or resource busy", str(src))
            return real_replace(src, dst, *a, **k)

        def rmdir(p, *a, **k):
            if os.path.realpath(p) == str(real):
                raise OSError(errno.EBUSY, "Device or resource busy", str(p))
            return real_rmdir(p, *a, **k)

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "rmdir", rmdir)
        monkeypatch.setattr(os.path, "ismount", lambda p: os.path.realpath(p) == str(real))
    argv = ["build", str(MODEL), "--precision", "fp32", "--no-detector", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert (real / "manifest.json").is_file() and (kind != "symlink" or out.is_symlink())
    assert [p.name for p in real.iterdir() if p.name.startswith(".")] == []
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err  # again, over the first build
    assert (real / "manifest.json").is_file() and [p for p in tmp_path.rglob(".lsa-edge-tmp-*")] == []


def test_a_new_result_file_inside_an_input_folder_is_fine(tmp_path):
    """eval runs/x --json runs/x/test.json: a new file beside the checkpoints replaces nothing; an existing
    file there (an input) is still refused."""
    from lsa_edge.cli._common import check_json_out

    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"weights")
    check_json_out(run / "test.json", inputs=[(run, "the model")])
    with pytest.raises(ConfigError, match="lies inside the model"):
        check_json_out(run / "best.pt", inputs=[(run, "the model")])
    assert (run / "best.pt").read_bytes() == b"weights"
