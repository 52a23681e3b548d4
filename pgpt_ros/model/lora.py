"""LoRA on the language model (peft), in the layout peft itself reads and writes.

What trains under LoRA: low-rank adapters on the LM's attention projections, the ``<vis>`` rows of
the input embedding and LM head (peft's trainable tokens: the new token must learn its meaning),
and the projector (peft's ``modules_to_save``: it is small and maps the image into the LM's space).
The vision tower and the rest of the LM stay frozen; the heads outside the backbone train fully.
``adapter_state`` and ``load_adapter`` use peft's own key layout, so a saved adapter directory
also loads with ``peft.PeftModel.from_pretrained`` on the base checkpoint.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
from peft import set_peft_model_state_dict as _set_peft_state

from pgpt_ros.model.perception_gpt import PerceptionGPT

# The LM's attention only: the CLIP tower has q_proj/v_proj modules too.
LORA_TARGET_MODULES = r".*language_model.*\.(q_proj|v_proj)"
PROJECTOR = "multi_modal_projector"
# PeftModel stores adapter keys under these prefixes; the backbone here carries the adapter itself.
_PEFT_PREFIX = "base_model.model."


def lora_config(model: PerceptionGPT, r: int, alpha: int, dropout: float) -> LoraConfig:
    """The peft config of this project's LoRA recipe for ``model`` (see the module docstring)."""
    ids = [model.config.vis_token_id]
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGET_MODULES,
        trainable_token_indices={"embed_tokens": ids, "lm_head": ids},
        modules_to_save=[PROJECTOR],
        base_model_name_or_path=model.base_path,
    )


def has_lora(model: PerceptionGPT) -> bool:
    """Whether an adapter is injected into the backbone."""
    return bool(getattr(model.backbone, "peft_config", None))


def inject(model: PerceptionGPT, config: LoraConfig) -> None:
    """Injects ``config``'s adapter into the backbone (in place); the base weights freeze."""
    if has_lora(model):
        raise RuntimeError("LoRA is already injected into this model")
    inject_adapter_in_model(config, model.backbone)


def add_lora(model: PerceptionGPT, r: int = 8, alpha: int = 16, dropout: float = 0.05) -> None:
    """New adapters with this project's recipe; ``model.base_path`` must name the base weights
    (LoRA adapts a saved model: an adapter is saved against its base)."""
    inject(model, lora_config(model, r, alpha, dropout))


def adapter_config(model: PerceptionGPT) -> LoraConfig:
    """The injected adapter's peft config, naming the base directory."""
    config = model.backbone.peft_config["default"]
    config.base_model_name_or_path = model.base_path
    return config


def adapter_state(
    model: PerceptionGPT, backbone_state: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """The adapter's tensors (LoRA, trainable tokens, projector) under PeftModel's key names,
    taken from ``backbone_state`` (the backbone's state dict) when given."""
    state = get_peft_model_state_dict(model.backbone, state_dict=backbone_state)
    return {_PEFT_PREFIX + k: v.contiguous() for k, v in state.items()}


def load_adapter(model: PerceptionGPT, state: dict[str, torch.Tensor]) -> None:
    """Loads ``adapter_state``'s tensors into the injected adapter; ValueError on a mismatch."""
    stripped = {k.removeprefix(_PEFT_PREFIX): v for k, v in state.items()}
    result = _set_peft_state(model.backbone, stripped)
    unexpected = list(getattr(result, "unexpected_keys", []))
    if unexpected:
        raise ValueError(f"adapter tensors that fit no adapter module: {unexpected[:5]}")
