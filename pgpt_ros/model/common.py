"""Small pieces the heads, the mask decoder and the image position map share.

Shapes: points and boxes are normalised to [0, 1] over the model input (x right, y down); a g x g
patch grid is row-major, like the vision tower's tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def patch_centres(grid: int) -> torch.Tensor:
    """(g*g, 2) normalised (x, y) centres of a g x g patch grid, row-major like the ViT's tokens."""
    coords = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=-1)


def sine_position_encoding(points: torch.Tensor, width: int) -> torch.Tensor:
    """Fixed sin/cos features of normalised (x, y) points: (..., 2) -> (..., width).

    The heads add them to the patch features so attention can tell patches apart by place even
    when the vision tower is small or frozen.
    """
    if width % 4:
        raise ValueError(f"position encoding width must be a multiple of 4, got {width}")
    # Frequencies from 1 to 64 periods per image: coarse enough to be smooth, fine enough for
    # one cell of a 64 x 64 mask.
    freqs = torch.logspace(0, 6, width // 4, base=2.0, device=points.device) * math.pi
    angles = points.float()[..., None] * freqs  # (..., 2, F), float32 even for half inputs
    feats = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., 2, 2F)
    return feats.flatten(-2).to(points.dtype)


def cxcywh_to_xyxy(centre: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """(B, 2) centre and (B, 2) size in [0, 1] -> (B, 4) xyxy clipped to the image."""
    half = size / 2
    return torch.cat([centre - half, centre + half], dim=-1).clamp(0.0, 1.0)


class MLP(nn.Module):
    """Linear layers with GELU between them."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(dims) - 2:
                layers.append(nn.GELU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
