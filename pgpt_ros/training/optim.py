"""The optimiser and the learning-rate schedule of a training run."""

from __future__ import annotations

import math
import re

import torch
from torch import nn

# The image side of a ``PerceptionObjective`` (vision tower, projector, image position map,
# training-only patch heads): what ``train.vision_lr_scale`` speeds up for a tower trained from
# scratch.
_VISION = re.compile(
    r"model\.backbone\.model\.(vision_tower|multi_modal_projector)\."
    r"|patch_(classifier|geometry)\.|model\.image_position\."
)


def is_image_side(name: str) -> bool:
    """Whether an objective's parameter (by name) belongs to the image side."""
    return bool(_VISION.match(name))


def make_optimizer(objective: nn.Module, train: dict) -> torch.optim.Optimizer:
    """AdamW over the objective's trainable parameters: no weight decay on biases and norms, and the image
    side's learning rate scaled by ``vision_lr_scale`` (each group keeps its ``lr_scale``)."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in objective.named_parameters():
        if param.requires_grad:
            decays = param.ndim >= 2 and "norm" not in name
            groups.setdefault((decays, is_image_side(name)), []).append(param)
    return torch.optim.AdamW(
        [{"params": params, "weight_decay": train["weight_decay"] if decays else 0.0,
          "lr_scale": train["vision_lr_scale"] if vision else 1.0}
         for (decays, vision), params in sorted(groups.items())],
        lr=train["lr"],
    )  # fmt: skip


def lr_factor(step: int, train: dict) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` (a function of the step, so a
    resumed run needs no scheduler state)."""
    if step < train["warmup_steps"]:
        return (step + 1) / train["warmup_steps"]
    progress = (step - train["warmup_steps"]) / max(1, train["steps"] - train["warmup_steps"])
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return train["min_lr_ratio"] + (1 - train["min_lr_ratio"]) * cosine
