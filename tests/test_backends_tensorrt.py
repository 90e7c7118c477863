"""The runtime's TensorRT backend against the strict fake TensorRT (the real API of 8.5, 10 and 11) and a
fake GPU behind cuda-python or pycuda (no GPU here): buffer sizing, batches split at the profile's maximum,
only used rows copied, outputs in order, zero faces, clean close, and every failing start as one clear
error. A real-GPU test is marked and skips."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from _fake_cuda import FakeGpu, install
from _fake_tensorrt import EngineSpec, make_tensorrt

from lsa_edge.backends import _cuda
from lsa_edge.errors import ConfigError, GpuUnavailableError, LsaEdgeError, MissingDependencyError

C = 40
ITEM = (3, 8, 6)


def _expected(x: np.ndarray) -> np.ndarray:
    m = x.reshape(len(x), -1).mean(axis=1)
    return (1 / (1 + np.exp(-(m[:, None] + np.arange(C) / 40)))).astype(np.float32)


def _spec(gpu: FakeGpu) -> EngineSpec:
    """probs[i, k] = sigmoid(mean(faces[i]) + k / 40); score[i] = mean(faces[i]) (listed first on purpose)."""

    def compute(inputs):
        x = inputs["faces"]
        return {"probs": _expected(x), "score": x.reshape(len(x), -1).mean(axis=1, keepdims=True)}

    io = [("faces", "input", (-1, *ITEM)), ("score", "output", (-1, 1)), ("probs", "output", (-1, C))]
    return EngineSpec(io, compute, memory=gpu, max_batch=16)


@pytest.fixture(params=["cuda-python", "pycuda"])
def binding(request):
    return request.param


@pytest.fixture(params=["8.5.2.2", "10.3.0.26", "11.4.1"])
def backend(request, monkeypatch, tmp_path, binding):
    gpu = FakeGpu()
    install(monkeypatch, gpu, cuda_python=binding == "cuda-python", pycuda=binding == "pycuda")
    trt = make_tensorrt(request.param, engine=_spec(gpu))
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    import lsa_edge.backends.tensorrt as mod

    # The sidecar check is tested with load_engine itself; here the engine comes straight from the runtime.
    monkeypatch.setattr(
        mod, "load_engine", lambda path: trt.Runtime(trt.Logger()).deserialize_cuda_engine(b"PLAN:x")
    )
    b = mod.TensorRTBackend(tmp_path / "m.engine")
    yield b, gpu, trt
    b.close()


def test_batches_split_at_the_profile_maximum(backend, binding):
    b, gpu, trt = backend
    assert b.max_batch == 16 and b.item_shape == ITEM and b.num_outputs == C
    assert b._cuda.binding == binding
    x = np.random.default_rng(0).normal(size=(40, *ITEM)).astype(np.float32)
    got = b.predict(x)
    assert got.shape == (40, C) and np.allclose(got, _expected(x), atol=1e-6)  # "probs", not "score"
    assert b.context._calls == [16, 16, 8]
    if binding == "cuda-python":  # only the rows in use move
        copies = [e for e in gpu.log if isinstance(e, tuple) and e[0] == "cudaMemcpyAsync"]
        assert copies[-3][3] == 8 * int(np.prod(ITEM)) * 4
    else:
        assert gpu.log.count("push") == gpu.log.count("pop")  # the context is current only inside a call
    # everything the backend touched is real TensorRT API of this version
    assert {
        ("IExecutionContext", "execute_async_v3"),
        ("ICudaEngine", "get_tensor_profile_shape"),
    } <= trt._fake.used


def test_zero_faces_and_bad_shapes(backend):
    b, _, _ = backend
    assert b.predict(np.zeros((0, *ITEM), np.float32)).shape == (0, C)
    with pytest.raises(ConfigError, match=r"takes N×\(3, 8, 6\)"):
        b.run(np.zeros((2, 3, 6, 8), np.float32))
    with pytest.raises(ConfigError, match=r"1\.\.16 items"):
        b.run(np.zeros((17, *ITEM), np.float32))


def test_detector_runner_orders_outputs_and_close_frees(backend):
    b, gpu, _ = backend
    x = np.full((1, *ITEM), 0.5, np.float32)
    wide, narrow = b.detector_runner()(x)
    assert wide.shape == (1, C) and narrow.shape == (1, 1) and narrow[0, 0] == pytest.approx(0.5)
    b.close()
    assert gpu.live() == 0  # device buffers, pinned buffers and the stream are all released
    b.close()  # twice is fine
    with pytest.raises(ConfigError, match="was closed"):
        b.run(x)
    with pytest.raises(ConfigError, match="was closed"):
        b.predict(x)


def test_threads_share_one_backend_safely(backend):
    """Any thread may call predict (a ROS callback, a worker): each caller gets its own faces' outputs."""
    import threading

    b, _, _ = backend
    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(int(rng.integers(1, 20)), *ITEM)).astype(np.float32) for _ in range(24)]
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        for i in range(k, len(inputs), 4):
            results[i] = b.predict(inputs[i])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, x in enumerate(inputs):
        np.testing.assert_allclose(results[i], _expected(x), atol=1e-6)


