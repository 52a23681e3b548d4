"""Parameters by role: what a training run reports as trainable, and freezing the vision tower."""

from __future__ import annotations

import re

from torch import nn

from pgpt_ros.model.perception_gpt import PerceptionGPT

_GROUP_PATTERNS = [
    ("lora", re.compile(r"lora_")),
    ("new tokens", re.compile(r"trainable_tokens_delta")),
    ("vision tower", re.compile(r"^backbone\.model\.vision_tower\.")),
    ("projector", re.compile(r"^backbone\.model\.multi_modal_projector\.")),
    ("image position", re.compile(r"^image_position\.")),
    ("LM embeddings", re.compile(r"embed_tokens|^backbone\.lm_head")),
    ("LM base", re.compile(r"^backbone\.model\.language_model\.")),
    ("box decoder", re.compile(r"^box_decoder\.")),
    ("box encoder", re.compile(r"^box_encoder\.")),
    ("mask decoder", re.compile(r"^mask_decoder\.")),
    ("score head", re.compile(r"^score_head\.")),
]


def group_of(name: str) -> str:
    """The role of the parameter called ``name`` in a PerceptionGPT."""
    for group, pattern in _GROUP_PATTERNS:
        if pattern.search(name):
            return group
    raise ValueError(f"parameter {name} belongs to no group; extend _GROUP_PATTERNS")


def parameter_groups(model: PerceptionGPT) -> dict[str, list[nn.Parameter]]:
    """Parameters by role; every parameter in exactly one group."""
    groups: dict[str, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        groups.setdefault(group_of(name), []).append(param)
    return groups


def trainable_summary(model: PerceptionGPT) -> dict[str, tuple[int, int]]:
    """Per group: (trainable, total) parameter counts, plus a "total" row.

    The ``<vis>`` embedding rows are counted inside the LM embedding group, which is frozen as a
    whole under LoRA while peft trains the new rows separately (group "new tokens").
    """
    summary = {}
    for group, params in parameter_groups(model).items():
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        summary[group] = (trainable, total)
    summary["total"] = tuple(sum(v[i] for v in summary.values()) for i in (0, 1))
    return summary


def freeze_vision_tower(model: PerceptionGPT, frozen: bool = True) -> None:
    """Freezes (or unfreezes) the vision tower: LLaVA-style training keeps a pretrained CLIP
    tower fixed; a tower trained from scratch must learn."""
    model.backbone.model.vision_tower.requires_grad_(not frozen)
