"""A user's local LLaVA checkpoint as the backbone: ``<vis>`` added, new heads, nothing downloaded.

    model = wrap_llava("/path/to/llava-1.5-7b-hf")   # then train with LoRA (pgpt_ros.training)

The checkpoint's own tokenizer, chat template, pixel normalisation and vision settings are kept
(``pgpt_ros.model.family``: LLaVA-1.5's CLIP + Llama and LLaVA-Interleave's SigLIP + Qwen alike);
only ``<vis>`` (and ``<image>`` if missing) is added, growing the embedding tables only when the
tokenizer outgrew them. The new rows are the mean of the old ones, deterministically, so an
adapter saved against this checkpoint finds exactly the same frozen rows when it is loaded again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from pgpt_ros.model.builder import build_perception_gpt, with_token_ids
from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.family import pixel_stats, prompt_template
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.model.tokenizer import add_perception_tokens


def is_llava_dir(path: Path) -> bool:
    """Whether ``path`` holds a transformers LLaVA checkpoint (its config says model_type llava)."""
    config = path / "config.json"
    return config.is_file() and json.loads(config.read_text()).get("model_type") == "llava"


def load_llava_backbone(
    llava_dir: Path, dtype: torch.dtype | None = None
) -> LlavaForConditionalGeneration:
    """A local HF LLaVA directory's model, never downloading (clear error if it is not one)."""
    if not (llava_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{llava_dir} is not a Hugging Face LLaVA directory (no config.json); download e.g. "
            "llava-hf/llava-1.5-7b-hf once and pass its local path"
        )
    return LlavaForConditionalGeneration.from_pretrained(
        llava_dir, dtype=dtype, local_files_only=True
    )


@torch.no_grad()
def resize_vocabulary(
    backbone: LlavaForConditionalGeneration, size: int, pad_to_multiple_of: int | None = None
) -> None:
    """Grows the input embedding and the LM head; new rows are the mean of the old ones.

    Deterministic on purpose (transformers' mean resizing samples around the mean): an adapter
    relies on re-creating exactly the same frozen rows from the base checkpoint.
    """
    old = backbone.get_input_embeddings().num_embeddings
    backbone.resize_token_embeddings(size, pad_to_multiple_of=pad_to_multiple_of)
    for table in (backbone.get_input_embeddings(), backbone.get_output_embeddings()):
        table.weight[old:] = table.weight[:old].mean(dim=0)


def llava_backbone_for(
    config: PerceptionGPTConfig, llava_dir: Path, dtype: torch.dtype | None = None
) -> LlavaForConditionalGeneration:
    """The base checkpoint's backbone with its vocabulary grown to ``config``'s, as it was when
    the model was wrapped."""
    backbone = load_llava_backbone(llava_dir, dtype)
    vocab = config.backbone["text_config"]["vocab_size"]
    if backbone.get_input_embeddings().num_embeddings != vocab:
        resize_vocabulary(backbone, vocab)
    return backbone


def wrap_llava(
    llava_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> PerceptionGPT:
    """Loads a local HF LLaVA directory and adds ``<vis>`` plus new random heads.

    Arguments:
        llava_dir: e.g. a downloaded ``llava-hf/llava-1.5-7b-hf`` or
            ``llava-hf/llava-interleave-qwen-0.5b-hf``.
        overrides (dict | None): ``PerceptionGPTConfig`` fields (mask size, head width, ...).
    """
    llava_dir = Path(llava_dir)
    backbone = load_llava_backbone(llava_dir, dtype)
    tokenizer = AutoTokenizer.from_pretrained(llava_dir, local_files_only=True)
    add_perception_tokens(tokenizer)
    if len(tokenizer) > backbone.get_input_embeddings().num_embeddings:
        resize_vocabulary(backbone, len(tokenizer), pad_to_multiple_of=64)
    llava = backbone.config.to_dict()
    overrides = overrides or {}
    mean, std = pixel_stats(llava_dir, llava["vision_config"])
    fields: dict[str, Any] = dict(
        backbone=llava,
        image_size=llava["vision_config"]["image_size"],
        pixel_mean=mean,
        pixel_std=std,
        mask_size=64,
        head_width=256,
    )
    if "prompt_template" not in overrides:  # an override also stands in for a broken template
        model_type = llava["text_config"]["model_type"]
        fields["prompt_template"] = prompt_template(llava_dir, tokenizer, model_type)
    fields.update(overrides)
    vocab_size = backbone.get_input_embeddings().num_embeddings
    config = with_token_ids(PerceptionGPTConfig(**fields), tokenizer, vocab_size)
    model = build_perception_gpt(config, backbone=backbone, tokenizer=tokenizer)
    model.base_path = str(llava_dir.resolve())
    return model.to(backbone.dtype).eval()
