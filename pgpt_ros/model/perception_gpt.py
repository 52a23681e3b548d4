"""PerceptionGPT (Pi et al., CVPR 2024, arXiv 2311.06612): a LLaVA backbone plus ``<vis>`` heads.

Data path::

    image -> FrameTransform (stretch or pad, CLIP norm) -> vision tower -> projector
          -> image_feats (B, N, d)
    prompt ids with N image placeholders -> embeddings, placeholders replaced by image_feats
    -> causal LM -> the last-layer state that predicts each <vis> -> heads:
         box_decoder(state, image_feats) -> box;  mask_decoder(state, image_feats, box, pixels)
         -> mask logits;  score_head(state, box) -> predicted IoU (score = P(<vis>) x IoU)
    the emitted <vis> is fed back with input embedding  embed(<vis>) + box_encoder(box)

This class only composes parts that are already built (``pgpt_ros.model.builder`` builds them from
a config) and offers the building blocks every caller shares: encoding the image, embedding a
prompt, running the LM, decoding ``<vis>`` states. Decoding loops live in
``pgpt_ros.model.generation`` (the reference) and ``pgpt_ros.runtime`` (the served path); losses in
``pgpt_ros.training``; directory I/O in ``pgpt_ros.model.checkpoint``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import Cache, LlavaForConditionalGeneration, PreTrainedTokenizerBase

from pgpt_ros.model import tokens
from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.preprocess import FrameTransform, preprocess_images


class PerceptionGPT(nn.Module):
    """A LLaVA backbone plus the ``<vis>`` heads; see the module docstring for the data path.

    Arguments:
        config (PerceptionGPTConfig): the architecture; token ids must be filled in.
        backbone (LlavaForConditionalGeneration): the vision tower, projector and LM.
        box_decoder, box_encoder, mask_decoder, score_head (nn.Module | None): the heads; all
            None for the text-coordinate baseline, all set for the perception head.
        image_position (nn.Module | None): adds each patch's place to the image tokens.
        tokenizer: a transformers tokenizer holding ``<image>`` and ``<vis>``; only prompts and
            answers need it (None is fine for counting parameters).

    Attributes:
        base_path (str | None): the directory the backbone's weights came from (a LLaVA
            checkpoint, or a saved PerceptionGPT); a LoRA adapter is saved against it.
    """

    def __init__(
        self,
        config: PerceptionGPTConfig,
        backbone: LlavaForConditionalGeneration,
        *,
        box_decoder: nn.Module | None = None,
        box_encoder: nn.Module | None = None,
        mask_decoder: nn.Module | None = None,
        score_head: nn.Module | None = None,
        image_position: nn.Module | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        super().__init__()
        present = {h is not None for h in (box_decoder, box_encoder, mask_decoder, score_head)}
        if present != {config.head == "perception"}:
            raise ValueError(f'head "{config.head}" needs all four heads or none of them')
        self.config = config
        self.tokenizer = tokenizer
        self.backbone = backbone
        self.box_decoder = box_decoder
        self.box_encoder = box_encoder
        self.mask_decoder = mask_decoder
        self.score_head = score_head
        self.image_position = image_position
        self.base_path: str | None = None

    # ----------------------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return self.backbone.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backbone.lm_head.weight.dtype

    @property
    def language_model(self) -> nn.Module:
        """The decoder stack (embeddings, layers, final norm), without the LM head."""
        return self.backbone.model.language_model

    def require_tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise RuntimeError("this model has no tokenizer; load it with load_pretrained(dir)")
        return self.tokenizer

    # ----------------------------------------------------------------------------- the image
    def preprocess(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list[FrameTransform]]:
        """HxWx3 uint8 RGB frames -> pixel_values on the model's device and dtype, and each
        frame's ``FrameTransform`` (how to map outputs back to its pixels)."""
        cfg = self.config
        pixels, transforms = preprocess_images(
            images, cfg.image_size, cfg.resize_mode, cfg.pixel_mean, cfg.pixel_std
        )
        return pixels.to(self.device, self.dtype), transforms

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, N, d) projector outputs: the image tokens and the heads' keys."""
        out = self.backbone.model.get_image_features(pixel_values=pixel_values, return_dict=True)
        feats = torch.stack(list(out.pooler_output))
        return feats if self.image_position is None else self.image_position(feats)

    # ----------------------------------------------------------------------------- the prompt
    def prompt_ids(self, command: str) -> list[int]:
        """Token ids of the prompt for ``command``, image placeholders expanded."""
        return tokens.encode_prompt(
            self.require_tokenizer(),
            self.config.prompt_template,
            command,
            self.config.image_token_id,
            self.config.num_image_tokens,
        )

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.backbone.get_input_embeddings()(input_ids)

    def vis_input_embedding(self, boxes: torch.Tensor) -> torch.Tensor:
        """(K, 4) boxes -> (K, d) input embeddings of ``<vis>`` tokens that carry those boxes."""
        vis = torch.full((boxes.shape[0],), self.config.vis_token_id, device=boxes.device)
        return self.embed_tokens(vis) + self.box_encoder(boxes.to(self.dtype))

    def embed_inputs(
        self,
        input_ids: torch.Tensor,
        image_feats: torch.Tensor,
        vis_boxes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Input embeddings: image placeholders replaced by ``image_feats`` (B, N, d) in order, and
        each ``<vis>`` (row-major over the batch) given its box from ``vis_boxes`` (K, 4)."""
        embeds = self.embed_tokens(input_ids)
        image_mask = (input_ids == self.config.image_token_id)[..., None]
        embeds = embeds.masked_scatter(image_mask, image_feats.to(embeds.dtype))
        if self.config.head == "perception":
            vis_mask = input_ids == self.config.vis_token_id
            count = int(vis_mask.sum())
            if count:
                if vis_boxes is None or len(vis_boxes) != count:
                    got = None if vis_boxes is None else len(vis_boxes)
                    raise ValueError(
                        f"{count} <vis> tokens in the input need {count} boxes, got {got}"
                    )
                embeds = embeds.clone()
                embeds[vis_mask] = self.vis_input_embedding(vis_boxes)
        return embeds

    def prompt_embeddings(
        self,
        pixel_values: torch.Tensor,
        command: str,
        prompt_boxes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """A decoding loop's prefix: inputs_embeds (1, T, d), image_feats (1, N, d), prompt ids.

        ``prompt_boxes`` (K, 4) are the boxes of the ``<vis>`` tokens written in ``command``.
        """
        ids = self.prompt_ids(command)
        image_feats = self.encode_image(pixel_values)
        input_ids = torch.tensor([ids], device=self.device)
        return self.embed_inputs(input_ids, image_feats, prompt_boxes), image_feats, ids

    # ------------------------------------------------------------------------- LM and heads
    def hidden_states(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        vis_boxes: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced pass: last-layer states (B, T, d) after the final norm, and image_feats.

        ``attention_mask`` is (B, T) padding or, with ``position_ids``, a packed batch's
        (B, 1, T, T) additive mask (see ``Collator.pack``).
        """
        image_feats = self.encode_image(pixel_values)
        embeds = self.embed_inputs(input_ids, image_feats, vis_boxes)
        out = self.language_model(inputs_embeds=embeds, attention_mask=attention_mask,
                                  position_ids=position_ids, use_cache=False)  # fmt: skip
        return out.last_hidden_state, image_feats

    def run_language_model(
        self,
        embeds: torch.Tensor,
        cache: Cache,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, d) input embeddings through the decoder stack with a KV cache -> last-layer
        states (B, T, d); the cache advances by T positions.

        The cache is passed by position: transformers 5.24 renamed the keyword ``past_key_values``
        to ``cache`` (the old name warns), while 5.17, still on many GPU machines, knows only the
        old one and silently ignores the new one; the position is the same in both.
        """
        out = self.language_model(None, attention_mask, position_ids, cache, embeds, use_cache=True)
        return out.last_hidden_state

    def decode_vis(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All heads on (K, d) ``<vis>`` states with their images' (K, N, d) features and pixels.

        Returns boxes (K, 4), mask logits (K, M, M) and predicted IoU (K,).
        """
        boxes = self.box_decoder(vis_state, image_feats)
        masks = self.mask_decoder(vis_state, image_feats, boxes, pixel_values)
        return boxes, masks, self.score_head(vis_state, boxes)
