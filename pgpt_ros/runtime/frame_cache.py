"""The image work of one frame, and when the KV cache's image prefix may be reused.

A robot asks several things about one camera frame ("find the mug", then "and the laptop?"). The
vision tower, the projector and the prefill of the image prefix (everything in the prompt up to
and including the image tokens) depend only on the frame, so a second command on the same frame
skips them and prefills only its own text. ``Perceiver.set_image`` makes a ``CachedFrame``;
``prefix_ids`` records which prompt prefix the decoder's cache holds for it (None: nothing yet).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch

from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.model.preprocess import FrameTransform


@dataclass
class CachedFrame:
    """One frame, encoded.

    Attributes:
        key (tuple | None): (image_id, image shape) when the caller named the frame, else None.
        transform (FrameTransform): how outputs map back to the frame's pixels.
        pixel_values (torch.Tensor): (1, 3, S, S) the model input (the mask decoder reads it).
        image_feats (torch.Tensor): (1, N, d) projector outputs (image tokens and head keys).
        prefix_ids (tuple[int, ...] | None): prompt ids up to and including the last image token
            that the decoder's cache holds for this frame; None when it holds none.
    """

    key: tuple | None
    transform: FrameTransform
    pixel_values: torch.Tensor
    image_feats: torch.Tensor
    prefix_ids: tuple[int, ...] | None = None


def frame_key(image_id: Hashable | None, shape: tuple[int, ...]) -> tuple | None:
    """The frame identity, or None when the caller gave no id (never matched by another call)."""
    return None if image_id is None else (image_id, tuple(shape))


def prefix_length(model: PerceptionGPT, ids: list[int]) -> int:
    """Where the reusable prefix of prompt ``ids`` ends: after the last image token.

    The prefix is reusable across commands only if the template puts the image before the
    command (LLaVA's "USER: <image>\\n{command} ASSISTANT:" does); otherwise it holds command
    text, differs per command, and every command simply prefills again. At least one token stays
    after the prefix: its state predicts the first answer token.
    """
    image_positions = [i for i, t in enumerate(ids) if t == model.config.image_token_id]
    if not image_positions:
        raise ValueError("the prompt holds no image tokens; check the prompt template")
    return min(image_positions[-1] + 1, len(ids) - 1)
