"""Configs of tiny transformers models that several test files build (seconds on a CPU), and a
logits processor that makes one of them say a chosen answer."""

from transformers import SamConfig, SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig


def tiny_sam_config() -> dict:
    """A SAM small enough to build and export in seconds (one ViT layer, 32 wide, 64 px)."""
    vision = SamVisionConfig(
        hidden_size=32,
        output_channels=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=64,
        patch_size=16,
        mlp_dim=64,
        global_attn_indexes=[0],
        window_size=2,
        num_pos_feats=16,
    )
    prompt = SamPromptEncoderConfig(
        hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        mlp_dim=64,
        iou_head_hidden_dim=32,
    )
    return SamConfig(
        vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder
    ).to_dict()


def force_reply(model, command: str, reply: list[int]):
    """A logits processor whose favourite at each step after ``command``'s prompt is the next id
    of ``reply``, then EOS forever; every other logit stays the model's own."""
    prompt_len = len(model.prompt_ids(command))
    eos = model.config.eos_token_id

    def force(ids, logits):
        step = ids.shape[1] - prompt_len
        out = logits.clone()
        out[0, reply[step] if step < len(reply) else eos] = logits.max() + 20.0
        return out

    return force
