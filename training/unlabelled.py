"""Learning from unlabelled faces: consistency between a teacher's soft pseudo-labels on a weak view and the
student's predictions on a strong view (Mean Teacher / FixMatch, for 40 binary attributes).

With limited labels (``select_rate``, ``label_fraction`` or ``label_count``) the rest of the training split
is unlabelled: its labels are zeroed when it is loaded and never read. Each step then takes a labelled batch
and ``unlabelled_ratio`` × as many unlabelled faces:

1. the **weak view** (the recipe's geometry and colour, no camera degradations) goes through the teacher —
   the EMA of the weights when ``ema`` is on (Mean Teacher), else the student itself without gradients
   (FixMatch); or, in a distillation round (``--teacher CKPT``), the frozen teachers' mean — giving soft
   pseudo-labels p;
2. the **strong view** (:data:`STRONG`: larger geometry and colour changes, erasing, and every camera
   degradation) goes through the student with the labelled batch (one forward pass: shared BatchNorm
   statistics);
3. with ``unlabelled_align`` (distribution alignment, after ReMixMatch, per attribute), the pseudo-labels
   are shifted in logit space so that their running mean over unlabelled faces matches each attribute's
   rate among the labelled faces: a judge that calls an attribute too often (or too rarely) does not teach
   the student its bias;
4. the loss adds ``weight × ramp(step)`` × BCE(student, p) over the (face, attribute) pairs whose
   pseudo-label is confident, max(p, 1 − p) ≥ ``unlabelled_threshold``, averaged over all pairs (confident
   attributes count, uncertain ones are left out one by one rather than dropping whole faces).

An epoch is then one pass over the unlabelled faces; the labelled ones cycle, reshuffled each pass.

``unlabelled_data`` adds the faces of any folder of images (:func:`faces_from_folder`): each image goes
through the runtime's own detector and alignment, as a camera frame would, and its central face is kept.
Alignment then aims all unlabelled faces at the labelled faces' rates; a folder of another population
(more men, older faces) has other true rates, so prefer ``unlabelled_align`` off with such a folder.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lsa_edge.attributes import NUM_ATTRIBUTES
from lsa_edge.card import Preprocessing
from lsa_edge.data import CropSet, FaceDataset
from lsa_edge.errors import ConfigError, DataError

from .data import AugmentConfig, Normalizer, augment

log = logging.getLogger(__name__)

# The student's view of an unlabelled face: strong enough that agreeing with the teacher's weak-view answer
# teaches invariance, not so strong that the face stops being recognisable.
STRONG = AugmentConfig(
    hflip=0.5,
    scale=(0.85, 1.15),
    rotate_deg=15.0,
    translate=0.08,
    brightness=0.4,
    contrast=0.4,
    saturation=0.4,
    erase=0.5,
    padding="border",
    resolution=0.5,
    resolution_min=0.35,
    blur=0.4,
    blur_sigma=(0.4, 2.0),
    noise=0.4,
    noise_std=0.04,
    jpeg=0.5,
    jpeg_quality=(20, 90),
    grayscale=0.2,
)


def judge_of(net: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A network as a judge of unlabelled faces: its probabilities in eval mode (BatchNorm's running
    statistics, no dropout), the mode it was in restored after."""

    def probs(x: torch.Tensor) -> torch.Tensor:
        was_training = net.training
        net.eval()
        try:
            return torch.sigmoid(net(x).float())
        finally:
            net.train(was_training)

    return probs


def limited(select_rate: int | None, label_fraction: float | None, label_count: int | None) -> bool:
    """Whether a label selection leaves part of the training split unlabelled."""
    return any(x is not None for x in (select_rate, label_fraction, label_count))


def unlabelled_part(
    train_full: FaceDataset, labelled: FaceDataset, mode: str, folder: bool = False
) -> FaceDataset | None:
    """The training images without a selected label, their labels zeroed (none is ever read), or None when
    ``mode`` is off, or auto with every image labelled (``folder``: faces of --unlabelled-data come too)."""
    chosen = set(labelled.image_ids)
    rest = [i for i, name in enumerate(train_full.image_ids) if name not in chosen]
    if mode == "off" or (mode == "auto" and len(labelled) == len(train_full)) or not rest:
        if mode == "on" and not rest and not folder:
            log.warning("--unlabelled on: every training image is labelled; nothing unlabelled to learn from")
        return None
    part = train_full.subset(rest, name=f"{train_full.name}[unlabelled]")
    return dataclasses.replace(part, labels=np.zeros_like(part.labels))


