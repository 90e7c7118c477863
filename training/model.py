"""The LSA model: a backbone, and attribute queries that cross-attend to its tokens with an attention that
balances learned scaled-dot-product attention against a language prior (design.md §3).

    tokens  X = proj16(C16) + up(proj32(C32)) + pos      B×N×d   (N = H/16 · W/16)
    queries Q = q_proj(E_attr) + q_delta                  40×d    (E_attr: text embeddings)
    per head h:  Â_h = α_h · softmax(Q_h K_hᵀ / √d_h) + β_h · P,   P = D·S  (40×N, rows sum to 1)
    O = Â V → residual + FFN → per-attribute linear → 40 logits

Ablation switches (LSAConfig.balance / prior_source / region_set): prior off (β=0), learned attention
off (α=0), fixed α=β, shuffled or random text embeddings, coarse 4-group regions; and head="linear", the
plain global-pool + linear baseline on the same backbone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lsa_edge._checks import check_field_types, check_number
from lsa_edge.attributes import NUM_ATTRIBUTES
from lsa_edge.card import Preprocessing, celeba_preprocessing
from lsa_edge.errors import ConfigError, unknown_choice
from lsa_edge.regions import REGION_SETS, region_maps

from .backbones import BACKBONES, PRETRAINED_AVAILABLE, create_backbone
from .prior import CorrelationDictionary, PhraseEncoder, build_dictionary

Balance = Literal["learned", "equal", "no_prior", "prior_only"]


@dataclass
class LSAConfig:
    """Model configuration; serialised into every checkpoint and model card."""

    backbone: str = "mobilenet_v2"  # one of backbones.BACKBONES
    pretrained: bool | None = (
        None  # ImageNet init; None = where available (mobilenet_v2). The paper's setting is False
    )
    input_size: tuple[int, int] = (128, 112)  # (H, W) pixels of the aligned face
    head: Literal["lsa", "linear"] = "lsa"  # "linear": global average pool + linear (baseline)
    d_model: int = 256  # token / query width
    heads: int = 4  # attention heads
    layers: int = 1  # cross-attention decoder layers
    ffn: int = 512  # hidden width of the feed-forward block; 0 = no feed-forward block
    dropout: float = 0.1  # dropout in the head
    value_proj: bool = True  # value and output projections; False: the attention mixes the tokens as they are
    attn_dropout: float = 0.0  # extra dropout on the learned softmax alone, before α·softmax + β·P (which
    # `dropout` then drops as a whole): the head cannot lean on a few learned token weights
    balance: Balance = (
        "learned"  # how α, β are set: learned | equal (α=β=½, fixed) | no_prior (β=0) | prior_only (α=0)
    )
    # Learned balance only: α at the start (β = 1 − α, so the rows of Â still sum to 1). Below ½ the head
    # starts nearer the language prior; α and β stay learned. Acts only at initialisation.
    balance_init: float = 0.5
    prior_source: Literal["text", "shuffled", "random"] = "text"  # control: shuffled/random text embeddings
    region_set: str = "fine"  # "fine" (15 regions) or "coarse" (4 groups)
    tau: float = 0.05  # softmax temperature of the correlation dictionary
    normalization: Literal["none", "center", "zscore"] = "center"  # per-region normalisation of similarities
    global_branch: bool = True  # add a global-average-pool linear term to the attribute logits
    # The attention path's classifier starts at zero: with the global branch the model starts as the plain
    # global-pool head, and the attention adds only what training finds useful.
    zero_init_attention: bool = False
    num_attributes: int = NUM_ATTRIBUTES

    def __post_init__(self) -> None:
        check_field_types(type(self), {f.name: getattr(self, f.name) for f in fields(self)}, "model config")
        self.input_size = tuple(int(x) for x in self.input_size)  # type: ignore[assignment]
        if self.pretrained is None:
            self.pretrained = self.backbone in PRETRAINED_AVAILABLE
        if self.backbone not in BACKBONES:
            raise ConfigError(unknown_choice("backbone", self.backbone, BACKBONES))
        if self.pretrained and self.backbone not in PRETRAINED_AVAILABLE:
            raise ConfigError(
                f"--pretrained is available for {', '.join(sorted(PRETRAINED_AVAILABLE))}, not {self.backbone}"
            )
        if self.head not in ("lsa", "linear"):
            raise ConfigError(f"head must be lsa or linear, got {self.head!r}")
        if self.balance not in ("learned", "equal", "no_prior", "prior_only"):
            raise ConfigError(f"balance must be learned, equal, no_prior or prior_only, got {self.balance!r}")
        if self.prior_source not in ("text", "shuffled", "random"):
            raise ConfigError(f"prior_source must be text, shuffled or random, got {self.prior_source!r}")
        if self.normalization not in ("none", "center", "zscore"):
            raise ConfigError(f"normalization must be none, center or zscore, got {self.normalization!r}")
        if self.region_set not in REGION_SETS:
            raise ConfigError(f"region_set must be one of {REGION_SETS}, got {self.region_set!r}")
        for name, flag in (("d_model", "--d-model"), ("heads", None), ("layers", "--layers")):
            check_number(getattr(self, name), name, flag=flag, lo=1, integer=True)
        check_number(self.ffn, "ffn", lo=0, integer=True, hint="0 leaves the feed-forward block out")
        check_number(self.num_attributes, "num_attributes", lo=1, integer=True)
        check_number(self.dropout, "dropout", lo=0, hi=1, hi_open=True)
        check_number(self.attn_dropout, "attn_dropout", lo=0, hi=1, hi_open=True)
        check_number(
            self.balance_init, "balance_init", flag="--balance-init", lo=0, lo_open=True, hi=1, hi_open=True
        )
        if self.balance != "learned" and self.balance_init != 0.5:
            raise ConfigError(
                f"balance_init (--balance-init {self.balance_init}) sets where a learned balance starts; with "
                f"balance {self.balance!r} α and β are fixed. Use --balance learned, or leave balance_init out"
            )
        check_number(self.tau, "tau", flag="--tau", lo=0, lo_open=True, hint="e.g. 0.05")
        if self.d_model % self.heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if self.d_model % 4:
            raise ConfigError(
                f"d_model (--d-model) must be divisible by 4 (2-D positions), got {self.d_model}"
            )
        h, w = self.input_size
        if h < 32 or w < 16 or h % 32 or w % 16:
            raise ConfigError(
                f"input_size (--input-size, H x W) must be positive with H divisible by 32 and W by 16 (e.g. "
                f"128x112), got {h}x{w}"
            )

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (h, w) at stride 16."""
        return self.input_size[0] // 16, self.input_size[1] // 16

    @property
    def uses_prior(self) -> bool:
        return self.head == "lsa" and self.balance != "no_prior"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "model config") -> LSAConfig:
        """From a mapping; ``where`` (a config file) is named in errors, with the key and the value."""
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: model must be a mapping of model options, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"{where}: unknown model option(s) {sorted(unknown)}; known: {sorted(known)}")
        check_field_types(cls, d, f"{where}: model")
        return cls(**d)


