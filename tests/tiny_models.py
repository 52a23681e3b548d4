"""Configs of tiny transformers models that several test files build (seconds on a CPU)."""

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
