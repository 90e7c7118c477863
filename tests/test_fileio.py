"""lsa_edge._fileio: atomic files, staged folders, overwrite and writability checks."""

from __future__ import annotations

import os

import pytest

from lsa_edge._fileio import (
    atomic_path,
    atomic_write,
    check_writable,
    copy_atomic,
    refuse_overwrite,
    same_or_inside,
    staged_dir,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from lsa_edge.errors import ConfigError


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".lsa-edge-tmp-")]


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    write_json_atomic(target, {"x": 1})
    assert target.read_text() == '{\n  "x": 1\n}\n'
    assert _leftovers(tmp_path) == []


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as f:
        f.write("half of the new")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_write_keeps_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_text_atomic(target, "new")
    assert target.stat().st_mode & 0o777 == 0o640


def test_staged_dir_renames_at_end_and_cleans_on_failure(tmp_path):
    out = tmp_path / "build"
    with pytest.raises(RuntimeError), staged_dir(out) as tmp:
        (tmp / "model.onnx").write_text("partial")
        raise RuntimeError("build failed")
    assert not out.exists() and _leftovers(tmp_path) == []
    with staged_dir(out) as tmp:
        (tmp / "model.onnx").write_text("complete")
        assert not out.exists()
    assert (out / "model.onnx").read_text() == "complete"


def test_staged_dir_refuses_non_empty_unless_overwrite(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--overwrite"), staged_dir(out):
        pass
    assert (out / "keep.txt").read_text() == "mine"
    with staged_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert _leftovers(tmp_path) == []


def test_refuse_overwrite(tmp_path):
    refuse_overwrite(tmp_path / "missing", overwrite=False)
    refuse_overwrite(tmp_path, overwrite=False)  # empty folder
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        refuse_overwrite(tmp_path, overwrite=False)
    with pytest.raises(ConfigError, match="exists"):
        refuse_overwrite(tmp_path / "f", overwrite=False)
    refuse_overwrite(tmp_path / "f", overwrite=True)


def test_same_or_inside(tmp_path):
    assert same_or_inside(tmp_path / "a", tmp_path / "a")
    assert same_or_inside(tmp_path / "a" / "b.jpg", tmp_path / "a")
    assert not same_or_inside(tmp_path / "ab", tmp_path / "a")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and a non-root user"
)
def test_check_writable(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "out.json")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        with pytest.raises(ConfigError, match="permission denied"):
            check_writable(ro / "out.json")
    finally:
        os.chmod(ro, 0o755)


def test_check_writable_reports_permission_denied_even_as_root(tmp_path, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(ConfigError, match=r"cannot write into .* \(permission denied\)"):
        check_writable(tmp_path / "out.json", what="--json")


def test_atomic_path_for_writers_that_take_a_name(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".onnx" and tmp != target
        tmp.write_text("half")
        raise RuntimeError("parity failed")
    assert target.read_text() == "old" and _leftovers(tmp_path) == []
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new" and _leftovers(tmp_path) == []
    assert target.stat().st_mode & 0o777 != 0o600  # not mkstemp's private mode


def test_copy_atomic(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(bytes(range(256)) * 5000)
    copy_atomic(src, tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == src.read_bytes() and _leftovers(tmp_path) == []


def test_same_or_inside_sees_hard_links(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"video")
    os.link(src, tmp_path / "alias.mp4")
    assert same_or_inside(tmp_path / "alias.mp4", src)
    assert not same_or_inside(tmp_path / "other.mp4", src)


def test_atomic_write_without_fsync_is_still_atomic(tmp_path, monkeypatch):
    target = tmp_path / "frame.jpg"
    target.write_bytes(b"old")
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    with pytest.raises(RuntimeError), atomic_write(target, fsync=False) as f:
        f.write(b"half")
        raise RuntimeError
    assert target.read_bytes() == b"old"
    write_bytes_atomic(target, b"new", fsync=False)
    assert target.read_bytes() == b"new" and synced == []
    assert [p.name for p in tmp_path.iterdir()] == ["frame.jpg"]
