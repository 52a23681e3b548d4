"""The model a training run starts from: a preset with random weights, or a saved model, then
LoRA and freezing as configured, wrapped in the training objective."""

from __future__ import annotations

from pathlib import Path

import torch

from pgpt_ros.model import build_model, load_pretrained, preset_config
from pgpt_ros.model.llava import is_llava_dir, wrap_llava
from pgpt_ros.model.lora import add_lora
from pgpt_ros.model.parameters import freeze_vision_tower
from pgpt_ros.training.objective import LossWeights, PerceptionObjective


def build_objective(config: dict, answer_phrases: list[str] | None = None) -> PerceptionObjective:
    """The configured model (``model``/``init``, ``lora``, ``freeze_vision``) and objective.

    ``init`` is a saved PerceptionGPT or a LLaVA checkpoint (wrapped with new heads; ``model``
    keys other than ``preset`` are then config overrides). LoRA needs ``init``: an adapter is
    saved against the model it adapts. A new model (a preset, or a wrapped LLaVA) holds its
    answers to ``answer_phrases`` (the training data's) unless ``model.answer_phrases`` says
    otherwise; a saved model keeps its own.
    """
    torch.manual_seed(config["train"]["seed"])
    init = config["init"]
    fields = {k: v for k, v in config["model"].items() if k != "preset"}
    if answer_phrases is not None:
        fields.setdefault("answer_phrases", list(answer_phrases))
    if init and is_llava_dir(Path(init)):
        model = wrap_llava(init, fields)
    elif init:
        model = load_pretrained(init)
    else:
        model = build_model(preset_config(config["model"]["preset"], **fields))
    if config["lora"]:
        if not init:
            raise ValueError("lora needs init: the saved model or LLaVA checkpoint it adapts")
        add_lora(model, **config["lora"])
    if config["freeze_vision"]:
        freeze_vision_tower(model)
    objective = config["objective"]
    return PerceptionObjective(
        model,
        LossWeights.from_dict(objective["loss_weights"]),
        patch_classes=objective["patch_classes"],
        patch_geometry=objective["patch_geometry"],
    ).train()
