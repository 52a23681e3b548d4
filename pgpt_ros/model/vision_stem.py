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

Two wider variants: ``vision_stem: "wideconv"`` doubles the early channels, and
``"resconv"`` also adds a residual 3 x 3 convolution at every scale. On rotated, shaded shapes over textured backgrounds the plain stem
left the tower naming a patch's shape right 0.47 of the time after 1,500 steps of a vision-only
probe (0.58 at the end of a full run); the wide one reached 0.57 for 11 ms more per 16-image
training step on one CPU thread, the residual one 0.62 for 33 ms more (docs/training.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConvStem(nn.Module):
    """log2(patch) stride-2 4x4 convs with GELU between: (B, 3, S, S) -> (B, width, S/p, S/p).

    An even kernel with padding 1 centres every output on the 2 x 2 cell it replaces, so each
    token's receptive field (22 pixels for patch 8) is centred on its patch, where the heads
    place it. Channels double from ``width / 2**(n-1)`` up to ``width``, so the cost stays small at full
    resolution. It stands in for ``CLIPVisionEmbeddings.patch_embedding``.

    ``wide`` starts at ``width / 2**(n-2)`` channels: more capacity where the outline is still
    visible, at a cost that stays a fraction of the language model's. ``residual`` adds after
    every strided conv a 3 x 3 conv (padding 1, so still centred) whose output is added back.
    """

    def __init__(self, *, width: int, patch_size: int, wide: bool = False,
                 residual: bool = False) -> None:  # fmt: skip
        super().__init__()
        steps = int(math.log2(patch_size))
        if 2**steps != patch_size or steps < 1:
            raise ValueError(f"a conv stem needs a power-of-two patch size, got {patch_size}")
        first = steps - 2 if wide else steps - 1
        channels = [min(width, max(8, width >> max(0, first - i))) for i in range(steps)]
        channels[-1] = width
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip([3, *channels[:-1]], channels, strict=True)):
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            if i < steps - 1:
                layers.append(nn.GELU())
        # One Sequential (its keys are those of every saved model with a plain stem), and the
        # residual convs beside it.
        self.layers = nn.Sequential(*layers)
        self.refine = (
            nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for c in channels) if residual else None
        )

    @property
    def weight(self) -> torch.Tensor:
        """CLIP reads ``patch_embedding.weight.dtype`` to cast the pixels."""
        return self.layers[0].weight

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.refine is None:
            return self.layers(pixel_values)
        x = pixel_values
        downs = self.layers[::2]
        for i, (down, refine) in enumerate(zip(downs, self.refine, strict=True)):
            x = down(x)
            if i < len(downs) - 1:
                x = F.gelu(x)
                x = x + F.gelu(refine(x))
            else:
                x = x + refine(F.gelu(x))
        return x
