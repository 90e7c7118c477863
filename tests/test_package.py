"""Model packages are checked on load: sha256 of every file (cached), missing files, invalid manifests,
names outside the folder; and the CLI turns each into one line and exit status 1."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from lsa_edge import _verify
from lsa_edge._manifest import MANIFEST
from lsa_edge.cli import main
from lsa_edge.engine_meta import sha256_file
from lsa_edge.errors import LsaEdgeError, PackageError
from lsa_edge.package import DEFAULT_MODEL_DIR, ModelPackage, select_backend
from lsa_edge.pipeline import Pipeline

SHIPPED = json.loads((DEFAULT_MODEL_DIR / MANIFEST).read_text())


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Each test its own verified-hash cache (memory and disk), never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(_verify.VERIFY_ENV, raising=False)
    _verify.clear_memory()
    yield
    _verify.clear_memory()


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory) -> Path:
    """A copy of the shipped default package (13 MB), made once; tests copy it again to damage it."""
    dst = tmp_path_factory.mktemp("pkg") / "default"
    shutil.copytree(DEFAULT_MODEL_DIR, dst)
    return dst


@pytest.fixture
def pkg(shipped_copy, tmp_path) -> Path:
    dst = tmp_path / "pkg"
    shutil.copytree(shipped_copy, dst)
    return dst


def small_package(root: Path, content: bytes = b"not really an onnx", **changes) -> Path:
    """The shipped manifest over a small stand-in model file (the loader reads the card from the
    manifest, so a manifest-level test needs no real ONNX)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.onnx").write_bytes(content)
    doc = json.loads(json.dumps(SHIPPED))
    doc["files"] = {"model.onnx": {"bytes": len(content), "sha256": sha256_file(root / "model.onnx")}}
    doc.update(changes)
    (root / MANIFEST).write_text(json.dumps(doc))
    return root


def flip_byte(path: Path, offset: int = 1000, keep_times: bool = True) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    if keep_times:  # what `touch -r` or rsync -t would do: only the ctime tells the file changed
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def age(path: Path, seconds: float = 3600) -> None:
    """Older mtime; the ctime stays now, so the cache still treats it as young unless RACY_S is 0."""
    t = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(t, t))


# -- item 1: sha256 checked on load ----------------------------------------------------------------------


