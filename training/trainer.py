"""The training loop: limited-label selection, in-memory crops, batch augmentation, AdamW with warm-up and
cosine decay, AMP on CUDA (bf16 optional on CPU), optional distillation from averaged teachers and an
EMA of the weights, validation-based selection, resume, and data-parallel training through torchrun +
DistributedDataParallel (gloo on CPU, NCCL on CUDA).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from lsa_edge._checks import check_device, check_field_types, check_number, parse_device
from lsa_edge._fileio import check_writable, same_or_inside, write_json_atomic, write_text_atomic
from lsa_edge.card import ModelCard, Preprocessing
from lsa_edge.data import FaceDataset, carve_validation, load_dataset, select_labelled
from lsa_edge.errors import CheckpointError, ConfigError, LsaEdgeError
from lsa_edge.metrics import attribute_metrics, majority_accuracy, tune_thresholds

from .checkpoint import git_commit, read_checkpoint, save_checkpoint, state_sha256
from .data import AugmentConfig, CropSet, Normalizer, augment_views, load_crops
from .ema import WeightEMA
from .model import LSAConfig, LSAModel, count_macs, create_model, preprocessing_for
from .prior import PhraseEncoder
from .unlabelled import (
    STRONG,
    Consistency,
    faces_from_folder,
    join_unlabelled,
    judge_of,
    labelled_order,
    labelled_rates,
    unlabelled_part,
    weak,
)

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a training run depends on; written to RUN_DIR/config.json."""

    data: str = ""  # data set folder (CelebA, CSV or LFWA layout)
    out: str = "runs/lsa"  # run folder: best.pt, last.pt, log.csv, config.json
    format: str | None = None  # data layout; None = detect
    model: LSAConfig = field(default_factory=LSAConfig)
    epochs: int = 12  # passes over the labelled images
    batch_size: int = 64  # per process
    lr: float = 1e-3  # peak AdamW learning rate (head; the backbone gets lr × backbone_lr_mult)
    backbone_lr_mult: float = 1.0  # lower (e.g. 0.5) to fine-tune an ImageNet backbone gently
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to zero
    select_rate: int | None = None  # limited labels: every K-th training image (SSPL)
    label_fraction: float | None = None  # limited labels: a random fraction (seeded)
    label_count: int | None = None  # limited labels: a fixed random count (seeded)
    val_fraction: float | None = (
        None  # carve an identity-disjoint val split from train (data sets without one)
    )
    max_val: int | None = None  # evaluate on at most this many validation images (speed)
    eval_every: int = 1  # validate every N epochs (and always after the last)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (fp16/bf16 on CUDA, off on CPU) | off | bf16 | fp16
    workers: int = 4  # image decoding threads
    threads: int | None = None  # torch CPU threads (None = torch's default)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    ema: float = 0.0  # per-step decay (warmed up) of a moving average of the weights, shipped (0 = off)
    teachers: list[str] = field(default_factory=list)  # checkpoints whose averaged predictions distil in
    distill_weight: float = 0.5  # share of the teachers' soft targets in the loss (the rest: labels)
    init: str | None = None  # start from this checkpoint's weights (fine-tuning; the same model config)
    # Learning from the training split's unlabelled images (semi-supervised; see training/unlabelled.py):
    # auto = on when labels are limited (select_rate, label_fraction or label_count) or unlabelled_data is
    # given, on, off.
    # auto by default: at 322 labels (seed 0, steps matched) the unlabelled faces lifted LSA 85.69 → 85.93%
    # and the plain head 85.55 → 86.25% on test (README "Limited labels")
    unlabelled: str = "auto"
    unlabelled_weight: float = 1.0  # weight of the consistency loss on unlabelled faces (ramped up)
    unlabelled_ratio: int = 1  # unlabelled images per labelled image in a step
    unlabelled_threshold: float = 0.7  # pseudo-labels with max(p, 1 − p) below this are left out
    unlabelled_rampup: float = 0.2  # share of the steps over which the weight rises from 0
    unlabelled_align: bool = False  # shift pseudo-labels toward the labelled rates (distribution alignment)
    unlabelled_data: str | None = None  # a folder of face images added to the unlabelled faces (detected)
    resume: bool = False  # continue from out/last.pt
    overwrite: bool = False  # start afresh in a folder that holds a run (its files are replaced)
    stop_after: int | None = None  # stop after this epoch (for time-limited jobs); continue later with resume
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.teachers, (str, os.PathLike)):  # one path, not a list of its characters
            self.teachers = [self.teachers]  # type: ignore[list-item]
        if isinstance(self.teachers, (list, tuple)):
            self.teachers = [os.fspath(t) if isinstance(t, os.PathLike) else t for t in self.teachers]
        for name in ("data", "out", "init", "unlabelled_data"):
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        if isinstance(self.model, dict):
            self.model = LSAConfig.from_dict(self.model)
        if not isinstance(self.model, LSAConfig):
            raise ConfigError(
                f"model must be a mapping of model options (e.g. backbone: resnet18), got {self.model!r}"
            )
        if isinstance(self.augment, dict):
            self.augment = _augment_from_dict(self.augment)
        check_field_types(
            type(self), {f.name: getattr(self, f.name) for f in fields(self)}, "training config"
        )
        for name, lo in (("epochs", 1), ("batch_size", 1), ("eval_every", 1), ("workers", 1)):
            check_number(getattr(self, name), name, flag=_flag(name), lo=lo, integer=True)
        for name in ("select_rate", "label_count", "max_val", "threads", "stop_after"):
            hint = "leave it out for torch's default" if name == "threads" else ""
            check_number(
                getattr(self, name), name, flag=_flag(name), lo=1, integer=True, optional=True, hint=hint
            )
        check_number(self.seed, "seed", flag="--seed", lo=0, hi=2**32 - 1, integer=True)
        check_number(self.lr, "lr", flag="--lr", lo=0, lo_open=True, hint="e.g. 1e-3")
        for name in ("backbone_lr_mult", "weight_decay", "warmup_epochs"):
            check_number(getattr(self, name), name, flag=_flag(name), lo=0)
        check_number(
            self.label_fraction, "label_fraction", flag="--label-fraction", lo=0, lo_open=True, hi=1,
            optional=True,
        )  # fmt: skip
        check_number(
            self.val_fraction, "val_fraction", flag="--val-fraction", lo=0, lo_open=True, hi=1, hi_open=True,
            optional=True,
        )  # fmt: skip
        check_number(
            self.ema,
            "ema",
            flag="--ema",
            lo=0,
            hi=1,
            hi_open=True,
            hint="a per-step decay (0 = off; e.g. 0.995)",
        )
        check_number(self.distill_weight, "distill_weight", flag="--distill-weight", lo=0, hi=1)
        if self.unlabelled not in ("auto", "on", "off"):
            raise ConfigError(f"unlabelled (--unlabelled) must be auto, on or off, got {self.unlabelled!r}")
        check_number(self.unlabelled_weight, "unlabelled_weight", flag="--unlabelled-weight", lo=0)
        check_number(self.unlabelled_ratio, "unlabelled_ratio", flag="--unlabelled-ratio", lo=1, integer=True)
        check_number(
            self.unlabelled_threshold, "unlabelled_threshold", flag="--unlabelled-threshold", lo=0.5, hi=1
        )
        check_number(self.unlabelled_rampup, "unlabelled_rampup", flag="--unlabelled-rampup", lo=0, hi=1)
        self._check_unlabelled_data()
        check_device(self.device)
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ConfigError(f"amp (--amp) must be auto, off, bf16 or fp16, got {self.amp!r}")
        if self.resume and self.overwrite:
            raise ConfigError(
                "--resume continues the run in the folder, --overwrite replaces it: give one of them"
            )

    def _check_unlabelled_data(self) -> None:
        if self.unlabelled_data is None:
            return
        if self.unlabelled == "off":
            raise ConfigError(
                f"--unlabelled-data {self.unlabelled_data} with --unlabelled off: drop one, or use "
                "--unlabelled auto or on"
            )
        if self.data and (
            same_or_inside(self.unlabelled_data, self.data) or same_or_inside(self.data, self.unlabelled_data)
        ):
            raise ConfigError(
                f"--unlabelled-data {self.unlabelled_data} holds --data {self.data} (or lies in it): its "
                "validation and test images would train as unlabelled faces. Give a folder of other faces; "
                "the training split's own unlabelled images are used already (--unlabelled auto|on)"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "training config") -> TrainConfig:
        """From a mapping (a config file's, the CLI's); ``where`` names it in errors. A wrong key or a value
        of the wrong type is a ConfigError naming the key, the value and the type expected."""
        d = cls.check_mapping(d, where)
        if isinstance(d.get("model"), dict):
            d["model"] = LSAConfig.from_dict(d["model"], where)
        if isinstance(d.get("augment"), dict):
            d["augment"] = _augment_from_dict(d["augment"], where)
        return cls(**d)

    @classmethod
    def check_mapping(cls, d: Any, where: str = "training config") -> dict[str, Any]:
        """The keys and value types of a mapping of TrainConfig fields (ranges are checked on construction);
        returns a copy with a single ``teachers`` path made a one-element list."""
        if not isinstance(d, dict):
            raise ConfigError(
                f"{where} must be a mapping of TrainConfig fields (key: value), got {type(d).__name__}"
            )
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(
                f"{where}: unknown training option(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        if isinstance(d.get("teachers"), str):  # one teacher path: a one-element list
            d["teachers"] = [d["teachers"]]
        for key, kind, example in (
            ("model", LSAConfig, "backbone: resnet18"),
            ("augment", AugmentConfig, "hflip: 0.5"),
        ):
            if key not in d or isinstance(d[key], kind):
                continue
            if not isinstance(d[key], dict):
                raise ConfigError(
                    f"{where}: {key} must be a mapping of {key} options (e.g. {key}: {{{example}}}), got "
                    f"{d[key]!r} ({type(d[key]).__name__})"
                )
            bad = set(d[key]) - {f.name for f in fields(kind)}
            if bad:
                raise ConfigError(
                    f"{where}: unknown {key} option(s) {sorted(bad)}; known: {sorted(f.name for f in fields(kind))}"
                )
            check_field_types(kind, d[key], f"{where}: {key}")
        check_field_types(cls, {k: v for k, v in d.items() if k not in ("model", "augment")}, where)
        return d


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _augment_from_dict(d: dict[str, Any], where: str = "training config") -> AugmentConfig:
    TrainConfig.check_mapping({"augment": d}, where)
    return AugmentConfig(**d)


# ------------------------------------------------------------------------------------------ distributed
@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def check_distributed_env(env: Any = None) -> int:
    """The world size torchrun set (1 without it). A WORLD_SIZE > 1 without the rest of torchrun's
    environment (RANK, MASTER_ADDR, MASTER_PORT) is a usage error, not a torch.distributed failure."""
    env = os.environ if env is None else env
    text = env.get("WORLD_SIZE", "1")
    try:
        world = int(text)
    except ValueError:
        raise ConfigError(f"the environment variable WORLD_SIZE must be an integer, got {text!r}") from None
    if world < 1:
        raise ConfigError(f"the environment variable WORLD_SIZE must be ≥ 1, got {world}")
    if world > 1:
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
        if missing:
            raise ConfigError(
                f"WORLD_SIZE={world} is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                f"not: start data-parallel training with torchrun --nproc_per_node {world} -m lsa_edge train "
                "..., or unset WORLD_SIZE for one process"
            )
        for k in ("RANK", "LOCAL_RANK"):
            if k in env and not str(env[k]).isdigit():
                raise ConfigError(f"the environment variable {k} must be an integer ≥ 0, got {env[k]!r}")
    return world


def init_distributed(device: torch.device) -> DistInfo:
    world = check_distributed_env()
    if world <= 1:
        return DistInfo()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistInfo(
        rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0"))
    )


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``--device`` → the torch device: the names are lsa-edge's (:func:`lsa_edge._checks.parse_device`,
    the one rule the runtime uses too, plus ``mps`` for training on a Mac), checked before torch sees them."""
    parsed = parse_device(name, "--device", mps=True)
    if parsed is None:  # auto
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    kind, index = parsed
    if kind in ("cpu", "mps"):
        return torch.device(kind)
    if not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for, but torch sees no CUDA device (torch built for CPU, or no GPU)"
        )
    index = local_rank if index is None else index
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"--device {name}: torch sees {torch.cuda.device_count()} CUDA device(s), numbered from 0"
        )
    return torch.device(f"cuda:{index}")


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp in ("bf16", "fp16"):
        if amp == "fp16" and device.type == "cpu":
            raise ConfigError("--amp fp16 is for CUDA; on CPU use --amp bf16 (fast on CPUs with AMX) or off")
        return torch.bfloat16 if amp == "bf16" else torch.float16
    raise ConfigError(f"--amp must be auto, off, bf16 or fp16, got {amp!r}")


# ------------------------------------------------------------------------------------------------ data
@dataclass
class Splits:
    train: CropSet
    val: CropSet
    train_full: FaceDataset  # the whole training partition (before label selection)
    labelled: FaceDataset
    source: FaceDataset
    unlabelled: CropSet | None = None  # the training images left unlabelled, labels zeroed (never read)


def prepare_data(cfg: TrainConfig, progress: bool = True) -> Splits:
    ds = load_dataset(cfg.data, cfg.format)
    if cfg.val_fraction:
        ds = carve_validation(ds, cfg.val_fraction, cfg.seed)
    train_full = ds.split("train")
    labelled = select_labelled(train_full, cfg.select_rate, cfg.label_fraction, cfg.label_count, cfg.seed)
    val_ds = ds.split("val")
    if cfg.max_val and len(val_ds) > cfg.max_val:
        val_ds = val_ds.subset(np.arange(cfg.max_val))
    pre = preprocessing_for(cfg.model)
    train = load_crops(labelled, pre, ds.frame, cfg.workers, progress)
    val = load_crops(val_ds, pre, ds.frame, cfg.workers, progress)
    rest = unlabelled_part(train_full, labelled, cfg.unlabelled, folder=cfg.unlabelled_data is not None)
    unlabelled = join_unlabelled(
        [
            load_crops(rest, pre, ds.frame, cfg.workers, progress) if rest is not None else None,
            faces_from_folder(cfg.unlabelled_data, pre, cfg.workers, progress, exclude=_held_out_names(ds))
            if cfg.unlabelled_data
            else None,
        ]
    )
    return Splits(
        train=train, val=val, train_full=train_full, labelled=labelled, source=ds, unlabelled=unlabelled
    )


def _held_out_names(ds: FaceDataset) -> set[str]:
    """File names of the data set's validation and test images: a folder of unlabelled faces that holds
    copies of them (the whole CelebA beside CelebA-10k, say) must not train on them."""
    return {Path(name).name for name, part in zip(ds.image_ids, ds.partition) if part != 0}


# ----------------------------------------------------------------------------------------------- train
def lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(p, 1.0)))

    return f


def make_optimizer(model: LSAModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    bb_decay: list[torch.nn.Parameter] = []
    bb_no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_bb = name.startswith("backbone.")
        flat = p.ndim <= 1 or name.endswith(("alpha_raw", "beta_raw", "query_delta"))
        (bb_no_decay if is_bb and flat else bb_decay if is_bb else no_decay if flat else decay).append(p)
    m = cfg.backbone_lr_mult
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": cfg.lr},
        {"params": bb_decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr * m},
        {"params": bb_no_decay, "weight_decay": 0.0, "lr": cfg.lr * m},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], betas=(0.9, 0.999))


@torch.no_grad()
def predict_crops(
    model: LSAModel,
    images: np.ndarray,
    device: torch.device,
    batch_size: int = 256,
    amp: torch.dtype | None = None,
    pre: Preprocessing | None = None,
) -> np.ndarray:
    """N×H×W×3 uint8 RGB crops → N×40 probabilities (normalised with ``pre``, default: the config's)."""
    normalize = Normalizer(pre or preprocessing_for(model.config), device)
    was = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = normalize(torch.from_numpy(images[i : i + batch_size]).to(device))
        with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            out.append(torch.sigmoid(model(x).float()).cpu().numpy())
    model.train(was)
    return np.concatenate(out)


# Options that may change between a run and its resumption; everything else must match.
_RESUME_MAY_CHANGE = {
    "resume",
    "overwrite",
    "stop_after",
    "progress",
    "out",
    "data",
    "threads",
    "workers",
    "device",
    "eval_every",
}


def portable_config(cfg: TrainConfig) -> dict[str, Any]:
    """The config as a checkpoint records it: folder names, never this machine's absolute paths."""
    return portable_paths(cfg.to_dict())


def portable_paths(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict's paths as names (data, out, unlabelled folder) and ``run/file`` (init, teachers):
    the same however they were typed. Idempotent, so it also reads a checkpoint's already portable config."""
    return {
        **d,
        "data": Path(d.get("data") or "").name,
        "out": Path(d.get("out") or "").name,
        "teachers": [short_path(t) for t in d.get("teachers") or []],
        "init": short_path(d["init"]) if d.get("init") else None,
        "unlabelled_data": Path(d["unlabelled_data"]).name if d.get("unlabelled_data") else None,
    }


def short_path(path: str) -> str:
    """A checkpoint as ``run_folder/file``: the same however it was typed, and no machine paths."""
    p = Path(path)
    return "/".join(p.parts[-2:])


def config_differences(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``key: saved …, now …`` for every setting of a saved run (its ``train_config`` or config.json) that
    differs from ``cfg``, leaving out those a resumed run may change (folders, threads, progress)."""
    # Through JSON on both sides, so a tuple from the run and a list from a config file compare equal.
    # Options added after a run was saved take their defaults, so older runs still resume.
    defaults = portable_config(TrainConfig())
    merged = {**defaults, **saved}
    for key in ("model", "augment"):  # nested options too: a new model option must not block a resume
        if isinstance(saved.get(key), dict) and isinstance(defaults.get(key), dict):
            merged[key] = {**defaults[key], **saved[key]}
    # config.json holds the paths as typed, a checkpoint the portable names: compare the names
    saved = json.loads(json.dumps(portable_paths(merged)))
    now = json.loads(json.dumps(portable_config(cfg)))
    diff = []
    for k in sorted(set(saved) | set(now)):
        a, b = saved.get(k), now.get(k)
        if k in _RESUME_MAY_CHANGE or a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):  # name the nested option: model.balance
            names = sorted({**a, **b})
            diff += [f"{k}.{n}: saved {a.get(n)!r}, now {b.get(n)!r}" for n in names if a.get(n) != b.get(n)]
        else:
            diff.append(f"{k}: saved {a!r}, now {b!r}")
    return diff


def check_resumable(saved: dict[str, Any], cfg: TrainConfig) -> None:
    diff = config_differences(saved, cfg)
    if diff:
        raise ConfigError(
            f"--resume with different settings than the saved run ({'; '.join(diff)}); use the original flags"
        )


def write_log(path: Path, history: list[dict[str, Any]]) -> None:
    """log.csv, rewritten whole and atomically from the history each epoch (a few rows), not appended: a
    kill leaves the previous complete log, and a resumed run's log is exactly its checkpoint's history (an
    epoch logged but killed before last.pt was saved is run again, and not listed twice)."""
    buf = io.StringIO()
    names = list(dict.fromkeys(k for row in history for k in row))  # rows of an older run may lack some
    w = csv.DictWriter(buf, fieldnames=names, restval="", lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(path, buf.getvalue())


def ema_info(ema: WeightEMA) -> dict[str, Any]:
    """What a checkpoint records about the average it holds."""
    return {"decay": ema.decay, "updates": ema.updates, "decay_reached": round(ema.current_decay(), 5)}


def _describe_input(pre: Preprocessing) -> str:
    h, w = pre.input_size
    return f"{h}×{w} {pre.color_order} inputs, mean {tuple(pre.mean)}, std {tuple(pre.std)}"


class Teachers(torch.nn.Module):
    """Frozen checkpoints whose mean probability is a soft target (knowledge distillation). They see the
    student's augmented batch before the camera degradations (see :func:`.data.augment_views`): the same
    faces, framed and coloured the same way, so the target always matches the input's content."""

    def __init__(self, paths: list[str], config: LSAConfig, device: torch.device) -> None:
        super().__init__()
        from .checkpoint import load_model

        models, self.provenance = [], []
        for path in paths:
            m, card, _ = load_model(path, str(device))
            self.provenance.append({"path": short_path(path), "weights_sha256": card.weights_sha256})
            theirs, ours = _describe_input(card.preprocessing), _describe_input(preprocessing_for(config))
            if theirs != ours:
                raise ConfigError(
                    f"teacher {path} takes {theirs}; the student takes {ours}. Distil from teachers "
                    "trained at the student's input size and normalisation."
                )
            models.append(m.requires_grad_(False))
        self.models = torch.nn.ModuleList(models)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.sigmoid(m(x).float()) for m in self.models]).mean(0)


# Model options that only act while training or at initialisation: a checkpoint trained with others still
# fits (--init).
_TRAINING_ONLY = ("pretrained", "dropout", "attn_dropout", "balance_init", "zero_init_attention")


def read_init(path: str, config: LSAConfig) -> dict[str, Any]:
    """The checkpoint of --init, read before any data is decoded: its model config must agree with
    ``config`` but for training-only options, else a ConfigError naming what differs."""
    from .checkpoint import read_checkpoint

    if not Path(path).exists():
        raise ConfigError(
            f"--init {path}: no such checkpoint ({Path(path).resolve()}; a relative path counts from the "
            "folder you run in). Train that run first (a recipe that starts from another run, such as "
            "configs/lfwa.yaml, gives its command at the top), or pass --init with another checkpoint"
        )
    ckpt = read_checkpoint(path)
    ours = json.loads(json.dumps(config.to_dict()))
    defaults = LSAConfig(backbone=config.backbone).to_dict()  # an older checkpoint's missing options
    theirs = json.loads(json.dumps({**defaults, **ckpt.get("model_config", {})}))
    diff = sorted(k for k in ours if k not in _TRAINING_ONLY and ours[k] != theirs.get(k))
    if diff:
        pairs = "; ".join(f"{k}: checkpoint {theirs.get(k)!r}, this run {ours[k]!r}" for k in diff)
        raise ConfigError(f"--init {path} holds another model ({pairs}); train with its model options")
    return ckpt


def init_from(model: LSAModel, path: str, ckpt: dict[str, Any] | None = None) -> None:
    """Load the weights of checkpoint ``path`` (``ckpt``: already read by :func:`read_init`) into ``model``."""
    ckpt = read_init(path, model.config) if ckpt is None else ckpt
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(
            f"--init {path}: its weights do not fit the model config it states ({err})"
        ) from err
    log.info("initialised from %s", path)


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


RUN_FILES = ("best.pt", "last.pt", "log.csv", "config.json")


def check_run_folder(cfg: TrainConfig) -> None:
    """Before any data is read or model built: the run folder must be writable, must not hold a run unless
    --resume or --overwrite says what to do with it, and --resume needs its last.pt."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the run (best.pt, last.pt, log.csv)")
    check_writable(out, "run folder --out")
    if cfg.resume:
        if not (out / "last.pt").exists():
            raise ConfigError(
                f"--resume: there is no {out / 'last.pt'} to continue from; drop --resume to start afresh"
            )
        return
    for flag, ckpt in [
        *(("--teacher", t) for t in cfg.teachers),
        *([("--init", cfg.init)] if cfg.init else []),
    ]:
        if cfg.overwrite and Path(ckpt).exists() and same_or_inside(ckpt, out):
            raise ConfigError(
                f"{flag} {ckpt} lies in --out {out}, which --overwrite replaces; give this run another --out"
            )
    found = [name for name in RUN_FILES if (out / name).exists()]
    # config.json alone is a run killed before its first epoch: nothing trained is lost by starting afresh.
    if found and found != ["config.json"] and not cfg.overwrite:
        raise ConfigError(
            f"{out} already holds a training run ({', '.join(found)}); nothing was changed. Continue it with "
            "--resume, replace it with --overwrite, or choose another --out"
        )


@dataclass
class _Run:
    """What the stages of one training run share: built by :func:`_build_run`, advanced epoch by epoch."""

    cfg: TrainConfig
    out: Path
    device: torch.device
    di: DistInfo
    amp: torch.dtype | None
    progress: bool
    teachers: Teachers | None
    splits: Splits
    pre: Preprocessing
    model: LSAModel
    steps_per_epoch: int
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: WeightEMA[LSAModel] | None
    start_epoch: int = 0
    best_acc: float = -1.0
    history: list[dict[str, Any]] = field(default_factory=list)
    resume_aug_state: Any = None
    consistency: Consistency | None = None  # learning from unlabelled images (training/unlabelled.py)
    uimages: torch.Tensor | None = None  # the unlabelled crops, N×H×W×3 uint8 (set by _start_run)
    # Set by _describe_run (no default: read before it, they raise AttributeError rather than pass as None):
    net: torch.nn.Module = field(init=False)  # the model, wrapped in DDP with several processes
    card: ModelCard = field(init=False)
    meta: dict[str, Any] = field(default_factory=dict)  # what every checkpoint of the run records
    # Set by _start_run:
    images: torch.Tensor = field(init=False)  # the labelled crops, N×H×W×3 uint8
    labels: torch.Tensor = field(init=False)
    normalize: Normalizer = field(init=False)
    aug_gen: torch.Generator = field(init=False)
    stale: list[str] = field(default_factory=list)  # --overwrite: the previous run's files still there

    @property
    def amp_name(self) -> str:
        return str(self.amp) if self.amp else "off"


def train(cfg: TrainConfig, encoder: PhraseEncoder | None = None) -> dict[str, Any]:
    """Train, select on validation, tune thresholds; returns a summary. Writes RUN_DIR/{best,last}.pt.

    Refuses (ConfigError) a folder that holds a run unless ``cfg.resume`` or ``cfg.overwrite``."""
    device, di, amp = _setup(cfg)
    run = _build_run(cfg, encoder, device, di, amp)
    if cfg.resume:
        _resume(run)
    _describe_run(run)
    _start_run(run)
    completed = run.start_epoch
    for epoch in range(run.start_epoch, cfg.epochs):
        t0, loss_sum, ips = train_one_epoch(run, epoch)
        if di.main and ((epoch + 1) % max(1, cfg.eval_every) == 0 or epoch + 1 == cfg.epochs):
            validate(run, epoch, t0, loss_sum, ips)
        _save_last(run, epoch)
        completed = epoch + 1
        if cfg.stop_after is not None and epoch + 1 >= cfg.stop_after and epoch + 1 < cfg.epochs:
            if di.main:
                log.info("stopping after epoch %d as asked; continue with --resume", epoch + 1)
            break
    return _finish(run, completed)


def _setup(cfg: TrainConfig) -> tuple[torch.device, DistInfo, torch.dtype | None]:
    """The run folder and the environment checked, then the device, the process group and the precision."""
    check_run_folder(cfg)
    check_distributed_env()  # before the device, the teachers and the data
    device = resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    di = init_distributed(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    return device, di, resolve_amp(cfg.amp, device)


def _build_run(
    cfg: TrainConfig,
    encoder: PhraseEncoder | None,
    device: torch.device,
    di: DistInfo,
    amp: torch.dtype | None,
) -> _Run:
    """Teachers, data, model, optimiser, schedule, gradient scaler and EMA of a fresh run."""
    # Teachers first: a wrong path or input size fails before minutes of decoding, and building them
    # (random init, then their weights) must not shift the student's seeded stream.
    teachers = Teachers(cfg.teachers, cfg.model, device).eval() if cfg.teachers else None
    init = read_init(cfg.init, cfg.model) if cfg.init and not cfg.resume else None  # resume: last.pt's
    _set_seed(cfg.seed)
    progress = cfg.progress and di.main
    splits = prepare_data(cfg, progress)
    train_set = splits.train
    model = create_model(cfg.model, encoder=encoder).to(device)
    if cfg.init and init is not None:
        init_from(model, cfg.init, init)
    pre = preprocessing_for(cfg.model)
    n_unlabelled = len(splits.unlabelled) if splits.unlabelled is not None else 0
    if n_unlabelled:  # an epoch: one pass over the unlabelled images, the labelled ones cycling
        steps_per_epoch = n_unlabelled // (cfg.batch_size * cfg.unlabelled_ratio * di.world)
    else:
        steps_per_epoch = len(train_set) // (cfg.batch_size * di.world)
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{len(train_set)} labelled and {n_unlabelled} unlabelled images make no full batch of "
            f"{cfg.batch_size} × {di.world} process(es); lower --batch-size or label more images"
        )
    total_steps = steps_per_epoch * cfg.epochs
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(total_steps, int(cfg.warmup_epochs * steps_per_epoch))
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    ema = WeightEMA(model, cfg.ema) if cfg.ema else None
    consistency = None
    if n_unlabelled:
        consistency = Consistency(
            weak(cfg.augment), STRONG, cfg.unlabelled_weight, cfg.unlabelled_threshold,
            ramp_steps=int(cfg.unlabelled_rampup * total_steps),
            align_to=labelled_rates(train_set.labels) if cfg.unlabelled_align else None,
        )  # fmt: skip
    return _Run(
        cfg=cfg, out=Path(cfg.out), device=device, di=di, amp=amp, progress=progress, teachers=teachers,
        splits=splits, pre=pre, model=model, steps_per_epoch=steps_per_epoch, opt=opt, sched=sched,
        scaler=scaler, ema=ema, consistency=consistency,
    )  # fmt: skip


def _resume(run: _Run) -> None:
    """Continue from out/last.pt: the same settings, teachers, processes and precision, or a ConfigError."""
    cfg, out, di, teachers = run.cfg, run.out, run.di, run.teachers
    ck = read_checkpoint(out / "last.pt")
    check_resumable(ck["meta"]["train_config"], cfg)
    if teachers is not None and ck["meta"].get("teachers") != teachers.provenance:
        raise ConfigError(
            f"--resume: the teachers' weights changed since the run started (saved "
            f"{ck['meta'].get('teachers')}, now {teachers.provenance}); start a new run"
        )
    now_amp = run.amp_name
    if ck["meta"].get("world_size", 1) != di.world or ck["meta"].get("amp") != now_amp:
        raise ConfigError(
            f"--resume: the run used {ck['meta'].get('world_size')} process(es) and amp "
            f"{ck['meta'].get('amp')}; now {di.world} and {now_amp}. Resume the same way."
        )
    saved_faces = ck["meta"].get("data", {}).get("unlabelled_images")
    faces = len(run.splits.unlabelled) if run.splits.unlabelled is not None else 0
    if saved_faces is not None and saved_faces != faces:
        raise ConfigError(
            f"--resume: the run learnt from {saved_faces} unlabelled faces, now there are {faces} (did the "
            "--unlabelled-data folder change?); its steps and schedule depend on them: start a new run"
        )
    try:
        run.model.load_state_dict(ck["state_dict"])
        run.opt.load_state_dict(ck["optimizer"])
        run.sched.load_state_dict(ck["scheduler"])
        run.scaler.load_state_dict(ck["scaler"])
        if run.ema is not None:
            run.ema.load_state_dict(ck["ema"])
        if run.consistency is not None and ck.get("unlabelled_marginal") is not None:
            run.consistency.marginal = ck["unlabelled_marginal"].to(run.device)
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{out / 'last.pt'} does not fit this model and optimizer ({err})") from err
    run.start_epoch, run.best_acc, run.history = ck["epoch"] + 1, ck["best_val_mean_accuracy"], ck["history"]
    torch.set_rng_state(ck["rng"]["torch"])
    if run.device.type == "cuda" and ck["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(ck["rng"]["cuda"], run.device)
    run.resume_aug_state = ck["rng"].get("augment", {}).get(str(di.rank))
    if di.main:
        log.info(
            "resumed from %s at epoch %d (best val %.4f)", out / "last.pt", run.start_epoch, run.best_acc
        )


def _describe_run(run: _Run) -> None:
    """The network to step (DDP with several processes), the model card and the checkpoints' metadata."""
    cfg, model, splits, di = run.cfg, run.model, run.splits, run.di
    train_set, val_set = splits.train, splits.val
    run.net = model
    if di.world > 1:
        run.net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[run.device.index] if run.device.type == "cuda" else None
        )
    macs = count_macs(model)
    run.card = ModelCard(
        name=f"lsa-{cfg.model.backbone}" if cfg.model.head == "lsa" else f"linear-{cfg.model.backbone}",
        preprocessing=run.pre,
        regions=tuple(model.prior_info.regions) if model.prior_info is not None else (),
        model={**cfg.model.to_dict(), "macs": macs, "params": sum(p.numel() for p in model.parameters())},
    )
    run.meta = {
        "data": {
            "name": splits.source.name,
            "layout": splits.source.layout,
            "splits": splits.source.split_sizes(),
            "train_images": len(splits.train_full),
            "labelled_images": len(train_set),
            "unlabelled_images": len(splits.unlabelled) if splits.unlabelled is not None else 0,
            **({"unlabelled_data": Path(cfg.unlabelled_data).name} if cfg.unlabelled_data else {}),
            "selection": splits.labelled.name,
            "val_images": len(val_set),
            "skipped_images": len(train_set.skipped) + len(val_set.skipped),
            "majority_val_accuracy": majority_accuracy(splits.train_full.labels, val_set.labels),
        },
        "seed": cfg.seed,
        # Folder names only: a checkpoint must not carry this machine's paths.
        "train_config": portable_config(cfg),
        **({"teachers": run.teachers.provenance} if run.teachers is not None else {}),
        "git_commit": git_commit(),
        "world_size": di.world,
        "device": str(run.device),
        "amp": run.amp_name,
    }


