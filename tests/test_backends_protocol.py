"""Every backend honours one contract (:class:`lsa_edge.backends.base.Backend`) with the same behaviour:
ONNX Runtime on the shipped default model, PyTorch on a tiny checkpoint, TensorRT on the strict fake
TensorRT and fake GPU (as tests/test_backends_tensorrt.py). Shapes checked, batches split at
``min(batch_size, max_batch)`` with one default, zero faces answered without a call, a closed backend
refusing with ConfigError, ``close`` idempotent, ``with`` closing. The face detector's runners follow the
base contract (:class:`ModelRunner`) with their raw outputs."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import lsa_edge.backends.base as base
from lsa_edge.backends.base import DEFAULT_BATCH_SIZE, Backend, ModelRunner
from lsa_edge.errors import ConfigError

C = 40
ITEM = (3, 8, 6)  # the fake engine's faces


def _onnxruntime(request, monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime")
    from lsa_edge.backends import OnnxRuntimeBackend
    from lsa_edge.package import ModelPackage

    return OnnxRuntimeBackend(ModelPackage.open(None).cpu_onnx)


def _torch(request, monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from lsa_edge.training.backend import TorchBackend
    from lsa_edge.training.checkpoint import save_checkpoint

    model, card = request.getfixturevalue("tiny_model")
    save_checkpoint(tmp_path / "best.pt", model, card, meta={})
    return TorchBackend(tmp_path / "best.pt", device="cpu")


def _tensorrt(request, monkeypatch, tmp_path):
    from _fake_cuda import FakeGpu, install
    from _fake_tensorrt import EngineSpec, make_tensorrt

    gpu = FakeGpu()
    install(monkeypatch, gpu, cuda_python=True, pycuda=False)

    def compute(inputs):
        x = inputs["faces"]
        m = x.reshape(len(x), -1).mean(axis=1)
        return {"probs": (1 / (1 + np.exp(-(m[:, None] + np.arange(C) / 40)))).astype(np.float32)}

    io = [("faces", "input", (-1, *ITEM)), ("probs", "output", (-1, C))]
    trt = make_tensorrt("10.3.0.26", engine=EngineSpec(io, compute, memory=gpu, max_batch=16))
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    import lsa_edge.backends.tensorrt as mod

    monkeypatch.setattr(
        mod, "load_engine", lambda path: trt.Runtime(trt.Logger()).deserialize_cuda_engine(b"PLAN:x")
    )
    return mod.TensorRTBackend(tmp_path / "m.engine")


@pytest.fixture(params=["onnxruntime", "torch", "tensorrt"])
def backend(request, monkeypatch, tmp_path):
    make = {"onnxruntime": _onnxruntime, "torch": _torch, "tensorrt": _tensorrt}[request.param]
    b = make(request, monkeypatch, tmp_path)
    yield b
    b.close()


def _faces(b, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, *b.input_shape[1:])).astype(np.float32)


def _spy(b, monkeypatch) -> list[int]:
    """The sizes of the calls that reach the model."""
    calls: list[int] = []
    run = b._run

    def counted(handle, x):
        calls.append(len(x))
        return run(handle, x)

    monkeypatch.setattr(b, "_run", counted)
    return calls


def test_every_backend_is_a_backend(backend):
    b = backend
    assert isinstance(b, Backend) and isinstance(b, ModelRunner)
    assert b.name in ("onnxruntime", "torch", "tensorrt")
    assert b.max_batch is None or (isinstance(b.max_batch, int) and b.max_batch >= 1)
    assert len(b.input_shape) == 4 and b.input_shape[0] in (None, b.max_batch)
    assert all(isinstance(d, int) and d > 0 for d in b.input_shape[1:])
    assert b.num_outputs == C
    assert b.describe().startswith(b.path.name) and b.name in b.describe()


def test_predict_outputs_probabilities_and_zero_faces_need_no_call(backend, monkeypatch):
    b = backend
    calls = _spy(b, monkeypatch)
    got = b.predict(_faces(b, 3))
    assert got.shape == (3, C) and got.dtype == np.float32 and ((got >= 0) & (got <= 1)).all()
    empty = b.predict(np.zeros((0, *b.input_shape[1:]), np.float32))
    assert empty.shape == (0, C) and empty.dtype == np.float32
    assert calls == [3]  # the empty batch never reached the model
    # float64 or non-contiguous faces are the same faces
    x = _faces(b, 2, seed=1)
    assert np.array_equal(b.predict(x.astype(np.float64)), b.predict(x))


@pytest.mark.parametrize("bad", ["channels", "rank"])
def test_a_wrong_shape_is_a_config_error(backend, bad):
    b = backend
    c, h, w = b.input_shape[1:]
    x = np.zeros((2, c, w + 1, h), np.float32) if bad == "channels" else np.zeros((2, h, w), np.float32)
    with pytest.raises(ConfigError, match=r"takes N×\d+×\d+×\d+ inputs, got"):
        b.predict(x)


def test_batches_split_at_batch_size_and_max_batch_with_one_default(backend, monkeypatch):
    b = backend
    calls = _spy(b, monkeypatch)
    x = _faces(b, 5)
    whole = b.predict(x)
    split = b.predict(x, 2)
    assert calls == [5, 2, 2, 1]
    assert np.array_equal(b.predict(x, np.int64(2)), split)  # numpy ints are ints
    np.testing.assert_allclose(split, whole, rtol=0, atol=1e-6)
    # The default: max_batch, or DEFAULT_BATCH_SIZE where the batch is dynamic (here made 4: small batches)
    monkeypatch.setattr(base, "DEFAULT_BATCH_SIZE", 4)
    calls.clear()
    step = b.max_batch or 4
    n = step + 1
    b.predict(_faces(b, n))
    assert calls == [step, 1]
    if b.max_batch is not None:  # a batch_size above the engine's maximum is capped
        calls.clear()
        b.predict(_faces(b, n), b.max_batch * 4)
        assert calls == [b.max_batch, 1]


def test_a_bad_batch_size_or_a_scalar_is_a_config_error(backend):
    b = backend
    for bad in (0, -1, 2.5, "4", True):
        with pytest.raises(ConfigError, match="batch_size"):
            b.predict(_faces(b, 2), bad)
    with pytest.raises(ConfigError, match="takes N×"):
        b.predict(np.float32(1.0))


def test_close_is_idempotent_and_a_closed_backend_refuses(backend):
    b = backend
    x = _faces(b, 1)
    b.close()
    b.close()
    with pytest.raises(ConfigError, match="was closed"):
        b.predict(x)
    with pytest.raises(ConfigError, match="was closed"):
        b.predict(np.zeros((0, *b.input_shape[1:]), np.float32))  # closed first, whatever the input


def test_the_context_manager_closes(backend):
    with backend as b:
        assert b is backend
        assert b.predict(_faces(b, 1)).shape == (1, C)
    with pytest.raises(ConfigError, match="was closed"):
        backend.predict(_faces(backend, 1))


def test_the_default_batch_size_is_one_constant():
    """Before 0.2 ONNX Runtime and PyTorch defaulted to 64 faces a call and TensorRT to its maximum: the
    same numbers, now from one rule."""
    assert DEFAULT_BATCH_SIZE == 64


# ------------------------------------------------------------------------------ the detector's runners
def test_the_onnxruntime_detector_runner_is_a_model_runner():
    pytest.importorskip("onnxruntime")
    from lsa_edge.detector import FaceDetector, OnnxRuntimeDetectorRunner

    det = FaceDetector()
    r = det.runner
    assert isinstance(r, OnnxRuntimeDetectorRunner) and isinstance(r, ModelRunner)
    assert not isinstance(r, Backend)  # raw outputs, not probabilities
    assert r.input_shape[1:] == (3, 192, 192) and r.max_batch is None
    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 3, 192, 192)).astype(np.float32)
    reg, logits = r.predict(x)
    assert reg.shape == (3, 2304, 16) and logits.shape == (3, 2304, 1)
    reg1, logits1 = r.predict(x, 1)  # three calls, joined output by output
    np.testing.assert_allclose(reg1, reg, atol=1e-4)
    np.testing.assert_allclose(logits1, logits, atol=1e-4)
    zero = r.predict(x[:0])
    assert [z.shape for z in zero] == [(0, 2304, 16), (0, 2304, 1)]
    with pytest.raises(ConfigError, match=r"takes N×3×192×192"):
        r.predict(np.zeros((1, 3, 128, 128), np.float32))
    det.close()  # the detector opened it: the detector closes it
    det.close()
    with pytest.raises(ConfigError, match="was closed"):
        r.predict(x)


def test_a_detector_closes_only_the_runner_it_opened():
    pytest.importorskip("onnxruntime")
    from lsa_edge.detector import FaceDetector

    own = FaceDetector()
    borrowed = FaceDetector(runner=own.runner, config=own.config)
    assert borrowed.runner is own.runner
    frame = np.zeros((120, 160, 3), np.uint8)
    assert borrowed(frame) == own(frame) == []
    borrowed.close()
    with pytest.raises(ConfigError, match="FaceDetector was closed"):
        borrowed(frame)
    assert own(frame) == []  # still open: it was only lent
    own.close()


def test_a_plain_callable_runner_is_wrapped_as_a_model_runner():
    from lsa_edge.detector import BlazeFaceConfig, FaceDetector

    calls = []

    def run(x):
        calls.append(len(x))
        return np.zeros((len(x), 896, 16), np.float32), np.full((len(x), 896, 1), -10, np.float32)

    det = FaceDetector(runner=run, config=BlazeFaceConfig.short_range())
    r = det.runner
    assert isinstance(r, ModelRunner) and r.input_shape == (None, 3, 128, 128) and r.max_batch is None
    assert det(np.zeros((64, 64, 3), np.uint8)) == [] and calls == [1]
    reg, logits = r.predict(np.zeros((3, 3, 128, 128), np.float32), 2)
    assert calls == [1, 2, 1] and reg.shape == (3, 896, 16) and logits.shape == (3, 896, 1)
    with pytest.raises(ConfigError, match=r"takes N×3×128×128"):
        r.predict(np.zeros((1, 3, 192, 192), np.float32))
    r.close()
    with pytest.raises(ConfigError, match="was closed"):
        r.predict(np.zeros((1, 3, 128, 128), np.float32))


def test_the_tensorrt_detector_runner_is_a_model_runner(monkeypatch, tmp_path):
    from _fake_cuda import FakeGpu, install
    from _fake_tensorrt import EngineSpec, make_tensorrt

    gpu = FakeGpu()
    install(monkeypatch, gpu, cuda_python=True, pycuda=False)

    def compute(inputs):
        x = inputs["image"]
        m = x.reshape(len(x), -1).mean(axis=1)
        return {
            "logits": np.repeat(m[:, None, None], 8, 1).astype(np.float32),
            "regressors": np.zeros((len(x), 8, 16), np.float32),
        }

    io = [
        ("image", "input", (-1, 3, 4, 4)),
        ("logits", "output", (-1, 8, 1)),
        ("regressors", "output", (-1, 8, 16)),
    ]
    trt = make_tensorrt("10.3.0.26", engine=EngineSpec(io, compute, memory=gpu, max_batch=2))
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    import lsa_edge.backends.tensorrt as mod

    monkeypatch.setattr(
        mod, "load_engine", lambda path: trt.Runtime(trt.Logger()).deserialize_cuda_engine(b"PLAN:x")
    )
    engine = mod.TensorRTBackend(tmp_path / "det.engine")
    r = engine.detector_runner()
    assert isinstance(r, ModelRunner) and r.max_batch == 2 and r.input_shape == (None, 3, 4, 4)
    x = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 3, 4, 4), np.float32)
    reg, logits = r.predict(x)  # 2 + 2 + 1, joined output by output; regressors first
    assert reg.shape == (5, 8, 16) and logits.shape == (5, 8, 1)
    assert np.array_equal(logits[:, 0, 0], np.arange(5, dtype=np.float32))
    assert [z.shape for z in r.predict(x[:0])] == [(0, 8, 16), (0, 8, 1)]
    with r:
        pass
    assert gpu.live() == 0  # closing the runner closed the engine
    with pytest.raises(ConfigError, match="was closed"):
        r.predict(x)
