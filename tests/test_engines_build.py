"""`lsa-edge build` end to end on CPU: checkpoint → ONNX → INT8/FP16 (accuracy-gated) → build bundle, the
manifest contract, TensorRT compatibility per generation, `--from-bundle` against a fake TensorRT, and
`lsa-edge compare`."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxsim")

from lsa_edge.cli import main
from lsa_edge.engines.accuracy import AccuracyCheck, AccuracyGateError, enforce
from lsa_edge.engines.build import Build, BuildConfig, build_from_manifest, read_manifest
from lsa_edge.engines.export import read_card
from lsa_edge.errors import ConfigError, LsaEdgeError

REQUIRED_KEYS = {
    "precision",
    "onnx",
    "cpu_onnx",
    "engine",
    "parity_max_abs_diff",
    "accuracy_delta",
    "tensorrt_commands",
    "card",
}


@pytest.fixture(scope="module")
def checkpoint(tiny_model, tmp_path_factory):
    from lsa_edge.training.checkpoint import save_checkpoint

    model, card = tiny_model
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(path, model, card, meta={"data": {"name": "celeba-10k"}})
    return path


def _cfg(out, celeba_dir, **kw):
    base = dict(
        out=out,
        calib_data=str(celeba_dir),
        calib_count=48,
        val_count=60,
        max_accuracy_drop=100.0,
        progress=False,
    )
    return BuildConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def int8_bundle(checkpoint, celeba_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    manifest = Build(checkpoint, _cfg(out, celeba_dir, precision="int8")).run()
    return out, manifest


def test_manifest_contract(int8_bundle):
    out, manifest = int8_bundle
    assert set(manifest) >= REQUIRED_KEYS
    assert manifest == read_manifest(out)
    assert manifest["precision"] == "int8"
    assert manifest["onnx"] == "model_int8_trt.onnx" and manifest["cpu_onnx"] == "model_int8_cpu.onnx"
    assert manifest["engine"] is None and manifest["tensorrt_local"] is None  # no TensorRT here
    assert 0 <= manifest["parity_max_abs_diff"] <= 1e-4
    # TensorRT 10 (the default target) runs the Q/DQ graph with FP16 for the rest: that is the delta.
    assert manifest["accuracy_delta"] == pytest.approx(manifest["accuracy"]["int8_trt_fp16"]["delta_points"])
    assert set(manifest["accuracy"]) == {"int8_trt", "int8_cpu", "int8_trt_fp16", "int8_trt_fp16_85"}
    assert manifest["accuracy_by_tensorrt"]["11"] == manifest["accuracy"]["int8_trt"]["delta_points"]
    # TensorRT 8.5 builds the opset-16 Q/DQ graph and may run every float layer in FP16: gated as such
    assert manifest["accuracy_by_tensorrt"]["8.5"] == manifest["accuracy"]["int8_trt_fp16_85"]["delta_points"]
    assert "model_int8_trt_opset16.onnx" in manifest["accuracy"]["int8_trt_fp16_85"]["artifact"]
    assert manifest["calibration"]["faces"] == 48 and manifest["calibration"]["method"] == "percentile"
    for name, info in manifest["files"].items():
        from lsa_edge.engines.build import sha256_file

        assert sha256_file(out / name) == info["sha256"], name
    assert (out / "calibration.cache").read_text().startswith("TRT-")
    assert (out / "detector" / "NOTICE").exists() and manifest["detector"]["onnx"].startswith("detector/")


def test_each_onnx_carries_its_own_card(int8_bundle):
    out, manifest = int8_bundle
    card = read_card(out / "model_int8_trt.onnx")
    assert card.build["precision"] == "int8" and "s8/s8" in card.build["quantization"]
    assert card.build["accuracy"]["int8_trt"]["faces"] == 60 and "int8_cpu" not in card.build["accuracy"]
    cpu = read_card(out / "model_int8_cpu.onnx")
    assert set(cpu.build["accuracy"]) == {"int8_cpu"} and "u8/s8" in cpu.build["quantization"]
    fp32 = read_card(out / "model.onnx")
    assert fp32.build["precision"] == "fp32" and "calibration" not in fp32.build
    assert fp32.preprocessing.template.source.startswith("median BlazeFace")  # measured during the build
    assert card.build["export"]["parity_max_abs_diff"] == manifest["parity_max_abs_diff"]
    assert manifest["card"] == json.loads(json.dumps(card.to_dict()))


def test_commands_per_tensorrt_generation(int8_bundle):
    out, manifest = int8_bundle
    cmds = manifest["tensorrt_commands"]
    assert cmds["lsa_edge"] == "lsa-edge build --from-bundle ."  # run inside the copied bundle
    # opset 17 writes LayerNormalization, which TensorRT 8.5 cannot parse: the bundle carries an opset-16
    # rewrite of each graph for it, so one bundle serves every generation.
    assert all(manifest["tensorrt_compatibility"][g]["ok"] for g in ("8.5", "10", "11"))
    assert "not_buildable" not in cmds
    assert manifest["opset16"] == {
        "model.onnx": "model_opset16.onnx",
        "model_int8_trt.onnx": "model_int8_trt_opset16.onnx",
    }
    assert manifest["onnx_by_tensorrt"]["8.5"] == "model_int8_trt_opset16.onnx"
    assert "--onnx=model_int8_trt_opset16.onnx" in cmds["trtexec"]["8.5"][1]
    assert "--onnx=model_opset16.onnx" in cmds["trtexec_implicit_int8_8.5"]  # implicit INT8: the FP32 graph
    assert manifest["opset16_parity_max_abs_diff"]["model_opset16.onnx"] < 1e-4
    assert read_card(out / "model_int8_trt_opset16.onnx").build["opset16_of"] == "model_int8_trt.onnx"
    mkdir, model10, det10 = cmds["trtexec"]["10"]
    assert mkdir == "mkdir -p engines"
    assert "--onnx=model_int8_trt.onnx" in model10 and "--int8" in model10
    assert "--maxShapes=faces:16x3x64x48" in model10
    assert "--int8" not in cmds["trtexec"]["11"][1]  # strongly typed: the Q/DQ graph decides
    assert "--onnx=detector/blazeface_full_range_fp16.onnx" in det10 and "--stronglyTyped" in det10
    assert "blazeface_full_range_fp16.onnx" in cmds["trtexec"]["11"][2]
    deploy = (out / "DEPLOY.md").read_text()
    assert "lsa-edge build --from-bundle ." in deploy and model10 in deploy and "TensorRT 8.5:" in deploy
    assert "not buildable" not in deploy


def test_trt85_target_exports_opset16_without_layernorm(checkpoint, celeba_dir, tmp_path):
    import onnx

    manifest = Build(checkpoint, _cfg(tmp_path, celeba_dir, precision="fp32", tensorrt="8.5")).run()
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert model.opset_import[0].version == 16
    assert "LayerNormalization" not in {n.op_type for n in model.graph.node}
    assert all(v["ok"] for v in manifest["tensorrt_compatibility"].values())
    assert manifest["tensorrt_target"] == "8.5" and manifest["accuracy_delta"] == 0.0
    assert "--noTF32" in manifest["tensorrt_commands"]["trtexec"]["8.5"][1]


def test_fp16_from_an_exported_onnx_needs_no_checkpoint(int8_bundle, celeba_dir, tmp_path):
    src, _ = int8_bundle
    manifest = Build(src / "model.onnx", _cfg(tmp_path, celeba_dir, precision="fp16", detector=False)).run()
    assert manifest["onnx_by_tensorrt"] == {
        "8.5": "model_opset16.onnx",  # the FP32 graph at opset 16 + the FP16 flag
        "10": "model_fp16.onnx",
        "11": "model_fp16.onnx",
    }
    assert manifest["strongly_typed_by_tensorrt"] == {"8.5": False, "10": True, "11": True}
    assert manifest["cpu_onnx"] == "model.onnx" and manifest["detector"] is None  # no FP16 kernels on x86
    assert "--stronglyTyped" in manifest["tensorrt_commands"]["trtexec"]["10"][1]
    assert (
        "--fp16" in manifest["tensorrt_commands"]["trtexec"]["8.5"][1]
    )  # every generation: no not_buildable
    assert set(manifest["accuracy"]) == {"fp16", "fp16_all_layers"}
    fp16 = manifest["accuracy"]["fp16"]
    assert fp16["faces"] == 60 and fp16["max_abs_diff"] < 5e-3 and abs(fp16["delta_points"]) < 1.0
    assert (
        manifest["parity_max_abs_diff"]
        == read_card(src / "model.onnx").build["export"]["parity_max_abs_diff"]
    )


def test_accuracy_gate_failure_says_what_to_try():
    check = AccuracyCheck("model_int8_trt.onnx", 500, 90.0, 89.2, 0.8, 97.0, 0.4, 0.01, (("Young", 2.1),))
    enforce(check, 1.0, "int8")
    with pytest.raises(AccuracyGateError) as err:
        enforce(check, 0.5, "int8")
    msg = str(err.value)
    assert "0.5 points" in msg and "Young" in msg and "--calib-method" in msg and "--exclude-nodes" in msg


def test_cli_gate_failure_exits_1(checkpoint, celeba_dir, tmp_path, monkeypatch, capsys):
    import lsa_edge.engines.reduce as build_mod  # the gates' module

    real = build_mod.compare_accuracy

    def worse(*args, **kwargs):
        res = real(*args, **kwargs)
        from dataclasses import replace

        return replace(res, accuracy=res.accuracy - 3, delta_points=res.delta_points + 3)

    monkeypatch.setattr(build_mod, "compare_accuracy", worse)
    argv = [
        "build",
        str(checkpoint),
        "--precision",
        "fp16",
        "--calib-data",
        str(celeba_dir),
        "--val-count",
        "40",
    ]
    assert main([*argv, "--out", str(tmp_path / "b"), "--no-progress", "--no-detector"]) == 1
    err = capsys.readouterr().err
    assert "FP16 accuracy gate failed" in err and "--max-accuracy-drop" in err and "--fp32-ops" in err
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".lsa-edge-tmp-*"))  # nothing half-built


def test_cli_usage_errors(checkpoint, tmp_path, capsys):
    assert main(["build", str(checkpoint), "--precision", "int8", "--out", str(tmp_path / "x")]) == 2
    assert "INT8 calibration needs real faces: pass --calib-data" in capsys.readouterr().err
    assert main(["build", str(checkpoint), "--batch", "8,4,16", "--out", str(tmp_path / "y")]) == 2
    assert main(["build", "--from-bundle", str(tmp_path / "nothing")]) == 2


def test_the_design_cards_command_builds_the_default_model(tmp_path, monkeypatch, capsys):
    """`lsa-edge build --precision fp16` as typed: the shipped model, into build/default-fp16; FP16 numerics
    checked on built-in faces, the labelled gate skipped with a warning; a graph for every TensorRT."""
    from lsa_edge.engines.lint import lint_report

    monkeypatch.chdir(tmp_path)
    assert main(["build", "--precision", "fp16", "--no-progress"]) == 0
    out = tmp_path / "build" / "default-fp16"
    manifest = read_manifest(out)
    err = capsys.readouterr()
    assert "labelled accuracy gate is SKIPPED" in err.err and "labelled accuracy gate was skipped" in err.out
    assert manifest["validation"]["labelled"] is False and "built-in" in manifest["validation"]["faces"]
    fp16 = manifest["accuracy"]["fp16"]
    assert fp16["faces"] == 64 and fp16["decision_agreement"] >= 99.5 and fp16["max_abs_diff"] < 0.05
    assert fp16["reference_accuracy"] == 100.0  # FP32's own decisions are the labels
    for gen, name in manifest["onnx_by_tensorrt"].items():  # each generation's graph passes lsa-edge check
        assert not [f for f in lint_report(out / name, gen).findings if f.severity == "error"], (gen, name)
    assert manifest["onnx_by_tensorrt"]["8.5"] == "model_opset16.onnx"
    assert manifest["source"] == "model.onnx" and manifest["detector"]["onnx_by_tensorrt"]["8.5"]
    assert main(["build", "--precision", "int8", "--no-progress"]) == 2  # INT8 needs real faces
    before = (out / "manifest.json").read_bytes()
    assert main(["build", "--precision", "fp16", "--no-progress"]) == 2  # a second run: said, not replaced
    err = capsys.readouterr().err
    assert "earlier build of the shipped default model" in err and "--overwrite" in err and "--out" in err
    assert (out / "manifest.json").read_bytes() == before


def test_require_engine_without_tensorrt_exits_1(int8_bundle, tmp_path, capsys):
    src, _ = int8_bundle
    argv = [
        "build",
        str(src / "model.onnx"),
        "--precision",
        "fp32",
        "--out",
        str(tmp_path / "b"),
        "--no-detector",
    ]
    assert main([*argv, "--require-engine"]) == 1
    assert "--require-engine" in capsys.readouterr().err
    assert main(argv) == 0  # without it, a bundle is a success


@pytest.fixture
def fake_trt(monkeypatch):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from _fake_tensorrt import make_tensorrt

    import lsa_edge.engines.tensorrt as trt_mod

    def install(version, **kwargs):
        kwargs.setdefault("layer_kinds", ("QUANTIZE", "DEQUANTIZE", "CONVOLUTION"))
        kwargs.setdefault("input_shape", (-1, 3, 64, 48))
        trt = make_tensorrt(version, **kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        monkeypatch.setattr(trt_mod, "gpu_info", lambda device=0: ("Orin", "8.7"))
        monkeypatch.setattr(
            __import__("lsa_edge.backends._tensorrt_env", fromlist=["x"]),
            "gpu_info",
            lambda device=0: ("Orin", "8.7"),
        )
        return trt

    yield install
    sys.path.remove(str(__import__("pathlib").Path(__file__).parent))


def test_from_bundle_builds_the_engine_with_a_sidecar(int8_bundle, tmp_path, fake_trt):
    import shutil

    from lsa_edge.engine_meta import read_sidecar

    src, _ = int8_bundle
    bundle = tmp_path / "bundle"
    shutil.copytree(src, bundle)
    manifest = read_manifest(bundle)
    manifest["detector"] = None  # the fake TensorRT models the attribute network only
    fake_trt("10.3.0.26")
    manifest = build_from_manifest(bundle, manifest)
    engine = bundle / manifest["engine"]
    assert engine.exists() and manifest["tensorrt_local"] == "10.3.0.26"
    key = read_sidecar(engine)["key"]
    assert key.precision == "int8" and key.compute_capability == "8.7" and key.batch == (1, 8, 16)
    assert read_manifest(bundle)["engine"] == manifest["engine"]
    assert not list(bundle.rglob(".lsa-edge-tmp-*"))  # engines, sidecars, manifest: renamed into place
    (bundle / manifest["onnx_by_tensorrt"]["10"]).unlink()  # a bundle copied in part
    with pytest.raises(ConfigError, match=r"lacks model_int8_trt\.onnx.*copy the whole folder"):
        build_from_manifest(bundle, read_manifest(bundle))


def test_cli_from_bundle_takes_batch_and_workspace_from_the_manifest(int8_bundle, tmp_path, fake_trt):
    """Without --batch/--workspace the device builds what the desktop recorded in the manifest (not
    BuildConfig's defaults); given, the flags win."""
    import shutil

    from lsa_edge.engine_meta import read_sidecar

    src, _ = int8_bundle
    bundle = tmp_path / "bundle"
    shutil.copytree(src, bundle)
    doc = read_manifest(bundle)
    doc.update(batch=[2, 4, 8], workspace_mib=256, detector=None)  # the fake models the attribute net only
    (bundle / "manifest.json").write_text(json.dumps(doc))
    fake_trt("10.3.0.26")
    assert main(["build", "--from-bundle", str(bundle)]) == 0
    sidecar = read_sidecar(bundle / read_manifest(bundle)["engine"])
    assert sidecar["key"].batch == (2, 4, 8) and sidecar["build"]["workspace_mib"] == 256
    assert main(["build", "--from-bundle", str(bundle), "--batch", "1,2,2", "--workspace", "64"]) == 0
    sidecar = read_sidecar(bundle / read_manifest(bundle)["engine"])
    assert sidecar["key"].batch == (1, 2, 2) and sidecar["build"]["workspace_mib"] == 64
    assert main(["build", "--from-bundle", str(bundle), "--workspace", "0"]) == 2  # still checked


def _old_bundle(src, dst):
    """A copy of ``src`` as an lsa-edge without the opset-16 rewrite wrote it (8.5: not buildable)."""
    import shutil

    shutil.copytree(src, dst)
    for f in dst.glob("*_opset16.onnx"):
        f.unlink()
    manifest = read_manifest(dst)
    manifest["onnx_by_tensorrt"]["8.5"] = "model_int8_trt.onnx"
    manifest["tensorrt_compatibility"]["8.5"] = {
        "ok": False,
        "errors": ["model model.onnx: LayerNormalization"],
    }
    manifest["detector"] = None  # the fake TensorRT models the attribute network only
    for key in ("opset16", "opset16_parity_max_abs_diff"):
        manifest.pop(key, None)
    return manifest


def test_from_bundle_refuses_a_generation_the_bundle_cannot_serve(
    int8_bundle, fake_trt, tmp_path, monkeypatch
):
    import lsa_edge.engines.from_bundle as build_mod  # the on-device build

    manifest = _old_bundle(int8_bundle[0], tmp_path / "old")
    fake_trt("8.5.2.2")
    monkeypatch.setattr(build_mod, "available", lambda name: name != "onnx")  # a Jetson without onnx
    with pytest.raises(
        LsaEdgeError, match=r"cannot be built by TensorRT 8\.5\.2\.2.*pip install onnx.*--trt 8\.5"
    ):
        build_from_manifest(tmp_path / "old", manifest)


def test_from_bundle_writes_the_missing_85_graph_on_the_device(int8_bundle, fake_trt, tmp_path):
    from lsa_edge.engine_meta import read_sidecar

    bundle = tmp_path / "old"
    manifest = _old_bundle(int8_bundle[0], bundle)
    trt = fake_trt("8.5.2.2")
    manifest = build_from_manifest(bundle, manifest)
    assert manifest["onnx_by_tensorrt"]["8.5"] == "model_int8_trt_opset16.onnx"
    assert manifest["tensorrt_compatibility"]["8.5"]["opset16_written_on_device"] is True
    assert manifest["opset16_parity_max_abs_diff"]["model_int8_trt_opset16.onnx"] < 1e-3
    assert read_manifest(bundle)["opset16"] == {"model_int8_trt.onnx": "model_int8_trt_opset16.onnx"}
    parsed = [v for k, v in trt._fake.calls if k == "parse_from_file"]
    assert parsed == [str(bundle / "model_int8_trt_opset16.onnx")]
    assert read_sidecar(bundle / manifest["engine"])["build"]["onnx_file"] == "model_int8_trt_opset16.onnx"


def test_from_bundle_on_tensorrt_85_builds_the_opset16_graph(int8_bundle, tmp_path, fake_trt):
    import shutil

    from lsa_edge.engine_meta import read_sidecar

    bundle = tmp_path / "bundle"
    shutil.copytree(int8_bundle[0], bundle)
    manifest = read_manifest(bundle)
    manifest["detector"] = None
    trt = fake_trt("8.5.2.2")
    manifest = build_from_manifest(bundle, manifest)
    parsed = [v for k, v in trt._fake.calls if k == "parse_from_file"]
    assert parsed == [str(bundle / "model_int8_trt_opset16.onnx")]
    assert read_sidecar(bundle / manifest["engine"])["build"]["onnx_file"] == "model_int8_trt_opset16.onnx"


def test_compare_checkpoint_with_its_onnx_and_int8(checkpoint, int8_bundle, celeba_dir, tmp_path):
    src, _ = int8_bundle
    out = tmp_path / "cmp.json"
    argv = ["compare", str(checkpoint), str(src / "model.onnx"), "--data", str(celeba_dir), "--count", "24"]
    assert main([*argv, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["faces"] == 24 and res["max_abs_diff"] < 1e-4 and res["decision_agreement"] > 99.5
    assert len(res["per_attribute"]) == 40 and res["accuracy_a"] == pytest.approx(res["accuracy_b"], abs=0.5)
    argv = ["compare", str(src / "model.onnx"), str(src), "--data", str(celeba_dir), "--count", "24"]
    assert main([*argv, "--json", str(out)]) == 0  # a build folder: its CPU ONNX (u8/s8 here)
    res = json.loads(out.read_text())
    assert res["b"].endswith("model_int8_cpu.onnx") and 0 < res["max_abs_diff"] < 0.5


def test_an_onnx_without_card_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(g), str(path))
    with pytest.raises(LsaEdgeError, match="exported by lsa-edge"):
        Build(path, BuildConfig(precision="fp32", out=tmp_path / "o", detector=False, progress=False)).run()


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        BuildConfig(precision="int4")
    with pytest.raises(ConfigError, match="MIN,OPT,MAX"):
        BuildConfig(batch=(4, 2, 8))
    with pytest.raises(ConfigError, match="TensorRT generation"):
        BuildConfig(tensorrt="9")


def test_quantize_without_range_reuse_recalibrates_to_the_same_scales(
    int8_bundle, tiny_model, celeba_dir, tmp_path, monkeypatch
):
    """Older onnxruntime (no calibration_cache_path): the same faces give the same Q/DQ scales."""
    import onnx
    import onnxruntime.quantization as q
    from onnx import numpy_helper

    from lsa_edge.calibration.dataset import load_faces
    from lsa_edge.calibration.quantize import calibrate, quantize

    src, _ = int8_bundle
    pre = tiny_model[1].preprocessing
    batches = list(load_faces(celeba_dir, pre, split="train", count=32).batches(pre, 16))
    ranges = calibrate(src / "model.onnx", batches, tmp_path, method="minmax")
    new = quantize(src / "model.onnx", tmp_path / "new.onnx", ranges, "cpu")
    real = q.quantize_static

    def old_api(model_input, model_output, calibration_data_reader=None, **kw):
        return real(model_input, model_output, calibration_data_reader, **kw)

    monkeypatch.setattr(q, "quantize_static", old_api)
    old = quantize(src / "model.onnx", tmp_path / "old.onnx", ranges, "cpu", batches=batches)

    def scales(path):
        m = onnx.load(str(path))
        return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer if t.name.endswith("_scale")}

    a, b = scales(new), scales(old)
    assert a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-5) for k in a)