def _start_run(run: _Run) -> None:
    """config.json and the opening log line (main process); the batches' tensors and augmentation stream."""
    cfg, out, di, train_set = run.cfg, run.out, run.di, run.splits.train
    if di.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", cfg.to_dict())
        log.info(
            "training %s (%.1f M params, %.0f MMACs) on %d labelled images (%s), val %d, %d epochs × %d steps, device %s%s",
            run.card.name,
            run.card.model["params"] / 1e6,
            run.card.model["macs"] / 1e6,
            len(train_set),
            run.splits.labelled.name,
            len(run.splits.val),
            cfg.epochs,
            run.steps_per_epoch,
            run.device,
            f", {di.world} processes" if di.world > 1 else "",
        )
    run.images = torch.from_numpy(train_set.images)
    if run.splits.unlabelled is not None and run.consistency is not None:
        run.uimages = torch.from_numpy(run.splits.unlabelled.images)
    run.labels = torch.from_numpy(train_set.labels.astype(np.float32))
    run.normalize = Normalizer(run.pre, run.device)
    run.aug_gen = torch.Generator().manual_seed(cfg.seed * 1000 + di.rank)
    if run.resume_aug_state is not None:
        run.aug_gen.set_state(run.resume_aug_state)
    # --overwrite: the previous run's files stay until this run has its first epoch to save, then none of
    # them may pass for this run's (a best.pt from before, a log of other epochs).
    if di.main and run.start_epoch == 0:
        run.stale = [n for n in ("best.pt", "log.csv") if (out / n).exists()]