def test_the_shipped_package_loads_and_is_verified(monkeypatch):
    hashed = []
    monkeypatch.setattr(_verify, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    pkg = ModelPackage.open(None)
    assert pkg.cpu_onnx == DEFAULT_MODEL_DIR / "model.onnx"
    assert sorted(Path(p).name for p in hashed) == ["model.onnx", "model_opset16.onnx"]  # every listed file


def test_one_flipped_byte_is_an_error_naming_file_and_hashes(pkg):
    expected = SHIPPED["files"]["model.onnx"]["sha256"]
    ModelPackage.open(pkg)  # fine before
    flip_byte(pkg / "model.onnx")
    actual = sha256_file(pkg / "model.onnx")
    with pytest.raises(PackageError) as e:
        ModelPackage.open(pkg)
    msg = str(e.value)
    assert str(pkg / "model.onnx") in msg and expected in msg and actual in msg
    assert "lsa-edge build" in msg and "copy it again" in msg and "LSA_EDGE_VERIFY=0" in msg


def test_a_truncated_file_is_caught_by_its_size_without_hashing(pkg, monkeypatch):
    data = (pkg / "model.onnx").read_bytes()
    (pkg / "model.onnx").write_bytes(data[:-10])
    monkeypatch.setattr(_verify, "sha256_file", lambda p: pytest.fail("hashed a file of the wrong size"))
    n = SHIPPED["files"]["model.onnx"]["bytes"]
    with pytest.raises(PackageError, match=rf"model\.onnx is {n - 10:,} bytes but .*records {n:,}"):
        ModelPackage.open(pkg)


def test_the_size_message_offers_no_bypass_that_would_not_bypass_it(pkg, monkeypatch):
    """LSA_EDGE_VERIFY=0 skips the hash comparison only (a stat costs nothing; a file of another size is
    never the one built): the size message must not suggest it."""
    (pkg / "model.onnx").write_bytes((pkg / "model.onnx").read_bytes()[:-10])
    with pytest.raises(PackageError) as e:
        ModelPackage.open(pkg)
    assert "LSA_EDGE_VERIFY" not in str(e.value) and "lsa-edge build" in str(e.value)
    monkeypatch.setenv(_verify.VERIFY_ENV, "0")
    with pytest.raises(PackageError, match="bytes but"):
        ModelPackage.open(pkg)


def test_escape_hatch_runs_a_changed_package_with_a_warning(pkg, monkeypatch, caplog):
    flip_byte(pkg / "model.onnx")
    monkeypatch.setenv(_verify.VERIFY_ENV, "0")
    with caplog.at_level(logging.WARNING):
        assert ModelPackage.open(pkg).cpu_onnx == pkg / "model.onnx"
    assert "LSA_EDGE_VERIFY=0" in caplog.text and "not checked" in caplog.text
    (pkg / "model.onnx").unlink()  # presence is still checked, when the file is opened
    with pytest.raises(PackageError, match="missing"):
        select_backend(ModelPackage.open(pkg), "auto")


def test_second_load_and_a_restart_hash_nothing(pkg, monkeypatch, tmp_path):
    monkeypatch.setattr(_verify, "RACY_S", 0.0)
    hashed = []
    monkeypatch.setattr(_verify, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    listed = sorted(str((pkg / name).resolve()) for name in SHIPPED["files"])  # the graphs, once each
    ModelPackage.open(pkg)
    assert len(hashed) == len(listed)
    ModelPackage.open(pkg)  # the same process: memory
    assert len(hashed) == len(listed)
    _verify.clear_memory()  # a new process: the disk cache
    ModelPackage.open(pkg)
    assert len(hashed) == len(listed)
    cache = json.loads((tmp_path / "cache" / "lsa-edge" / "verified.json").read_text())
    assert sorted(cache["files"]) == listed
    # a change keeping size and mtime is still seen (ctime is in the key), in memory and on disk
    flip_byte(pkg / "model.onnx", keep_times=True)
    with pytest.raises(PackageError, match="sha256"):
        ModelPackage.open(pkg)
    _verify.clear_memory()
    with pytest.raises(PackageError, match="sha256"):
        ModelPackage.open(pkg)


def test_young_files_are_hashed_every_time(tmp_path, monkeypatch):
    """Two same-size writes within one file-time tick look alike: a just-written file is not cached."""
    root = small_package(tmp_path / "p")
    hashed = []
    monkeypatch.setattr(_verify, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    ModelPackage.open(root)
    ModelPackage.open(root)
    assert len(hashed) == 2
    assert not (tmp_path / "cache" / "lsa-edge" / "verified.json").exists()


def test_a_wrong_cache_never_fails_a_good_package(pkg, tmp_path, monkeypatch):
    monkeypatch.setattr(_verify, "RACY_S", 0.0)
    f = (pkg / "model.onnx").resolve()
    st = f.stat()
    cache = tmp_path / "cache" / "lsa-edge" / "verified.json"
    cache.parent.mkdir(parents=True)
    cache.write_text(
        json.dumps({"version": 1, "files": {str(f): [st.st_size, st.st_mtime_ns, st.st_ctime_ns, "0" * 64]}})
    )
    ModelPackage.open(pkg)  # the cache's word is re-checked before failing
    assert json.loads(cache.read_text())["files"][str(f)][3] == SHIPPED["files"]["model.onnx"]["sha256"]


@pytest.mark.parametrize("content", ["{", "[1, 2]", '{"version": 1, "files": []}', "\x00\xff"])
def test_a_corrupt_cache_is_ignored(tmp_path, content):
    cache = tmp_path / "cache" / "lsa-edge" / "verified.json"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(content.encode("latin-1"))
    root = small_package(tmp_path / "p")
    assert ModelPackage.open(root).cpu_onnx == root / "model.onnx"


def test_a_huge_cache_file_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(_verify, "RACY_S", 0.0)
    cache = tmp_path / "cache" / "lsa-edge" / "verified.json"
    cache.parent.mkdir(parents=True)
    cache.write_text('{"version": 1, "files": {}, "pad": "' + "x" * (2 << 20) + '"}')
    monkeypatch.setattr(_verify.json, "loads", lambda *a, **k: pytest.fail("read a huge cache file"))
    f = tmp_path / "f"
    f.write_bytes(b"x")
    _verify.file_sha256(f)
    assert cache.stat().st_size < 1000  # replaced by a small one


def test_no_usable_cache_folder_still_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(_verify, "RACY_S", 0.0)
    root = small_package(tmp_path / "p")
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "afile" / "sub"))  # mkdir fails: not a folder
    ModelPackage.open(root)
    monkeypatch.delenv("XDG_CACHE_HOME")

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert _verify.cache_file() is None
    _verify.clear_memory()
    ModelPackage.open(root)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG spec: ignored
    assert _verify.cache_file() is None


def test_read_only_cache_folder_still_loads(tmp_path, monkeypatch):
    monkeypatch.setattr(_verify, "RACY_S", 0.0)
    root = small_package(tmp_path / "p")
    folder = tmp_path / "cache" / "lsa-edge"
    folder.mkdir(parents=True)

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_verify, "write_json_atomic", refuse)  # root ignores chmod: refuse the write itself
    assert ModelPackage.open(root).cpu_onnx is not None
    assert not (folder / "verified.json").exists()


