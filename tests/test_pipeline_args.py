"""The Python API's arguments (issue 12, "Prove it"): ``Pipeline`` and ``FaceDetector`` check every
constructor argument up front (a ConfigError naming the argument and the value, never a TypeError from
inside or one at the first frame); ``tracking`` takes only what cannot be misread; ``device`` is checked
wherever it is accepted and a GPU asked for is never silently replaced by the CPU; messages that
blamed the wrong thing (a closed Pipeline, a detector folder, an unfinished training run).

On the shipped default model through ONNX Runtime (opened once per module); no GPU needed: ONNX Runtime's
GPU providers are faked where a test needs them."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import onnxruntime as ort

from lsa_edge import Pipeline, TrackerConfig
from lsa_edge.cli import main
from lsa_edge.demo import scene
from lsa_edge.detector import FaceDetector
from lsa_edge.errors import ConfigError, DataError, GpuUnavailableError, MissingDependencyError
from lsa_edge.package import ModelPackage, select_backend


@pytest.fixture(scope="module")
def pkg():
    return ModelPackage.open(None)


# ------------------------------------------------------------------------------------------ tracking
@pytest.mark.parametrize("value", ["off", "OFF", False, np.False_])
def test_tracking_off_means_off(pkg, value):
    with Pipeline(pkg, tracking=value) as pipe:
        assert pipe.tracker is None
        faces = pipe.predict(scene(2, 0)).faces
    assert faces and all(f.track_id == -1 for f in faces)


@pytest.mark.parametrize("value", ["on", True, np.True_])
def test_tracking_on_means_on(pkg, value):
    with Pipeline(pkg, tracking=value) as pipe:
        assert pipe.tracker is not None and pipe.tracker.config == TrackerConfig()


def test_tracking_takes_a_tracker_config(pkg):
    cfg = TrackerConfig(min_hits=1)
    with Pipeline(pkg, tracking=cfg) as pipe:
        assert pipe.tracker.config == cfg


@pytest.mark.parametrize("value", [0, 1, 0.0, None, "auto", "yes", "", "false", [], {"ema": 0.5}])
def test_tracking_refuses_what_could_be_misread(pkg, value):
    """0, None and "auto" used to turn tracking ON (only False meant off)."""
    with pytest.raises(ConfigError, match=r"Pipeline\(tracking=\.\.\.\): got .*accepted: True or \"on\""):
        Pipeline(pkg, tracking=value)


def test_tracking_auto_says_what_to_pass_instead(pkg):
    with pytest.raises(ConfigError, match=r"lsa-edge run's per-source choice.*pass True or False"):
        Pipeline(pkg, tracking="auto")


# ------------------------------------------------------------------------------------------ types and ranges
BAD_PIPELINE_ARGUMENTS = [
    ("model", 5, "5"),
    ("model", b"build", "b'build'"),
    ("model", "", "''"),
    ("backend", None, "None"),
    ("backend", 5, "5"),
    ("detector", 5, "5"),
    ("detector", None, "None"),
    ("min_face_size", "24", "'24'"),
    ("min_face_size", math.nan, "nan"),
    ("min_face_size", math.inf, "inf"),
    ("min_face_size", -1, "-1"),
    ("min_face_size", True, "True"),
    ("detector_threshold", "0.5", "'0.5'"),
    ("detector_threshold", math.nan, "nan"),
    ("detector_threshold", 0.0, "0.0"),
    ("detector_threshold", 1.0, "1.0"),
    ("max_faces", 0, "0"),
    ("max_faces", 2.5, "2.5"),
    ("max_faces", "3", "'3'"),
    ("max_batch", "4", "'4'"),
    ("max_batch", 1.5, "1.5"),
    ("max_batch", 4.0, "4.0"),
    ("max_batch", 0, "0"),
    ("max_batch", True, "True"),
    ("max_batch", math.nan, "nan"),
    ("threads", -1, "-1"),
    ("threads", "2", "'2'"),
    ("threads", 10**9, "1000000000"),
    ("device", 0, "0"),
    ("device", "tpu", "'tpu'"),
    ("device", "cuda:banana", "'cuda:banana'"),
    ("device", "cuda:", "'cuda:'"),
]


@pytest.mark.parametrize(("name", "value", "text"), BAD_PIPELINE_ARGUMENTS)
def test_pipeline_refuses_bad_arguments_naming_them(pkg, name, value, text):
    """Wrong types used to escape as TypeErrors (``min_face_size="24"``), be accepted until the first frame
    (``max_batch=1.5``) or silently switch a filter off (``min_face_size=nan``)."""
    model = value if name == "model" else pkg
    kwargs = {} if name == "model" else {name: value}
    with pytest.raises(ConfigError) as info:
        Pipeline(model, **kwargs)
    msg = str(info.value)
    assert name in msg and text in msg and ("accepted" in msg or "available" in msg), msg


def test_arguments_are_checked_before_the_model_is_opened(tmp_path):
    with pytest.raises(ConfigError, match="max_batch"):
        Pipeline(tmp_path / "no-such-model.onnx", max_batch="4")


def test_numpy_scalars_are_numbers(pkg):
    with Pipeline(
        pkg,
        tracking=False,
        max_batch=np.int64(2),
        min_face_size=np.float32(10),
        max_faces=np.int32(3),
        detector_threshold=np.float64(0.6),
        threads=np.uint8(1),
    ) as pipe:
        assert type(pipe.max_batch) is int and pipe.max_batch == 2
        assert type(pipe.detector.max_faces) is int and pipe.detector.min_face_size == 10.0
        assert len(pipe.predict(scene(4, 0)).faces) <= 3


BAD_DETECTOR_ARGUMENTS = [
    ({"model": 5}, "model"),
    ({"runner": 5}, "runner"),
    ({"config": "full"}, "config"),
    ({"min_score": "0.3"}, "min_score"),  # float("0.3") used to accept text
    ({"min_score": math.nan}, "min_score"),
    ({"iou_threshold": 0.0}, "iou_threshold"),
    ({"nms": ["hard"]}, "nms"),
    ({"min_face_size": "24"}, "min_face_size"),
    ({"min_face_size": math.nan}, "min_face_size"),  # NaN used to switch the filter off
    ({"max_faces": 1.5}, "max_faces"),
    ({"providers": "CPUExecutionProvider"}, "providers"),
    ({"providers": 5}, "providers"),
    ({"threads": "1"}, "threads"),
    ({"threads": 1.0}, "threads"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD_DETECTOR_ARGUMENTS)
def test_face_detector_refuses_bad_arguments_naming_them(kwargs, name):
    with pytest.raises(ConfigError, match=rf"FaceDetector\({name}=\.\.\.\)"):
        FaceDetector(**kwargs)


def test_a_detector_folder_is_called_a_folder(tmp_path):
    """It used to say "not found" for a folder that exists."""
    with pytest.raises(DataError, match=r"is a folder; pass a BlazeFace \.onnx file") as info:
        FaceDetector(tmp_path)
    assert "not found" not in str(info.value)


# ------------------------------------------------------------------------------------------ device
@pytest.mark.parametrize(
    ("text", "parsed"),
    [(None, None), ("auto", None), ("cpu", ("cpu", None)), ("cuda", ("cuda", None)), ("cuda:1", ("cuda", 1))],
)
def test_device_forms(text, parsed):
    from lsa_edge._args import parse_device

    assert parse_device(text) == parsed


@pytest.mark.parametrize("text", ["tpu", "gpu", "cuda:banana", "cuda:-1", "cuda:0:1", "", 0, ["cuda"]])
def test_device_is_checked_by_select_backend(pkg, text):
    """eval --device tpu / cuda:banana used to be accepted and ignored for ONNX models."""
    with pytest.raises(ConfigError, match="is not a device; accepted: auto, cpu, cuda, or cuda:N"):
        select_backend(pkg, "auto", device=text)


def test_cuda_for_onnx_without_the_cuda_provider_says_what_to_install(pkg, monkeypatch):
    """It used to run on the CPU, exit 0, with no warning."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    for backend in ("auto", "onnxruntime"):
        with pytest.raises(
            MissingDependencyError, match=r"no CUDA provider.*pip install onnxruntime-gpu.*device cpu"
        ):
            select_backend(pkg, backend, device="cuda")
    with pytest.raises(MissingDependencyError, match="device cuda:1"):
        Pipeline(pkg, device="cuda:1")


