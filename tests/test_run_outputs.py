"""``lsa-edge run``'s outputs: never over the user's files, complete after signals and kills, named after
folder sources, bounded memory. The shipped model runs the demo (no training needed)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
from _helpers import random_image

from lsa_edge._opencv import cv2
from lsa_edge.cli import main
from lsa_edge.cli.run import VideoSink, check_outputs, open_input  # the old import path keeps working
from lsa_edge.errors import ConfigError, LsaEdgeError
from lsa_edge.sinks import JsonLinesSink


def _video(path: Path, n: int = 5) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(n):
        w.write(np.full((48, 64, 3), 20 * i, np.uint8))
    w.release()
    return path


def _images(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"pic_{i}.png"
        cv2.imwrite(str(p), random_image(64, 64, seed=i))
        paths.append(p)
    return paths


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_model(monkeypatch):
    """The checks must happen before the model loads: loading it fails the test."""
    import lsa_edge.pipeline

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr(lsa_edge.pipeline.Pipeline, "__init__", boom)


# ------------------------------------------------------------------------------------- never overwrite
def test_save_over_the_source_video_is_refused_before_the_model_loads(tmp_path, capsys, no_model):
    video = _video(tmp_path / "same.avi")
    before = video.read_bytes()
    for extra in ([], ["--overwrite"]):  # --overwrite never allows replacing the input
        assert main(["run", "--source", str(video), "--save", str(video), *extra]) == 2
        assert main(["run", "--source", str(video), "--json", str(video), *extra]) == 2
    assert video.read_bytes() == before
    err = capsys.readouterr().err
    assert "is the source file" in err and "please report" not in err


def test_outputs_in_a_folder_source_are_refused(tmp_path, capsys, no_model):
    imgs = tmp_path / "imgs"
    _images(imgs)
    before = _snapshot(imgs)
    for argv in (
        ["--save", str(imgs)],
        ["--save", str(imgs / "annotated")],
        ["--save", str(imgs / "out.mp4")],
        ["--json", str(imgs / "faces.jsonl")],
        ["--save", str(imgs), "--overwrite"],
    ):
        assert main(["run", "--source", str(imgs), *argv]) == 2, argv
    assert _snapshot(imgs) == before
    assert "lies inside the source folder" in capsys.readouterr().err


def test_glob_sources(tmp_path, monkeypatch, no_model):
    monkeypatch.chdir(tmp_path)
    _images(tmp_path / "shots")
    pattern = "shots/*.png"

    def args(**kw):
        return Namespace(**{"source": pattern, "save": None, "json": None, "overwrite": False, **kw})

    with pytest.raises(ConfigError, match="lies inside the folder of the source pattern"):
        check_outputs(args(save="shots/annotated"))  # a folder save beside the originals
    with pytest.raises(ConfigError, match="matches the source pattern"):
        check_outputs(args(json="shots/pic_0.png", overwrite=True))
    check_outputs(args(json="shots/faces.jsonl", save="annotated"))  # harmless: the pattern skips them


def test_existing_outputs_need_overwrite(tmp_path, capsys, no_model):
    old = tmp_path / "faces.jsonl"
    old.write_text("old\n")
    full = tmp_path / "frames"
    full.mkdir()
    (full / "keep.jpg").write_bytes(b"mine")
    video = tmp_path / "out.mp4"
    video.write_bytes(b"old video")
    assert main(["run", "--source", "demo:1", "--json", str(old)]) == 2
    assert main(["run", "--source", "demo:1", "--save", str(full)]) == 2
    assert main(["run", "--source", "demo:1", "--save", str(video)]) == 2
    err = capsys.readouterr().err
    assert err.count("--overwrite") >= 3 and "not empty" in err and "please report" not in err
    assert old.read_text() == "old\n" and video.read_bytes() == b"old video"
    # --overwrite lets the checks pass (then the monkeypatched model load is what fails)
    check_outputs(Namespace(source="demo:1", save=str(video), json=str(old), overwrite=True))
    check_outputs(Namespace(source="demo:1", save=str(tmp_path / "empty"), json=None, overwrite=False))


def test_a_read_only_output_folder_is_a_usage_error_up_front(tmp_path, monkeypatch, capsys, no_model):
    import tempfile

    def denied(*a, **k):  # as root nothing is read-only: simulate what a user sees
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert main(["run", "--source", "demo:1", "--save", str(tmp_path / "a.mp4")]) == 2
    assert main(["run", "--source", "demo:1", "--json", str(tmp_path / "a.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and "please report" not in err


def test_a_write_error_during_the_run_names_the_output(tmp_path, monkeypatch, capsys):
    import lsa_edge.sinks

    out = tmp_path / "faces.jsonl"
    real = os.write

    def full(fd, data):
        if os.fstat(fd).st_ino == out.stat().st_ino:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(lsa_edge.sinks.os, "write", full)
    assert main(["run", "--source", "demo:1", "--max-frames", "2", "--json", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"cannot write JSON lines {out}: No space left on device" in err and "please report" not in err


def test_image_write_errors_are_lsa_edge_errors(tmp_path, monkeypatch):
    import lsa_edge.sinks

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(lsa_edge.sinks, "write_bytes_atomic", denied)
    with pytest.raises(LsaEdgeError, match=r"cannot write the annotated frame .*Permission denied"):
        VideoSink(tmp_path / "frames", 30).write(random_image())


# --------------------------------------------------------------------------------------- sinks
def test_video_sink_writes_under_a_temporary_name_until_closed(tmp_path):
    target = tmp_path / "clip.avi"
    target.write_bytes(b"the old one")
    with VideoSink(target, 10.0) as sink:
        for i in range(3):
            sink.write(random_image(48, 64, seed=i))
        assert target.read_bytes() == b"the old one"  # a kill now leaves the old file
        hidden = [p for p in tmp_path.iterdir() if p.name.startswith(".lsa-edge-tmp-")]
        assert len(hidden) == 1 and hidden[0].suffix == ".avi"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi"]
    assert int(cv2.VideoCapture(str(target)).get(cv2.CAP_PROP_FRAME_COUNT)) == 3


def test_json_lines_are_whole_and_on_disk_after_each_write(tmp_path):
    out = tmp_path / "r.jsonl"
    with JsonLinesSink(out) as sink:
        sink.write({"frame": 0, "faces": []})
        assert out.read_text() == '{"frame": 0, "faces": []}\n'  # no user-space buffer: a tail sees it
        sink.write({"frame": 1, "big": "x" * 100_000})
        assert [json.loads(x)["frame"] for x in out.read_text().splitlines()] == [0, 1]


# ---------------------------------------------------------------------------------- folder sources
def test_folder_source_lines_and_saved_frames_are_named_after_the_files(tmp_path):
    imgs = tmp_path / "imgs"
    paths = _images(imgs, 3)
    (imgs / "pic_1b.jpg").write_bytes(b"not an image")  # skipped: numbering would drift from here on
    out, saved = tmp_path / "faces.jsonl", tmp_path / "annotated"
    assert main(["run", "--source", str(imgs), "--json", str(out), "--save", str(saved)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [Path(x["file"]).name for x in lines] == [p.name for p in paths]
    assert sorted(p.name for p in saved.iterdir()) == [p.name for p in paths]
    assert all(cv2.imread(str(saved / p.name)) is not None for p in paths)


def test_folder_sink_names(tmp_path):
    sink = VideoSink(tmp_path / "out", 30)
    img = random_image(32, 32)
    assert sink.write(img, "a/x.png").name == "x.png"
    assert sink.write(img, "b/x.png").name == "x-2.png"  # same name from another sub-folder
    assert sink.write(img, "a/x.png").name == "x.png"  # a loop replaces its own frame
    assert sink.write(img, "c/y.gif").name == "y.jpg"  # a format OpenCV does not write
    assert sink.write(img).name == "000004.jpg"  # video and camera frames keep their numbers
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_open_input_still_importable_from_the_cli_module():
    with open_input("demo:1", 2, False) as src:
        assert len(list(src)) == 2


# ------------------------------------------------------------------------------------------ signals
def _start_run(tmp_path: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lsa_edge", "run", "--source", "demo:1", "--max-frames", "100000", *extra]
    return subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no JSON lines in time")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_a_stop_signal_finishes_the_frame_and_closes_the_writers(tmp_path, sig, code):
    out, video = tmp_path / "r.jsonl", tmp_path / "out.avi"
    proc = _start_run(tmp_path, "--json", out.name, "--save", video.name)
    _wait_for_lines(out, 3, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    if sig == signal.SIGINT:
        assert "interrupted" in err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines) >= 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lsa-edge-tmp-")]


def test_ctrl_c_during_model_loading_is_one_line(tmp_path):
    """SIGINT/SIGTERM while the model loads (the slow part of start-up): no traceback, the right code."""
    code = """