def test_reduced_precision_onnx_is_refused_as_input(int8_bundle, tmp_path):
    src, _ = int8_bundle
    for name in ("model_int8_trt.onnx", "model_int8_cpu.onnx"):
        with pytest.raises(ConfigError, match="starts from the FP32 graph"):
            Build(src / name, BuildConfig(precision="fp32", out=tmp_path / name, detector=False)).run()


def test_a_failing_engine_build_still_leaves_the_bundle(int8_bundle, tmp_path, fake_trt, capsys):
    src, _ = int8_bundle
    fake_trt("10.3.0.26", parse_errors=("No importer registered for op: Foo",))
    argv = ["build", str(src / "model.onnx"), "--precision", "fp32", "--no-detector", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0  # warned; the bundle is complete
    assert (tmp_path / "a" / "manifest.json").exists() and (tmp_path / "a" / "DEPLOY.md").exists()
    assert "still a complete build bundle" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), "--require-engine"]) == 1
    assert (tmp_path / "b" / "manifest.json").exists()


def test_from_bundle_fp16_on_tensorrt10_is_strongly_typed(int8_bundle, celeba_dir, tmp_path, fake_trt):
    src, _ = int8_bundle
    out = tmp_path / "fp16"
    Build(src / "model.onnx", _cfg(out, celeba_dir, precision="fp16", detector=False)).run()
    trt = fake_trt("10.3.0.26", half=True)
    manifest = build_from_manifest(out, read_manifest(out), overrides={"batch": (1, 4, 8)})
    created = dict(trt._fake.calls)["create_network"]
    assert created == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert not trt._fake.last_config.get_flag(trt.BuilderFlag.FP16)  # the ONNX's types decide
    from lsa_edge.engine_meta import read_sidecar

    doc = read_sidecar(out / manifest["engine"])
    assert doc["key"].batch == (1, 4, 8) and doc["build"]["strongly_typed"]
    assert doc["rebuild_command"]["lsa_edge"] == f"lsa-edge build --from-bundle {out}"


