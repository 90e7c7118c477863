"""`lsa-edge build --config FILE`: BuildConfig fields from YAML/JSON, flags override, unknown keys named,
the resolved config written beside the output; flag defaults and help text come from BuildConfig."""

from __future__ import annotations

import json

import pytest

from lsa_edge.cli import build_parser, main
from lsa_edge.errors import ConfigError
from lsa_edge.manifest import BUILD_CONFIG, MODEL_ONNX
from lsa_edge.package import DEFAULT_MODEL_DIR


def _cfg(argv):
    from lsa_edge.cli.build import config_from_args

    return config_from_args(build_parser().parse_args(["build", str(DEFAULT_MODEL_DIR / MODEL_ONNX), *argv]))


def test_file_values_are_used_and_flags_override_them(tmp_path):
    pytest.importorskip("yaml")
    cfg_file = tmp_path / "build.yaml"
    cfg_file.write_text(
        "precision: int8\nbatch: [2, 4, 8]\nworkspace_mib: 512\nexclude_nodes: [a, b]\ndetector: false\n"
        "calib_count: 64\nval_count: null\n"
    )
    cfg = _cfg(["--config", str(cfg_file)])
    assert cfg.precision == "int8" and cfg.batch == (2, 4, 8) and cfg.workspace_mib == 512
    assert cfg.exclude_nodes == ("a", "b") and cfg.detector is False and cfg.calib_count == 64
    assert cfg.val_count is None and str(cfg.out) == "build/model-int8"  # the default out follows the file
    cfg = _cfg(["--config", str(cfg_file), "--workspace", "256", "--batch", "1,1,1", "--precision", "fp16"])
    assert cfg.workspace_mib == 256 and cfg.batch == (1, 1, 1) and cfg.precision == "fp16"
    assert cfg.calib_count == 64 and cfg.detector is False  # not given on the command line: the file's
    (tmp_path / "b.json").write_text(json.dumps({"out": str(tmp_path / "o"), "simplify": False}))
    cfg = _cfg(["--config", str(tmp_path / "b.json")])
    assert cfg.out == tmp_path / "o" and cfg.simplify is False
    assert _cfg(["--config", str(tmp_path / "b.json"), "--out", str(tmp_path / "x")]).out == tmp_path / "x"


def test_without_a_file_the_defaults_are_build_configs():
    from lsa_edge.engines.config import BuildConfig

    cfg = _cfg([])
    assert cfg == BuildConfig(out=cfg.out)
    text = build_parser()._subparsers._group_actions[0].choices["build"].format_help()
    d = BuildConfig()
    assert f"default: {','.join(map(str, d.batch))}" in text and f"default: {d.workspace_mib}" in text
    assert f"default: {d.calib_count}" in text and f"default: {d.max_accuracy_drop}" in text


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"precision": "fp16", "batchsize": 4}', ("batchsize", "unknown BuildConfig field", "batch")),
        ('{"workspace_mib": "big"}', ("workspace_mib", "big")),
        ("[1, 2]", ("mapping of BuildConfig fields",)),
    ],
)
def test_a_bad_file_is_a_usage_error_naming_the_key(tmp_path, capsys, content, fragments):
    f = tmp_path / "c.json"
    f.write_text(content)
    with pytest.raises(ConfigError) as err:
        _cfg(["--config", str(f)])
    assert all(x in str(err.value) for x in fragments), str(err.value)
    assert (
        main(["build", str(DEFAULT_MODEL_DIR / MODEL_ONNX), "--config", str(f), "--out", str(tmp_path / "o")])
        == 2
    )
    assert fragments[0] in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main(["build", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_resolved_config_is_written_beside_the_build(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from lsa_edge.manifest import Manifest

    f = tmp_path / "c.json"
    f.write_text(
        json.dumps({"precision": "fp32", "detector": False, "batch": [2, 4, 8], "workspace_mib": 512})
    )
    out = tmp_path / "o"
    argv = ["build", str(DEFAULT_MODEL_DIR / MODEL_ONNX), "--config", str(f), "--out", str(out)]
    assert main([*argv, "--workspace", "256", "--no-progress"]) == 0
    written = json.loads((out / BUILD_CONFIG).read_text())
    assert (
        written["precision"] == "fp32" and written["batch"] == [2, 4, 8] and written["workspace_mib"] == 256
    )
    assert written["detector"] is False and written["progress"] is False and written["out"] == str(out)
    assert (
        written
        == _cfg(["--config", str(f), "--out", str(out), "--workspace", "256", "--no-progress"]).to_json()
    )
    m = Manifest.read(out)
    assert m.batch == (2, 4, 8) and m.workspace_mib == 256 and m.detector is None
