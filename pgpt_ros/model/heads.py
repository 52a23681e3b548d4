"""The small heads on the ``<vis>`` hidden state: box decoders, box encoder, predicted-IoU head.

Every head is a plain ``nn.Module`` with a tensor-only ``forward`` and no data-dependent Python
control flow, so the export code can trace each one to ONNX and a runtime can call it from its own
decoding loop. LayerNorms run over the last dimension (channels-last), which TensorRT fuses.

Shapes: ``vis_state`` (B, d) is the LLM's last-layer state that predicts ``<vis>``;
``image_feats`` (B, N, d) are the projector outputs of the image (N = g x g patches, row-major);
boxes are normalised xyxy in [0, 1].
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


class QueryBoxDecoder(nn.Module):
    """The ``<vis>`` state as one attention query over the patch features.

    Softmax over patches gives a heat map whose expected patch centre is the box centre (plus a
    learned offset of at most one patch); width and height come from an MLP over the query, the
    attention-pooled feature and the heat map's spread. Locating by attention trains in minutes
    where regressing four numbers from the state alone did not (model-notes.md).

    Arguments:
        hidden_size (int): the LLM width d.
        width (int): the attention width.
        grid (int): side g of the patch grid (N = g*g).
    """

    def __init__(self, *, hidden_size: int, width: int, grid: int) -> None:
        super().__init__()
        self.query = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width))
        self.key_norm = nn.LayerNorm(hidden_size)
        self.key = nn.Linear(hidden_size, width)
        self.value = nn.Linear(hidden_size, width)
        self.box = MLP([2 * width + 2, width, 4])  # centre offset (2) and size (2)
        self.cell = 1.0 / grid
        centres = patch_centres(grid)
        self.register_buffer("centres", centres, persistent=False)
        self.register_buffer("key_pos", sine_position_encoding(centres, width), persistent=False)
        self.scale = width**-0.5

    def scores(self, vis_state: torch.Tensor, image_feats: torch.Tensor) -> torch.Tensor:
        """(B, N) attention logits of the query over the patches (training's heat map loss)."""
        q = self.query(vis_state)  # (B, w)
        k = self.key(self.key_norm(image_feats)) + self.key_pos  # (B, N, w)
        return torch.einsum("bw,bnw->bn", q, k) * self.scale

    def heat_map(self, vis_state: torch.Tensor, image_feats: torch.Tensor) -> torch.Tensor:
        """(B, N) attention of the query over the patches (sums to 1)."""
        return torch.softmax(self.scores(vis_state, image_feats), dim=-1)

    def forward(self, vis_state: torch.Tensor, image_feats: torch.Tensor) -> torch.Tensor:
        """Returns (B, 4) normalised xyxy boxes."""
        attn = self.heat_map(vis_state, image_feats)  # (B, N)
        centre = attn @ self.centres  # (B, 2)
        # The heat map's spread (std of x and y) is a direct cue for the object's extent.
        spread = (attn @ self.centres.square() - centre.square()).clamp(min=1e-6).sqrt()
        pooled = torch.einsum("bn,bnw->bw", attn, self.value(self.key_norm(image_feats)))
        out = self.box(torch.cat([self.query(vis_state), pooled, spread], dim=-1))
        # The soft-argmax centre is pulled towards the image centre while attention is spread;
        # a learned offset of up to one patch corrects it.
        centre = centre + torch.tanh(out[:, :2]) * self.cell
        return cxcywh_to_xyxy(centre, torch.sigmoid(out[:, 2:]))


class MLPBoxDecoder(nn.Module):
    """The paper's box head: an MLP on the ``<vis>`` state, sigmoid -> (cx, cy, w, h).

    ``image_feats`` is accepted (and unused) so both decoders share one interface.
    """

    def __init__(self, *, hidden_size: int, width: int, grid: int) -> None:
        super().__init__()
        del grid  # the MLP has no spatial structure
        self.mlp = nn.Sequential(nn.LayerNorm(hidden_size), MLP([hidden_size, width, width, 4]))

    def forward(self, vis_state: torch.Tensor, image_feats: torch.Tensor) -> torch.Tensor:
        """Returns (B, 4) normalised xyxy boxes."""
        del image_feats
        cxcywh = torch.sigmoid(self.mlp(vis_state))
        return cxcywh_to_xyxy(cxcywh[:, :2], cxcywh[:, 2:])


BOX_DECODERS = {"query": QueryBoxDecoder, "mlp": MLPBoxDecoder}


class BoxEncoder(nn.Module):
    """MLP(4 -> d): a box as an input embedding for the LLM.

    Fed as the input of every ``<vis>`` token that carries a box (prompt boxes, and each box the
    model itself emits), so the tokens after it know what was already found. The box goes through
    fixed sine features first: four raw numbers are a poor input for an MLP to resolve position.
    """

    def __init__(self, *, hidden_size: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.mlp = MLP([2 * width, width, hidden_size])

    def forward(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) xyxy -> (B, d)."""
        corners = boxes.reshape(-1, 2, 2)  # (B, corner, xy)
        feats = sine_position_encoding(corners, self.width).flatten(1)  # (B, 2*width)
        return self.mlp(feats)


class ScoreHead(nn.Module):
    """Predicts the IoU of the decoded box with the truth, from the state and the box itself.

    The detection score is P(``<vis>``) at its step times this; trained against the (detached) IoU
    of each predicted box, so a confidently wrong box scores low.
    """

    def __init__(self, *, hidden_size: int, width: int) -> None:
        super().__init__()
        self.state = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width))
        self.mlp = MLP([width + 4, width, 1])

    def forward(self, vis_state: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """(B, d), (B, 4) -> (B,) predicted IoU in [0, 1]."""
        x = torch.cat([self.state(vis_state), boxes], dim=-1)
        return torch.sigmoid(self.mlp(x)).squeeze(-1)


class PatchClassifier(nn.Module):
    """Training only: which object class covers each image token, from the projector outputs.

    A tiny model trained from random weights otherwise learns what is where only through the
    answer tokens, one object per command; this head gives every image token a label every step
    (soft: the class fractions of its patch). Inference never calls it.
    """

    def __init__(self, *, hidden_size: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, classes)

    def forward(self, image_feats: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, classes) logits."""
        return self.linear(image_feats)


class PatchGeometry(nn.Module):
    """Training only: the box (cx, cy, w, h) of the object under each image token.

    "The largest circle" or "the square left of the blue triangle" compare whole objects; with
    this head every token of an object carries that object's centre and size in a linear form
    the LLM's attention can rank, instead of only its own patch's content. Inference never calls
    it.
    """

    def __init__(self, *, hidden_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden_size, 4)

    def forward(self, image_feats: torch.Tensor) -> torch.Tensor:
        """(B, N, d) -> (B, N, 4) normalised (cx, cy, w, h)."""
        return torch.sigmoid(self.linear(image_feats))