def test_without_a_gpu_the_backend_says_so(monkeypatch, tmp_path):
    install(monkeypatch, FakeGpu(error="cudaErrorInsufficientDriver"))
    monkeypatch.setattr(_cuda, "driver_problem", lambda: "no NVIDIA driver: libcuda.so.1 cannot be loaded")
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("10.3.0.26"))
    from lsa_edge.backends.tensorrt import TensorRTBackend

    with pytest.raises(GpuUnavailableError, match=r"no usable CUDA GPU.*no NVIDIA driver"):
        TensorRTBackend(tmp_path / "m.engine")


def test_without_a_cuda_binding_the_backend_names_cuda_python(monkeypatch, tmp_path):
    install(monkeypatch, None)
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("10.3.0.26"))
    from lsa_edge.backends.tensorrt import TensorRTBackend

    with pytest.raises(MissingDependencyError, match="cuda-python"):
        TensorRTBackend(tmp_path / "m.engine")


def test_a_failing_engine_is_one_clear_error(monkeypatch, tmp_path):
    gpu = FakeGpu()
    install(monkeypatch, gpu)
    trt = make_tensorrt("10.3.0.26")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    import lsa_edge.backends.tensorrt as mod

    def boom(path):
        raise TypeError("pybind11::init(): factory function returned nullptr")

    monkeypatch.setattr(mod, "load_engine", boom)
    with pytest.raises(LsaEdgeError, match="failed to start: TypeError: pybind11"):
        mod.TensorRTBackend(tmp_path / "m.engine")
    assert gpu.live() == 0  # the stream opened before the failure is released


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_real_engine_runs(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not importable here (JetPack or NVIDIA's wheels)")
    from test_engines_tensorrt import _tiny_onnx

    from lsa_edge.backends.tensorrt import TensorRTBackend
    from lsa_edge.engines.tensorrt import EngineSpec, Profile, build_engine

    try:
        _cuda.device_info()
    except (GpuUnavailableError, MissingDependencyError) as err:
        pytest.skip(f"no usable CUDA GPU here: {err}")
    spec = EngineSpec(_tiny_onnx(tmp_path / "tiny.onnx"), tmp_path, "fp32", profile=Profile(batch=(1, 2, 4)))
    engine = build_engine(spec).engine
    with_trt = TensorRTBackend(engine)
    try:
        out = with_trt.predict(np.zeros((3, 3, 32, 32), np.float32))
        assert out.shape == (3, 4) and np.allclose(out, 0.5, atol=1e-3)  # sigmoid(0) through a bias-free net
    finally:
        with_trt.close()