def sincos_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine positions, (h·w)×dim."""
    if dim % 4:
        raise ConfigError(f"d_model must be divisible by 4 for 2-D positions, got {dim}")
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    omega = 1.0 / (10000 ** (torch.arange(dim // 4, dtype=torch.float32) / (dim // 4)))
    out = [f(c.reshape(-1, 1) * omega) for c in (yy, xx) for f in (torch.sin, torch.cos)]
    return torch.cat(out, dim=1)


class BalancedCrossAttention(nn.Module):
    """Multi-head cross-attention Â = α·softmax(QKᵀ/√d) + β·P with per-head α, β."""

    alpha_fixed: torch.Tensor  # buffers (register_buffer)
    beta_fixed: torch.Tensor

    def __init__(
        self,
        d: int,
        heads: int,
        balance: str,
        dropout: float,
        value_proj: bool = True,
        attn_dropout: float = 0.0,
        alpha_init: float = 0.5,
    ) -> None:
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        # Without the value and output projections the head has ~2·d² fewer weights to fit: each head's
        # output is a weighted mean of the tokens' own channels (few labels overfit the projections less).
        self.v: nn.Module = nn.Linear(d, d) if value_proj else nn.Identity()
        self.out: nn.Module = nn.Linear(d, d) if value_proj else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.balance = balance
        if balance == "learned":  # softplus⁻¹: α = alpha_init, β = 1 − α at the start, rows of Â sum to 1
            self.alpha_raw = nn.Parameter(torch.full((heads,), math.log(math.expm1(alpha_init))))
            self.beta_raw = nn.Parameter(torch.full((heads,), math.log(math.expm1(1.0 - alpha_init))))
        a, b = {"learned": (0.5, 0.5), "equal": (0.5, 0.5), "no_prior": (1.0, 0.0), "prior_only": (0.0, 1.0)}[
            balance
        ]
        self.register_buffer("alpha_fixed", torch.full((heads,), a), persistent=False)
        self.register_buffer("beta_fixed", torch.full((heads,), b), persistent=False)

    def coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.balance == "learned":
            return F.softplus(self.alpha_raw), F.softplus(self.beta_raw)
        return self.alpha_fixed, self.beta_fixed

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, prior: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q: B×A×d, k/v: B×N×d, prior: A×N (rows sum to 1) → (B×A×d, attention B×heads×A×N)."""
        b, a, d = q.shape
        n = k.shape[1]
        qh = self.q(q).view(b, a, self.heads, self.dh).transpose(1, 2)
        kh = self.k(k).view(b, n, self.heads, self.dh).transpose(1, 2)
        vh = self.v(v).view(b, n, self.heads, self.dh).transpose(1, 2)
        alpha, beta = self.coefficients()
        learned = self.attn_drop(torch.softmax(qh @ kh.transpose(-1, -2) * self.dh**-0.5, dim=-1))
        attn = alpha.view(1, -1, 1, 1) * learned
        if prior is not None and self.balance != "no_prior":
            attn = attn + beta.view(1, -1, 1, 1) * prior.to(attn.dtype)
        out = (self.drop(attn) @ vh).transpose(1, 2).reshape(b, a, d)
        return self.out(out), attn


