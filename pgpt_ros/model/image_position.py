"""Where each image token is, added to the image tokens the LLM reads.

A probe of the first default model (ridge regression from the projector outputs, 600 scenes) found
no linear trace of a token's place: R^2 about 0 for its x and y, while the size of the object under
it was 0.75. The tower, trained from scratch, learned *what* is in a patch (the patch classifier
asks for that) and dropped *where*; the LLM only had the 1-D rotary index of each token to tell
"left of" or "leftmost". This module adds a learned projection of fixed 2-D sine features of the
patch centre to every image token, so positions are there from the first step, in a form whose dot
products depend on differences of position (what a relation compares).

LLaVA checkpoints keep their own projector outputs (``image_position: false``, the default).
"""

from __future__ import annotations

import torch
from torch import nn

from pgpt_ros.model.common import patch_centres, sine_position_encoding


class ImagePosition(nn.Module):
    """``image_feats + Linear(sine(patch centre))`` over a g x g row-major patch grid.

    Arguments:
        hidden_size (int): the LLM width d.
        grid (int): side g of the patch grid.
        width (int): number of sine features (a multiple of 4).
    """

    def __init__(self, *, hidden_size: int, grid: int, width: int = 64) -> None:
        super().__init__()
        self.linear = nn.Linear(width, hidden_size)
        features = sine_position_encoding(patch_centres(grid), width)
        self.register_buffer("features", features, persistent=False)

    def forward(self, image_feats: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, d)."""
        return image_feats + self.linear(self.features).to(image_feats.dtype)
