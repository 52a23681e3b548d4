"""Which frame's image prefix the decoder's KV cache holds, and when it may be reused.

A robot asks several things about one camera frame ("find the mug", then "and the laptop?"). The
vision tower, the projector and the prefill of the image prefix (everything in the prompt up to and
including the image tokens) depend only on the frame, so a second command on the same frame skips
them and prefills only its own text. This module holds the one rule for that: reuse only when the
caller names the same frame (``image_id``, with the same image shape) and the prompt prefix is
token for token the one in the cache. Anything else (no id, a new id) is a new frame.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import torch

from pgpt_ros.model import PerceptionGPT


@dataclass
class CachedFrame:
    """The image work of one frame.

    Attributes:
        key (tuple): (image_id, image shape).
        pixel_values (torch.Tensor): (1, 3, S, S) the model input (the mask decoder reads it).
        image_feats (torch.Tensor): (1, N, d) projector outputs (image tokens and head keys).
        prefix_ids (tuple[int, ...]): prompt ids up to and including the last image token; the
            decoder's cache holds exactly these positions.
    """

    key: tuple
    pixel_values: torch.Tensor
    image_feats: torch.Tensor
    prefix_ids: tuple[int, ...]


def prefix_length(model: PerceptionGPT, ids: list[int]) -> int:
    """Where the reusable prefix of prompt ``ids`` ends: after the last image token.

    The prefix is reusable across commands only if the template puts the image before the
    command (LLaVA's "USER: <image>\\n{command} ASSISTANT:" does); otherwise it holds command
    text, differs per command, and every command simply counts as a new frame. At least one
    token stays after the prefix: its state predicts the first answer token.
    """
    image_positions = [i for i, t in enumerate(ids) if t == model.config.image_token_id]
    if not image_positions:
        raise ValueError("the prompt holds no image tokens; check the prompt template")
    return min(image_positions[-1] + 1, len(ids) - 1)


class FrameCache:
    """Holds at most one frame: the decoder's KV cache has room for one image prefix."""

    def __init__(self) -> None:
        self.frame: CachedFrame | None = None

    @staticmethod
    def key(image_id: Hashable | None, shape: tuple[int, ...]) -> tuple | None:
        """The frame identity, or None when the caller gave no id (never reused)."""
        return None if image_id is None else (image_id, tuple(shape))

    def get(self, key: tuple | None, prefix_ids: tuple[int, ...]) -> CachedFrame | None:
        """The cached frame if ``key`` and ``prefix_ids`` match it, else None."""
        frame = self.frame
        if key is None or frame is None or frame.key != key or frame.prefix_ids != prefix_ids:
            return None
        return frame

    def put(self, frame: CachedFrame) -> None:
        """Keeps ``frame``, unless it has no id: nobody can ask for it again."""
        self.frame = frame if frame.key is not None else None

    def clear(self) -> None:
        self.frame = None
