"""Both LLaVA families through one code path: LLaVA-1.5 (CLIP + Llama) and LLaVA-Interleave
(SigLIP + Qwen2). Each is wrapped from a saved tiny checkpoint of that family, answers through the
served path, saves and loads as a LoRA adapter; the 0.5B preset has the published shapes."""

import json

import numpy as np
import pytest
import torch
from transformers import LlavaForConditionalGeneration

from pgpt_ros.model import (
    PerceptionGPTConfig,
    add_lora,
    answer,
    build_perception_gpt,
    load_pretrained,
    preset_config,
    save_pretrained,
    wrap_llava,
)
from pgpt_ros.model.family import image_token_count
from pgpt_ros.model.parameters import trainable_summary
from pgpt_ros.model.preprocess import CLIP_MEAN
from pgpt_ros.model.tokenizer import build_tiny_tokenizer
from pgpt_ros.model.tokens import CHATML, LLAVA_1_5
from pgpt_ros.runtime import Perceiver
from tests.test_model_io import (
    assert_peft_reads_adapter,
    assert_same,
    assert_same_weights,
    outputs,
    perturb_trainable,
)
from tests.test_runtime_fast_path import assert_same_answer, forced

SMALL = dict(image_size=32, vision_width=32, text_width=64, head_width=32, mask_size=16)
HEADS = {"head_width": 32, "mask_size": 16}
COMMAND = "find the blue star"
# A processor chat template as LLaVA-Interleave ships it (ChatML, images first), with a system
# turn and a brace of its own, so the test sees the checkpoint's template and not a default.
QWEN_CHAT_TEMPLATE = (
    "<|im_start|>system\n{robot}<|im_end|>\n"
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ c['text'] }}{% endfor %}{{ '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# LLaVA-1.5's format, written by a template that also writes the BOS the tokenizer adds.
LLAVA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ c['text'] + ' ' }}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
FAMILIES = {
    # preset, chat format, chat template the checkpoint ships, pixel mean it declares
    "llava-1.5": ("tiny", LLAVA_1_5, LLAVA_CHAT_TEMPLATE, None),
    "interleave": ("tiny-qwen", CHATML, QWEN_CHAT_TEMPLATE, [0.5, 0.5, 0.5]),
}


def write_checkpoint(directory, family: str, chat_template: bool = True):
    """A tiny HF LLaVA directory of ``family`` as a download holds it: weights, a tokenizer
    without <vis>, the processor's chat template and image normalisation."""
    preset, chat, template, mean = FAMILIES[family]
    tokenizer = build_tiny_tokenizer(with_vis=False, chat=chat)
    config = preset_config(preset, **SMALL).llava_config()
    config.text_config.vocab_size = len(tokenizer)
    config.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    LlavaForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if chat_template:
        (directory / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    if mean is not None:
        stats = {"image_mean": mean, "image_std": [0.5, 0.5, 0.5]}
        (directory / "preprocessor_config.json").write_text(json.dumps(stats))
    return tokenizer


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, size=(30, 20, 3), dtype=np.uint8)


