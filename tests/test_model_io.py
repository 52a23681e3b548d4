"""The directory contract: config JSON, safetensors, tokenizer; LoRA; wrapping a LLaVA checkpoint."""

import json

import numpy as np
import pytest
import torch
from transformers import (
    LlavaForConditionalGeneration,
    SamConfig,
    SamModel,
)

from pgpt_ros.model import PerceptionGPT, PerceptionGPTConfig, build_model
from pgpt_ros.model.perception_gpt import ADAPTER_NAME, CONFIG_NAME, WEIGHTS_NAME
from pgpt_ros.model.tokenizer import build_tiny_tokenizer
from tests.tiny_models import tiny_sam_config

COMMAND = "find the blue star"


def tiny_config(**overrides):
    fields = dict(image_size=32, vision_width=32, text_width=64, head_width=32, mask_size=16)
    return PerceptionGPTConfig.tiny(**{**fields, **overrides})


def outputs(model: PerceptionGPT, image: np.ndarray):
    """Everything the model computes for one prompt: logits, states, all heads."""
    pixels = model.preprocess([image])
    ids = torch.tensor([model.prompt_ids(COMMAND)])
    with torch.no_grad():
        hidden, feats = model.hidden_states(ids, pixels)
        logits = model.backbone.lm_head(hidden)
        heads = model.decode_vis(hidden[:, -1], feats, pixels) if model.box_decoder else ()
    return (logits, hidden, *heads)