def train_one_epoch(run: _Run, epoch: int) -> tuple[float, float, float]:
    """One pass over this process's shard of the labelled images; returns the epoch's start time
    (perf_counter), the sum of its batch losses and the images per second over all processes."""
    from tqdm.auto import tqdm

    cfg, di, device, amp = run.cfg, run.di, run.device, run.amp
    run.net.train()
    shard, ushard = _epoch_order(run, epoch)
    ub = cfg.batch_size * cfg.unlabelled_ratio
    judge = _judge(run)
    t0, loss_sum = time.perf_counter(), 0.0
    bar = tqdm(
        range(run.steps_per_epoch),
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        unit="batch",
        disable=not run.progress,
        leave=False,
    )
    for step in bar:
        idx = shard[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        clean, seen = augment_views(run.images[idx].to(device, non_blocking=True), cfg.augment, run.aug_gen)
        x = run.normalize.unit(seen)
        y = run.labels[idx].to(device, non_blocking=True)
        inputs = x
        if (
            run.consistency is not None
            and judge is not None
            and run.uimages is not None
            and ushard is not None
        ):
            faces = run.uimages[ushard[step * ub : (step + 1) * ub]].to(device, non_blocking=True)
            strong, pseudo = run.consistency.views(faces, judge, run.normalize, run.aug_gen, amp)
            if run.consistency.align_to is not None:
                batch_mean = pseudo.mean(0)
                if di.world > 1:  # every process aligns to the same running mean
                    dist.all_reduce(batch_mean)
                    batch_mean /= di.world
                pseudo = run.consistency.align(pseudo, batch_mean)
            inputs = torch.cat([x, strong])  # one pass: labelled and unlabelled share BatchNorm statistics
        with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            out = run.net(inputs)
        logits = out[: len(x)]
        if run.teachers is not None:
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                # the teachers judge the face before the camera degradations (the same view without any)
                soft = run.teachers(x if clean is seen else run.normalize.unit(clean))
            w = cfg.distill_weight
            y = (1.0 - w) * y + w * soft  # BCE is linear in the target
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        if run.consistency is not None and len(out) > len(x):
            loss = loss + run.consistency(out[len(x) :], pseudo, epoch * run.steps_per_epoch + step)
        run.opt.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
        run.sched.step()
        if run.ema is not None:
            run.ema.update(run.model)
        loss_sum += float(loss.detach())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss_sum / (step + 1):.4f}", lr=f"{run.sched.get_last_lr()[0]:.2e}")
    train_time = time.perf_counter() - t0
    if run.consistency is not None and di.main:
        log.info("epoch %d/%d %s", epoch + 1, cfg.epochs, run.consistency.epoch_summary())
    return t0, loss_sum, run.steps_per_epoch * cfg.batch_size * di.world / train_time


