"""lsa_edge._fileio: atomic files, staged folders, overwrite and writability checks."""

from __future__ import annotations

import os
from pathlib import Path

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


# ---- review findings: symlinked / mounted --out, stale leftovers, writes through links and to devices,
# ---- OS errors naming the target, the umask read without changing it


def test_staged_dir_into_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "disk" / "build"
    real.mkdir(parents=True)
    link = tmp_path / "build"
    link.symlink_to(real, target_is_directory=True)
    with staged_dir(link) as tmp:
        (tmp / "model.onnx").write_text("complete")
    assert link.is_symlink() and (real / "model.onnx").read_text() == "complete"
    assert _leftovers(real) == [] and _leftovers(tmp_path) == []
    with staged_dir(link, overwrite=True) as tmp:  # over the previous build, through the link
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == ["new.txt"]


def _as_mount_point(monkeypatch, folder):
    """A bind mount (Docker -v ./build:/build): it cannot be removed or renamed over (EBUSY)."""
    import errno

    real_replace, real_rmdir = os.replace, os.rmdir

    def replace(src, dst, *a, **k):
        if os.path.realpath(dst) == str(folder) or os.path.realpath(src) == str(folder):
            raise OSError(errno.EBUSY, "Device or resource busy", str(src), None, str(dst))
        return real_replace(src, dst, *a, **k)

    def rmdir(p, *a, **k):
        if os.path.realpath(p) == str(folder):
            raise OSError(errno.EBUSY, "Device or resource busy", str(p))
        return real_rmdir(p, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rmdir", rmdir)
    monkeypatch.setattr(os.path, "ismount", lambda p: os.path.realpath(p) == str(folder))


@pytest.mark.parametrize("overwrite", [False, True])
def test_staged_dir_into_a_mount_point(tmp_path, monkeypatch, overwrite):
    out = tmp_path / "build"
    out.mkdir()
    if overwrite:
        (out / "old.onnx").write_text("old")
    _as_mount_point(monkeypatch, out.resolve())
    with staged_dir(out, overwrite=overwrite) as tmp:
        assert tmp.parent == out.resolve()  # staged inside: a mount point cannot be renamed over
        (tmp / "model.onnx").write_text("complete")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.txt").write_text("a")
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "sub"]
    assert (out / "sub" / "a.txt").read_text() == "a" and _leftovers(tmp_path) == []


def test_staged_dir_failure_at_the_end_is_a_user_error_and_cleans_up(tmp_path, monkeypatch):
    import errno

    from lsa_edge.errors import LsaEdgeError

    out = tmp_path / "build"
    out.mkdir()
    (out / "old.onnx").write_text("old")
    real_replace = os.replace

    def replace(src, dst, *a, **k):
        if str(dst).endswith("b.txt"):  # the second new file: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(src))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    full = pytest.raises(LsaEdgeError, match=r"build: No space left on device.*temporary copy was removed")
    with full, staged_dir(out, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "b.txt").write_text("b")
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in out.iterdir()) == ["old.onnx"]  # put back as it was, no hidden leftovers
    assert (out / "old.onnx").read_text() == "old"

    def busy(*a, **k):
        raise OSError(errno.EBUSY, "busy")

    monkeypatch.setattr(os, "replace", busy)  # a new folder that cannot be renamed into place
    with pytest.raises(LsaEdgeError, match=r"into .*new: busy"), staged_dir(tmp_path / "new") as tmp:
        (tmp / "a.txt").write_text("a")
    assert _leftovers(tmp_path) == [] and not (tmp_path / "new").exists()


def test_staged_dir_warns_about_stale_leftovers_without_deleting_them(tmp_path, caplog):
    import time

    stale = tmp_path / ".lsa-edge-tmp-build.abc123"
    stale.mkdir()
    (stale / "model.onnx").write_text("a killed build")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = tmp_path / ".lsa-edge-tmp-other.def456"  # a build running now: not named
    fresh.mkdir()
    with caplog.at_level("WARNING"), staged_dir(tmp_path / "build") as tmp:
        (tmp / "x").write_text("x")
    assert str(stale) in caplog.text and str(fresh) not in caplog.text
    assert stale.exists() and fresh.exists()