def test_the_disk_cache_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(_verify, "RACY_S", 0.0)
    monkeypatch.setattr(_verify, "MAX_ENTRIES", 3)
    for k in range(5):
        f = tmp_path / f"f{k}"
        f.write_bytes(bytes([k]))
        _verify.file_sha256(f)
    files = json.loads((tmp_path / "cache" / "lsa-edge" / "verified.json").read_text())["files"]
    assert [Path(p).name for p in files] == ["f2", "f3", "f4"]  # the newest kept


def test_a_damaged_default_model_says_how_to_restore_it(pkg, monkeypatch):
    import lsa_edge.package as package
    from lsa_edge.cli.doctor import _models

    monkeypatch.setattr(package, "DEFAULT_MODEL_DIR", pkg)
    assert ModelPackage.open(None).source == pkg
    _, rows = _models()
    assert [r[1] for r in rows if r[0] == "default model"] == ["ok"]
    flip_byte(pkg / "model.onnx")
    with pytest.raises(PackageError, match="pip install --force-reinstall --no-deps lsa-edge"):
        ModelPackage.open(None)
    _, rows = _models()
    ((_, status, text),) = [r for r in rows if r[0] == "default model"]
    assert status == "fail" and "sha256" in text and "force-reinstall" in text


# -- item 2: a named file that is missing ------------------------------------------------------------------


def test_a_missing_listed_file_is_named(pkg):
    (pkg / "model.onnx").unlink()
    with pytest.raises(PackageError) as e:
        select_backend(ModelPackage.open(pkg), "auto")
    msg = str(e.value)
    assert "model.onnx" in msg and "missing" in msg and "Copy the whole folder again" in msg
    assert "nothing can run" not in msg and "TensorRT" not in msg


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("cpu_onnx", "model_int8_cpu.onnx", "model_int8_cpu.onnx"),
        ("engine", "engines/model_fp32_trt10.engine", "engines/model_fp32_trt10.engine"),
        ("detector", {"onnx": "detector/blazeface.onnx", "engine": None}, "detector/blazeface.onnx"),
    ],
)
def test_a_missing_named_file_outside_files_is_named(pkg, tmp_path, key, value, named):
    """Named, not there: an error naming it where it would be opened (the CPU model, the engine, the
    build's own detector)."""
    root = small_package(tmp_path / "p", **{key: value}) if key != "detector" else _with(pkg, detector=value)
    package = ModelPackage.open(root)
    with pytest.raises(PackageError, match=f"names {named} as .*missing"):
        if key == "engine":
            select_backend(package, "tensorrt")
        elif key == "cpu_onnx":
            select_backend(package, "auto", device="cpu")
        else:
            pytest.importorskip("onnxruntime")
            Pipeline(package, device="cpu")


def _with(pkg: Path, **changes) -> Path:
    doc = json.loads((pkg / MANIFEST).read_text())
    doc.update(changes)
    (pkg / MANIFEST).write_text(json.dumps(doc))
    return pkg


