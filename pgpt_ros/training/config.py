"""The training configuration: every key, its default, YAML loading and ``--set`` overrides.

Architecture comes from the model registry (``model.preset`` plus overrides); everything about
*training* (loss weights, training-only heads, LoRA, data, optimisation) lives here and never in a
saved model.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

# Every key a config may set, with its default; an unknown key is an error (typos never pass).
DEFAULTS: dict[str, Any] = {
    # A registry preset (pgpt_ros.model.registry) and its overrides (the preset's keywords, e.g.
    # text_layers, or PerceptionGPTConfig fields, e.g. mask_size, resize_mode).
    "model": {"preset": "tiny"},
    "objective": {
        "loss_weights": {},  # LossWeights fields, e.g. {heat: 1.0}
        "patch_classes": 0,  # > 0: the training-only patch classifier (ShapesRef: 25)
        "patch_geometry": False,  # the training-only per-token object box head (ShapesRef)
    },
    "init": None,  # a saved model (or a LoRA base) to start from instead of random weights
    "freeze_vision": False,  # a random tiny tower must learn; freeze a pretrained one
    "lora": None,  # {"r": 8, "alpha": 16, "dropout": 0.05}: LoRA on the LM (needs init)
    "data": {
        "dataset": "shapesref",  # or "refcoco"
        "image_size": 64,  # ShapesRef render size (the model maps frames to its own input)
        "kinds": {"attribute": 1.0, "relation": 1.0, "extreme": 1.0, "multi": 1.0, "absent": 1.0},
        "scene": {},  # SceneConfig fields, e.g. {"max_shapes": 4}
        "val_size": 200,
        "seed": 0,
        # ShapesRef only: rows of this many commands about one image (Collator.pack); the image
        # tokens then run once for them all, so a step trains on batch_size * this commands
        "commands_per_image": 1,
        # stages: [{"until": step, "kinds": {...}, "scene": {...}}]: easier data first
        "curriculum": [],
        "refcoco": {
            "refs": None,
            "instances": None,
            "images": None,
            "train_split": "train",
            "val_split": "val",
        },  # fmt: skip
    },
    "train": {
        "steps": 3000,
        "batch_size": 16,
        "lr": 5e-4,
        "min_lr_ratio": 0.1,  # cosine decay down to lr * this
        "warmup_steps": 200,
        "weight_decay": 0.01,
        "grad_clip": 1.0,  # 1e-3 without clipping diverged on the tiny models
        "max_mask_objects": None,  # train the mask decoder on this many objects per step
        # learning-rate factor of the vision tower, projector and patch heads: a tower trained
        # from scratch learned shapes several times faster at 6e-3 than at the LLM's 1e-3
        "vision_lr_scale": 1.0,
        # steps that train the image side alone on the patch heads' dense targets before the
        # first step (pgpt_ros.training.vision_warmup): a tower from scratch learns to see first
        "vision_warmup_steps": 0,
        "log_every": 50,
        "eval_every": 500,
        "eval_size": 100,  # validation commands answered at each evaluation
        "eval_max_new_tokens": 48,  # answer length limit while validating (text boxes need more)
        "checkpoint_every": 500,
        "keep_checkpoints": 1,
        "seed": 0,
        "threads": 2,
        # processes that render and collate the next steps' batches while the model trains (0:
        # in the training process, between steps)
        "data_workers": 0,
        "device": "cpu",  # "auto": whatever accelerate finds (GPUs under accelerate launch)
        # GPU training (pgpt_ros.training.precision): autocast dtype ("no", "bf16", "fp16"),
        # storage dtype of the frozen weights (null: as loaded; "bfloat16" needs autocast), and
        # recomputing each transformer layer in the backward pass instead of storing it
        "mixed_precision": "no",
        "weights_dtype": None,
        "gradient_checkpointing": False,
    },
}

# Free-form maps, whose keys are checked by the code that reads them. A new value replaces the
# whole map (``data.kinds: {attribute: 1}`` means only attribute commands), except ``model``,
# whose keys are added to the preset's (``--set model.text_layers=3`` keeps the preset).
_OPEN_KEYS = {"model", "objective.loss_weights", "data.kinds", "data.scene"}


def merge(base: dict, update: dict, path: str = "") -> dict:
    """``base`` updated by ``update`` recursively; a key absent from ``base`` is an error."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise ValueError(f"unknown config key {where!r}; known: {sorted(base)}")
        if where == "model" and isinstance(value, dict):
            out[key] = {**base[key], **value}
        elif isinstance(base[key], dict) and isinstance(value, dict) and where not in _OPEN_KEYS:
            out[key] = merge(base[key], value, where + ".")
        else:
            out[key] = value
    return out


def load_config(path: Path | None, overrides: list[str]) -> dict:
    """DEFAULTS, updated by the YAML file, updated by ``key.sub=value`` overrides (YAML values)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"config {path} not found (see configs/ for examples)")
        config = merge(config, yaml.safe_load(path.read_text()) or {})
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        dotted, text = item.split("=", 1)
        keys, value = dotted.split("."), _scalar(text)
        # A key inside a free-form map sets that key and keeps the map's others: without this,
        # --set data.scene.photo_absent=0.6 replaced the whole scene with {photo_absent: 0.6}.
        for depth in range(len(keys) - 1, 0, -1):
            if ".".join(keys[:depth]) in _OPEN_KEYS:
                current = functools.reduce(lambda node, key: node[key], keys[:depth], config)
                value = {**current, **_nested(keys[depth:], value)}
                keys = keys[:depth]
                break
        config = merge(config, _nested(keys, value))
    return config


def _nested(keys: list[str], value: Any) -> dict:
    """["a", "b"], v -> {"a": {"b": v}}."""
    return functools.reduce(lambda inner, key: {key: inner}, reversed(keys), value)


def _scalar(text: str) -> Any:
    """A YAML value, except that "1e-3" is a float: PyYAML (YAML 1.1) reads it as a string."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value