def test_the_shipped_package_builds_on_tensorrt_85(fake_trt, tmp_path):
    """JetPack 5: the shipped default carries its opset-16 graph (no onnx needed on the device), which 8.5
    parses; writing a missing one on the device is tested with an INT8 bundle above."""
    import shutil

    from lsa_edge.package import DEFAULT_MODEL_DIR

    bundle = tmp_path / "default"
    shutil.copytree(DEFAULT_MODEL_DIR, bundle)
    assert read_manifest(bundle)["tensorrt_compatibility"]["8.5"]["ok"]
    trt = fake_trt("8.5.2.2", input_shape=(-1, 3, 160, 144), layer_kinds=("CONVOLUTION",))
    manifest = build_from_manifest(bundle, read_manifest(bundle))
    assert (
        manifest["onnx_by_tensorrt"]["8.5"] == "model_opset16.onnx" and (bundle / manifest["engine"]).exists()
    )
    assert manifest["opset16_parity_max_abs_diff"]["model_opset16.onnx"] < 1e-4
    assert [v for k, v in trt._fake.calls if k == "parse_from_file"] == [str(bundle / "model_opset16.onnx")]


# ------------------------------------------------------------------------------- nothing lost (issue 12)
def _default_onnx():
    from lsa_edge.package import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR / "model.onnx"