def test_check_writable_probes_where_staged_dir_stages(tmp_path, monkeypatch):
    import tempfile

    from lsa_edge._fileio import staging_folder

    real = tmp_path / "disk" / "build"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    (tmp_path / "empty").mkdir()
    probed = []
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*a, **k):
        probed.append(Path(k["dir"]))
        return real_mkstemp(*a, **k)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    for final in (tmp_path / "new" / "deeper", tmp_path / "empty", tmp_path / "link"):
        probed.clear()
        expected = staging_folder(final)
        check_writable(final, "--out")
        assert probed == [expected]
        with staged_dir(final) as tmp:
            staged_in = tmp.parent
        # staged in the folder probed (or, for a new one, in the folders created below it)
        assert staged_in.resolve() == expected.resolve() or expected in staged_in.parents


def test_atomic_writes_go_through_symlinks(tmp_path):
    real = tmp_path / "elsewhere" / "report.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "report.json"
    link.symlink_to(real)
    write_json_atomic(link, {"x": 1})
    assert link.is_symlink() and real.read_text() == '{\n  "x": 1\n}\n'
    with atomic_path(link) as tmp:
        assert tmp.parent == real.parent
        tmp.write_text("through")
    assert link.is_symlink() and real.read_text() == "through"
    assert _leftovers(tmp_path) == [] and _leftovers(real.parent) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_devices_and_fifos_are_written_directly(tmp_path, monkeypatch):
    import stat
    import tempfile

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        refuse_overwrite(fifo, overwrite=False)  # nothing to lose in a pipe

        def no_probe(*a, **k):
            raise AssertionError("no temporary file beside a device or FIFO")

        monkeypatch.setattr(tempfile, "mkstemp", no_probe)
        check_writable(fifo, "--json")
        write_json_atomic(fifo, {"x": 1}, indent=None)
        assert os.read(reader, 100) == b'{"x": 1}\n'
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    finally:
        os.close(reader)


def test_os_errors_name_the_target_not_the_temporary_file(tmp_path, monkeypatch):
    import errno

    target = tmp_path / "d.json"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        write_json_atomic(target, {"x": 1})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert not target.exists() and _leftovers(tmp_path) == []
    with pytest.raises(OSError) as info, atomic_path(target):
        pass
    assert info.value.filename == str(target)


def test_the_umask_is_read_without_changing_it(tmp_path, monkeypatch):
    from lsa_edge._fileio import file_mode, umask

    expected = umask()

    def no_umask(*a):
        raise AssertionError("os.umask(0) opens a window for world-writable files in other threads")

    monkeypatch.setattr(os, "umask", no_umask)
    assert umask() == expected and file_mode() == 0o666 & ~expected
    write_text_atomic(tmp_path / "new.txt", "x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~expected
    with staged_dir(tmp_path / "build") as tmp:
        (tmp / "a").write_text("a")
    assert (tmp_path / "build").stat().st_mode & 0o777 == 0o777 & ~expected


def test_check_writable_names_stale_leftovers_once(tmp_path, caplog):
    import time

    stale = tmp_path / ".lsa-edge-tmp-result.json.x1"
    stale.write_text("a killed write")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    with caplog.at_level("WARNING"):
        check_writable(tmp_path / "result.json", "--json")
        with staged_dir(tmp_path / "build") as tmp:
            (tmp / "x").write_text("x")
    assert caplog.text.count(str(stale)) == 1 and stale.exists()


def test_staged_dir_never_removes_files_that_appeared_during_the_build(tmp_path):
    from lsa_edge.errors import LsaEdgeError

    out = tmp_path / "build"
    out.mkdir()
    with pytest.raises(LsaEdgeError, match=r"now holds notes\.txt"), staged_dir(out) as tmp:
        (tmp / "model.onnx").write_text("new")
        (out / "notes.txt").write_text("the user's")  # written while the build ran
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
