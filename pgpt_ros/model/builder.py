"""Builders: the only code that turns a config (or a LLaVA checkpoint) into a PerceptionGPT.

``build_model`` makes a model with random weights and the project's tiny tokenizer, offline;
``wrap_llava`` (behind ``PerceptionGPT.from_llava``) puts the heads on a user's local checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, LlavaForConditionalGeneration, PreTrainedTokenizerBase

from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.model.tokenizer import add_perception_tokens, build_tiny_tokenizer
from pgpt_ros.model.tokens import IMAGE_TOKEN, VIS_TOKEN


def with_token_ids(
    config: PerceptionGPTConfig, tokenizer: PreTrainedTokenizerBase, vocab_size: int
) -> PerceptionGPTConfig:
    """A copy of ``config`` with the tokenizer's token ids and the embedding table's size."""
    backbone = copy.deepcopy(config.backbone)
    ids = dict(
        vis_token_id=tokenizer.convert_tokens_to_ids(VIS_TOKEN),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id
        if tokenizer.pad_token_id is not None
        else tokenizer.eos_token_id,
    )
    text = backbone["text_config"]
    text["vocab_size"] = vocab_size
    text["pad_token_id"] = ids["pad_token_id"]
    text["eos_token_id"] = ids["eos_token_id"]
    backbone["image_token_index"] = ids["image_token_id"]
    return dataclasses.replace(config, backbone=backbone, **ids)


def build_model(config: PerceptionGPTConfig | None = None) -> PerceptionGPT:
    """A PerceptionGPT with random weights (seed torch first for reproducibility), offline.

    The tokenizer is the project's byte-level BPE, trained here from a built-in corpus; the
    vocabulary size of the backbone is set to the tokenizer's.
    """
    config = config or PerceptionGPTConfig.tiny()
    tokenizer = build_tiny_tokenizer(config.tokenizer_vocab_size)
    config = with_token_ids(config, tokenizer, len(tokenizer))
    return PerceptionGPT(config, tokenizer=tokenizer).eval()


def load_llava_backbone(
    llava_dir: Path, dtype: torch.dtype | None
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

    Deterministic on purpose (transformers' mean resizing samples around the mean): an
    adapter-only save relies on re-creating exactly the same frozen rows from the base checkpoint.
    """
    old = backbone.get_input_embeddings().num_embeddings
    backbone.resize_token_embeddings(size, pad_to_multiple_of=pad_to_multiple_of)
    for table in (backbone.get_input_embeddings(), backbone.get_output_embeddings()):
        table.weight[old:] = table.weight[:old].mean(dim=0)


def wrap_llava(
    cls: type[PerceptionGPT],
    llava_dir: Path,
    overrides: dict[str, Any],
    *,
    dtype: torch.dtype | None = None,
) -> PerceptionGPT:
    """Loads a local HF LLaVA directory and adds ``<vis>`` plus random heads (see from_llava)."""
    backbone = load_llava_backbone(llava_dir, dtype)
    tokenizer = AutoTokenizer.from_pretrained(llava_dir, local_files_only=True)
    add_perception_tokens(tokenizer)
    if len(tokenizer) > backbone.get_input_embeddings().num_embeddings:
        resize_vocabulary(backbone, len(tokenizer), pad_to_multiple_of=64)
    vision = backbone.config.vision_config
    fields: dict[str, Any] = dict(
        base_llava=str(llava_dir.resolve()),
        backbone=backbone.config.to_dict(),
        image_size=vision.image_size,
        mask_size=64,
        head_width=256,
    )
    fields.update(overrides)
    vocab_size = backbone.get_input_embeddings().num_embeddings
    config = with_token_ids(PerceptionGPTConfig(**fields), tokenizer, vocab_size)
    model = cls(config, backbone=backbone, tokenizer=tokenizer)
    return model.to(backbone.dtype).eval()
