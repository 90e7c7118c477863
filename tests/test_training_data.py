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


_STILL = dict(
    hflip=0.0, scale=(1.0, 1.0), rotate_deg=0.0, translate=0.0, brightness=0, contrast=0, saturation=0
)


def _face_like(n: int = 4) -> torch.Tensor:
    """Smooth images with edges (a blur or a shrink visibly changes them), uint8 N×48×40×3."""
    yy, xx = np.mgrid[0:48, 0:40]
    base = 128 + 100 * np.sin(xx / 2.0)[..., None] * np.cos(yy / 3.0)[..., None] * np.array([1.0, 0.6, 0.3])
    rng = np.random.default_rng(0)
    return torch.from_numpy(np.clip(base[None] + rng.normal(0, 5, (n, 48, 40, 3)), 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    "effect",
    [
        dict(resolution=1.0, resolution_min=0.3),
        dict(blur=1.0, blur_sigma=(1.0, 1.5)),
        dict(noise=1.0, noise_std=0.05),
        dict(jpeg=1.0, jpeg_quality=(10, 20)),
        dict(grayscale=1.0),
    ],
)
def test_each_camera_degradation_changes_the_face_and_repeats_with_the_stream(effect):
    crops = _face_like()
    clean = augment(crops, AugmentConfig(**_STILL), torch.Generator().manual_seed(1))
    cfg = AugmentConfig(**_STILL, **effect)
    a = augment(crops, cfg, torch.Generator().manual_seed(1))
    b = augment(crops, cfg, torch.Generator().manual_seed(1))
    assert a.shape == clean.shape and a.dtype == torch.float32
    assert torch.equal(a, b)  # the augmentation stream decides everything: a resumed run repeats it
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert float((a - clean).abs().mean()) > 1e-3, effect
    if "grayscale" in effect:
        assert torch.allclose(a[:, 0], a[:, 1]) and torch.allclose(a[:, 1], a[:, 2])
    if "blur" in effect or "resolution" in effect:  # less fine detail: smaller neighbour differences
        assert float(a.diff(dim=-1).abs().mean()) < float(clean.diff(dim=-1).abs().mean())


def test_degradations_are_off_by_default_and_checked():
    from lsa_edge.errors import ConfigError

    cfg = AugmentConfig()
    assert cfg.resolution == cfg.blur == cfg.noise == cfg.jpeg == cfg.grayscale == 0.0
    assert cfg.padding == "reflection"  # the recipes before these options, unchanged
    for bad in (dict(blur=1.5), dict(jpeg_quality=(90, 20)), dict(padding="wrap"), dict(resolution_min=0.0),
                dict(scale=0.9), dict(blur_sigma=[0.4, 1.0, 2.0])):  # fmt: skip
        with pytest.raises(ConfigError, match="augment"):
            AugmentConfig(**bad)
    # a recipe file's lists are the same pairs as the defaults' tuples
    from_yaml = AugmentConfig(scale=[0.92, 1.08], blur_sigma=[0.4, 1.6], jpeg_quality=[20, 90])
    assert from_yaml == AugmentConfig() and isinstance(from_yaml.scale, tuple)


def test_border_padding_repeats_the_edge_like_the_runtime_warp():
    """Zoomed out with padding="border", the area beyond the face repeats its edge pixels (the runtime
    aligns faces near the frame edge with BORDER_REPLICATE), not a mirror image."""
    crops = _face_like(1)
    cfg = AugmentConfig(**{**_STILL, "scale": (0.6, 0.6)}, padding="border")
    x = augment(crops, cfg, torch.Generator().manual_seed(0))[0]
    assert torch.allclose(x[:, :, 0], x[:, :, 1], atol=1e-6) and torch.allclose(
        x[:, 0, :], x[:, 1, :], atol=1e-6
    )


def test_without_degradations_the_augmentation_stream_is_untouched():
    """A recipe that does not ask for the camera degradations draws exactly what it drew before they
    existed: the generator ends in the same state as geometry and colour alone leave it."""
    crops = _face_like()
    g = torch.Generator().manual_seed(3)
    augment(crops, AugmentConfig(), g)
    after = g.get_state()
    g2 = torch.Generator().manual_seed(3)
    augment(crops, AugmentConfig(padding="border"), g2)  # padding draws nothing
    assert torch.equal(after, g2.get_state())
    g3 = torch.Generator().manual_seed(3)
    augment(crops, AugmentConfig(blur=0.5), g3)
    assert not torch.equal(after, g3.get_state())


def test_the_clean_view_is_the_batch_before_the_degradations():
    """augment_views: the teachers' view is exactly what geometry and colour alone give with the same stream,
    the student's is what augment gives; without degradations both are one tensor."""
    from lsa_edge.training.data import augment_views

    crops = _face_like()
    plain = AugmentConfig(rotate_deg=10.0, translate=0.05)
    camera = AugmentConfig(rotate_deg=10.0, translate=0.05, blur=1.0, jpeg=1.0, noise=1.0)
    clean, degraded = augment_views(crops, camera, torch.Generator().manual_seed(4))
    assert torch.equal(clean, augment(crops, plain, torch.Generator().manual_seed(4)))
    assert torch.equal(degraded, augment(crops, camera, torch.Generator().manual_seed(4)))
    assert float((clean - degraded).abs().mean()) > 1e-3  # degrade did not write into the clean view
    a, b = augment_views(crops, plain, torch.Generator().manual_seed(4))
    assert a is b
