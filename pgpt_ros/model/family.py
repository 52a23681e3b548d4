"""What differs between LLaVA families, read from a checkpoint instead of assumed.

LLaVA-1.5 (CLIP ViT-L/14-336 + Llama) and LLaVA-Interleave (SigLIP so400m + Qwen) share
transformers' ``LlavaForConditionalGeneration`` and this project's code path; they differ in:

- the vision tower's pixel normalisation (CLIP's mean/std; SigLIP's 0.5/0.5) and whether it puts
  a class token before the patches (CLIP does, SigLIP does not), which with the checkpoint's
  ``vision_feature_select_strategy`` ("default" drops the first position, "full" keeps all) fixes
  the number of image tokens: 576 for 336 / 14 with CLIP, 729 for 384 / 14 with SigLIP;
- the conversation format and special tokens (``pgpt_ros.model.tokens.ChatFormat``): taken from
  the checkpoint's own chat template when it ships one, else from its language model family.

The vision feature layer needs nothing here: transformers reads it from the checkpoint's config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from pgpt_ros.model.preprocess import CLIP_MEAN, CLIP_STD
from pgpt_ros.model.tokens import IMAGE_TOKEN, chat_format

Stats = tuple[float, float, float]


@dataclass(frozen=True)
class VisionFamily:
    """A vision tower family: its pixel normalisation and its positions before the patches."""

    pixel_mean: Stats
    pixel_std: Stats
    class_tokens: int


VISION_FAMILIES = {
    "clip_vision_model": VisionFamily(CLIP_MEAN, CLIP_STD, class_tokens=1),
    "siglip_vision_model": VisionFamily((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), class_tokens=0),
}


def vision_family(vision_config: dict[str, Any]) -> VisionFamily:
    """The family of a vision tower config dict; ValueError names the supported ones."""
    kind = vision_config.get("model_type")
    if kind not in VISION_FAMILIES:
        raise ValueError(
            f"vision tower {kind!r} is not supported; supported: {sorted(VISION_FAMILIES)}"
        )
    return VISION_FAMILIES[kind]


def image_token_count(backbone: dict[str, Any]) -> int:
    """How many image tokens LLaVA's ``get_image_features`` yields per image for a
    ``LlavaConfig`` dict: the patch grid, plus the class token, minus the first position when the
    strategy is "default"."""
    vision = backbone["vision_config"]
    grid = vision["image_size"] // vision["patch_size"]
    dropped = 1 if backbone.get("vision_feature_select_strategy", "default") == "default" else 0
    return grid**2 + vision_family(vision).class_tokens - dropped


def pixel_stats(llava_dir: Path, vision_config: dict[str, Any]) -> tuple[Stats, Stats]:
    """(mean, std) the checkpoint's image processor normalises with (``preprocessor_config.json``),
    else its vision family's."""
    family = vision_family(vision_config)
    path = llava_dir / "preprocessor_config.json"
    stored = json.loads(path.read_text()) if path.is_file() else {}
    mean = stored.get("image_mean", family.pixel_mean)
    std = stored.get("image_std", family.pixel_std)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def stored_chat_template(llava_dir: Path) -> str | None:
    """The chat template the checkpoint's processor ships (``chat_template.jinja`` or
    ``chat_template.json``), or None. A text tokenizer's own template is not used: it expects
    plain-string messages and knows no image."""
    jinja = llava_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    stored = llava_dir / "chat_template.json"
    if stored.is_file():
        return json.loads(stored.read_text()).get("chat_template")
    return None


_COMMAND = "\x00command\x00"  # stands in for the command while the chat template is rendered


def prompt_template(
    llava_dir: Path, tokenizer: PreTrainedTokenizerBase, text_model_type: str
) -> str:
    """The prompt template (``<image>`` once, a ``{command}`` field) of a LLaVA checkpoint: its
    chat template rendered for one user turn (image, then the command) with the assistant's turn
    opened, else its language model family's format.

    A BOS the template writes is removed: ``tokens.encode_prompt`` lets the tokenizer add it.
    """
    template = stored_chat_template(llava_dir)
    if template is None:
        return chat_format(text_model_type).prompt_template
    messages = [{"role": "user",
                 "content": [{"type": "image"}, {"type": "text", "text": _COMMAND}]}]  # fmt: skip
    text = tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True
    )
    if tokenizer.bos_token and text.startswith(tokenizer.bos_token):
        text = text[len(tokenizer.bos_token) :]
    if text.count(IMAGE_TOKEN) != 1 or text.count(_COMMAND) != 1:
        raise ValueError(
            f"{llava_dir}'s chat template renders one image and one command as {text!r}; pass "
            "a prompt_template override with one <image> and one {command}"
        )
    # Braces of the rendered text are literal; only the command is a format field.
    return text.replace("{", "{{").replace("}", "}}").replace(_COMMAND, "{command}")