def _slimmed(pkg: Path, extra: dict) -> Path:
    """The shipped package whose manifest also lists ``extra`` files that are not there."""
    doc = json.loads((pkg / MANIFEST).read_text())
    (pkg / "model_opset16.onnx").unlink(missing_ok=True)  # removed by the user (the shipped one has it)
    for key, value in extra.items():
        doc[key] = value
    doc["files"].update(
        {
            "model_opset16.onnx": {"bytes": 5, "sha256": "1" * 64},
            "engines/model_fp32_trt10.engine": {"bytes": 5, "sha256": "2" * 64},
        }
    )
    (pkg / MANIFEST).write_text(json.dumps(doc))
    return pkg


def test_a_package_slimmed_for_one_device_loads_with_one_warning(pkg, caplog):
    """Files the user removed that nothing here opens (the opset-16 graph, an engine for another device):
    a warning naming them, once; the package runs on the CPU."""
    _slimmed(pkg, {"engine": "engines/model_fp32_trt10.engine"})
    with caplog.at_level(logging.WARNING, logger="lsa_edge.package"):
        package = ModelPackage.open(pkg)
        ModelPackage.open(pkg)
    warned = [r.getMessage() for r in caplog.records if "not there" in r.getMessage()]
    assert len(warned) == 1 and "model_opset16.onnx" in warned[0] and "model_fp32_trt10.engine" in warned[0]
    assert package.engine is None and package.cpu_onnx == pkg / "model.onnx"
    pytest.importorskip("onnxruntime")
    assert select_backend(package, "auto", device="cpu").name == "onnxruntime"
    with pytest.raises(PackageError, match=r"model_fp32_trt10\.engine.*missing"):
        select_backend(package, "tensorrt")  # the backend that would open it


def test_a_slimmed_package_without_its_cpu_model_fails_only_on_the_cpu(pkg, monkeypatch):
    from lsa_edge import package as package_mod

    engine = pkg / "engines" / "model_fp32_trt10.engine"
    engine.parent.mkdir()
    engine.write_bytes(b"engine")
    doc = json.loads((pkg / MANIFEST).read_text())
    doc["engine"] = "engines/model_fp32_trt10.engine"
    doc["files"][doc["engine"]] = {"bytes": 6, "sha256": sha256_file(engine)}
    (pkg / MANIFEST).write_text(json.dumps(doc))
    (pkg / "model.onnx").unlink()
    package = ModelPackage.open(pkg)  # the engine is all a Jetson runs
    assert package.engine == engine and package.cpu_onnx is None
    monkeypatch.setattr(package_mod, "_tensorrt", lambda *a, **k: "the engine's backend")
    assert select_backend(package, "auto") == "the engine's backend"
    with pytest.raises(PackageError, match=r"model\.onnx.*missing"):
        select_backend(package, "onnxruntime", device="cpu")


def test_a_corrupt_file_still_fails_on_load(pkg):
    _slimmed(pkg, {})
    (pkg / "model_opset16.onnx").write_bytes(b"12345")  # there, and not what was built
    with pytest.raises(PackageError, match=r"model_opset16\.onnx is damaged"):
        ModelPackage.open(pkg)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a" * 5000, "cannot be opened"),  # ENAMETOOLONG, not a crash
        ("x/" * 3000 + "y", "cannot be opened"),
        ("loop", "cannot be opened"),  # a symlink to itself: ELOOP
        ("\udcff.onnx", "missing"),  # not encodable
        ("sub", "not a file"),
    ],
)
def test_names_that_cannot_be_opened(tmp_path, name, why):
    root = small_package(tmp_path / "p", cpu_onnx=name)
    (root / "loop").symlink_to("loop")
    (root / "sub").mkdir()
    with pytest.raises(PackageError, match=why) as e:  # a missing one: when it is opened
        select_backend(ModelPackage.open(root), "auto", device="cpu")
    assert len(str(e.value)) < 800  # a long name is shortened in the message


# -- item 3: invalid manifests are user errors ---------------------------------------------------------