def test_wrapping_an_interleave_checkpoint_keeps_its_family(tmp_path):
    torch.manual_seed(0)
    tokenizer = write_checkpoint(tmp_path, "interleave")
    model = wrap_llava(tmp_path, HEADS)
    cfg = model.config
    assert cfg.prompt_template == (
        "<|im_start|>system\n{{robot}}<|im_end|>\n<|im_start|>user\n<image>\n{command}"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert cfg.pixel_mean == cfg.pixel_std == (0.5, 0.5, 0.5)
    assert cfg.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert cfg.pad_token_id == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert cfg.vis_token_id == len(tokenizer)  # the first new id
    assert cfg.backbone["vision_feature_select_strategy"] == "full"
    assert cfg.num_image_tokens == image_token_count(cfg.backbone) == (32 // 8) ** 2
    ids = model.prompt_ids(COMMAND)
    assert tokenizer.decode(ids[:1]) == "<|im_start|>"  # no BOS in this family
    assert "{robot}" in tokenizer.decode(ids)
    feats = model.encode_image(model.preprocess([np.zeros((8, 8, 3), np.uint8)])[0])
    assert feats.shape == (1, cfg.num_image_tokens, cfg.hidden_size)


def test_wrapping_a_llava_1_5_checkpoint_renders_its_template_without_a_second_bos(tmp_path):
    write_checkpoint(tmp_path / "with", "llava-1.5")
    write_checkpoint(tmp_path / "without", "llava-1.5", chat_template=False)
    rendered = wrap_llava(tmp_path / "with", HEADS).config
    default = wrap_llava(tmp_path / "without", HEADS).config
    assert rendered.prompt_template == default.prompt_template == LLAVA_1_5.prompt_template
    assert rendered.pixel_mean == default.pixel_mean == CLIP_MEAN


def test_a_chat_template_without_an_image_is_refused_unless_overridden(tmp_path):
    write_checkpoint(tmp_path, "interleave")
    (tmp_path / "chat_template.json").write_text(json.dumps({"chat_template": "{{ 'hi' }}"}))
    with pytest.raises(ValueError, match="prompt_template"):
        wrap_llava(tmp_path, HEADS)
    mine = "<|im_start|>user\n<image>\n{command}<|im_end|>\n<|im_start|>assistant\n"
    assert wrap_llava(tmp_path, {**HEADS, "prompt_template": mine}).config.prompt_template == mine


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_answers_through_the_served_path_as_the_reference(tmp_path, image, family):
    torch.manual_seed(0)
    write_checkpoint(tmp_path, family)
    model = wrap_llava(tmp_path, HEADS)
    force = forced(model, COMMAND, ["red circle", "blue star"])
    reference = answer(model, image, COMMAND, max_new_tokens=20, logits_processor=force)
    perceiver = Perceiver(model)
    perceiver.set_image(image, image_id=1)
    served = perceiver.answer(COMMAND, logits_processor=force)
    assert len(served.detections) == 2
    assert_same_answer(served, reference)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_saves_and_loads_a_lora_adapter_peft_reads(tmp_path, image, family):
    torch.manual_seed(0)
    write_checkpoint(tmp_path / "llava", family)
    model = wrap_llava(tmp_path / "llava", HEADS)
    backbone = model.backbone
    tied = backbone.lm_head.weight is backbone.get_input_embeddings().weight
    add_lora(model, r=4, alpha=8, dropout=0.0)
    # the <vis> row of the input embedding and of the LM head; one shared row when they are tied
    rows = 1 if tied else 2
    assert trainable_summary(model)["new tokens"][0] == rows * model.config.hidden_size
    assert tied == (family == "interleave")
    perturb_trainable(model)
    save_pretrained(model, tmp_path / "adapter")
    loaded = load_pretrained(tmp_path / "adapter")
    assert loaded.config == model.config
    assert_same_weights(model, loaded)
    assert_same(outputs(model, image), outputs(loaded, image))

    assert_peft_reads_adapter(loaded, tmp_path / "llava", tmp_path / "adapter", image, COMMAND)


def test_interleave_0_5b_preset_has_the_published_shapes_on_the_meta_device():
    config = preset_config("llava-interleave-qwen-0.5b")
    with torch.device("meta"):
        model = build_perception_gpt(config)
    backbone = model.backbone
    # llava-hf/llava-interleave-qwen-0.5b-hf's model.safetensors is 1.73 GB of bfloat16
    assert sum(p.numel() for p in backbone.parameters()) == 864_031_264
    assert backbone.lm_head.weight is backbone.get_input_embeddings().weight  # tied
    assert config.num_image_tokens == 729 and config.grid == 27
    assert config.vis_token_id == 151647 < backbone.get_input_embeddings().num_embeddings
    summary = trainable_summary(model)
    assert summary["vision tower"][1] == 397_747_744


def test_a_class_token_with_the_full_strategy_is_refused():
    backbone = {**preset_config("tiny").backbone, "vision_feature_select_strategy": "full"}
    assert image_token_count(backbone) == 8 * 8 + 1  # CLIP's class token kept
    with pytest.raises(ValueError, match="default"):
        PerceptionGPTConfig(backbone=backbone, image_size=64)
