"""An exponential moving average of a model's weights, validated and shipped instead of the raw weights."""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar

import torch

M = TypeVar("M", bound=torch.nn.Module)


class WeightEMA(Generic[M]):
    """EMA of every floating-point parameter and buffer (BatchNorm statistics included); integer buffers
    such as ``num_batches_tracked`` are copied, and constant buffers stay bit-exact (``lerp`` of equal
    values). The decay is warmed up as in TensorFlow's ``ExponentialMovingAverage(num_updates=…)``:
    ``min(decay, (1 + n) / (10 + n))`` at update ``n``, so a short fine-tune is not pinned to its
    initial weights; it reaches ``decay`` after ``(10·decay − 1) / (1 − decay)`` updates (1,790 for
    0.995)."""

    def __init__(self, model: M, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next update uses (0 before the first: it copies)."""
        n = self.updates
        return 0.0 if n == 0 else min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        ours = self.module.state_dict()
        for name, value in model.state_dict().items():
            mine = ours[name]
            if mine.is_floating_point():
                mine.lerp_(value.detach().to(mine.dtype), 1.0 - d)
            else:
                mine.copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