def _judge(run: _Run) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Who gives the unlabelled faces their pseudo-labels: in a distillation round (--teacher) the frozen
    teachers, else the EMA (Mean Teacher), else the student itself (FixMatch); None without unlabelled faces."""
    if run.consistency is None:
        return None
    if run.teachers is not None:
        return run.teachers
    return judge_of(run.ema.module if run.ema is not None else run.model)


def _epoch_order(run: _Run, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """This process's labelled indices for the epoch's steps, and its unlabelled ones (None without them):
    an epoch is a pass over the labelled images, or with unlabelled ones a pass over those, the labelled
    ones cycling."""
    cfg, di = run.cfg, run.di
    per_rank = run.steps_per_epoch * cfg.batch_size
    if run.uimages is None:
        perm = torch.randperm(
            len(run.splits.train), generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        )
        return perm[di.rank * per_rank : (di.rank + 1) * per_rank], None
    order = labelled_order(len(run.splits.train), per_rank * di.world, cfg.seed, epoch)
    uperm = torch.randperm(len(run.uimages), generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch))
    u_rank = per_rank * cfg.unlabelled_ratio
    return order[di.rank * per_rank : (di.rank + 1) * per_rank], uperm[
        di.rank * u_rank : (di.rank + 1) * u_rank
    ]


def validate(run: _Run, epoch: int, t0: float, loss_sum: float, ips: float) -> None:
    """Main process: the epoch's validation figures, a log.csv row and line, and best.pt when it is the best
    so far. With EMA on, the average is what is validated, selected and shipped."""
    cfg, val_set, ema = run.cfg, run.splits.val, run.ema
    judged = ema.module if ema is not None else run.model
    probs = predict_crops(judged, val_set.images, run.device, amp=run.amp)
    m = attribute_metrics(probs, val_set.labels)
    val_loss = float(
        F.binary_cross_entropy(
            torch.from_numpy(probs).clamp(1e-6, 1 - 1e-6),
            torch.from_numpy(val_set.labels.astype(np.float32)),
        )
    )
    coef = judged.balance_coefficients()
    row = {
        "epoch": epoch + 1,
        "lr": run.sched.get_last_lr()[0],
        "train_loss": loss_sum / run.steps_per_epoch,
        "val_loss": val_loss,
        "val_mean_accuracy": m.mean_accuracy,
        "val_balanced_accuracy": m.mean_balanced_accuracy,
        "alpha": float(np.mean(coef.get("alpha", [np.nan]))),
        "beta": float(np.mean(coef.get("beta", [np.nan]))),
        "train_images_per_s": ips,
        "epoch_s": time.perf_counter() - t0,
    }
    run.history.append(row)
    write_log(run.out / "log.csv", run.history)
    log.info(
        "epoch %d/%d  loss %.4f  val acc %.2f%%  bal %.2f%%  α %.2f β %.2f  %.0f img/s",
        epoch + 1,
        cfg.epochs,
        row["train_loss"],
        100 * m.mean_accuracy,
        100 * m.mean_balanced_accuracy,
        row["alpha"],
        row["beta"],
        ips,
    )
    if m.mean_accuracy > run.best_acc:  # selection on validation, never on test
        run.best_acc = m.mean_accuracy
        save_checkpoint(
            run.out / "best.pt",
            judged,
            run.card,
            {
                **run.meta,
                "epoch": epoch + 1,
                "metrics": {"val": m.to_dict()},
                **({"ema": ema_info(ema)} if ema is not None else {}),
            },
        )


def _save_last(run: _Run, epoch: int) -> None:
    """last.pt after every epoch (main process), with what --resume needs to continue exactly; the first
    save of an --overwrite run removes the previous run's files that this run has not replaced."""
    di, out, ema = run.di, run.out, run.ema
    # Each rank's augmentation stream, so a resumed run continues exactly where it stopped.
    aug_states = {str(di.rank): run.aug_gen.get_state()}
    if di.world > 1:
        gathered: list[Any] = [None] * di.world
        dist.all_gather_object(gathered, run.aug_gen.get_state())
        aug_states = {str(r): st for r, st in enumerate(gathered)}
    if run.stale:
        for name in run.stale:
            if (name == "best.pt" and run.best_acc < 0) or (name == "log.csv" and not run.history):
                log.info("--overwrite: removing the previous run's %s", name)
                (out / name).unlink(missing_ok=True)
        run.stale = []
    if di.main:
        save_checkpoint(
            out / "last.pt",
            run.model,
            run.card,
            {**run.meta, "epoch": epoch + 1},
            extra={
                "optimizer": run.opt.state_dict(),
                "scheduler": run.sched.state_dict(),
                "scaler": run.scaler.state_dict(),
                **({"ema": ema.state_dict()} if ema is not None else {}),
                **(
                    {"unlabelled_marginal": run.consistency.marginal}
                    if run.consistency is not None and run.consistency.marginal is not None
                    else {}
                ),
                "epoch": epoch,
                "best_val_mean_accuracy": run.best_acc,
                "history": run.history,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "augment": aug_states,
                    "cuda": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None,
                },
            },
        )