def _mutate(doc, path, value):
    *parents, last = path
    for k in parents:
        doc = doc[k]
    if value is KeyError:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "not valid JSON"),
        ('{"format": 1, "card": {', "not valid JSON .line 1"),
        ("[1, 2, 3]", "holds a JSON list"),
        ("null", "holds a JSON null"),
        ("\ufeff{}", "not valid JSON"),
    ],
)
def test_manifest_that_is_not_a_manifest(tmp_path, text, why):
    root = small_package(tmp_path / "p")
    (root / MANIFEST).write_text(text, encoding="utf-8")
    with pytest.raises(PackageError, match=why) as e:
        ModelPackage.open(root)
    assert str(root / MANIFEST) in str(e.value)


def test_manifest_that_is_a_folder(tmp_path):
    root = tmp_path / "p"
    (root / MANIFEST).mkdir(parents=True)
    with pytest.raises(PackageError, match=f"cannot read {root / MANIFEST}"):
        ModelPackage.open(root)


def test_manifest_that_is_binary(tmp_path):
    root = small_package(tmp_path / "p")
    (root / MANIFEST).write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(PackageError, match="not UTF-8"):
        ModelPackage.open(root)


@pytest.mark.parametrize(
    ("path", "value", "why"),
    [
        (["card"], KeyError, r'"card" is missing'),
        (["card"], [1], r'"card" must be an object, got list'),
        (["card", "preprocessing"], KeyError, "model card lacks the key 'preprocessing'"),
        (["card", "name"], KeyError, "model card lacks the key 'name'"),
        (["card", "thresholds"], [0.5], "model card is invalid: 1 thresholds for 40 attributes"),
        (["card", "thresholds"], "abc", "model card is malformed"),
        (["card", "preprocessing", "input_size"], ["a", "b"], "model card is malformed"),
        (["card", "preprocessing", "color_order"], "RGBA", "color_order must be RGB or BGR"),
        (["card", "format_version"], 99, "newer than this lsa-edge"),
        (["format"], 2, r"manifest format 2; this lsa-edge reads up to 1. Upgrade lsa-edge"),
        (["format"], "1", r'"format" must be a positive integer, got \'1\''),
        (["format"], True, r'"format" must be a positive integer'),
        (["precision"], "fp64", r'"precision" must be one of fp32, fp16, int8'),
        (["cpu_onnx"], 5, r'"cpu_onnx" must be a file name or null, got int'),
        (["detector"], "blazeface.onnx", r'"detector" must be an object or null, got str'),
        (["files"], ["model.onnx"], r'"files" must be an object'),
        (["files", "model.onnx"], "31df", r'"files".\'model.onnx\' must be an object'),
        (["files", "model.onnx", "sha256"], KeyError, r"sha256 must be 64 lowercase hex digits, got None"),
        (["files", "model.onnx", "sha256"], "XYZ", r"sha256 must be 64 lowercase hex digits, got 'XYZ'"),
        (["files", "model.onnx", "bytes"], -1, r"bytes must be a size in bytes"),
        (["files", "model.onnx", "bytes"], 1.5, r"bytes must be a size in bytes"),
        (["files", ""], {"bytes": 0, "sha256": "0" * 64}, r"empty file name"),
    ],
)
def test_invalid_manifest_names_file_and_problem(tmp_path, path, value, why):
    root = small_package(tmp_path / "p")
    doc = json.loads((root / MANIFEST).read_text())
    _mutate(doc, path, value)
    (root / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(PackageError, match=why) as e:
        ModelPackage.open(root)
    assert str(root / MANIFEST) in str(e.value)


def test_a_huge_manifest_is_not_read(tmp_path, monkeypatch):
    import lsa_edge._manifest as manifest

    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 1000)
    root = small_package(tmp_path / "p")
    with pytest.raises(PackageError, match="bytes: not a manifest"):
        ModelPackage.open(root)


def test_several_problems_are_reported_at_once(tmp_path):
    root = small_package(tmp_path / "p", precision="fp64", cpu_onnx=7, files=3)
    with pytest.raises(PackageError) as e:
        ModelPackage.open(root)
    assert all(k in str(e.value) for k in ('"precision"', '"cpu_onnx"', '"files"'))


