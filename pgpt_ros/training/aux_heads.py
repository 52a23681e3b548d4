"""Training-only heads: dense per-image-token targets that teach a tower trained from scratch.

A tiny model trained from random weights otherwise learns what is where only through the answer
tokens, one object per command. These heads give every image token a label every step. They live
with the training code: inference never calls them and saved models never hold them.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchClassifier(nn.Module):
    """Which object class covers each image token (soft: the class shares of its patch)."""

    def __init__(self, *, hidden_size: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, classes)

    def forward(self, image_feats: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, classes) logits."""
        return self.linear(image_feats)


class PatchGeometry(nn.Module):
    """The box (cx, cy, w, h) of the object under each image token.

    "The largest circle" or "the square left of the blue triangle" compare whole objects; with
    this head every token of an object carries that object's centre and size in a linear form
    the LLM's attention can rank, instead of only its own patch's content.
    """

    def __init__(self, *, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 4)

    def forward(self, image_feats: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, 4) normalised (cx, cy, w, h)."""
        return torch.sigmoid(self.linear(image_feats))
