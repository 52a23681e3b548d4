"""The small heads on the ``<vis>`` hidden state: box decoders, box encoder, predicted-IoU head.

Every head is a plain ``nn.Module`` with a tensor-only ``forward`` and no data-dependent Python
control flow, so the export code can trace each one to ONNX and a runtime can call it from its own
decoding loop. LayerNorms run over the last dimension (channels-last), which TensorRT fuses.

Shapes: ``vis_state`` (B, d) is the LLM's last-layer state that predicts ``<vis>``;
``image_feats`` (B, N, d) are the projector outputs of the image (N = g x g patches, row-major);
boxes are normalised xyxy in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from pgpt_ros.model.common import MLP, cxcywh_to_xyxy, patch_centres, sine_position_encoding


class QueryBoxDecoder(nn.Module):
    """The ``<vis>`` state as one attention query over the patch features.

    Softmax over patches gives a heat map whose expected patch centre is the box centre (plus a
    learned offset of at most one patch); width and height come from an MLP over the query, the
    attention-pooled feature and the heat map's spread. Locating by attention trains in minutes
    on a CPU where regressing four numbers from the state alone did not learn at all.

    With ``window`` > 0 the expectation runs only over the patches within ``window`` patches of
    the heat map's peak, in training as at inference. When the query hesitates between two
    look-alikes the heat map has two modes, and the mean of both lies in the empty space between
    them; the mean around the peak is one of the two objects.

    Arguments:
        hidden_size (int): the LLM width d.
        width (int): the attention width.
        grid (int): side g of the patch grid (N = g*g).
        window (int): the half-side, in patches, of the square around the peak that the box is
            taken from; 0 takes it from the whole heat map.
    """

    def __init__(self, *, hidden_size: int, width: int, grid: int, window: int = 0) -> None:
        super().__init__()
        self.window = window
        self.query = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width))
        self.key_norm = nn.LayerNorm(hidden_size)
        self.key = nn.Linear(hidden_size, width)
        self.value = nn.Linear(hidden_size, width)
        self.box = MLP([2 * width + 2, width, 4])  # centre offset (2) and size (2)
        self.cell = 1.0 / grid
        centres = patch_centres(grid)
        self.register_buffer("centres", centres, persistent=False)
        self.register_buffer("key_pos", sine_position_encoding(centres, width), persistent=False)
        if window:  # (N, N): patch j lies within ``window`` patches of patch i (Chebyshev)
            cells = torch.stack(
                torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
            )
            cells = cells.flatten(1).T  # (N, 2) row, column
            near = (cells[:, None] - cells[None]).abs().amax(dim=-1) <= window
            self.register_buffer("near_peak", near.float(), persistent=False)
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
        if self.window:
            attn = attn * self.near_peak[attn.argmax(dim=-1)]
            attn = attn / attn.sum(dim=-1, keepdim=True)
        centre = attn @ self.centres  # (B, 2)
        # The heat map's spread (std of x and y) is a direct cue for the object's extent. Computed
        # around the mean, not as E[x^2] - E[x]^2: in float16 that difference of two nearly equal
        # numbers cancels to noise for a peaked heat map (a small object).
        offsets = self.centres[None] - centre[:, None]  # (B, N, 2)
        variance = torch.einsum("bn,bnc->bc", attn, offsets.square())
        spread = variance.clamp(min=1e-6).sqrt()
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
