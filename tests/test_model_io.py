"""The directory contract: config.json, safetensors, tokenizer; a LoRA adapter in peft's layout;
wrapping a LLaVA checkpoint; converting the first layout."""

import json

import numpy as np
import pytest
import safetensors.torch
import torch
from peft import PeftModel
from transformers import (
    LlavaForConditionalGeneration,
    SamConfig,
    SamModel,
)

from pgpt_ros.model import (
    PerceptionGPT,
    PerceptionGPTConfig,
    add_lora,
    build_model,
    build_perception_gpt,
    load_pretrained,
    preset_config,
    save_pretrained,
    wrap_llava,
)
from pgpt_ros.model.checkpoint import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    CONFIG_NAME,
    LEGACY_CONFIG_NAME,
    WEIGHTS_NAME,
)
from pgpt_ros.model.convert import convert
from pgpt_ros.model.llava import llava_backbone_for
from pgpt_ros.model.mask_decoder import use_sam_mask_decoder
from pgpt_ros.model.parameters import trainable_summary
from pgpt_ros.model.tokenizer import build_tiny_tokenizer
from tests.tiny_models import tiny_sam_config

COMMAND = "find the blue star"


def tiny_config(**overrides):
    fields = dict(image_size=32, vision_width=32, text_width=64, head_width=32, mask_size=16)
    return preset_config("tiny", **{**fields, **overrides})


def outputs(model: PerceptionGPT, image: np.ndarray):
    """Everything the model computes for one prompt: logits, states, all heads."""
    pixels, _ = model.preprocess([image])
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
    for window, decoder in ((-1, "query"), (1, "mlp")):  # a window is the query decoder's
        with pytest.raises(ValueError, match="box_window"):
            tiny_config(box_window=window, box_decoder=decoder)
    with pytest.raises(ValueError, match="format"):
        PerceptionGPTConfig.from_dict({**config.to_dict(), "format_version": 1})
    assert config.to_dict()["model_type"] == "perception_gpt"


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"box_decoder": "mlp"},
        {"head": "text_coords"},
        {"mask_decoder": "sam", "sam": tiny_sam_config()},
        {"vision_stem": "conv", "image_position": True, "resize_mode": "pad"},
    ],
    ids=["query-lite", "mlp", "text_coords", "sam", "conv-stem-pad"],
)
def test_save_load_round_trip_gives_identical_outputs(tmp_path, image, overrides):
    torch.manual_seed(0)
    model = build_model(tiny_config(**overrides))
    save_pretrained(model, tmp_path)
    assert {CONFIG_NAME, WEIGHTS_NAME, "tokenizer.json"} <= {p.name for p in tmp_path.iterdir()}
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))
    stored = safetensors.torch.load_file(tmp_path / WEIGHTS_NAME)
    assert set(stored) == set(model.state_dict())  # every tensor is one inference uses
    loaded = load_pretrained(tmp_path)
    assert loaded.config == model.config
    assert loaded.tokenizer.convert_tokens_to_ids("<vis>") == model.config.vis_token_id
    assert_same_weights(model, loaded)
    assert_same(outputs(model, image), outputs(loaded, image))
    if overrides.get("mask_decoder") == "sam":  # tied positional matrix is tied again
        sam = loaded.mask_decoder.sam
        assert sam.shared_image_embedding.positional_embedding is (
            sam.prompt_encoder.shared_embedding.positional_embedding
        )


def perturb_trainable(model: PerceptionGPT) -> None:
    """Moves every trainable weight, as training would (LoRA B starts at zero)."""
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))


