"""Named model shapes, one builder each (as segment-anything's ``sam_model_registry``).

Training, benchmarks, export and tests look a shape up here instead of keeping their own numbers:

    config = preset_config("shapes")                 # the embedded default's architecture
    config = preset_config("tiny", text_layers=1)    # overrides: tiny's keywords or config fields
    model = build_model(config)                      # random weights, tiny tokenizer, offline

``tiny`` is the family of small models trained from scratch on a CPU; the LLaVA presets have the
exact shapes of public checkpoints (for counting parameters on the meta device, benchmarks with
random weights, and wrapping a downloaded checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    Qwen2Config,
    SiglipVisionConfig,
)

from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.family import VISION_FAMILIES
from pgpt_ros.model.tokens import CHATML

SIGLIP = VISION_FAMILIES["siglip_vision_model"]
# What a LLaVA-Interleave (SigLIP + Qwen) model differs in besides its towers.
INTERLEAVE_FIELDS: dict[str, Any] = dict(
    prompt_template=CHATML.prompt_template, pixel_mean=SIGLIP.pixel_mean, pixel_std=SIGLIP.pixel_std
)


def tiny(
    *,
    image_size: int = 64,
    patch_size: int = 8,
    vision_width: int = 64,
    vision_layers: int = 2,
    text_width: int = 128,
    text_layers: int = 2,
    family: str = "llava-1.5",
    **fields: Any,
) -> PerceptionGPTConfig:
    """A tiny LLaVA (64 px, ViT 64x2, LM 128x2 by default: about 0.5 M backbone).

    ``family`` "llava-1.5" is CLIP ViT + Llama (LLaVA-1.5's towers; the embedded default's);
    "interleave" is SigLIP + Qwen2 with grouped-query attention and tied embeddings, no class
    token ("full" feature strategy), SigLIP's normalisation and the ChatML prompt
    (LLaVA-Interleave's). ``text_config.vocab_size`` is a placeholder until the builder knows
    the tokenizer; ``fields`` are further ``PerceptionGPTConfig`` fields (heads, mask size, ...).
    """
    heads = max(1, text_width // 32)
    vision = dict(hidden_size=vision_width, intermediate_size=2 * vision_width,
                  num_hidden_layers=vision_layers, num_attention_heads=max(1, vision_width // 32),
                  image_size=image_size, patch_size=patch_size)  # fmt: skip
    text = dict(vocab_size=768, hidden_size=text_width, intermediate_size=2 * text_width,
                num_hidden_layers=text_layers, num_attention_heads=heads,
                max_position_embeddings=1024)  # fmt: skip
    if family == "llava-1.5":
        towers = dict(
            vision_config=CLIPVisionConfig(**vision, projection_dim=vision_width),
            text_config=LlamaConfig(**text, num_key_value_heads=heads, tie_word_embeddings=False),
            vision_feature_layer=-1,
        )
    elif family == "interleave":
        towers = dict(
            vision_config=SiglipVisionConfig(**vision, vision_use_head=False),
            text_config=Qwen2Config(
                **text, num_key_value_heads=max(1, heads // 2), tie_word_embeddings=True
            ),  # fmt: skip
            vision_feature_layer=-1,
            vision_feature_select_strategy="full",
        )
        fields = {**INTERLEAVE_FIELDS, **fields}
    else:
        raise ValueError(f'tiny family must be "llava-1.5" or "interleave", got {family!r}')
    llava = LlavaConfig(**towers, image_seq_length=(image_size // patch_size) ** 2)
    return PerceptionGPTConfig(backbone=llava.to_dict(), image_size=image_size, **fields)


def tiny_qwen(**overrides: Any) -> PerceptionGPTConfig:
    """``tiny`` of the LLaVA-Interleave family (SigLIP + Qwen2): the CPU stand-in of
    ``llava-interleave-qwen-0.5b`` in tests."""
    return tiny(**{"family": "interleave", **overrides})


def shapes(**overrides: Any) -> PerceptionGPTConfig:
    """The embedded default model's architecture: ``tiny`` with a convolutional stem, three LM
    layers and the image position map (a tower trained from scratch needs both to see shapes and
    places; docs/training.md has the measurements)."""
    fields: dict[str, Any] = dict(text_layers=3, vision_stem="conv", image_position=True)
    return tiny(**{**fields, **overrides})


def llava_1_5_7b(**overrides: Any) -> PerceptionGPTConfig:
    """LLaVA-1.5-7B's shapes (CLIP ViT-L/14-336, 32 x 4096 Llama, vocab 32064). ``<vis>`` takes
    the first unused id (32002): the checkpoint's embedding table already has rows up to 32063."""
    vision = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
        hidden_act="quick_gelu",
    )
    text = LlamaConfig(
        vocab_size=32064,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=overrides.pop("text_layers", 32),
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )
    llava = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=32000,
        image_seq_length=576,
        vision_feature_layer=-2,
    )
    fields: dict[str, Any] = dict(
        image_size=336,
        mask_size=64,
        head_width=256,
        vis_token_id=32002,
        image_token_id=32000,
        eos_token_id=2,
        pad_token_id=32001,
    )
    return PerceptionGPTConfig(backbone=llava.to_dict(), **{**fields, **overrides})