def _fp32_argv(out):
    return [
        "build",
        str(_default_onnx()),
        "--precision",
        "fp32",
        "--no-detector",
        "--no-progress",
        "--out",
        str(out),
    ]


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".lsa-edge-tmp-")]


def test_build_is_staged_refuses_a_non_empty_out_and_overwrites_only_when_complete(
    tmp_path, capsys, monkeypatch
):
    import lsa_edge.engines.build as build_mod

    out = tmp_path / "b"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(_fp32_argv(out)) == 2  # refused before any work
    err = capsys.readouterr().err
    assert "not empty" in err and "--overwrite" in err and (out / "mine.txt").read_text() == "keep me"

    # A build that fails half-way (after the ONNX was written) leaves the previous folder as it was.
    def boom(result, cfg):
        assert (result.out / "model.onnx").exists() and result.out != cfg.out  # written in the staged folder
        raise LsaEdgeError("failed half-way")

    monkeypatch.setattr(build_mod, "compose_manifest", boom)
    assert main([*_fp32_argv(out), "--overwrite"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"] and _leftovers(tmp_path) == []
    assert main(_fp32_argv(tmp_path / "new")) == 1  # no empty or half-filled --out either
    assert not (tmp_path / "new").exists() and _leftovers(tmp_path) == []
    monkeypatch.undo()

    assert main([*_fp32_argv(out), "--overwrite"]) == 0  # replaced once complete
    assert not (out / "mine.txt").exists() and read_manifest(out)["precision"] == "fp32"
    assert _leftovers(tmp_path) == [] and _leftovers(out) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(_fp32_argv(empty)) == 0  # an empty folder is no one's build


def test_build_user_mistakes_are_usage_errors(tmp_path, capsys, monkeypatch):
    truncated = tmp_path / "model.onnx"
    truncated.write_bytes(_default_onnx().read_bytes()[:5000])
    for bad in (truncated, tmp_path / "empty.onnx", tmp_path / "folder.onnx"):
        if bad.name == "empty.onnx":
            bad.write_bytes(b"")
        elif bad.name == "folder.onnx":
            bad.mkdir()
        assert main(["build", str(bad), "--precision", "fp32", "--out", str(tmp_path / "o")]) == 2, bad
        err = capsys.readouterr().err
        assert str(bad) in err and "please report" not in err, err
        assert not (tmp_path / "o").exists()
    assert main(["build", str(truncated), "--precision", "fp32", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and f"lsa-edge check {truncated}" in err
    (tmp_path / "file").write_text("x")
    assert main([*_fp32_argv(tmp_path / "file"), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is a file; give a folder" in err and (tmp_path / "file").read_text() == "x"

    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert main(_fp32_argv(tmp_path / "ro" / "b")) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "permission denied" in err and "please report" not in err


def test_from_bundle_records_engines_in_the_manifest_and_checks_the_bundle_first(
    int8_bundle, tmp_path, fake_trt, monkeypatch
):
    """Engines built on the device and their sidecars get sha256 entries (a damaged engine is caught at
    load), and a damaged ONNX in the bundle is refused before the minutes of building."""
    import shutil

    from lsa_edge._manifest import check_files
    from lsa_edge.engine_meta import sha256_file, sidecar_path
    from lsa_edge.errors import PackageError

    src, _ = int8_bundle
    bundle = tmp_path / "bundle"
    shutil.copytree(src, bundle)
    manifest = read_manifest(bundle)
    manifest["detector"] = None  # the fake TensorRT models the attribute network only
    fake_trt("10.3.0.26")
    manifest = build_from_manifest(bundle, manifest)
    engine = bundle / manifest["engine"]
    on_disk = read_manifest(bundle)
    for path in (engine, sidecar_path(engine)):
        name = path.relative_to(bundle).as_posix()
        assert on_disk["files"][name]["sha256"] == sha256_file(path), name
    check_files(bundle, on_disk)
    data = bytearray(engine.read_bytes())
    data[len(data) // 2] ^= 0xFF
    engine.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="damaged"):
        check_files(bundle, read_manifest(bundle))
    # a rebuild replaces the damaged engine (engines are not checked before they are rebuilt)
    manifest = read_manifest(bundle)
    manifest["detector"] = None
    build_from_manifest(bundle, manifest)
    check_files(bundle, read_manifest(bundle))

    onnx_path = bundle / manifest["onnx_by_tensorrt"]["10"]
    data = bytearray(onnx_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_path.write_bytes(bytes(data))
    import lsa_edge.engines.tensorrt as trt_mod

    def never(*a, **k):
        raise AssertionError("an engine was built from a damaged ONNX")

    monkeypatch.setattr(trt_mod, "build_engine", never)
    manifest = read_manifest(bundle)
    manifest["detector"] = None
    with pytest.raises(PackageError, match=onnx_path.name):
        build_from_manifest(bundle, manifest)


def test_staged_build_logs_name_the_final_folder(tmp_path, caplog):
    """INFO lines name build/fp16/model_fp16.onnx, not the hidden .lsa-edge-tmp-… folder."""
    import logging

    from lsa_edge.package import DEFAULT_MODEL_DIR

    out = tmp_path / "fp16"
    with caplog.at_level(logging.INFO):
        Build(
            DEFAULT_MODEL_DIR / "model.onnx",
            BuildConfig(precision="fp16", out=out, detector=False, progress=False),
        ).run()
    text = caplog.text
    assert ".lsa-edge-tmp-" not in text, text
    assert str(out / "model_fp16.onnx") in text
