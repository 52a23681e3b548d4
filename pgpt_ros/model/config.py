"""PerceptionGPTConfig: the architecture, and nothing else, JSON round-trippable.

The backbone is stored as a transformers ``LlavaConfig`` dict, so the same class describes the
embedded tiny model and a user's LLaVA checkpoint; the variant (box decoder, mask decoder,
perception or text-coordinate head, how frames become the square input) is stored here, never
guessed from a directory name. Loss weights, training-only heads and file paths belong to the
training configuration (``pgpt_ros.training``), so a saved model is what inference needs.
Named shapes live in ``pgpt_ros.model.registry``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import LlavaConfig

from pgpt_ros.model.family import image_token_count
from pgpt_ros.model.preprocess import CLIP_MEAN, CLIP_STD
from pgpt_ros.model.tokens import DEFAULT_PROMPT_TEMPLATE

# Written into config.json so other tools can tell what the directory holds.
MODEL_TYPE = "perception_gpt"
FORMAT_VERSION = 2

_CHOICES = {
    "head": ("perception", "text_coords"),
    "box_decoder": ("query", "mlp"),
    "mask_decoder": ("lite", "sam"),
    "vision_stem": ("patch", "conv"),
    "resize_mode": ("stretch", "pad"),
}


@dataclass
class PerceptionGPTConfig:
    """The whole model's architecture.

    Arguments:
        backbone (dict): a ``LlavaConfig.to_dict()``; its vision tower's ``image_size`` must equal
            ``image_size``.
        image_size (int): side of the square model input.
        resize_mode (str): how a frame becomes that square: "stretch" (both sides scaled to it;
            shapes are distorted for non-square frames) or "pad" (the long side scaled to it and
            the short side padded, LLaVA's "pad" mode; the aspect ratio is kept). The pixel
            mapping of both is ``pgpt_ros.model.preprocess.FrameTransform``.
        pixel_mean, pixel_std (tuple[float, float, float]): the vision tower's RGB normalisation
            (CLIP's by default; SigLIP towers use 0.5 and 0.5).
        head (str): "perception" (``<vis>`` heads) or "text_coords" (the Shikra-style baseline:
            the same backbone answers with ``[x1,y1,x2,y2]`` text and has no heads).
        box_decoder (str): "query" (the ``<vis>`` state attends to the patches; trains fast) or
            "mlp" (the paper's MLP on the state).
        box_window (int): the query box decoder takes the box from the patches within this many
            patches of its heat map's peak (0: from the whole heat map; see
            ``pgpt_ros.model.heads.QueryBoxDecoder``). It can be set on a model trained with
            another window: a decoding choice, though a model serves best with the one it was
            trained with.
        mask_decoder (str): "lite" (this project's small SAM-style decoder) or "sam" (transformers'
            ``SamMaskDecoder`` with ``sam`` holding a ``SamConfig`` dict).
        mask_size (int): side of the mask logits, which cover the whole model input.
        head_width (int): width inside the heads (the LLM width is projected down to it).
        vision_stem (str): "patch" (CLIP's patch projection) or "conv" (stride-2 convolutions,
            for a tiny tower trained from scratch; see ``pgpt_ros.model.vision_stem``).
        image_position (bool): add a learned map of each patch's 2-D place to the image tokens
            (``pgpt_ros.model.image_position``); for towers trained from scratch.
        prompt_template (str): the conversation around the command; holds ``<image>`` once.
        answer_phrases (list[str]): the phrases an answer may name (the training data's answer
            vocabulary, e.g. "red circle"); greedy decoding is held to them
            (``pgpt_ros.model.grammar``). Empty: any words, only the answer's structure is held.
        vis_token_id, image_token_id, eos_token_id, pad_token_id (int): filled by the builder
            from the tokenizer (-1 until then).
    """

    backbone: dict[str, Any] = field(default_factory=dict)
    image_size: int = 64
    resize_mode: Literal["stretch", "pad"] = "stretch"
    pixel_mean: tuple[float, float, float] = CLIP_MEAN
    pixel_std: tuple[float, float, float] = CLIP_STD
    head: Literal["perception", "text_coords"] = "perception"
    box_decoder: Literal["query", "mlp"] = "query"
    box_window: int = 0
    mask_decoder: Literal["lite", "sam"] = "lite"
    mask_size: int = 32
    head_width: int = 64
    vision_stem: Literal["patch", "conv"] = "patch"
    image_position: bool = False
    sam: dict[str, Any] | None = None
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    answer_phrases: list[str] = field(default_factory=list)
    vis_token_id: int = -1
    image_token_id: int = -1
    eos_token_id: int = -1
    pad_token_id: int = -1

    def __post_init__(self) -> None:
        # JSON-normalised (integer keys of id2label become strings) so a config equals its reload.
        self.backbone = json.loads(json.dumps(self.backbone))
        self.sam = json.loads(json.dumps(self.sam))
        self.answer_phrases = [str(p) for p in self.answer_phrases]
        if any(not p.strip() for p in self.answer_phrases):
            raise ValueError("answer_phrases must not hold an empty phrase")
        self.pixel_mean = tuple(float(v) for v in self.pixel_mean)
        self.pixel_std = tuple(float(v) for v in self.pixel_std)
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.box_window < 0 or (self.box_window and self.box_decoder != "query"):
            raise ValueError(f'box_window must be >= 0, and 0 unless box_decoder is "query"; '
                             f"got {self.box_window} with {self.box_decoder!r}")  # fmt: skip
        if self.mask_decoder == "sam" and self.sam is None:
            raise ValueError('mask_decoder "sam" needs config.sam (a SamConfig dict)')
        if self.backbone:
            vision_size = self.backbone["vision_config"]["image_size"]
            if vision_size != self.image_size:
                raise ValueError(
                    f"image_size {self.image_size} differs from the vision tower's {vision_size}"
                )
            tokens = image_token_count(self.backbone)
            if tokens != self.grid**2:
                raise ValueError(
                    f"the vision tower yields {tokens} image tokens, not a {self.grid} x "
                    f"{self.grid} patch grid the heads can place: a tower with a class token "
                    'needs vision_feature_select_strategy "default", one without "full"'
                )

    def llava_config(self) -> LlavaConfig:
        """The backbone as a transformers config object."""
        return LlavaConfig(**self.backbone)

    @property
    def grid(self) -> int:
        """Side g of the patch grid: the image tokens are g x g, row-major."""
        return self.image_size // self.backbone["vision_config"]["patch_size"]

    @property
    def num_image_tokens(self) -> int:
        """Number of projector outputs per image: the patch grid (checked at construction)."""
        return self.grid**2

    @property
    def hidden_size(self) -> int:
        return self.backbone["text_config"]["hidden_size"]

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content: the fields, plus the model type and format version."""
        return {"model_type": MODEL_TYPE, "format_version": FORMAT_VERSION,
                **dataclasses.asdict(self)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerceptionGPTConfig:
        """Builds from a dict; unknown keys are an error, so a typo never passes silently."""
        data = dict(data)
        model_type = data.pop("model_type", MODEL_TYPE)
        version = data.pop("format_version", FORMAT_VERSION)
        if model_type != MODEL_TYPE or version != FORMAT_VERSION:
            raise ValueError(
                f"config is {model_type!r} format {version}, this code reads {MODEL_TYPE!r} "
                f"format {FORMAT_VERSION}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PerceptionGPTConfig keys: {unknown}")
        return cls(**data)