class DecoderLayer(nn.Module):
    def __init__(
        self,
        d: int,
        heads: int,
        ffn: int,
        balance: str,
        dropout: float,
        value_proj: bool = True,
        attn_dropout: float = 0.0,
        alpha_init: float = 0.5,
    ) -> None:
        super().__init__()
        self.attn = BalancedCrossAttention(d, heads, balance, dropout, value_proj, attn_dropout, alpha_init)
        self.norm1 = nn.LayerNorm(d)
        self.norm2: nn.Module = nn.LayerNorm(d) if ffn else nn.Identity()
        self.mlp: nn.Module | None = (
            nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d))
            if ffn
            else None
        )
        self.drop = nn.Dropout(dropout)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, prior: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, attn = self.attn(q, k, v, prior)
        q = self.norm1(q + self.drop(out))
        if self.mlp is not None:
            q = self.norm2(q + self.drop(self.mlp(q)))
        return q, attn


class LSAModel(nn.Module):
    """Backbone + LSA head. forward(x: B×3×H×W normalised float) → B×40 logits."""

    pos: torch.Tensor  # buffers of the LSA head (register_buffer)
    query_text: torch.Tensor
    prior_attention: torch.Tensor

    def __init__(self, config: LSAConfig, prior: CorrelationDictionary | None = None) -> None:
        super().__init__()
        self.config = config
        self.prior_info = prior
        # LSAConfig resolves pretrained=None (where available) on construction; bool() only narrows the type.
        self.backbone = create_backbone(config.backbone, bool(config.pretrained))
        c16, c32 = self.backbone.channels
        d, a = config.d_model, config.num_attributes
        if config.head == "linear":
            self.classifier = nn.Linear(c32, a)
            return
        if prior is None:
            raise ConfigError(
                "the LSA head needs a correlation dictionary (build_dictionary()); or use head='linear'"
            )
        if prior.dictionary.shape[0] != a:
            raise ConfigError(f"dictionary has {prior.dictionary.shape[0]} attributes, the model {a}")
        gh, gw = config.grid
        self.proj16 = nn.Sequential(nn.Conv2d(c16, d, 1, bias=False), nn.BatchNorm2d(d))
        self.proj32 = nn.Sequential(nn.Conv2d(c32, d, 1, bias=False), nn.BatchNorm2d(d))
        self.token_norm = nn.LayerNorm(d)
        self.register_buffer("pos", sincos_2d(gh, gw, d), persistent=True)
        # Attribute queries, initialised from the attribute phrases' text embeddings.
        self.register_buffer("query_text", torch.as_tensor(prior.attribute_embeddings, dtype=torch.float32))
        self.query_proj = nn.Linear(self.query_text.shape[1], d)
        self.query_delta = nn.Parameter(torch.zeros(a, d))
        # Language attention P = D·S (A×N), fixed; S from the template of the crops the model is trained on
        # (the model card records it). Saved in the state dict, so a checkpoint keeps the P it was trained with.
        template = celeba_preprocessing(config.input_size).template
        if template is None:  # CelebA's preprocessing always has its template
            raise ConfigError("CelebA's preprocessing has no alignment template")
        s = region_maps(template, (gh, gw), config.region_set).reshape(len(prior.regions), -1)
        self.register_buffer("prior_attention", torch.as_tensor(prior.dictionary @ s, dtype=torch.float32))
        self.layers = nn.ModuleList(
            DecoderLayer(
                d,
                config.heads,
                config.ffn,
                config.balance,
                config.dropout,
                config.value_proj,
                config.attn_dropout,
                config.balance_init,
            )
            for _ in range(config.layers)
        )
        # Random, each attention logit starts at about unit scale: noise the few labels must first unlearn.
        scale = 0.0 if config.zero_init_attention else d**-0.5
        self.cls_weight = nn.Parameter(torch.randn(a, d) * scale)
        self.cls_bias = nn.Parameter(torch.zeros(a))
        # The global term gives every attribute the pooled features at once; the attention adds where to look.
        self.global_fc = nn.Linear(c32, a) if config.global_branch else None

    def tokens(self, c16: torch.Tensor, c32: torch.Tensor) -> torch.Tensor:
        t = self.proj16(c16) + F.interpolate(self.proj32(c32), size=c16.shape[-2:], mode="nearest")
        return self.token_norm(t.flatten(2).transpose(1, 2))  # B×N×d

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        if self.config.head == "linear":
            _, c32 = self.backbone(x)
            logits = self.classifier(c32.mean(dim=(2, 3)))
            return (logits, []) if return_attention else logits
        c16, c32 = self.backbone(x)
        t = self.tokens(c16, c32)
        k = t + self.pos.to(t.dtype)
        q = (self.query_proj(self.query_text) + self.query_delta).unsqueeze(0).expand(x.shape[0], -1, -1)
        prior = self.prior_attention if self.config.uses_prior else None
        maps = []
        for layer in self.layers:
            q, attn = layer(q, k, t, prior)
            maps.append(attn)
        logits = (q * self.cls_weight).sum(-1) + self.cls_bias
        if self.global_fc is not None:
            logits = logits + self.global_fc(c32.mean(dim=(2, 3)))
        return (logits, maps) if return_attention else logits

    def balance_coefficients(self) -> dict[str, list[float]]:
        """α, β per layer (mean over heads) for logging."""
        if self.config.head != "lsa":
            return {}
        out: dict[str, list[float]] = {"alpha": [], "beta": []}
        for layer in self.layers:
            a, b = cast(DecoderLayer, layer).attn.coefficients()
            out["alpha"].append(float(a.detach().mean()))
            out["beta"].append(float(b.detach().mean()))
        return out