class _SessionOnTheGpu:
    """A real CPU session that reports the providers it was asked for as running (a GPU machine)."""

    asked: ClassVar[list] = []

    def __init__(self, path, sess_options=None, providers=None, **kw):
        type(self).asked = list(providers)
        self._s = _REAL_SESSION(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    def get_providers(self):
        return [p if isinstance(p, str) else p[0] for p in type(self).asked]

    def __getattr__(self, name):
        return getattr(self._s, name)


_REAL_SESSION = ort.InferenceSession


def test_cuda_n_reaches_onnx_runtime_as_its_device_id(pkg, monkeypatch, caplog):
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(ort, "InferenceSession", _SessionOnTheGpu)
    with caplog.at_level(logging.INFO, logger="lsa_edge.package"):
        b = select_backend(pkg, "auto", device="cuda:1")
    assert _SessionOnTheGpu.asked == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert (
        "backend: ONNX Runtime CUDAExecutionProvider" in caplog.text and "not better options" in caplog.text
    )
    b.close()


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_gpu_providers_that_do_not_load_are_never_a_silent_cpu_run(pkg, monkeypatch, caplog):
    """ONNX Runtime lists CUDA but cannot start it (no driver, missing cuDNN): ONNX Runtime itself would
    run on the CPU. With device cuda that is an error; with auto a warning and a logged CPU choice."""
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with pytest.raises(GpuUnavailableError, match="could not start CUDAExecutionProvider"):
        select_backend(pkg, "onnxruntime", device="cuda")
    with caplog.at_level(logging.INFO):
        b = select_backend(pkg, "auto")
    assert b.session.get_providers() == ["CPUExecutionProvider"]
    assert "GPU providers are not usable here" in caplog.text and "backend: ONNX Runtime CPU" in caplog.text


def test_device_cpu_picks_the_cpu_and_says_so(pkg, monkeypatch, caplog):
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with caplog.at_level(logging.INFO, logger="lsa_edge.package"):
        b = select_backend(pkg, "auto", device="cpu")
    assert b.session.get_providers() == ["CPUExecutionProvider"] and "device cpu asked for" in caplog.text
    with pytest.raises(ConfigError, match="backend tensorrt runs on a GPU, but device 'cpu'"):
        select_backend(pkg, "tensorrt", device="cpu")


@pytest.mark.parametrize("device", ["tpu", "cuda:banana"])
def test_eval_device_is_a_usage_error(celeba_dir, capsys, device):
    """``eval --device tpu`` used to run on the CPU and exit 0."""
    rc = main(["-q", "eval", "--data", str(celeba_dir), "--split", "val", "--device", device])
    err = capsys.readouterr().err
    assert rc == 2 and device in err and "cuda:N" in err, err


# ------------------------------------------------------------------------------------------ messages
def test_predict_after_close_blames_the_pipeline(pkg):
    pipe = Pipeline(pkg, tracking=False)
    pipe.close()
    with pytest.raises(ConfigError, match="this Pipeline was closed"):
        pipe.predict(scene(1, 0))


def test_an_unfinished_training_run_is_recognised(tmp_path):
    """``run --model RUN_DIR`` of a run interrupted before validation said "cannot tell what … is"."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"looks like a training run.*no best\.pt or last\.pt"):
        ModelPackage.open(run)
    (run / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"training run without best\.pt.*last\.pt.*--resume"):
        ModelPackage.open(run)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"a folder without manifest\.json or best\.pt"):
        ModelPackage.open(tmp_path / "empty")


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_a_detector_gpu_provider_that_does_not_load_is_an_error(monkeypatch):
    """ONNX Runtime lists CUDA but runs the detector on the CPU: said, not silent."""
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    with pytest.raises(
        GpuUnavailableError, match="could not start CUDAExecutionProvider for the face detector"
    ):
        FaceDetector(providers=["CUDAExecutionProvider", "CPUExecutionProvider"])


def test_cuda_for_a_checkpoint_without_a_cuda_torch_is_an_error(pkg):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("PyTorch sees a GPU here")
    ckpt = replace(pkg, cpu_onnx=None, gpu_onnx=None, checkpoint=Path("best.pt"))
    for backend in ("auto", "torch"):
        with pytest.raises(
            GpuUnavailableError, match=r"device cuda: PyTorch .* sees no CUDA GPU.*device cpu"
        ):
            select_backend(ckpt, backend, device="cuda")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"engine_path": 5}, "engine_path"),
        ({"device": "cuda:0"}, "device"),
        ({"device": -1}, "device"),
        ({"cuda_binding": "numba"}, "cuda_binding"),
    ],
)
def test_backend_constructors_check_their_arguments(tmp_path, kwargs, name):
    from lsa_edge.backends import OnnxRuntimeBackend
    from lsa_edge.backends.tensorrt import TensorRTBackend

    with pytest.raises(ConfigError, match=rf"TensorRTBackend\({name}=\.\.\.\)"):
        TensorRTBackend(**{"engine_path": tmp_path / "m.engine", **kwargs})
    with pytest.raises(ConfigError, match=r"OnnxRuntimeBackend\(threads=\.\.\.\)"):
        OnnxRuntimeBackend(pkg_onnx(), threads=2.0)
    with pytest.raises(ConfigError, match=r"OnnxRuntimeBackend\(device_id=\.\.\.\)"):
        OnnxRuntimeBackend(pkg_onnx(), device_id="1")
    with pytest.raises(ConfigError, match=r"select_backend\(package=\.\.\.\)"):
        select_backend("lsa_edge/models/default")


def pkg_onnx():
    return ModelPackage.open(None).cpu_onnx


def test_shared_arguments_have_one_definition(pkg, monkeypatch):
    """threads, min_face_size and max_faces are checked by one definition each (lsa_edge._args), whoever
    takes them: Pipeline (before opening anything), FaceDetector, select_backend, OnnxRuntimeBackend."""
    from lsa_edge import _args
    from lsa_edge.backends import OnnxRuntimeBackend
    from lsa_edge.package import select_backend

    seen = []
    for name in ("threads", "min_face_size", "max_faces"):
        real = getattr(_args, name)
        monkeypatch.setattr(
            _args, name, lambda where, v, _n=name, _r=real: seen.append((where, _n)) or _r(where, v)
        )
    with pytest.raises(ConfigError):
        Pipeline(pkg, threads=-1)
    with pytest.raises(ConfigError):
        FaceDetector(threads=-1)
    with pytest.raises(ConfigError):
        select_backend(pkg, threads=-1)
    with pytest.raises(ConfigError):
        OnnxRuntimeBackend(pkg.cpu_onnx, threads=-1)
    callers = {where for where, name in seen if name == "threads"}
    assert callers == {"Pipeline", "FaceDetector", "select_backend", "OnnxRuntimeBackend"}
    assert {("Pipeline", "min_face_size"), ("FaceDetector", "max_faces")} <= set(seen)
