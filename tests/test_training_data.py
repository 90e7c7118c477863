"""Training's normaliser is the runtime's: the torch Normalizer (built from the card's Preprocessing)
gives what lsa_edge.preprocess.normalize gives, in both colour orders; augmentation stays in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lsa_edge.card import Preprocessing  # noqa: E402
from lsa_edge.preprocess import normalize  # noqa: E402
from lsa_edge.training.data import AugmentConfig, Normalizer, augment  # noqa: E402


@pytest.mark.parametrize("order", ["RGB", "BGR"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_normalizer_matches_the_runtime(order, seed):
    rng = np.random.default_rng(seed)
    mean, std = tuple(map(float, rng.uniform(0.2, 0.6, 3))), tuple(map(float, rng.uniform(0.15, 0.35, 3)))
    pre = Preprocessing(input_size=(32, 24), color_order=order, mean=mean, std=std)
    crops = rng.integers(0, 256, size=(5, 32, 24, 3), dtype=np.uint8)  # RGB, as training holds them
    want = normalize(crops, pre, input_order="RGB")
    got = Normalizer(pre)(torch.from_numpy(crops)).numpy()
    assert got.dtype == np.float32 and got.shape == want.shape == (5, 3, 32, 24)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # float32 rounding, no more
    # The colour order is the card's: BGR flips channels (an RGB model never sees a swapped crop).
    rgb = Normalizer(Preprocessing(input_size=(32, 24), mean=mean, std=std))(torch.from_numpy(crops))
    assert np.array_equal(np.isclose(got, rgb.numpy()).all(), order == "RGB")


def test_unit_is_the_uint8_path_after_scaling():
    pre = Preprocessing(input_size=(32, 24), color_order="BGR")
    crops = torch.randint(0, 256, (3, 32, 24, 3), dtype=torch.uint8)
    norm = Normalizer(pre)
    unit = crops.permute(0, 3, 1, 2).float().div(255.0)
    assert torch.equal(norm.unit(unit), norm(crops))


def test_augment_without_changes_is_the_scaled_image():
    crops = torch.randint(0, 256, (2, 32, 24, 3), dtype=torch.uint8)
    off = AugmentConfig(
        hflip=0.0, scale=(1.0, 1.0), rotate_deg=0.0, translate=0.0, brightness=0, contrast=0, saturation=0
    )
    x = augment(crops, off, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(x.numpy(), crops.permute(0, 3, 1, 2).float().div(255.0).numpy(), atol=1e-5)