def assert_same(a, b):
    """Equal outputs; 1e-6 allows for kernels that pick another SIMD path for other alignment."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-5)


def assert_same_weights(a: PerceptionGPT, b: PerceptionGPT):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(1).integers(0, 256, size=(30, 20, 3), dtype=np.uint8)


def test_config_round_trips_through_json():
    config = tiny_config(box_decoder="mlp", mask_size=8)
    again = PerceptionGPTConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match="unknown"):
        PerceptionGPTConfig.from_dict({**config.to_dict(), "typo": 1})
    with pytest.raises(ValueError, match="box_decoder"):
        tiny_config(box_decoder="transformer")


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"box_decoder": "mlp"},
        {"head": "text_coords"},
        {"mask_decoder": "sam", "sam": tiny_sam_config()},
        {"vision_stem": "conv", "patch_classes": 5, "patch_geometry": True, "image_position": True},
    ],
    ids=["query-lite", "mlp", "text_coords", "sam", "conv-stem"],
)
def test_save_load_round_trip_gives_identical_outputs(tmp_path, image, overrides):
    torch.manual_seed(0)
    model = build_model(tiny_config(**overrides))
    model.save_pretrained(tmp_path)
    assert {CONFIG_NAME, WEIGHTS_NAME, "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    loaded = PerceptionGPT.from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert loaded.tokenizer.convert_tokens_to_ids("<vis>") == model.config.vis_token_id
    assert_same_weights(model, loaded)
    assert_same(outputs(model, image), outputs(loaded, image))
    if overrides.get("mask_decoder") == "sam":  # tied positional matrix is tied again
        sam = loaded.mask_decoder.sam
        assert sam.shared_image_embedding.positional_embedding is (
            sam.prompt_encoder.shared_embedding.positional_embedding
        )


def test_lora_adapter_round_trip(tmp_path, image):
    torch.manual_seed(0)
    model = build_model(tiny_config())
    before = outputs(model, image)
    model.add_lora(r=4, alpha=8, dropout=0.0)
    assert_same(before, outputs(model, image))  # LoRA B starts at zero: no change yet
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or "trainable_tokens_delta" in name:
                param.add_(0.05 * torch.randn_like(param))
    tuned = outputs(model, image)
    assert (tuned[0] - before[0]).abs().max() > 1e-3
    model.save_pretrained(tmp_path)
    loaded = PerceptionGPT.from_pretrained(tmp_path)
    assert loaded.config.lora == {"r": 4, "alpha": 8, "dropout": 0.0}
    assert_same_weights(model, loaded)
    assert_same(tuned, outputs(loaded, image))


def test_lora_targets_only_language_model_attention():
    model = build_model(tiny_config())
    model.add_lora(r=2, alpha=4, dropout=0.0)
    lora_names = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora_names
    assert all(".language_model." in n for n in lora_names)
    assert all(("q_proj" in n) or ("v_proj" in n) for n in lora_names)
    summary = model.trainable_summary()
    assert summary["vision tower"][0] == 0 and summary["LM base"][0] == 0
    assert summary["lora"][0] == summary["lora"][1] > 0
    assert summary["new tokens"][0] == 2 * model.config.hidden_size  # one input row, one output row
    with pytest.raises(RuntimeError, match="already"):
        model.add_lora()


def write_tiny_llava(directory):
    """A tiny HF LLaVA directory whose tokenizer lacks <vis>, as a downloaded checkpoint would."""
    tokenizer = build_tiny_tokenizer(with_vis=False)
    backbone_config = tiny_config().llava_config()
    backbone_config.text_config.vocab_size = len(tokenizer)
    backbone_config.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    LlavaForConditionalGeneration(backbone_config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return tokenizer


def test_from_llava_adds_vis_and_builds_heads(tmp_path, image):
    torch.manual_seed(0)
    tokenizer = write_tiny_llava(tmp_path)
    model = PerceptionGPT.from_llava(tmp_path, {"head_width": 32, "mask_size": 16})
    vis = model.config.vis_token_id
    assert vis == len(tokenizer)  # the first new id
    embeddings = model.backbone.get_input_embeddings().weight
    assert embeddings.shape[0] > vis
    torch.testing.assert_close(embeddings[vis], embeddings[: len(tokenizer)].mean(0))
    assert model.config.mask_size == 16 and model.box_decoder is not None
    assert model.config.base_llava == str(tmp_path.resolve())
    answer = model.answer(image, COMMAND, max_new_tokens=3)
    assert answer.num_tokens <= 3
    with pytest.raises(FileNotFoundError, match="config.json"):
        PerceptionGPT.from_llava(tmp_path / "missing")


def test_adapter_only_save_round_trip(tmp_path, image):
    torch.manual_seed(0)
    write_tiny_llava(tmp_path / "llava")
    model = PerceptionGPT.from_llava(tmp_path / "llava", {"head_width": 32, "mask_size": 16})
    model.add_lora(r=4, alpha=8, dropout=0.0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))
    model.save_pretrained(tmp_path / "full")
    model.save_pretrained(tmp_path / "adapter", adapter_only=True)
    full_size = (tmp_path / "full" / WEIGHTS_NAME).stat().st_size
    adapter_size = (tmp_path / "adapter" / ADAPTER_NAME).stat().st_size
    assert adapter_size < 0.8 * full_size
    loaded = PerceptionGPT.from_pretrained(tmp_path / "adapter")
    assert_same_weights(model, loaded)
    assert_same(outputs(model, image), outputs(loaded, image))
    with pytest.raises(ValueError, match="from_llava"):
        build_model(tiny_config()).save_pretrained(tmp_path / "x", adapter_only=True)


def test_use_sam_mask_decoder_loads_a_local_checkpoint(tmp_path, image):
    torch.manual_seed(0)
    sam = SamModel(SamConfig(**tiny_sam_config()))
    sam.save_pretrained(tmp_path / "sam")
    model = build_model(tiny_config())
    model.use_sam_mask_decoder(tmp_path / "sam")
    assert model.config.mask_decoder == "sam" and model.config.sam is not None
    loaded_token = model.mask_decoder.sam.mask_decoder.iou_token.weight
    torch.testing.assert_close(loaded_token, sam.mask_decoder.iou_token.weight)
    *_, masks, _ = outputs(model, image)
    assert masks.shape == (1, model.config.mask_size, model.config.mask_size)
    model.save_pretrained(tmp_path / "pgpt")
    again = PerceptionGPT.from_pretrained(tmp_path / "pgpt")
    assert_same_weights(model, again)
    with pytest.raises(FileNotFoundError, match="SAM"):
        model.use_sam_mask_decoder(tmp_path / "nothing")


def test_from_pretrained_explains_a_wrong_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="from_llava"):
        PerceptionGPT.from_pretrained(tmp_path)


def test_llava_7b_shape_counts_on_meta_device():
    config = PerceptionGPTConfig.llava_7b_shape()
    with torch.device("meta"):
        model = PerceptionGPT(config)
    summary = model.trainable_summary()
    total = summary["total"][1]
    backbone = sum(p.numel() for p in model.backbone.parameters())
    # LLaVA-1.5-7B is 7.06 B parameters with its 32064-row vocabulary
    assert 7.0e9 < backbone < 7.1e9
    assert total - backbone == sum(
        summary[g][1] for g in ("box decoder", "box encoder", "mask decoder", "score head")
    )
