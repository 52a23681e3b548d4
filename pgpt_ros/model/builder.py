"""Builds a PerceptionGPT from its config: the only code that knows how the parts are wired.

``build_perception_gpt`` turns a config (and optionally a loaded backbone) into the composed
model; ``build_model`` adds the project's tiny tokenizer and random weights, offline. Named
architectures are in ``pgpt_ros.model.registry``; a user's LLaVA checkpoint goes through
``pgpt_ros.model.llava``.
"""

from __future__ import annotations

import copy
import dataclasses

from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerBase

from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.heads import BOX_DECODERS, BoxEncoder, ScoreHead
from pgpt_ros.model.image_position import ImagePosition
from pgpt_ros.model.mask_decoder import build_mask_decoder
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.model.tokenizer import build_tiny_tokenizer
from pgpt_ros.model.tokens import IMAGE_TOKEN, VIS_TOKEN, chat_format
from pgpt_ros.model.vision_stem import ConvStem

TINY_VOCAB_SIZE = 768


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


def build_perception_gpt(
    config: PerceptionGPTConfig,
    *,
    backbone: LlavaForConditionalGeneration | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> PerceptionGPT:
    """The composed model with new (random) heads, on ``backbone`` or a new one from the config.

    A "conv" vision stem replaces CLIP's patch projection inside the tower; everything after it
    (token grid, widths, projector) stays LLaVA's, so every LLaVA code path still applies.
    """
    backbone = backbone or LlavaForConditionalGeneration(config.llava_config())
    if config.vision_stem == "conv":
        vision = config.backbone["vision_config"]
        embeddings = backbone.model.vision_tower.embeddings
        embeddings.patch_embedding = ConvStem(
            width=vision["hidden_size"], patch_size=vision["patch_size"]
        )
    d, w, grid = config.hidden_size, config.head_width, config.grid
    heads = {}
    if config.head == "perception":
        window = {"window": config.box_window} if config.box_decoder == "query" else {}
        heads = dict(
            box_decoder=BOX_DECODERS[config.box_decoder](
                hidden_size=d, width=w, grid=grid, **window
            ),
            box_encoder=BoxEncoder(hidden_size=d, width=w),
            mask_decoder=build_mask_decoder(
                config.mask_decoder,
                hidden_size=d,
                width=w,
                grid=grid,
                mask_size=config.mask_size,
                sam=config.sam,
                pixel_mean=config.pixel_mean,
                pixel_std=config.pixel_std,
            ),
            score_head=ScoreHead(hidden_size=d, width=w),
        )
    position = ImagePosition(hidden_size=d, grid=grid) if config.image_position else None
    return PerceptionGPT(config, backbone, image_position=position, tokenizer=tokenizer, **heads)


def build_model(config: PerceptionGPTConfig, *, vocab_size: int = TINY_VOCAB_SIZE) -> PerceptionGPT:
    """A PerceptionGPT with random weights (seed torch first for reproducibility), offline.

    The tokenizer is the project's byte-level BPE of ``vocab_size`` entries, trained here from a
    built-in corpus, with the special tokens of the language model's family; the backbone's
    vocabulary is set to the tokenizer's.
    """
    chat = chat_format(config.backbone["text_config"]["model_type"])
    tokenizer = build_tiny_tokenizer(vocab_size, chat=chat)
    config = with_token_ids(config, tokenizer, len(tokenizer))
    return build_perception_gpt(config, tokenizer=tokenizer).eval()