def _finish(run: _Run, completed: int) -> dict[str, Any]:
    """The summary: every rank's final-parameter hash and, once all epochs are done, the tuned best.pt's
    figures (:func:`finalize`); then the process group is closed."""
    di = run.di
    # All ranks must end with the same parameters (DDP averages gradients): gather each rank's hash of its
    # final parameters and record them. BatchNorm running statistics are per rank by design (no SyncBN);
    # the checkpoint keeps rank 0's, as DDP itself broadcasts rank 0's buffers before every forward.
    final_hash = state_sha256(dict(run.model.named_parameters()))
    hashes = [final_hash]
    if di.world > 1:
        gathered: list[Any] = [None] * di.world
        dist.all_gather_object(gathered, final_hash)
        hashes = gathered
        if di.main and len(set(hashes)) > 1:
            log.warning("ranks ended with different parameters (%s); the checkpoint holds rank 0's", hashes)
    summary: dict[str, Any] = {"run": str(run.out), "history": run.history, "rank_parameter_sha256": hashes}
    if di.main and completed == run.cfg.epochs:
        summary.update(finalize(run.out, run.device, run.splits.val, run.amp, hashes, run.splits.train_full))
    if di.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def finalize(
    out: Path,
    device: torch.device,
    val_set: CropSet,
    amp: torch.dtype | None,
    rank_hashes: list[str],
    train_full: FaceDataset | None = None,
) -> dict[str, Any]:
    """Tune per-attribute thresholds on validation with the best weights and store them in best.pt,
    with the alignment template measured by the runtime's face detector on the training images."""
    from .checkpoint import load_model

    model, card, ck = load_model(out / "best.pt", str(device))
    if train_full is not None:
        card = with_estimated_template(card, train_full)
    probs = predict_crops(model, val_set.images, device, amp=amp)
    thr = tune_thresholds(probs, val_set.labels)
    m05 = attribute_metrics(probs, val_set.labels)
    mt = attribute_metrics(probs, val_set.labels, thr)
    meta = dict(ck["meta"])
    meta["metrics"] = {"val": m05.to_dict(), "val_tuned": mt.to_dict()}
    meta["rank_parameter_sha256"] = rank_hashes
    card = card.with_updates(
        thresholds=tuple(float(t) for t in thr),
        training={
            "data": meta["data"],
            "seed": meta["seed"],
            "epoch": meta["epoch"],
            "git_commit": meta["git_commit"],
            "val_mean_accuracy": m05.mean_accuracy,
            "val_balanced_accuracy": m05.mean_balanced_accuracy,
            "val_mean_accuracy_tuned": mt.mean_accuracy,
            "thresholds_tuned_on": "val",
            "recipe": meta.get("train_config"),
            "val_autocast": str(amp) if amp else "off",  # the precision of the val figures above
            **({"teachers": meta["teachers"]} if meta.get("teachers") else {}),
            **({"ema": meta["ema"]} if meta.get("ema") else {}),
        },
    )
    save_checkpoint(out / "best.pt", model, card, meta)
    log.info(
        "best epoch %d: val mean accuracy %.2f%% (tuned thresholds %.2f%%), saved %s",
        meta["epoch"],
        100 * m05.mean_accuracy,
        100 * mt.mean_accuracy,
        out / "best.pt",
    )
    return {
        "best_epoch": meta["epoch"],
        "val_mean_accuracy": m05.mean_accuracy,
        "val_balanced_accuracy": m05.mean_balanced_accuracy,
        "val_mean_accuracy_tuned": mt.mean_accuracy,
    }


def with_estimated_template(card: ModelCard, ds: FaceDataset) -> ModelCard:
    """The card with the detector-measured alignment template (unchanged, with a warning, without ONNX Runtime)."""
    from dataclasses import replace

    from lsa_edge._lazy import available
    from lsa_edge.alignment import estimate_for_dataset

    if not available("onnxruntime"):
        log.warning(
            "onnxruntime is not installed, so the alignment template stays CelebA's mean landmarks; "
            "lsa-edge build (which needs it) measures it with the face detector"
        )
        return card
    try:
        est = estimate_for_dataset(ds, card.preprocessing)
    except LsaEdgeError as err:
        log.warning("alignment template not measured (%s); keeping CelebA's mean landmarks", err)
        return card
    return card.with_updates(preprocessing=replace(card.preprocessing, template=est.template))


__all__ = ["TrainConfig", "create_model", "predict_crops", "train"]
