"""Engine keys, sidecars, and the mismatch checks that replace TensorRT's "Version tag does not match"."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re

import pytest

from lsa_edge.engine_meta import (
    EngineKey,
    check_engine,
    read_sidecar,
    sha256_file,
    sidecar_path,
    write_sidecar,
)
from lsa_edge.errors import ConfigError, EngineMismatchError, LsaEdgeError

SHA = "ab" * 32
CARD = {"name": "lsa-test", "attributes": ["Smiling"], "preprocessing": {"input_size": [128, 112]}}
REBUILD = {
    "lsa_edge": "lsa-edge build runs/mnv2/best.pt --precision fp16 --batch 1,8,16",
    "trtexec": "trtexec --onnx=lsa.onnx --saveEngine=lsa.engine --fp16",
}


def key(**changes) -> EngineKey:
    fields = dict(
        model_sha256=SHA,
        precision="fp16",
        tensorrt="8.5.2.2",
        gpu="Xavier",
        compute_capability="7.2",
        batch=(1, 8, 16),
        dla_core=None,
    )
    fields.update(changes)
    return EngineKey(**fields)


def make_engine(tmp_path, k: EngineKey | None = None, build: dict | None = None):
    k = k or key()
    path = tmp_path / f"{k.file_stem()}.engine"
    path.write_bytes(b"serialized plan")
    write_sidecar(path, k, CARD, build_options=build or {"workspace_mib": 1024}, rebuild_command=REBUILD)
    return path


def test_file_stem():
    k = key(tensorrt="10.3.0.26", gpu="Orin", compute_capability="8.7")
    assert k.file_stem() == "lsa-abababababab-fp16-trt10.3.0-sm87-orin-b1-8-16"
    assert (
        key(dla_core=0, batch=(4, 4, 4)).file_stem()
        == "lsa-abababababab-fp16-trt8.5.2-sm72-xavier-b4-4-4-dla0"
    )
    odd = key(gpu="NVIDIA GeForce RTX 4090 / (Ti)", compute_capability="8.9", precision="int8")
    stem = odd.file_stem()
    assert stem == "lsa-abababababab-int8-trt8.5.2-sm89-nvidia-geforce-rtx-4090-b1-8-16"
    assert re.fullmatch(r"[a-z0-9.-]+", stem)


@pytest.mark.parametrize(
    "changes",
    [
        dict(precision="int4"),
        dict(batch=(8, 1, 16)),
        dict(batch=(0, 1, 2)),
        dict(compute_capability="87"),
        dict(model_sha256="not-a-hash"),
        dict(tensorrt="ten"),
        dict(dla_core=-1),
    ],
)
def test_key_validation(changes):
    with pytest.raises(ConfigError):
        key(**changes)


def test_key_dict_round_trip():
    k = key(dla_core=1, batch=[2, 2, 2], model_sha256=SHA.upper())
    assert k.batch == (2, 2, 2) and k.model_sha256 == SHA  # normalised
    d = json.loads(json.dumps(k.to_dict()))
    assert EngineKey.from_dict(d) == k
    with pytest.raises(ConfigError, match="missing 'gpu'"):
        EngineKey.from_dict({k: v for k, v in d.items() if k != "gpu"})


def test_sidecar_round_trip(tmp_path):
    path = make_engine(tmp_path, build={"workspace_mib": 512, "timing_cache": None})
    assert sidecar_path(path).name == path.name + ".json"
    doc = read_sidecar(path)
    assert doc["key"] == key()
    assert doc["card"] == CARD
    assert doc["build"] == {"workspace_mib": 512, "timing_cache": None}
    assert doc["rebuild_command"] == REBUILD
    assert doc["engine_file"] == path.name and doc["engine_sha256"] == sha256_file(path)
    built = dt.datetime.fromisoformat(doc["built_at"])
    assert built.tzinfo is not None and abs(dt.datetime.now(dt.timezone.utc) - built) < dt.timedelta(
        minutes=5
    )
    with pytest.raises(ConfigError, match="overwrite"):
        write_sidecar(path, key(), CARD, extra={"key": "x"})


def test_check_engine_accepts_matching_machine(tmp_path):
    path = make_engine(tmp_path)
    # The build number (4th component) is not part of TensorRT's version tag.
    doc = check_engine(path, "8.5.2.1", "Xavier", "7.2", precision="fp16", model_sha256=SHA.upper())
    assert doc["key"] == key()


def test_version_mismatch_names_both_sides_and_rebuild_command(tmp_path):
    path = make_engine(tmp_path)
    with pytest.raises(EngineMismatchError) as info:
        check_engine(path, "10.3.0.26", "Orin", "8.7")
    msg = str(info.value)
    assert (
        "built with TensorRT 8.5.2 for sm_72 (Xavier); this machine runs TensorRT 10.3.0 on sm_87 (Orin)"
        in msg
    )
    assert REBUILD["lsa_edge"] in msg and REBUILD["trtexec"] in msg


def test_version_compared_as_versions_not_strings(tmp_path):
    path = make_engine(tmp_path, key(tensorrt="10.3", gpu="Orin", compute_capability="8.7"))
    check_engine(path, "10.3.0.30", "Orin", "8.7")  # "10.3" == "10.3.0"
    with pytest.raises(EngineMismatchError, match=r"TensorRT 10\.3\.0 .* runs TensorRT 10\.30\.0"):
        check_engine(path, "10.30.0", "Orin", "8.7")


def test_compute_capability_mismatch(tmp_path):
    path = make_engine(tmp_path, key(tensorrt="10.3.0", gpu="Orin", compute_capability="8.7"))
    with pytest.raises(EngineMismatchError, match="compute capability"):
        check_engine(path, "10.3.0", "NVIDIA Thor", "11.0")


def test_same_cc_other_gpu_warns(tmp_path, caplog):
    path = make_engine(tmp_path, key(tensorrt="10.3.0", gpu="Orin", compute_capability="8.7"))
    with caplog.at_level(logging.WARNING, logger="lsa_edge.engine_meta"):
        check_engine(path, "10.3.0", "Orin NX", "8.7")
    assert any("rebuild for best speed" in r.getMessage() for r in caplog.records)


def test_precision_and_model_mismatch(tmp_path):
    path = make_engine(tmp_path)
    with pytest.raises(EngineMismatchError, match="it is a fp16 engine but int8 was asked for"):
        check_engine(path, "8.5.2", "Xavier", "7.2", precision="int8")
    with pytest.raises(
        EngineMismatchError, match="built from model abababababab, not the expected cdcdcdcdcdcd"
    ):
        check_engine(path, "8.5.2", "Xavier", "7.2", model_sha256="cd" * 32)


def test_version_compatible_engines(tmp_path):
    path = make_engine(tmp_path, key(tensorrt="8.6.1"), build={"version_compatible": True})
    check_engine(path, "8.6.2", "Xavier", "7.2")  # later minor/patch: fine
    check_engine(path, "10.3.0", "Xavier", "7.2")  # 8 → 10 is a documented pair
    with pytest.raises(EngineMismatchError, match="same or a later TensorRT"):
        check_engine(path, "8.6.0", "Xavier", "7.2")  # older runtime
    with pytest.raises(EngineMismatchError):
        check_engine(path, "11.4.1", "Xavier", "7.2")  # 8 → 11 is not supported


def test_replaced_engine_file_is_detected(tmp_path):
    path = make_engine(tmp_path)
    path.write_bytes(b"rebuilt by hand with trtexec")
    with pytest.raises(EngineMismatchError, match="differs from the one its sidecar describes"):
        check_engine(path, "8.5.2", "Xavier", "7.2")
    check_engine(path, "8.5.2", "Xavier", "7.2", verify_file=False)


def test_missing_sidecar_says_how_to_rebuild(tmp_path):
    path = tmp_path / "yolo.engine"
    path.write_bytes(b"plan")
    with pytest.raises(EngineMismatchError) as info:
        check_engine(path, "8.5.2", "Xavier", "7.2")
    assert "yolo.engine.json" in str(info.value) and "lsa-edge build" in str(info.value)


def test_corrupt_sidecar_and_missing_engine(tmp_path):
    path = make_engine(tmp_path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(EngineMismatchError, match="not a valid lsa-edge engine sidecar"):
        read_sidecar(path)
    sidecar_path(path).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(EngineMismatchError, match="not a valid"):
        read_sidecar(path)
    with pytest.raises(LsaEdgeError, match="engine not found"):
        check_engine(tmp_path / "gone.engine", "8.5.2", "Xavier", "7.2")
