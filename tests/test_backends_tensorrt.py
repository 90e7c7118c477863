"""The runtime's TensorRT backend against a fake TensorRT engine and a fake pycuda (no GPU here): buffer
sizing, batches split at the profile's maximum, only used rows copied, the primary context pushed and
popped around every call, outputs in order, zero faces, clean close. A real-GPU test is marked and skips."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from lsa_edge.errors import ConfigError, LsaEdgeError

C = 40


class FakeMem:
    def __init__(self, nbytes: int, store: dict) -> None:
        self.addr = 0x1000 + len(store) * 0x10000
        store[self.addr] = bytearray(nbytes)
        self.store, self.freed = store, False

    def __int__(self) -> int:
        return self.addr

    def free(self) -> None:
        self.freed = True


def fake_pycuda(log: list) -> types.ModuleType:
    cuda = types.ModuleType("pycuda.driver")
    store: dict[int, bytearray] = {}
    cuda.store = store

    class Ctx:
        def push(self) -> None:
            log.append("push")

        def detach(self) -> None:
            log.append("detach")

    class Device:
        def __init__(self, i: int) -> None:
            self.i = i

        def retain_primary_context(self) -> Ctx:
            return Ctx()

    class Context:
        @staticmethod
        def pop() -> None:
            log.append("pop")

    class Stream:
        handle = 7

        def synchronize(self) -> None:
            log.append("sync")

    def htod(dst, src, stream) -> None:
        b = np.ascontiguousarray(src).tobytes()
        store[int(dst)][: len(b)] = b
        log.append(("htod", len(b)))

    def dtoh(dst, src, stream) -> None:
        n = dst.nbytes
        dst[...] = np.frombuffer(bytes(store[int(src)][:n]), dtype=dst.dtype).reshape(dst.shape)
        log.append(("dtoh", n))

    cuda.init = lambda: None
    cuda.Device, cuda.Context, cuda.Stream = Device, Context, Stream
    cuda.pagelocked_empty = lambda shape, dtype: np.zeros(shape, dtype)
    cuda.mem_alloc = lambda nbytes: FakeMem(nbytes, store)
    cuda.memcpy_htod_async, cuda.memcpy_dtoh_async = htod, dtoh
    return cuda


class FakeEngine:
    """An engine computing probs[i, k] = sigmoid(mean(faces[i]) + k / 40) and score[i] = mean(faces[i])."""

    def __init__(self, cuda, trt, item=(3, 8, 6), max_batch=16) -> None:
        self.cuda, self.trt, self.item, self.max_batch = cuda, trt, item, max_batch
        self.num_io_tensors = 3
        self.ctx = None

    def get_tensor_name(self, i):
        return ("faces", "score", "probs")[i]  # the 1-wide output first: the runner must reorder

    def get_tensor_mode(self, name):
        return self.trt.TensorIOMode.INPUT if name == "faces" else self.trt.TensorIOMode.OUTPUT

    def get_tensor_shape(self, name):
        return {"faces": (-1, *self.item), "probs": (-1, C), "score": (-1, 1)}[name]

    def get_tensor_profile_shape(self, name, profile):
        return ((1, *self.item), (8, *self.item), (self.max_batch, *self.item))

    def get_tensor_dtype(self, name):
        return "float32"

    def create_execution_context(self):
        engine = self

        class Ctx:
            def __init__(self) -> None:
                self.addr: dict = {}
                self.calls: list = []

            def set_tensor_address(self, name, addr):
                self.addr[name] = addr

            def set_input_shape(self, name, shape):
                self.n = shape[0]
                return True

            def execute_async_v3(self, stream):
                n = self.n
                size = int(np.prod(engine.item)) * 4 * n
                x = np.frombuffer(bytes(engine.cuda.store[self.addr["faces"]][:size]), np.float32)
                x = x.reshape(n, -1).mean(axis=1)
                y = 1 / (1 + np.exp(-(x[:, None] + np.arange(C) / 40))).astype(np.float32)
                engine.cuda.store[self.addr["probs"]][: y.nbytes] = y.tobytes()
                engine.cuda.store[self.addr["score"]][: 4 * n] = x.astype(np.float32).tobytes()
                self.calls.append(n)
                return True

        self.ctx = Ctx()
        return self.ctx


@pytest.fixture
def backend(monkeypatch, tmp_path):
    log: list = []
    cuda = fake_pycuda(log)
    trt = types.ModuleType("tensorrt")
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dt: np.float32
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    for name, mod in (("tensorrt", trt), ("pycuda", pycuda), ("pycuda.driver", cuda)):
        monkeypatch.setitem(sys.modules, name, mod)
    import lsa_edge.backends.tensorrt as mod

    engine = FakeEngine(cuda, trt)
    monkeypatch.setattr(mod, "load_engine", lambda path: engine)
    b = mod.TensorRTBackend(tmp_path / "m.engine")
    return b, log, engine


def _expected(x: np.ndarray) -> np.ndarray:
    m = x.reshape(len(x), -1).mean(axis=1)
    return (1 / (1 + np.exp(-(m[:, None] + np.arange(C) / 40)))).astype(np.float32)


def test_batches_split_at_the_profile_maximum(backend):
    b, log, engine = backend
    assert b.max_batch == 16 and b.item_shape == (3, 8, 6) and b.num_outputs == C
    x = np.random.default_rng(0).normal(size=(40, 3, 8, 6)).astype(np.float32)
    got = b.predict(x)
    assert got.shape == (40, C) and np.allclose(got, _expected(x), atol=1e-6)  # "probs", not "score"
    assert engine.ctx.calls == [16, 16, 8]
    row = 3 * 8 * 6 * 4
    assert ("htod", 8 * row) in log and ("dtoh", 8 * C * 4) in log  # only the rows in use move
    assert log.count("push") == log.count("pop")  # the context is current only inside a call


def test_zero_faces_and_bad_shapes(backend):
    b, _, _ = backend
    assert b.predict(np.zeros((0, 3, 8, 6), np.float32)).shape == (0, C)
    with pytest.raises(ConfigError, match=r"takes N×\(3, 8, 6\)"):
        b.run(np.zeros((2, 3, 6, 8), np.float32))
    with pytest.raises(ConfigError, match=r"1\.\.16 items"):
        b.run(np.zeros((17, 3, 8, 6), np.float32))


def test_detector_runner_orders_outputs_and_close_frees(backend):
    b, log, _ = backend
    x = np.full((1, 3, 8, 6), 0.5, np.float32)
    wide, narrow = b.detector_runner()(x)
    assert wide.shape == (1, C) and narrow.shape == (1, 1) and narrow[0, 0] == pytest.approx(0.5)
    b.close()
    assert "detach" in log and all(m.freed for m in b._device.values())
    b.close()  # twice is fine


def test_a_failing_start_is_one_clear_error(monkeypatch, tmp_path):
    log: list = []
    cuda = fake_pycuda(log)
    cuda.init = lambda: (_ for _ in ()).throw(RuntimeError("cuInit failed: no CUDA-capable device"))
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    from lsa_edge.backends.tensorrt import TensorRTBackend

    with pytest.raises(LsaEdgeError, match="failed to start: RuntimeError: cuInit failed"):
        TensorRTBackend(tmp_path / "m.engine")


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_real_engine_runs(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not importable here (JetPack or NVIDIA's wheels)")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    pytest.skip(
        "needs an engine built on this GPU: run tests/test_engines_tensorrt.py::test_real_build_and_load"
    )
