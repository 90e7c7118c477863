"""The CUDA interface (lsa_edge/backends/_cuda.py) through both bindings against a fake GPU: device info,
every way of having no usable GPU turned into one clear error, buffers and copies, cleanup; the fake's
cuda-python names checked against the real cuda-python where it is installed; a real-GPU test (marked)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from _fake_cuda import FakeGpu, install

from lsa_edge.backends import _cuda
from lsa_edge.backends._tensorrt_env import gpu_info
from lsa_edge.errors import GpuUnavailableError, MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]


def _torch_sees_a_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.parametrize("binding", ["cuda-python", "pycuda"])
def test_device_info_reads_name_and_compute_capability(monkeypatch, binding):
    install(monkeypatch, FakeGpu(name=b"Orin", cc=(8, 7)), cuda_python=binding == "cuda-python", pycuda=True)
    assert _cuda.device_info(0, binding) == ("Orin", "8.7")
    assert gpu_info() == ("Orin", "8.7")  # the core's probe: cuda-python first, then pycuda


@pytest.mark.parametrize(
    ("gpu", "message"),
    [
        (FakeGpu(count=0), r"no usable CUDA GPU: the driver reports no CUDA device"),
        (
            FakeGpu(error="cudaErrorNoDevice"),
            r"no usable CUDA GPU: cudaGetDeviceCount failed: cudaErrorNoDevice",
        ),
        # cuda-python >= 12.6.1 without a driver: an error code, not an exception
        (FakeGpu(error="cudaErrorInsufficientDriver"), r"cudaErrorInsufficientDriver.*no NVIDIA driver"),
        # cuda-python <= 12.6.0 without a driver: RuntimeError("Failed to dlopen libcuda.so.1")
        (
            FakeGpu(error="cudaErrorInsufficientDriver", old=True),
            r"Failed to dlopen libcuda.so.1.*no NVIDIA driver",
        ),
    ],
    ids=["zero devices", "no device", "no driver", "no driver, old cuda-python"],
)
def test_no_usable_gpu_is_one_clear_error(monkeypatch, gpu, message):
    install(monkeypatch, gpu)
    monkeypatch.setattr(_cuda, "driver_problem", lambda: "no NVIDIA driver: libcuda.so.1 cannot be loaded")
    with pytest.raises(GpuUnavailableError, match=message):
        gpu_info()
    with pytest.raises(GpuUnavailableError, match=message):
        _cuda.open_cuda()


def test_an_old_driver_is_told_apart_from_no_driver(monkeypatch):
    install(monkeypatch, FakeGpu(error="cudaErrorInsufficientDriver"))
    monkeypatch.setattr(_cuda, "driver_problem", lambda: None)  # libcuda loads: the driver is just too old
    with pytest.raises(GpuUnavailableError, match=r"driver is older than this cuda-python.*cuda-python==12"):
        gpu_info()


def test_missing_device_index(monkeypatch):
    install(monkeypatch, FakeGpu(count=1))
    with pytest.raises(GpuUnavailableError, match=r"CUDA device 3 does not exist; this machine has 1"):
        _cuda.device_info(3)


def test_pycuda_is_the_fallback_and_its_errors_are_translated(monkeypatch):
    install(monkeypatch, FakeGpu(error="cudaErrorNoDevice"), cuda_python=False, pycuda=True)
    with pytest.raises(GpuUnavailableError, match=r"pycuda could not initialise CUDA \(LogicError"):
        gpu_info()
    install(monkeypatch, FakeGpu(name=b"Xavier", cc=(7, 2)), cuda_python=False, pycuda=True)
    assert gpu_info() == ("Xavier", "7.2")


def test_without_any_binding_the_error_names_cuda_python(monkeypatch):
    install(monkeypatch, None)
    with pytest.raises(MissingDependencyError, match=r"cuda-python \(preferred\) or pycuda.*cuda-python==12"):
        gpu_info()
    with pytest.raises(Exception, match="unknown CUDA binding 'cupy'"):
        _cuda.device_info(0, "cupy")


@pytest.mark.parametrize("binding", ["cuda-python", "pycuda"])
def test_buffers_round_trip_and_are_freed(monkeypatch, binding):
    gpu = FakeGpu()
    install(monkeypatch, gpu, cuda_python=binding == "cuda-python", pycuda=binding == "pycuda")
    cuda = _cuda.open_cuda(0, binding)
    assert cuda.binding == binding
    with cuda.current():
        host = cuda.pinned((4, 3), np.float32)
        host[...] = np.arange(12, dtype=np.float32).reshape(4, 3)
        dev = cuda.alloc(host.nbytes)
        cuda.to_device(dev, host[:2])  # only the rows in use
        back = cuda.pinned((2, 3), np.float32)
        cuda.to_host(back, dev)
        cuda.synchronize()
        np.testing.assert_array_equal(back, host[:2])
        cuda.to_device(dev, host, asynchronous=False)
        out = np.empty((4, 3), np.float32)
        cuda.to_host(out, dev, asynchronous=False)
        np.testing.assert_array_equal(out, host)
        assert isinstance(cuda.stream_handle, int)
        with pytest.raises(Exception, match="bad host→device copy"):
            cuda.to_device(dev, np.zeros(100, np.float32))
        dev.free()
        dev.free()  # twice is harmless
    cuda.close()
    assert gpu.live() == 0
    if binding == "pycuda":  # the primary context is pushed and popped around every block, then released
        assert gpu.log.count("push") == gpu.log.count("pop") and gpu.log[-1] == "detach"


def _cudart_names_used() -> set[str]:
    tree = ast.parse((ROOT / "lsa_edge" / "backends" / "_cuda_python.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "cudart":
            names.add(node.attr)
    return names


def test_the_names_we_call_exist_in_the_fake_and_in_real_cuda_python():
    used = _cudart_names_used()
    assert {"cudaMalloc", "cudaMemcpyAsync", "cudaStreamCreate", "cudaGetDeviceProperties"} <= used
    fake = FakeGpu().cudart()
    assert not {n for n in used if not hasattr(fake, n)}, "the fake lacks names the code calls"
    try:
        from cuda.bindings import runtime as real
    except ImportError:
        try:
            from cuda import cudart as real
        except ImportError:
            pytest.skip("cuda-python is not installed here: pip install cuda-python (it is in the dev extra)")
    missing = sorted(
        n for n in used | {n for n in vars(fake) if n.startswith("cuda")} if not hasattr(real, n)
    )
    assert not missing, f"not in the installed cuda-python: {missing}"
    for name in ("cudaSuccess", "cudaErrorInsufficientDriver", "cudaErrorNoDevice"):
        assert int(getattr(real.cudaError_t, name)) == int(getattr(fake.cudaError_t, name))


def test_real_cuda_python_without_a_driver_is_a_clear_error():
    """On this machine (no NVIDIA driver) the real cuda-python must give GpuUnavailableError, never a raw
    RuntimeError or error tuple. Where a GPU is present, it must be read."""
    pytest.importorskip("cuda", reason="cuda-python is not installed here (it is in the dev extra)")
    try:
        name, cc = _cuda.device_info(0, "cuda-python")
    except GpuUnavailableError as err:
        assert "no usable CUDA GPU" in str(err)
        if _cuda.driver_problem():
            assert "no NVIDIA driver" in str(err)
        return
    assert name and cc.count(".") == 1


@pytest.mark.gpu
def test_real_gpu_round_trip():
    try:
        cuda = _cuda.open_cuda()
    except (GpuUnavailableError, MissingDependencyError) as err:
        if _torch_sees_a_gpu():  # a GPU is there: our CUDA layer must see it too
            raise
        pytest.skip(f"no GPU here ({err})")
    try:
        with cuda.current():
            host = cuda.pinned((64, 40), np.float32)
            host[...] = np.random.default_rng(0).standard_normal((64, 40))
            dev = cuda.alloc(host.nbytes)
            cuda.to_device(dev, host)
            out = cuda.pinned((64, 40), np.float32)
            cuda.to_host(out, dev)
            cuda.synchronize()
            np.testing.assert_array_equal(out, host)
            dev.free()
    finally:
        cuda.close()


def test_doctor_says_plainly_whether_there_is_a_gpu(monkeypatch):
    from lsa_edge.cli import doctor

    install(monkeypatch, FakeGpu(name=b"Orin", cc=(8, 7)))
    monkeypatch.setattr(_cuda, "driver_problem", lambda: None)
    data, rows = doctor._gpu()
    assert data["compute_capability"] == "8.7" and rows == [("GPU", "ok", "Orin (compute capability 8.7)")]

    monkeypatch.setattr(_cuda, "driver_problem", lambda: "no NVIDIA driver: libcuda.so.1 cannot be loaded")
    data, rows = doctor._gpu()
    assert (
        data["driver"] is False and rows[0][1] == "no" and rows[0][2].startswith("no GPU: no NVIDIA driver")
    )

    install(monkeypatch, FakeGpu(error="cudaErrorInsufficientDriver"))
    monkeypatch.setattr(_cuda, "driver_problem", lambda: None)  # a driver, but older than cuda-python's CUDA
    data, rows = doctor._gpu()
    assert rows[0][1] == "no" and "older than this cuda-python" in rows[0][2]

    install(monkeypatch, None)
    data, rows = doctor._gpu()
    assert rows[0][1] == "info" and "cuda-python" in rows[0][2]


def test_doctor_names_the_cuda_binding(monkeypatch):
    import lsa_edge._lazy
    from lsa_edge.cli import doctor

    monkeypatch.setattr(lsa_edge._lazy, "available", lambda name: name in ("cuda", "pycuda"))
    monkeypatch.setattr(
        doctor, "_version", lambda dist: {"cuda-python": "12.6.2", "pycuda": "2024.1"}.get(dist)
    )
    data, rows = doctor._tensorrt()
    assert data["cuda_binding"] == "cuda-python"
    assert ("CUDA binding", "ok", "cuda-python 12.6.2 (also pycuda 2024.1)") in rows
    monkeypatch.setattr(lsa_edge._lazy, "available", lambda name: False)
    data, rows = doctor._tensorrt()
    assert data["cuda_binding"] is None and rows[-1][1] == "no" and "cuda-python" in rows[-1][2]


def test_current_restores_the_threads_device(monkeypatch):
    gpu = FakeGpu(count=2)
    install(monkeypatch, gpu)
    cuda = _cuda.open_cuda(1)
    gpu.current = 0  # e.g. torch works on device 0 in this thread
    with cuda.current():
        assert gpu.current == 1
    assert gpu.current == 0  # given back as it was
    cuda.close()


def test_pycuda_errors_during_a_copy_are_translated(monkeypatch):
    gpu = FakeGpu()
    install(monkeypatch, gpu, cuda_python=False, pycuda=True)
    cuda = _cuda.open_cuda(0, "pycuda")
    dev = cuda.alloc(16)
    drv = __import__("sys").modules["pycuda.driver"]

    def broken(*args):
        raise drv.LogicError("cuMemcpyHtoDAsync failed: an illegal memory access was encountered")

    monkeypatch.setattr(drv, "memcpy_htod_async", broken)
    with cuda.current(), pytest.raises(
        Exception, match=r"CUDA error copying to the GPU \(pycuda: LogicError"
    ):
        cuda.to_device(dev, np.zeros(4, np.float32))
    cuda.close()