def test_lora_adapter_round_trip_against_a_saved_base(tmp_path, image):
    torch.manual_seed(0)
    save_pretrained(build_model(tiny_config()), tmp_path / "base")
    model = load_pretrained(tmp_path / "base")
    before = outputs(model, image)
    add_lora(model, r=4, alpha=8, dropout=0.0)
    assert_same(before, outputs(model, image))  # LoRA B starts at zero: no change yet
    perturb_trainable(model)
    tuned = outputs(model, image)
    assert (tuned[0] - before[0]).abs().max() > 1e-3
    save_pretrained(model, tmp_path / "adapter")
    files = {p.name for p in (tmp_path / "adapter").iterdir()}
    assert {CONFIG_NAME, ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, WEIGHTS_NAME} <= files
    adapter_config = json.loads((tmp_path / "adapter" / ADAPTER_CONFIG_NAME).read_text())
    assert adapter_config["base_model_name_or_path"] == str((tmp_path / "base").resolve())
    heads = safetensors.torch.load_file(tmp_path / "adapter" / WEIGHTS_NAME)
    assert heads and not any(k.startswith("backbone.") for k in heads)
    loaded = load_pretrained(tmp_path / "adapter")
    assert_same_weights(model, loaded)
    assert_same(tuned, outputs(loaded, image))


def test_lora_needs_a_base_to_be_saved_against(tmp_path):
    model = build_model(tiny_config())
    add_lora(model, r=2, alpha=4, dropout=0.0)
    with pytest.raises(ValueError, match="base"):
        save_pretrained(model, tmp_path)


def test_lora_targets_only_language_model_attention():
    model = build_model(tiny_config())
    add_lora(model, r=2, alpha=4, dropout=0.0)
    lora_names = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora_names
    assert all(".language_model." in n for n in lora_names)
    assert all(("q_proj" in n) or ("v_proj" in n) for n in lora_names)
    summary = trainable_summary(model)
    assert summary["vision tower"][0] == 0 and summary["LM base"][0] == 0
    assert summary["lora"][0] == summary["lora"][1] > 0
    assert summary["new tokens"][0] == 2 * model.config.hidden_size  # one input row, one output row
    assert summary["projector"][0] > 0  # peft's modules_to_save: the projector trains
    with pytest.raises(RuntimeError, match="already"):
        add_lora(model)


def write_tiny_llava(directory):
    """A tiny HF LLaVA directory whose tokenizer lacks <vis>, as a downloaded checkpoint would."""
    tokenizer = build_tiny_tokenizer(with_vis=False)
    backbone_config = tiny_config().llava_config()
    backbone_config.text_config.vocab_size = len(tokenizer)
    backbone_config.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    LlavaForConditionalGeneration(backbone_config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return tokenizer


def test_wrap_llava_adds_vis_and_builds_heads(tmp_path, image):
    torch.manual_seed(0)
    tokenizer = write_tiny_llava(tmp_path)
    model = wrap_llava(tmp_path, {"head_width": 32, "mask_size": 16})
    vis = model.config.vis_token_id
    assert vis == len(tokenizer)  # the first new id
    embeddings = model.backbone.get_input_embeddings().weight
    assert embeddings.shape[0] > vis
    torch.testing.assert_close(embeddings[vis], embeddings[: len(tokenizer)].mean(0))
    assert model.config.mask_size == 16 and model.box_decoder is not None
    assert model.base_path == str(tmp_path.resolve())
    assert outputs(model, image)[0].shape[-1] == embeddings.shape[0]
    with pytest.raises(FileNotFoundError, match="config.json"):
        wrap_llava(tmp_path / "missing")


def assert_peft_reads_adapter(loaded, llava_dir, adapter_dir, image, command: str) -> None:
    """peft's own ``PeftModel.from_pretrained`` on the base checkpoint gives the language model
    ``loaded`` (our reload of the adapter directory) runs."""
    base = llava_backbone_for(loaded.config, llava_dir)
    peft_model = PeftModel.from_pretrained(base, adapter_dir).eval()
    ids = torch.tensor([loaded.prompt_ids(command)])
    pixels, _ = loaded.preprocess([image])
    with torch.no_grad():
        theirs = peft_model(input_ids=ids, pixel_values=pixels).logits
        ours = loaded.backbone(input_ids=ids, pixel_values=pixels).logits
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


def test_adapter_on_a_llava_base_loads_here_and_in_peft(tmp_path, image):
    """The adapter directory of a wrapped LLaVA checkpoint is small, loads back exactly, and is
    peft's own format: PeftModel.from_pretrained on the base gives the same language model."""
    torch.manual_seed(0)
    write_tiny_llava(tmp_path / "llava")
    model = wrap_llava(tmp_path / "llava", {"head_width": 32, "mask_size": 16})
    add_lora(model, r=4, alpha=8, dropout=0.0)
    perturb_trainable(model)
    save_pretrained(model, tmp_path / "adapter")
    adapter_bytes = (tmp_path / "adapter" / ADAPTER_WEIGHTS_NAME).stat().st_size
    backbone_bytes = sum(p.numel() * 4 for p in model.backbone.parameters())
    assert adapter_bytes < 0.5 * backbone_bytes
    loaded = load_pretrained(tmp_path / "adapter")
    assert_same_weights(model, loaded)
    assert_same(outputs(model, image), outputs(loaded, image))

    assert_peft_reads_adapter(loaded, tmp_path / "llava", tmp_path / "adapter", image, COMMAND)


def test_use_sam_mask_decoder_loads_a_local_checkpoint(tmp_path, image):
    torch.manual_seed(0)
    sam = SamModel(SamConfig(**tiny_sam_config()))
    sam.save_pretrained(tmp_path / "sam")
    model = build_model(tiny_config())
    use_sam_mask_decoder(model, tmp_path / "sam")
    assert model.config.mask_decoder == "sam" and model.config.sam is not None
    loaded_token = model.mask_decoder.sam.mask_decoder.iou_token.weight
    torch.testing.assert_close(loaded_token, sam.mask_decoder.iou_token.weight)
    *_, masks, _ = outputs(model, image)
    assert masks.shape == (1, model.config.mask_size, model.config.mask_size)
    save_pretrained(model, tmp_path / "pgpt")
    again = load_pretrained(tmp_path / "pgpt")
    assert_same_weights(model, again)
    with pytest.raises(FileNotFoundError, match="SAM"):
        use_sam_mask_decoder(model, tmp_path / "nothing")


def test_load_pretrained_explains_a_wrong_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="wrap_llava"):
        load_pretrained(tmp_path)