def faces_from_folder(
    folder: str | Path,
    pre: Preprocessing,
    workers: int = 4,
    progress: bool = True,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> CropSet:
    """Every image under ``folder`` (any depth) through the runtime's detector and alignment; the face
    nearest each image's centre, aligned to ``pre``'s template. Unreadable and faceless images are
    skipped and counted; none has a label (all zero). Files named in ``exclude`` (the evaluated data set's
    validation and test images) are left out and counted."""
    from tqdm.auto import tqdm

    from lsa_edge.data import read_image
    from lsa_edge.detector import FaceDetector
    from lsa_edge.face_crops import detect_and_align
    from lsa_edge.sources.images import list_images

    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--unlabelled-data {root}: not a folder; give a folder of face images (any depth)")
    paths = list_images(root, recursive=True)
    if not paths:
        raise ConfigError(f"--unlabelled-data {root}: no images (.jpg, .png, ...) in it or below it")
    held_out = [p for p in paths if p.name in exclude]
    if held_out:
        log.warning(
            "--unlabelled-data %s: left out %d images named like --data's validation/test images (e.g. %s)",
            root, len(held_out), held_out[0].name,
        )  # fmt: skip
        paths = [p for p in paths if p.name not in exclude]
        if not paths:
            raise ConfigError(
                f"--unlabelled-data {root}: every image is named like one of --data's validation/test "
                "images; give a folder of other faces"
            )
    crops, kept, unreadable, faceless = [], [], [], []
    # nested, not one parenthesised with: the code-shape tests parse every module with Python 3.8
    with FaceDetector(None, min_face_size=24.0) as det:  # noqa: SIM117
        with tqdm(
            total=len(paths), desc=f"faces in {root.name}", unit="img", disable=not progress, leave=False
        ) as bar:
            for chunk in detect_and_align(
                lambda i: read_image(paths[i]), len(paths), det, pre, workers=workers, on_image=bar.update
            ):
                crops.append(chunk.crops)
                kept += chunk.kept
                unreadable += [str(paths[i]) for i in chunk.unreadable]
                faceless += [str(paths[i]) for i in chunk.faceless]
    if unreadable or faceless:
        log.warning(
            "--unlabelled-data %s: %d of %d images skipped (%d unreadable, %d without a face of ≥ 24 px)",
            root, len(unreadable) + len(faceless), len(paths), len(unreadable), len(faceless),
        )  # fmt: skip
    images = np.concatenate(crops)
    if not len(images):
        raise DataError(
            f"--unlabelled-data {root}: no usable face in its {len(paths)} images ({len(unreadable)} "
            f"unreadable, {len(faceless)} without a face of ≥ 24 px); give a folder of face photos"
        )
    return CropSet(
        images, np.zeros((len(images), NUM_ATTRIBUTES), np.uint8), np.asarray(kept), unreadable + faceless,
        f"{root.name}[unlabelled]",
    )  # fmt: skip


def join_unlabelled(parts: list[CropSet | None]) -> CropSet | None:
    """The unlabelled faces of several sources as one set (None when there are none)."""
    have = [p for p in parts if p is not None and len(p)]
    if len(have) <= 1:
        return have[0] if have else None
    return CropSet(
        np.concatenate([p.images for p in have]), np.concatenate([p.labels for p in have]),
        np.arange(sum(len(p) for p in have)), [s for p in have for s in p.skipped],
        " + ".join(p.name for p in have),
    )  # fmt: skip


def weak(cfg: AugmentConfig) -> AugmentConfig:
    """The teacher's view: the recipe's geometry and colour without camera degradations or erasing."""
    return dataclasses.replace(cfg, resolution=0.0, blur=0.0, noise=0.0, jpeg=0.0, grayscale=0.0, erase=0.0)


def labelled_rates(labels: np.ndarray) -> torch.Tensor:
    """Each attribute's positive rate among the labelled faces, smoothed (Laplace: (k + 1) / (n + 2)) so an
    attribute without a labelled positive still has a small rate, not zero."""
    n = len(labels)
    return torch.as_tensor(
        (np.asarray(labels, dtype=np.float64).sum(0) + 1.0) / (n + 2.0), dtype=torch.float32
    )


def labelled_order(n: int, needed: int, seed: int, epoch: int) -> torch.Tensor:
    """``needed`` indices into ``n`` labelled images for one epoch: shuffled passes, one after another."""
    passes = -(-needed // n)
    perms = [
        torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch * 131 + k))
        for k in range(passes)
    ]
    return torch.cat(perms)[:needed]


