"""The model directory: what inference needs and nothing else, in layouts other tools read.

A full model::

    config.json           PerceptionGPTConfig (architecture; "model_type": "perception_gpt")
    model.safetensors     every weight inference uses
    tokenizer.json, tokenizer_config.json, ...

A LoRA-trained model is saved against its base (a LLaVA checkpoint or a saved PerceptionGPT)::

    config.json, tokenizer files   as above
    adapter_config.json            peft's LoraConfig; ``base_model_name_or_path`` names the base
    adapter_model.safetensors      LoRA, the <vis> rows, the projector (peft's key layout)
    model.safetensors              the tensors outside the backbone (heads, image position map)

Training-only heads and loss weights never enter these files (``pgpt_ros.training`` keeps them in
its own checkpoints). safetensors only: never pickle, never remote code. A directory of the first
layout (``pgpt_config.json``) fails with the command that converts it
(``pgpt_ros.model.convert``).
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
import torch
from accelerate import init_empty_weights
from peft import LoraConfig
from transformers import AutoTokenizer, PretrainedConfig, PreTrainedModel

from pgpt_ros.model import lora
from pgpt_ros.model.builder import build_perception_gpt
from pgpt_ros.model.config import MODEL_TYPE, PerceptionGPTConfig
from pgpt_ros.model.llava import is_llava_dir, llava_backbone_for
from pgpt_ros.model.perception_gpt import PerceptionGPT

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTER_CONFIG_NAME = "adapter_config.json"
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
LEGACY_CONFIG_NAME = "pgpt_config.json"
CONVERT_COMMAND = "python -m pgpt_ros.model.convert OLD_DIR NEW_DIR"


def is_model_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a saved PerceptionGPT (either layout above)."""
    config = Path(path) / CONFIG_NAME
    return config.is_file() and json.loads(config.read_text()).get("model_type") == MODEL_TYPE


def _state_for_saving(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with every name stored: a tensor shared by two names (SAM's tied positional
    matrix) is cloned for the second name, since safetensors refuses shared storage; loading
    re-ties them with each sub-model's ``tie_weights``."""
    state, seen = {}, set()
    for name, tensor in state_dict.items():
        pointer = tensor.untyped_storage().data_ptr()
        state[name] = tensor.clone() if pointer in seen else tensor.contiguous()
        seen.add(pointer)
    return state


def save_pretrained(
    model: PerceptionGPT,
    directory: str | Path,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """Writes ``model`` in the layout above (the adapter layout when LoRA is injected).

    ``state_dict`` holds the weights to write under ``model``'s names when they are not the
    model's own tensors (a sharded training run gathers them); default ``model.state_dict()``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(model.config.to_dict(), indent=2, sort_keys=True)
    (directory / CONFIG_NAME).write_text(text + "\n")
    state = _state_for_saving(model.state_dict() if state_dict is None else state_dict)
    if lora.has_lora(model):
        if model.base_path is None:
            raise ValueError(
                "a LoRA model is saved as an adapter against its base, and this model has no "
                "base_path: save the base first and load it with load_pretrained, or wrap a "
                "LLaVA checkpoint with wrap_llava, before adding LoRA"
            )
        lora.adapter_config(model).save_pretrained(directory)
        backbone = {k.removeprefix("backbone."): v for k, v in state.items()
                    if k.startswith("backbone.")}  # fmt: skip
        adapter = lora.adapter_state(model, backbone)
        safetensors.torch.save_file(adapter, directory / ADAPTER_WEIGHTS_NAME)
        state = {n: t for n, t in state.items() if not n.startswith("backbone.")}
    safetensors.torch.save_file(state, directory / WEIGHTS_NAME)
    model.require_tokenizer().save_pretrained(directory)


def _check_directory(directory: Path) -> None:
    if (directory / LEGACY_CONFIG_NAME).is_file() and not (directory / CONFIG_NAME).is_file():
        raise ValueError(
            f"{directory} is in the first model layout ({LEGACY_CONFIG_NAME}); convert it once "
            f"with `{CONVERT_COMMAND}`"
        )
    if not is_model_dir(directory):
        raise FileNotFoundError(
            f"{directory} holds no PerceptionGPT ({CONFIG_NAME} with model_type {MODEL_TYPE!r}): "
            "pass a directory written by save_pretrained (for a plain LLaVA checkpoint use "
            "pgpt_ros.model.wrap_llava)"
        )


def load_pretrained(
    directory: str | Path, *, dtype: torch.dtype | None = None, device: str = "cpu"
) -> PerceptionGPT:
    """Loads a directory written by ``save_pretrained``, in eval mode on ``device``/``dtype``.

    A full model's weights are allocated once (no random initialisation first); an adapter's base
    is loaded from ``adapter_config.json``'s ``base_model_name_or_path``.
    """
    directory = Path(directory)
    _check_directory(directory)
    config = PerceptionGPTConfig.from_dict(json.loads((directory / CONFIG_NAME).read_text()))
    # tokenizer_config.json names the tokenizer class; an empty config stops transformers from
    # reading config.json as if it described a transformers model.
    tokenizer = AutoTokenizer.from_pretrained(
        directory, config=PretrainedConfig(), local_files_only=True
    )
    if (directory / ADAPTER_CONFIG_NAME).is_file():
        model = _load_adapter_model(directory, config, tokenizer, dtype)
    else:
        with init_empty_weights():
            model = build_perception_gpt(config, tokenizer=tokenizer)
        state = safetensors.torch.load_file(directory / WEIGHTS_NAME, device=device)
        _, unexpected = model.load_state_dict(state, strict=False, assign=True)
        for sub in model.modules():
            if isinstance(sub, PreTrainedModel):
                sub.tie_weights()
        still_meta = [n for n, p in model.named_parameters() if p.is_meta]
        if unexpected or still_meta:
            raise ValueError(
                f"{directory / WEIGHTS_NAME} does not match its config: missing "
                f"{still_meta[:5]}, unexpected {unexpected[:5]}"
            )
        model.base_path = str(directory.resolve())
    model.to(device=device, dtype=dtype)
    return model.eval()


def _load_adapter_model(
    directory: Path, config: PerceptionGPTConfig, tokenizer, dtype: torch.dtype | None
) -> PerceptionGPT:
    """The base (LLaVA checkpoint or saved PerceptionGPT), the adapter, then the head tensors."""
    adapter = LoraConfig.from_pretrained(str(directory))
    base = Path(adapter.base_model_name_or_path or "")
    if is_model_dir(base):
        model = load_pretrained(base, dtype=dtype)
        model.config, model.tokenizer = config, tokenizer
    elif is_llava_dir(base):
        backbone = llava_backbone_for(config, base, dtype)
        model = build_perception_gpt(config, backbone=backbone, tokenizer=tokenizer)
    else:
        raise FileNotFoundError(
            f"{directory / ADAPTER_CONFIG_NAME} names the base {str(base)!r}, which is neither a "
            "saved PerceptionGPT nor a LLaVA checkpoint here; put the base there or edit "
            "base_model_name_or_path"
        )
    model.base_path = str(base)
    lora.inject(model, adapter)
    lora.load_adapter(model, safetensors.torch.load_file(directory / ADAPTER_WEIGHTS_NAME))
    state = safetensors.torch.load_file(directory / WEIGHTS_NAME)
    missing, unexpected = model.load_state_dict(state, strict=False)
    outside = [n for n in missing if not n.startswith("backbone.")]
    if unexpected or outside:
        raise ValueError(
            f"{directory / WEIGHTS_NAME} does not match its config: missing {outside[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return model.to(dtype=dtype or model.dtype)
