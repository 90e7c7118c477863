"""``lsa-edge train``: train the LSA model on a labelled face data set (also under torchrun)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ._common import add_data_args, add_device_args, user_path
from ._train_flags import add_flags, field_defaults, values_from_args

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
    add_data_args(p, workers=field_defaults()["train"].get("workers"))  # TrainConfig's, read without torch
    _add_run_args(p)
    groups = {
        "model": p.add_argument_group("model"),
        "optimisation": p.add_argument_group("optimisation"),
        "labels": p.add_argument_group("limited labels (at most one)"),
    }
    add_flags(groups)  # every flag that sets a TrainConfig / LSAConfig field, help from its default
    groups["model"].add_argument(
        "--prior",
        choices=["on", "off"],
        help="language prior on (default) or off (β = 0): --balance no_prior",
    )
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
    train, flags = values_from_args(args)
    size = flags.pop("input_size", None)
    model.update(flags)
    if size:
        model["input_size"] = parse_size(size)
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
    d.update(train)
    d["data"], d["out"] = args.data, args.out
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