def test_older_manifests_still_load(tmp_path, caplog):
    """Keys stay compatible: the shipped manifest, and one from before format/files/detector existed."""
    root = small_package(tmp_path / "p")
    pkg = ModelPackage.open(root)
    assert pkg.cpu_onnx == root / "model.onnx" and pkg.card.name == SHIPPED["card"]["name"]
    doc = json.loads((root / MANIFEST).read_text())
    for key in ("format", "files", "detector", "engine", "precision", "onnx"):
        doc.pop(key)
    doc["unknown_future_key"] = {"x": 1}
    (root / MANIFEST).write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        pkg = ModelPackage.open(root)
    assert pkg.precision == "fp32" and pkg.cpu_onnx == root / "model.onnx"
    assert "records no file checksums" in caplog.text


# -- names outside the package -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../outside.onnx", "sub/../../outside.onnx", "ABSOLUTE", "..\\outside.onnx", "C:/x.onnx"]
)
@pytest.mark.parametrize("where", ["cpu_onnx", "files", "detector", "engine"])
def test_names_outside_the_package_are_refused(tmp_path, name, where, monkeypatch):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"secret")
    name = str(outside) if name == "ABSOLUTE" else name
    root = small_package(tmp_path / "p")
    doc = json.loads((root / MANIFEST).read_text())
    if where == "files":
        doc["files"][name] = {"bytes": 6, "sha256": sha256_file(outside)}
    elif where == "detector":
        doc["detector"] = {"onnx": name}
    else:
        doc[where] = name
    (root / MANIFEST).write_text(json.dumps(doc))
    hashed = []
    monkeypatch.setattr(_verify, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    with pytest.raises(PackageError, match=r"outside the package|absolute path") as e:
        ModelPackage.open(root)
    assert "only files inside its folder" in str(e.value)
    assert all(Path(p).resolve().parent == root.resolve() for p in hashed)


# -- item 5: the CLI ---------------------------------------------------------------------------------


def _one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "please report" not in err and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if "ERROR" in ln]
    assert len(lines) == 1, err
    assert all(n in lines[0] for n in needles), err
    return lines[0]


def test_cli_on_a_corrupt_package(pkg, capsys, tmp_path):
    flip_byte(pkg / "model.onnx")
    runs = [
        ["run", "--model", str(pkg), "--source", "demo:1", "--max-frames", "1"],
        ["check", str(pkg)],
        ["eval", str(pkg), "--data", str(tmp_path)],
    ]
    if all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")):
        runs.append(["compare", str(pkg), str(pkg / "model.onnx"), "--data", str(tmp_path)])
    for argv in runs:
        assert main(argv) == 1, argv
        _one_error_line(capsys, "model.onnx", "sha256", SHIPPED["files"]["model.onnx"]["sha256"])


def test_cli_on_an_invalid_or_incomplete_package(tmp_path, capsys):
    root = small_package(tmp_path / "p")
    (root / MANIFEST).write_text('{"card": ')
    for argv in (
        ["run", "--model", str(root), "--source", "demo:1"],
        ["check", str(root)],
        ["eval", str(root), "--data", str(tmp_path)],
    ):
        assert main(argv) == 1, argv
        _one_error_line(capsys, str(root / MANIFEST), "not valid JSON")
    root = small_package(tmp_path / "q")
    (root / "model.onnx").unlink()
    for argv in (
        ["run", "--model", str(root), "--source", "demo:1"],
        ["check", str(root)],
        ["eval", str(root), "--data", str(tmp_path)],
    ):
        assert main(argv) == 1, argv
        _one_error_line(capsys, "model.onnx", "missing")


@pytest.mark.parametrize(
    ("text", "why"), [("[]", "holds a JSON list"), ('{"format": "x"}', '"format" must be')]
)
def test_build_from_bundle_on_an_invalid_manifest(tmp_path, capsys, text, why):
    root = small_package(tmp_path / "p")
    (root / MANIFEST).write_text(text)
    assert main(["build", "--from-bundle", str(root)]) == 1
    _one_error_line(capsys, str(root / MANIFEST), why)


def test_check_lints_a_good_package(pkg, capsys, tmp_path):
    pytest.importorskip("onnx")
    out = tmp_path / "check.json"
    assert main(["check", str(pkg), "--trt", "10", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["passed"] and doc["graphs"] == {"10": "model.onnx"}
    assert main(["check", str(tmp_path)]) == 2  # a folder without a manifest
    assert "without manifest.json" in capsys.readouterr().err


def test_every_loader_error_is_an_lsa_edge_error():
    assert issubclass(PackageError, LsaEdgeError)
