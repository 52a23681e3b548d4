"""PerceptionGPTConfig: every number that shapes the model, JSON round-trippable.

The backbone is stored as a transformers ``LlavaConfig`` dict, so the same class describes the
embedded tiny model and a user's LLaVA-1.5 checkpoint; the variant (box decoder, mask decoder,
perception or text-coordinate head) is stored here, never guessed from a directory name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

from pgpt_ros.model.tokens import DEFAULT_PROMPT_TEMPLATE

# CLIP's normalisation, which every LLaVA vision tower was trained with.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class LossWeights:
    """Weights of the loss terms; a zero weight skips nothing, it only scales (keeps logging uniform)."""

    lm: float = 1.0
    l1: float = 5.0
    giou: float = 2.0
    bce: float = 2.0
    dice: float = 1.0
    iou: float = 1.0
    patch: float = 1.0
    geometry: float = 5.0
    heat: float = 0.0  # the query box head's heat map against the target's patches


@dataclass
class PerceptionGPTConfig:
    """The whole model's description.

    Arguments:
        backbone (dict): a ``LlavaConfig.to_dict()``; its vision tower's ``image_size`` must equal
            ``image_size``.
        image_size (int): side of the square model input; images are stretched to it.
        head (str): "perception" (``<vis>`` heads) or "text_coords" (the Shikra-style baseline:
            the same backbone answers with ``[x1,y1,x2,y2]`` text and has no heads).
        box_decoder (str): "query" (the ``<vis>`` state attends to the patches; trains fast) or
            "mlp" (the paper's MLP on the state).
        mask_decoder (str): "lite" (this project's small SAM-style decoder) or "sam" (transformers'
            ``SamMaskDecoder`` with ``sam`` holding a ``SamConfig`` dict).
        mask_size (int): side of the mask logits, which cover the full image.
        head_width (int): width inside the heads (the LLM width is projected down to it).
        vision_stem (str): "patch" (CLIP's patch projection) or "conv" (stride-2 convolutions,
            for a tiny tower trained from scratch; see ``pgpt_ros.model.vision_stem``).
        patch_classes (int): classes of the training-only patch head (0: none). It predicts
            which kind of object covers each image token, a dense signal that teaches a vision
            tower trained from scratch what the LLM must later find (see ``PatchClassifier``).
        patch_geometry (bool): the training-only head that predicts, at each image token, the
            box of the object under it (see ``PatchGeometry``); needs ``Sample.instance_map``.
        image_position (bool): add a learned map of each patch's 2-D place to the image tokens
            (``pgpt_ros.model.image_position``); for towers trained from scratch.
        vis_token_id, image_token_id, eos_token_id, pad_token_id (int): filled by the builder
            from the tokenizer (-1 until then).
        lora (dict | None): ``{"r", "alpha", "dropout"}`` once ``add_lora`` ran, so a saved
            directory rebuilds the same adapter before its weights load.
        base_llava (str | None): the local LLaVA directory ``from_llava`` wrapped; an
            adapter-only save loads its frozen weights from there.
    """

    backbone: dict[str, Any] = field(default_factory=dict)
    image_size: int = 64
    head: Literal["perception", "text_coords"] = "perception"
    box_decoder: Literal["query", "mlp"] = "query"
    mask_decoder: Literal["lite", "sam"] = "lite"
    mask_size: int = 32
    head_width: int = 64
    vision_stem: Literal["patch", "conv"] = "patch"
    patch_classes: int = 0
    patch_geometry: bool = False
    image_position: bool = False
    sam: dict[str, Any] | None = None
    loss_weights: LossWeights = field(default_factory=LossWeights)
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    vis_token_id: int = -1
    image_token_id: int = -1
    eos_token_id: int = -1
    pad_token_id: int = -1
    tokenizer_vocab_size: int = 768
    lora: dict[str, Any] | None = None
    base_llava: str | None = None

    def __post_init__(self) -> None:
        # JSON-normalised (integer keys of id2label become strings) so a config equals its reload.
        self.backbone = json.loads(json.dumps(self.backbone))
        self.sam = json.loads(json.dumps(self.sam))
        if isinstance(self.loss_weights, dict):
            self.loss_weights = LossWeights(**self.loss_weights)
        choices = {
            "head": ("perception", "text_coords"),
            "box_decoder": ("query", "mlp"),
            "mask_decoder": ("lite", "sam"),
            "vision_stem": ("patch", "conv"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.mask_decoder == "sam" and self.sam is None:
            raise ValueError('mask_decoder "sam" needs config.sam (a SamConfig dict)')
        if self.backbone:
            vision_size = self.backbone["vision_config"]["image_size"]
            if vision_size != self.image_size:
                raise ValueError(
                    f"image_size {self.image_size} differs from the vision tower's {vision_size}"
                )

    def llava_config(self) -> LlavaConfig:
        """The backbone as a transformers config object."""
        return LlavaConfig(**self.backbone)

    @property
    def num_image_tokens(self) -> int:
        """Number of projector outputs per image (CLS dropped, as LLaVA's default strategy does)."""
        vision = self.backbone["vision_config"]
        return (vision["image_size"] // vision["patch_size"]) ** 2

    @property
    def hidden_size(self) -> int:
        return self.backbone["text_config"]["hidden_size"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerceptionGPTConfig:
        """Builds from a dict; unknown keys are an error, so a typo never passes silently."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PerceptionGPTConfig keys: {unknown}")
        return cls(**data)

    @classmethod
    def tiny(
        cls,
        *,
        image_size: int = 64,
        patch_size: int = 8,
        vision_width: int = 64,
        vision_layers: int = 2,
        text_width: int = 128,
        text_layers: int = 2,
        **overrides: Any,
    ) -> PerceptionGPTConfig:
        """The embedded default's shape: 64 px, ViT 64x2, Llama 128x2 (about 0.5 M backbone).

        ``text_config.vocab_size`` is a placeholder until the builder knows the tokenizer.
        """
        vision = CLIPVisionConfig(
            hidden_size=vision_width,
            intermediate_size=2 * vision_width,
            num_hidden_layers=vision_layers,
            num_attention_heads=max(1, vision_width // 32),
            image_size=image_size,
            patch_size=patch_size,
            projection_dim=vision_width,
        )
        text = LlamaConfig(
            vocab_size=overrides.pop("vocab_size", 768),
            hidden_size=text_width,
            intermediate_size=2 * text_width,
            num_hidden_layers=text_layers,
            num_attention_heads=max(1, text_width // 32),
            num_key_value_heads=max(1, text_width // 32),
            max_position_embeddings=1024,
            tie_word_embeddings=False,
        )
        llava = LlavaConfig(
            vision_config=vision,
            text_config=text,
            vision_feature_layer=-1,
            image_seq_length=(image_size // patch_size) ** 2,
        )
        return cls(backbone=llava.to_dict(), image_size=image_size, **overrides)

    @classmethod
    def llava_7b_shape(cls, **overrides: Any) -> PerceptionGPTConfig:
        """LLaVA-1.5-7B's shapes (CLIP ViT-L/14-336, 32 x 4096 Llama, vocab 32064), for counting
        parameters on the meta device and for wrapping llava-1.5-7b-hf. ``<vis>`` takes the first
        unused id (32002): the checkpoint's embedding table already has rows up to 32063.
        """
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
            num_hidden_layers=32,
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
        defaults: dict[str, Any] = dict(
            image_size=336,
            mask_size=64,
            head_width=256,
            vis_token_id=32002,
            image_token_id=32000,
            eos_token_id=2,
            pad_token_id=32001,
        )
        defaults.update(overrides)
        return cls(backbone=llava.to_dict(), **defaults)