def llava_interleave_qwen_0_5b(**overrides: Any) -> PerceptionGPTConfig:
    """llava-hf/llava-interleave-qwen-0.5b-hf's shapes: SigLIP so400m-patch14-384 without its
    pooling head (1152 wide, 26 layers, 729 patch tokens, "full" strategy, last layer) and the
    Qwen1.5-0.5B-Chat language model in transformers' Qwen2 architecture (1024 wide, 24 layers,
    16 heads, no grouped-query attention, MLP 2816, vocabulary padded to 152000, embeddings tied
    to the LM head). Its tokenizer has 151,647 entries (``<image>`` is 151646), so ``<vis>`` takes
    151647 without resizing; answers end with ``<|im_end|>`` (151645), padding is
    ``<|endoftext|>`` (151643)."""
    vision = SiglipVisionConfig(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=26,
        num_attention_heads=16,
        image_size=384,
        patch_size=14,
        hidden_act="gelu_pytorch_tanh",
        layer_norm_eps=1e-6,
        vision_use_head=False,
    )
    text = Qwen2Config(
        vocab_size=152000,
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=overrides.pop("text_layers", 24),
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        use_sliding_window=False,
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151645,
    )
    llava = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=151646,
        image_seq_length=729,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
    )
    fields: dict[str, Any] = dict(
        image_size=384,
        mask_size=64,
        head_width=256,
        vis_token_id=151647,
        image_token_id=151646,
        eos_token_id=151645,
        pad_token_id=151643,
        **INTERLEAVE_FIELDS,
    )
    return PerceptionGPTConfig(backbone=llava.to_dict(), **{**fields, **overrides})


def llava_7b_heads(**overrides: Any) -> PerceptionGPTConfig:
    """The heads of LLaVA-1.5-7B's shapes (d 4096, 576 image tokens at 336 px / 14, 64 x 64 masks,
    head width 256) on a one-layer stand-in backbone: for benchmarking the heads alone on a
    machine that cannot hold the 7B backbone in float32."""
    fields: dict[str, Any] = dict(image_size=336, patch_size=14, vision_width=64, vision_layers=1,
                                  text_width=4096, text_layers=1, mask_size=64, head_width=256)  # fmt: skip
    return tiny(**{**fields, **overrides})


MODEL_PRESETS: dict[str, Callable[..., PerceptionGPTConfig]] = {
    "tiny": tiny,
    "tiny-qwen": tiny_qwen,
    "shapes": shapes,
    "llava-1.5-7b": llava_1_5_7b,
    "llava-interleave-qwen-0.5b": llava_interleave_qwen_0_5b,
    "llava-7b-heads": llava_7b_heads,
}


def preset_config(name: str, **overrides: Any) -> PerceptionGPTConfig:
    """The named architecture with ``overrides``; ValueError lists the names for a typo."""
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose from {sorted(MODEL_PRESETS)}")
    return MODEL_PRESETS[name](**overrides)