def write_legacy(model: PerceptionGPT, directory) -> None:
    """A directory of the first layout: pgpt_config.json with training keys, training-only
    tensors in model.safetensors."""
    save_pretrained(model, directory)
    config = json.loads((directory / CONFIG_NAME).read_text())
    for key in ("model_type", "format_version", "resize_mode"):
        config.pop(key)
    config.update(loss_weights={"heat": 1.0}, patch_classes=3, patch_geometry=True,
                  tokenizer_vocab_size=768, lora=None, base_llava=None)  # fmt: skip
    (directory / CONFIG_NAME).unlink()
    (directory / LEGACY_CONFIG_NAME).write_text(json.dumps(config))
    state = safetensors.torch.load_file(directory / WEIGHTS_NAME)
    state["patch_classifier.linear.weight"] = torch.zeros(3, model.config.hidden_size)
    state["patch_geometry.linear.bias"] = torch.zeros(4)
    safetensors.torch.save_file(state, directory / WEIGHTS_NAME)


def test_first_layout_fails_with_the_converter_named_and_converts(tmp_path, image):
    torch.manual_seed(0)
    model = build_model(tiny_config(vision_stem="conv", image_position=True))
    write_legacy(model, tmp_path / "old")
    with pytest.raises(ValueError, match="pgpt_ros.model.convert"):
        load_pretrained(tmp_path / "old")
    config = convert(tmp_path / "old", tmp_path / "new")
    assert config.resize_mode == "stretch"
    stored = safetensors.torch.load_file(tmp_path / "new" / WEIGHTS_NAME)
    assert not any(k.startswith("patch_") for k in stored)
    loaded = load_pretrained(tmp_path / "new")
    assert_same_weights(model, loaded)
    assert_same(outputs(model, image), outputs(loaded, image))


def test_llava_7b_shape_counts_on_meta_device():
    config = preset_config("llava-1.5-7b")
    with torch.device("meta"):
        model = build_perception_gpt(config)
    summary = trainable_summary(model)
    total = summary["total"][1]
    backbone = sum(p.numel() for p in model.backbone.parameters())
    # LLaVA-1.5-7B is 7.06 B parameters with its 32064-row vocabulary
    assert 7.0e9 < backbone < 7.1e9
    assert total - backbone == sum(
        summary[g][1] for g in ("box decoder", "box encoder", "mask decoder", "score head")
    )
