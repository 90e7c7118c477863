"""What only a CUDA GPU can check (marked ``gpu``; each skips with its reason on a machine without one):
a real training run's CUDA path with mixed precision (fp16 with the grad scaler, bf16), the PyTorch
backend on CUDA against the CPU, the whole pipeline with it, and ONNX Runtime's CUDA provider where it is
installed. Self-contained: a synthetic data set and a random text encoder, so they run on a machine
without ../shared or the text-encoder wheel (``scripts/device_check.sh`` runs them there).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip(f"no CUDA device for torch {torch.__version__} (built for CUDA {torch.version.cuda})")
    return torch


class RandomEncoder:
    """Stands in for the sentence encoder: unit vectors, seeded (the prior is random, the path is real)."""

    def encode_groups(self, groups):
        rng = np.random.default_rng(len(groups))
        v = rng.standard_normal((len(groups), 384)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def synthetic_celeba(dst: Path, n: int = 96, seed: int = 0) -> Path:
    """A CelebA-layout folder of ``n`` random 89×109 images with random labels (2/3 train, 1/6 val, test)."""
    import cv2

    from lsa_edge.attributes import ATTRIBUTES

    rng = np.random.default_rng(seed)
    (dst / "img_align_celeba").mkdir(parents=True)
    rows, parts, ids = [], [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        cv2.imwrite(str(dst / "img_align_celeba" / name), rng.integers(0, 256, (109, 89, 3), dtype=np.uint8))
        rows.append(name + " " + " ".join(rng.choice(["-1", "1"], len(ATTRIBUTES))))
        parts.append(f"{name} {0 if i < n * 2 // 3 else 1 if i < n * 5 // 6 else 2}")
        ids.append(f"{name} {i}")
    (dst / "list_attr_celeba.txt").write_text("\n".join([str(n), " ".join(ATTRIBUTES), *rows]) + "\n")
    (dst / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    (dst / "identity_CelebA.txt").write_text("\n".join(ids) + "\n")
    return dst


@pytest.fixture(scope="module")
def runs(cuda, tmp_path_factory):
    """One epoch of the real trainer on CUDA per mixed precision: {amp: run folder}."""
    from lsa_edge.training import LSAConfig
    from lsa_edge.training.trainer import TrainConfig, train

    data = synthetic_celeba(tmp_path_factory.mktemp("data"))
    out = {}
    for amp in ("fp16", "bf16"):
        run = tmp_path_factory.mktemp(f"run-{amp}")
        cfg = TrainConfig(
            data=str(data),
            out=str(run),
            model=LSAConfig(backbone="test_tiny", d_model=32, heads=2, ffn=64, input_size=(64, 48)),
            epochs=1,
            batch_size=16,
            device="cuda",
            amp=amp,
            workers=2,
            progress=False,
        )
        train(cfg, encoder=RandomEncoder())
        out[amp] = run
    return out


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_cuda_training_with_mixed_precision(runs, amp):
    import torch

    run = runs[amp]
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    log = (run / "log.csv").read_text().splitlines()
    header, row = log[0].split(","), log[1].split(",")
    loss = float(row[header.index("train_loss")])
    assert np.isfinite(loss) and 0.0 < loss < 2.0  # BCE of 40 random labels starts near 0.69
    ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert ck["meta"]["amp"] == {"fp16": "torch.float16", "bf16": "torch.bfloat16"}[amp]
    config = json.loads((run / "config.json").read_text())
    assert config["device"] == "cuda" and config["amp"] == amp


def test_torch_backend_on_cuda_matches_cpu(runs):
    from lsa_edge.training.backend import TorchBackend

    ckpt = runs["bf16"] / "best.pt"
    x = np.random.default_rng(0).standard_normal((24, 3, 64, 48)).astype(np.float32)
    gpu, cpu = TorchBackend(ckpt, "cuda"), TorchBackend(ckpt, "cpu")
    try:
        a, b = gpu.predict(x, batch_size=16), cpu.predict(x)
    finally:
        gpu.close()
        cpu.close()
    assert a.shape == (24, 40) and float(np.abs(a - b).max()) < 5e-3  # TF32 convolutions on Ampere+


def test_pipeline_with_the_torch_backend_on_cuda(runs):
    from lsa_edge.demo import scene
    from lsa_edge.pipeline import Pipeline

    with Pipeline(runs["bf16"] / "best.pt", backend="torch", tracking=False) as pipe:
        assert pipe.backend.device == "cuda"
        result = pipe.predict(scene(4, 0))
    assert len(result.faces) == 4 and all(len(f.attributes) == 40 for f in result.faces)


def test_onnxruntime_cuda_provider_matches_cpu():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(
            f"this onnxruntime {ort.__version__} has no CUDAExecutionProvider "
            f"(providers: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu"
        )
    from lsa_edge.backends import OnnxRuntimeBackend
    from lsa_edge.package import DEFAULT_MODEL_DIR

    x = np.random.default_rng(0).standard_normal((8, 3, 160, 144)).astype(np.float32)
    path = DEFAULT_MODEL_DIR / "model.onnx"
    a = OnnxRuntimeBackend(path, providers=["CUDAExecutionProvider"]).predict(x)
    b = OnnxRuntimeBackend(path, providers=["CPUExecutionProvider"]).predict(x)
    assert float(np.abs(a - b).max()) < 5e-3