# ------------------------------------------------------------------------------------- registry/factory
_MODELS: dict[str, dict[str, Any]] = {}


def register_model(name: str, **defaults: Any) -> None:
    if name in _MODELS:
        raise ConfigError(f"model {name!r} is already registered")
    _MODELS[name] = defaults


for _bb in ("resnet18", "resnet34", "resnet50", "mobilenet_v2"):
    register_model(f"lsa_{_bb}", backbone=_bb)
    register_model(f"linear_{_bb}", backbone=_bb, head="linear")
# The few-label head (issue "limited labels"): the same dictionary, prior and balanced cross-attention, a
# narrower width, no value/output projections and no feed-forward block (~0.26 M head weights, not ~0.95 M).
register_model("lsa_compact_mobilenet_v2", backbone="mobilenet_v2", d_model=128, ffn=0, value_proj=False)
register_model("lsa_test_tiny", backbone="test_tiny", d_model=32, heads=2, ffn=64, input_size=(64, 48))


def list_models(pattern: str = "*") -> list[str]:
    import fnmatch

    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def create_model(
    name: str | LSAConfig = "lsa_mobilenet_v2",
    prior: CorrelationDictionary | None = None,
    encoder: PhraseEncoder | None = None,
    **overrides: Any,
) -> LSAModel:
    """Build a registered model, or the model of a full :class:`LSAConfig` (a training run's, a
    checkpoint's). ``prior`` defaults to a dictionary built with ``encoder`` (or the default text encoder)
    for the config's region set; the plain ``linear_*`` heads need none."""
    if isinstance(name, LSAConfig):
        config = replace(name, **overrides) if overrides else name
    elif name not in _MODELS:
        raise ConfigError(unknown_choice("model", name, list_models()))
    else:
        config = LSAConfig(**{**_MODELS[name], **overrides})
    if prior is None and config.head == "lsa":
        prior = build_dictionary(
            encoder, config.region_set, config.normalization, config.tau, config.prior_source
        )
    return LSAModel(config, prior)


def preprocessing_for(config: LSAConfig) -> Preprocessing:
    """The preprocessing a model of this config was trained with."""
    return celeba_preprocessing(config.input_size)


def count_macs(model: LSAModel) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (convolutions, linears, attention matmuls)."""
    macs = 0

    def conv_hook(m: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        macs += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin_hook(m: nn.Linear, inp: Any, out: torch.Tensor) -> None:
        nonlocal macs
        macs += out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(lin_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    was = model.training
    model.eval()
    with torch.no_grad():
        h, w = model.config.input_size
        model(torch.zeros(1, 3, h, w, device=next(model.parameters()).device))
    model.train(was)
    for hk in hooks:
        hk.remove()
    if model.config.head == "lsa":
        n = int(np.prod(model.config.grid))
        macs += 2 * model.config.layers * model.config.num_attributes * n * model.config.d_model
    return macs


__all__ = [
    "LSAConfig",
    "LSAModel",
    "count_macs",
    "create_model",
    "list_models",
    "preprocessing_for",
    "register_model",
]
