"""A convolutional stem for the tiny CLIP tower: stride-2 convolutions instead of one
patch x patch linear projection.

A ViT trained from random weights on a few minutes of CPU sees each 8 x 8 patch through one
linear map, and a solid patch of a square looks like a solid patch of a circle: shape lives in the
outline, across patches, and two small attention layers learn to gather it slowly. Early
convolutions give every token a receptive field larger than its patch, which is what "Early
convolutions help transformers see better" (Xiao et al., NeurIPS 2021) found for ViTs trained
from scratch. The token grid, the widths and everything after the stem stay CLIP's, so the
LLaVA code paths (projector, image features, runtime, export) are unchanged. Checkpoints of real
LLaVA towers keep their patch projection (``vision_stem: "patch"``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConvStem(nn.Module):
    """log2(patch) stride-2 4x4 convs with GELU between: (B, 3, S, S) -> (B, width, S/p, S/p).

    An even kernel with padding 1 centres every output on the 2 x 2 cell it replaces, so each
    token's receptive field (22 pixels for patch 8) is centred on its patch, where the heads
    place it. Channels double from ``width / 2**(n-1)`` up to ``width``, so the cost stays small at full
    resolution. It stands in for ``CLIPVisionEmbeddings.patch_embedding``.
    """

    def __init__(self, *, width: int, patch_size: int) -> None:
        super().__init__()
        steps = int(math.log2(patch_size))
        if 2**steps != patch_size or steps < 1:
            raise ValueError(f"a conv stem needs a power-of-two patch size, got {patch_size}")
        channels = [max(8, width >> (steps - 1 - i)) for i in range(steps)]
        channels[-1] = width
        layers: list[nn.Module] = []
        in_channels = 3
        for i, out_channels in enumerate(channels):
            layers.append(nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1))
            if i < steps - 1:
                layers.append(nn.GELU())
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)

    @property
    def weight(self) -> torch.Tensor:
        """CLIP reads ``patch_embedding.weight.dtype`` to cast the pixels."""
        return self.layers[0].weight

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers(pixel_values)
