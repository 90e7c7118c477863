"""lsa-edge's TensorRT code against NVIDIA's real Python bindings of each generation.

The bindings wheels (tensorrt-bindings 8.6.1, tensorrt-cu12-bindings 10.3.0 / 10.13.3.9 / 11.4.0.106) are
prepared by ``python scripts/tensorrt_api.py fetch`` (CI does it before the tests: ~5 MB from the package
index, stub libraries compiled with cc); a version not prepared skips with that command as the reason.
Each version runs in its own process (tests/_real_tensorrt_probe.py, and the CLI): the logger, network and
builder flags, parser-error formatting, calibrators, GPU probing, ``doctor`` and ``build --from-bundle``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tensorrt_api", ROOT / "scripts" / "tensorrt_api.py")
tensorrt_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tensorrt_api)

VERSIONS = list(tensorrt_api.WHEELS)


def _env(version: str) -> dict[str, str]:
    if not tensorrt_api.is_prepared(version):
        pytest.skip(
            f"NVIDIA's TensorRT {version} bindings are not prepared here: python scripts/tensorrt_api.py fetch "
            "(needs the package index and a C compiler)"
        )
    return tensorrt_api.binding_env(version)


@pytest.fixture(scope="module", params=VERSIONS)
def probe(request):
    version = request.param
    res = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_real_tensorrt_probe.py")],
        env=_env(version),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_it_is_the_real_module(probe):
    assert probe["module"] == "tensorrt_bindings"  # not a fake: the extension NVIDIA ships
    assert probe["generation"] in ("8.5", "10", "11")


def test_logger_forwards_every_real_severity(probe):
    assert probe["logger_is_ilogger"]
    assert probe["logger_levels"] == {
        "INTERNAL_ERROR": 50,
        "ERROR": 40,
        "WARNING": 30,
        "INFO": 20,
        "VERBOSE": 10,
    }


def test_network_flags_use_the_real_enum_values(probe):
    values = probe["flag_values"]
    flags = probe["network_flags"]
    if probe["generation"] == "8.5":
        assert flags["weak"] == 1 << values["EXPLICIT_BATCH"]
    elif probe["generation"] == "10":
        assert flags == {"weak": 0, "typed": 1 << values["STRONGLY_TYPED"]}
    else:  # 11: strongly typed is all there is (the flag is accepted)
        assert flags == {"weak": 1 << values["STRONGLY_TYPED"], "typed": 1 << values["STRONGLY_TYPED"]}
        assert "EXPLICIT_BATCH" not in values


def test_builder_flags_exist_where_the_code_sets_them(probe):
    flags = probe["builder_flags"]
    assert flags["TF32"]["set"] and flags["TF32"]["set"][0][0] == "TF32"
    if probe["generation"] == "11":  # removed: a clear error, never an AttributeError from deep inside
        for name in ("FP16", "INT8"):
            assert flags[name]["set"] == [] and flags[name]["error"]["lsa_edge_error"]
            assert f"no BuilderFlag.{name}" in flags[name]["error"]["message"]
    else:
        assert flags["FP16"]["set"] == [["FP16", 0]] and flags["INT8"]["set"] == [["INT8", 1]]
    assert probe["weak_typing_deprecated"] == (
        probe["version"].startswith("10.13") or probe["generation"] == "11"
    )


def test_parser_errors_name_their_code(probe):
    assert probe["enum_names"]["ErrorCode.UNSUPPORTED_NODE"] == "UNSUPPORTED_NODE"  # a method before 10.16
    assert probe["enum_names"]["ILogger.Severity.WARNING"] == "WARNING"
    assert (
        probe["parser_error"] == "No importer registered for op: GridSample [node 3, code UNSUPPORTED_NODE]"
    )
    assert "bound method" not in probe["parser_error"]


def test_no_gpu_is_a_clear_error_everywhere(probe):
    if not probe["cuda_python_installed"]:
        pytest.skip("cuda-python is not installed in this environment (it is in the dev extra)")
    for what in ("gpu_info", "backend", "load_engine"):
        err = probe[what]
        if err is None:  # a machine with a GPU: nothing to check here
            continue
        assert err["lsa_edge_error"], (what, err)
        assert err["type"] in ("GpuUnavailableError", "EngineMismatchError", "ConfigError"), (what, err)
    if probe["gpu_info"] is not None:
        assert "no usable CUDA GPU" in probe["gpu_info"]["message"]


def test_calibrators_subclass_the_real_trampolines(probe):
    cal = probe["calibrator"]
    if probe["generation"] == "11":
        assert not cal["has_classes"]
        assert (
            cal["error"]["type"] == "CalibrationError" and "removed in TensorRT 11" in cal["error"]["message"]
        )
        return
    assert cal["has_classes"] and cal["isinstance_base"]
    assert cal["algorithm"] == "ENTROPY_CALIBRATION_2"  # NVIDIA's base method answered: __init__ was called
    assert cal["pointers"] == 2 and cal["faces_on_gpu"] and cal["end"] is None
    assert cal["cache_written"]
    assert cal["cache_calibrator_minmax"] and cal["cache_algorithm"] == "MINMAX_CALIBRATION"


@pytest.mark.parametrize("version", VERSIONS)
def test_cli_doctor_and_build_from_bundle_with_real_bindings(version, tmp_path):
    env = _env(version)
    lsa = [sys.executable, "-m", "lsa_edge"]
    res = subprocess.run(
        [*lsa, "doctor", "--no-cameras", "--json", str(tmp_path / "doctor.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((tmp_path / "doctor.json").read_text())
    assert report["sections"]["tensorrt"]["version"] == version
    gpu_rows = [r for r in report["rows"] if r["section"] == "gpu"]
    assert gpu_rows and all(r["status"] != "fail" for r in gpu_rows), gpu_rows
    bundle = tmp_path / "bundle"
    shutil.copytree(ROOT / "lsa_edge" / "models" / "default", bundle)
    res = subprocess.run(
        [*lsa, "build", "--from-bundle", str(bundle)], env=env, capture_output=True, text=True, timeout=180
    )
    if "GPU" in " ".join(r["status"] + r["detail"] for r in gpu_rows) and res.returncode == 0:
        return  # a machine with a GPU and TensorRT libraries would build; not this one
    assert res.returncode == 1, res.stderr[-2000:]
    assert "please report" not in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert "no usable CUDA GPU" in res.stderr or "cuda-python" in res.stderr, res.stderr[-2000:]
    assert not (bundle / "engines").exists() or not any((bundle / "engines").iterdir())
    # a package whose engine exists, run with --backend tensorrt on a machine without a GPU
    (bundle / "engines").mkdir(exist_ok=True)
    (bundle / "engines" / "model.engine").write_bytes(b"not a plan: TensorRT must never see it")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["engine"] = "engines/model.engine"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    run = [
        *lsa,
        "run",
        "--model",
        str(bundle),
        "--backend",
        "tensorrt",
        "--source",
        "demo:1",
        "--max-frames",
        "1",
    ]
    res = subprocess.run(run, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and "please report" not in res.stderr, res.stderr[-2000:]
    assert "no usable CUDA GPU" in res.stderr or "cuda-python" in res.stderr, res.stderr[-2000:]