import os, signal, sys, time
import lsa_edge.pipeline
from lsa_edge.cli import main
real = lsa_edge.pipeline.Pipeline.__init__
def slow(self, *a, **k):
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    time.sleep(5)
    real(self, *a, **k)
lsa_edge.pipeline.Pipeline.__init__ = slow
sys.exit(main(["run", "--source", "demo:1", "--max-frames", "2", "--json", "r.jsonl"]))
"""
    for name, rc in (("SIGINT", 130), ("SIGTERM", 143)):
        res = subprocess.run(
            [sys.executable, "-c", code, name], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert res.returncode == rc, res.stderr
        assert "Traceback" not in res.stderr and "please report" not in res.stderr
        assert not (tmp_path / "r.jsonl").exists()


def test_an_interrupted_import_is_not_a_missing_dependency(monkeypatch):
    import importlib

    from lsa_edge import _lazy

    def interrupted(name):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as err:  # what a C extension's init makes of a pending Ctrl-C
            raise ImportError(f"{name} failed to import") from err

    monkeypatch.setattr(importlib, "import_module", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _lazy.require("onnxruntime")


def test_run_demo_loop_and_recursive_flag(tmp_path, capsys):
    """--loop repeats the demo (it used to end at 90 frames); --recursive reaches sub-folders and is refused
    where it means nothing; an output a '**' pattern would read is refused."""
    import shutil

    import lsa_edge

    out = tmp_path / "loop.jsonl"
    assert main(["run", "--source", "demo", "--loop", "--max-frames", "120", "--json", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 120
    nest = tmp_path / "nest" / "a"
    nest.mkdir(parents=True)
    shutil.copy(Path(lsa_edge.__file__).parent / "assets" / "astronaut.jpg", nest / "x.jpg")
    out2 = tmp_path / "rec.jsonl"
    assert main(["run", "--source", str(tmp_path / "nest"), "--recursive", "--json", str(out2)]) == 0
    assert len(out2.read_text().splitlines()) == 1
    assert main(["run", "--source", "demo", "--recursive", "--max-frames", "2"]) == 2
    assert "--recursive applies to a folder or glob" in capsys.readouterr().err
    pattern = str(tmp_path / "nest" / "**" / "*.jsonl")
    (tmp_path / "nest" / "old.jsonl").write_text("{}\n")
    assert (
        main(["run", "--source", pattern, "--json", str(tmp_path / "nest" / "old.jsonl"), "--overwrite"]) == 2
    )
    assert "matches the source pattern" in capsys.readouterr().err


# ------------------------------------------------------------- videos that do not read back whole
def _dropping_writer(monkeypatch, keep: int):
    """cv2.VideoWriter on a full disk: write() fails silently after ``keep`` frames."""
    real = cv2.VideoWriter

    class Dropping:
        def __init__(self, *a):
            self.inner, self.n = real(*a), 0

        def isOpened(self):
            return self.inner.isOpened()

        def write(self, img):
            self.n += 1
            if self.n <= keep:
                self.inner.write(img)

        def release(self):
            self.inner.release()

    monkeypatch.setattr(cv2, "VideoWriter", Dropping)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_video_missing_frames_keeps_the_old_one_and_says_where_the_partial_is(
    tmp_path, monkeypatch, suffix
):
    target = tmp_path / f"clip{suffix}"
    target.write_bytes(b"the good old video")
    _dropping_writer(monkeypatch, keep=2)
    sink = VideoSink(target, 10.0)
    for i in range(6):
        sink.write(random_image(48, 64, seed=i))
    with pytest.raises(LsaEdgeError) as info:
        sink.close()
    partial = tmp_path / f"clip.partial{suffix}"
    msg = str(info.value)
    assert "2 of 6 frames" in msg and str(partial) in msg and "previous file there was kept" in msg
    assert target.read_bytes() == b"the good old video"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, partial.name])


def test_a_run_whose_video_is_incomplete_exits_1(tmp_path, monkeypatch, capsys):
    _dropping_writer(monkeypatch, keep=1)
    out = tmp_path / "out.avi"
    assert main(["run", "--source", "demo:1", "--max-frames", "3", "--save", str(out)]) == 1
    err = capsys.readouterr().err
    assert "1 of 3 frames" in err and "out.partial.avi" in err and "please report" not in err
    assert not out.exists() and (tmp_path / "out.partial.avi").exists()


def test_frames_of_another_size_are_fitted_not_dropped(tmp_path, caplog):
    target = tmp_path / "mixed.avi"
    with caplog.at_level("WARNING"), VideoSink(target, 10.0) as sink:
        sink.write(random_image(48, 64, seed=0))
        sink.write(np.full((96, 32, 3), 255, np.uint8))  # tall: scaled and padded left and right
        sink.write(random_image(20, 20, seed=1))
        sink.write(random_image(48, 64, seed=2))
    cap = cv2.VideoCapture(str(target))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 4 and all(f.shape == (48, 64, 3) for f in frames)
    assert frames[1][:, 28:36].mean() > 200 and frames[1][:, :10].mean() < 30  # white centre, black bars
    assert caplog.text.count("scaled and padded") == 1


def test_a_writer_that_cannot_open_on_a_full_disk_blames_the_disk_not_the_codec(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    class Closed:
        def __init__(self, *a):
            pass

        def isOpened(self):
            return False

    monkeypatch.setattr(cv2, "VideoWriter", Closed)
    with pytest.raises(ConfigError, match=r"try --save out\.avi"):
        VideoSink(tmp_path / "a.mp4", 10).write(random_image(8, 8))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10 << 30, 10 << 30, 4096))
    with pytest.raises(LsaEdgeError) as info:
        VideoSink(tmp_path / "a.mp4", 10).write(random_image(8, 8))
    assert "is full" in str(info.value) and "out.avi" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_symlinked_video_is_written_through(tmp_path):
    real = tmp_path / "videos" / "clip.avi"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "clip.avi"
    link.symlink_to(real)
    with VideoSink(link, 10.0) as sink:
        sink.write(random_image(48, 64))
    assert link.is_symlink() and int(cv2.VideoCapture(str(real)).get(cv2.CAP_PROP_FRAME_COUNT)) == 1
