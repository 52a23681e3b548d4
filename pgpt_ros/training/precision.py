"""Memory and number formats of a training run on a GPU: frozen weights in half precision,
trainable ones in float32, activations recomputed.

A 7B LLaVA trained with LoRA is 14 GB of frozen bfloat16 weights and about 35 M trainable
parameters. The frozen part may stay in bfloat16 (``train.weights_dtype``): nothing updates it.
The trainable part (LoRA, the ``<vis>`` rows, projector, heads) is kept in float32 whatever the
checkpoint's dtype (transformers loads llava-1.5-7b-hf in float16): AdamW's small updates vanish
in a 16-bit weight. Autocast (``train.mixed_precision``, through accelerate) then runs the matmuls
in bfloat16. Gradient checkpointing (``train.gradient_checkpointing``) keeps only each decoder
layer's input and recomputes the layer in the backward pass: about a third more compute for
activations that no longer grow with depth.
"""

from __future__ import annotations

import torch

from pgpt_ros.runtime.loading import DTYPES
from pgpt_ros.training.objective import PerceptionObjective


def configure(objective: PerceptionObjective, train: dict) -> None:
    """Applies the run's ``train`` settings: with mixed precision, trainable weights in float32
    and frozen ones in ``weights_dtype``; gradient checkpointing. ValueError for half-precision
    frozen weights without autocast (the float32 heads would meet half-precision states)."""
    mixed = autocast_mode(train) != "no"
    if train["weights_dtype"] not in (None, "float32") and not mixed:
        raise ValueError(
            f"train.weights_dtype {train['weights_dtype']} needs train.mixed_precision bf16 or fp16"
        )
    if mixed:
        set_training_precision(objective, train["weights_dtype"])
    if train["gradient_checkpointing"]:
        enable_gradient_checkpointing(objective)


def set_training_precision(objective: PerceptionObjective, weights_dtype: str | None) -> None:
    """Frozen parameters to ``weights_dtype`` (None: as loaded), trainable ones to float32.
    Buffers stay as they are (rotary frequencies must keep float32)."""
    frozen = DTYPES[weights_dtype] if weights_dtype else None
    with torch.no_grad():
        for param in objective.parameters():
            dtype = torch.float32 if param.requires_grad else frozen
            if dtype is not None and param.dtype != dtype:
                param.data = param.data.to(dtype)


def autocast_mode(train: dict) -> str:
    """``train.mixed_precision`` as accelerate names it ("no", "bf16", "fp16"); YAML reads a
    bare ``no`` as false."""
    mode = train["mixed_precision"] or "no"
    if mode not in ("no", "bf16", "fp16"):
        raise ValueError(f'train.mixed_precision must be "no", "bf16" or "fp16", got {mode!r}')
    return mode


def enable_gradient_checkpointing(objective: PerceptionObjective) -> None:
    """Recomputes every transformer layer of the backbone (language model and vision tower) in
    the backward pass; non-reentrant, so frozen inputs and LoRA need no workaround.

    transformers 5.24 renamed the switch (the old name warns); 5.17 has only the old one.
    """
    backbone = objective.model.backbone
    kwargs = {"use_reentrant": False}
    if hasattr(backbone, "activation_checkpointing_enable"):
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