@dataclass
class Consistency:
    """The unlabelled part of each step (see the module)."""

    weak_cfg: AugmentConfig
    strong_cfg: AugmentConfig
    weight: float
    threshold: float
    ramp_steps: int
    align_to: torch.Tensor | None = (
        None  # the labelled faces' positive rate per attribute (None: no alignment)
    )
    momentum: float = 0.99  # of the running mean of the judge's probabilities on unlabelled faces
    marginal: torch.Tensor | None = None  # that running mean (saved in last.pt for an exact resume)
    kept: float = 0.0  # share of (face, attribute) pairs kept this epoch (for the log)
    shift: float | torch.Tensor = 0.0  # summed mean |logit shift| of the alignment this epoch (for the log)
    loss: float = 0.0  # consistency loss summed over this epoch's steps
    steps: int = 0

    def views(
        self,
        faces: torch.Tensor,
        judge: Callable[[torch.Tensor], torch.Tensor],
        normalize: Normalizer,
        gen: torch.Generator,
        amp: torch.dtype | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(the student's normalised strong view, the judge's probabilities on the weak view); ``judge`` maps
        a normalised batch to probabilities (:func:`judge_of`)."""
        device = faces.device
        weak_x = normalize.unit(augment(faces, self.weak_cfg, gen))
        strong_x = normalize.unit(augment(faces, self.strong_cfg, gen))
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None),
        ):
            probs = judge(weak_x).float()
        return strong_x, probs

    def align(self, probs: torch.Tensor, batch_mean: torch.Tensor) -> torch.Tensor:
        """The judge's probabilities shifted toward the labelled rates (unchanged without ``align_to``);
        ``batch_mean``: this step's mean probability per attribute (over every process's faces)."""
        if self.align_to is None:
            return probs
        batch_mean = batch_mean.detach().float()
        m = (
            batch_mean
            if self.marginal is None
            else self.momentum * self.marginal + (1 - self.momentum) * batch_mean
        )
        self.marginal = m
        shift = torch.logit(self.align_to.to(m.device), eps=1e-4) - torch.logit(m, eps=1e-4)
        self.shift += shift.abs().mean()  # a tensor: no device sync per step
        return torch.sigmoid(torch.logit(probs.float(), eps=1e-6) + shift)

    def __call__(self, logits: torch.Tensor, probs: torch.Tensor, step: int) -> torch.Tensor:
        """The weighted consistency loss of one step (global step ``step``)."""
        mask = (torch.maximum(probs, 1.0 - probs) >= self.threshold).float()
        per = F.binary_cross_entropy_with_logits(logits.float(), probs, reduction="none")
        loss = (per * mask).sum() / mask.numel()
        ramp = min(1.0, (step + 1) / self.ramp_steps) if self.ramp_steps > 0 else 1.0
        self.kept += float(mask.mean())
        self.loss += float(loss.detach())
        self.steps += 1
        return self.weight * ramp * loss

    def epoch_summary(self) -> str:
        """The epoch's figures, then reset."""
        n = max(1, self.steps)
        text = (
            f"unlabelled: pseudo-labels kept {100 * self.kept / n:.1f}%, consistency loss {self.loss / n:.4f}"
        )
        if self.align_to is not None:
            text += f", alignment |Δlogit| {float(self.shift) / n:.3f}"
        self.kept, self.loss, self.steps, self.shift = 0.0, 0.0, 0, 0.0
        return text
