"""Mask decoders: from the ``<vis>`` state, the image and the decoded box to mask logits.

Both share one tensor-only interface::

    decoder(vis_state (B, d), image_feats (B, N, d), boxes (B, 4), pixel_values (B, 3, S, S))
        -> mask logits (B, mask_size, mask_size) over the full image

- ``LiteMaskDecoder``: this project's small SAM-style decoder. A decoder prompted by the token
  alone learned only a blob in early CPU runs, so it is given the spatial prior by design: the box,
  rasterised, is a dense prompt on the patch grid and again at mask resolution, and a shallow conv
  of the pixels (an HQ-SAM-style skip) brings edges the 8 x 8 ViT grid cannot.
- ``SamMaskDecoderAdapter``: drives transformers' SAM (vision encoder frozen, prompt encoder,
  ``SamMaskDecoder``) from a local checkpoint, with the box as SAM's box prompt and the projected
  ``<vis>`` state as one more sparse prompt token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers import SamConfig, SamModel

from pgpt_ros.model.common import MLP, patch_centres, sine_position_encoding
from pgpt_ros.model.preprocess import CLIP_MEAN, CLIP_STD

if TYPE_CHECKING:  # the composed model uses this module's decoders, never the reverse at run time
    from pgpt_ros.model.perception_gpt import PerceptionGPT

# SAM's pixel normalisation (ImageNet statistics, 0-1 scale).
SAM_MEAN = (0.485, 0.456, 0.406)
SAM_STD = (0.229, 0.224, 0.225)


def rasterize_boxes(boxes: torch.Tensor, size: int, sharpness: float = 2.0) -> torch.Tensor:
    """(B, 4) normalised xyxy -> (B, size, size) soft box masks in [0, 1].

    A product of sigmoids instead of a hard comparison keeps it smooth and free of control flow;
    ``sharpness`` is in units of cells, so the edge is about one cell wide at any size.
    """
    coords = (torch.arange(size, dtype=boxes.dtype, device=boxes.device) + 0.5) / size
    k = sharpness * size
    x1, y1, x2, y2 = (boxes[:, i, None] for i in range(4))  # (B, 1) each
    inside_x = torch.sigmoid((coords - x1) * k) * torch.sigmoid((x2 - coords) * k)  # (B, size)
    inside_y = torch.sigmoid((coords - y1) * k) * torch.sigmoid((y2 - coords) * k)
    return inside_y[:, :, None] * inside_x[:, None, :]


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of a (B, C, H, W) map, written channels-last so TensorRT fuses it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class FusionBlock(nn.Module):
    """One decoder layer: the token reads the patches, the patches are modulated by the token and
    talk to each other (self-attention), as SAM's two-way transformer does with one token."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.token_norm = nn.LayerNorm(width)
        self.token_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.token_mlp = nn.Sequential(nn.LayerNorm(width), MLP([width, 2 * width, width]))
        self.feat_norm = nn.LayerNorm(width)
        self.feat_mlp = MLP([width, 2 * width, width])
        self.self_norm = nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(
        self, token: torch.Tensor, feats: torch.Tensor, pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """token (B, 1, w), feats (B, N, w), pos (N, w) -> updated token and feats."""
        keys = feats + pos
        token = token + self.token_attn(self.token_norm(token), keys, feats, need_weights=False)[0]
        token = token + self.token_mlp(token)
        feats = feats + self.feat_mlp(self.feat_norm(feats) * token)
        x = self.self_norm(feats)
        feats = feats + self.self_attn(x + pos, x + pos, x, need_weights=False)[0]
        return token, feats


class LiteMaskDecoder(nn.Module):
    """A small SAM-style mask decoder conditioned on the token, the box and the pixels.

    Arguments:
        hidden_size (int): the LLM width d.
        width (int): the decoder width w.
        grid (int): side g of the patch grid (N = g*g).
        mask_size (int): side M of the output logits.
        depth (int): number of fusion blocks.
    """

    def __init__(
        self, *, hidden_size: int, width: int, grid: int, mask_size: int, depth: int = 2
    ) -> None:
        super().__init__()
        self.grid = grid
        self.mask_size = mask_size
        heads = max(1, width // 32)
        self.token_in = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width))
        self.feat_in = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width))
        self.box_in = nn.Linear(1, width)  # dense prompt: inside/outside the box, per patch
        self.register_buffer(
            "pos", sine_position_encoding(patch_centres(grid), width), persistent=False
        )
        self.blocks = nn.ModuleList(FusionBlock(width, heads) for _ in range(depth))
        # Full-resolution layers are the decoder's cost (they run per object at M x M), so they
        # are narrow: a 1x1 conv mixes the upsampled patches, the pixel skip and the box, then
        # one 3x3 conv refines edges.
        skip, fused = width // 4, width // 2
        self.pixel_skip = nn.Sequential(
            nn.Conv2d(3, skip, 3, padding=1), nn.GELU(), nn.Conv2d(skip, skip, 3, padding=1)
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(width + skip + 1, fused, 1),
            LayerNorm2d(fused),
            nn.GELU(),
            nn.Conv2d(fused, fused, 3, padding=1),
        )
        self.hyper = MLP([width, width, fused])

    def forward(
        self,
        vis_state: torch.Tensor,
        image_feats: torch.Tensor,
        boxes: torch.Tensor,
        pixel_values: torch.Tensor,
    ) -> torch.Tensor:
        """Returns (B, M, M) mask logits."""
        b = vis_state.shape[0]
        token = self.token_in(vis_state)[:, None]  # (B, 1, w)
        box_grid = rasterize_boxes(boxes, self.grid).reshape(b, -1, 1)  # (B, N, 1)
        feats = self.feat_in(image_feats) + self.box_in(box_grid)  # (B, N, w)
        for block in self.blocks:
            token, feats = block(token, feats, self.pos)
        size = (self.mask_size, self.mask_size)
        pixels = F.interpolate(pixel_values, size=size, mode="bilinear", align_corners=False)
        skip = self.pixel_skip(pixels)  # (B, w/4, M, M)
        box_full = rasterize_boxes(boxes, self.mask_size)[:, None]  # (B, 1, M, M)
        # fuse[0] is a 1x1 conv over [upsampled patches, pixel skip, box]. It is applied here in
        # parts: a 1x1 conv commutes with bilinear upsampling (both are linear and the upsampling
        # weights of a pixel sum to one), so the patches are mixed on the g x g grid and only the
        # w/2 mixed channels are upsampled. Same function and weights; a CPU training step of the
        # default model is 5 % shorter (0.258 to 0.245 s).
        mix = self.fuse[0]
        w_patch, w_skip, w_box = mix.weight[:, :, 0, 0].split(
            [feats.shape[-1], skip.shape[1], 1], 1
        )
        grid_mixed = (feats @ w_patch.T).transpose(1, 2).reshape(b, -1, self.grid, self.grid)
        x = (
            F.interpolate(grid_mixed, size=size, mode="bilinear", align_corners=False)
            + torch.einsum("oc,bchw->bohw", w_skip, skip)
            + w_box[None, :, :, None] * box_full
            + mix.bias[None, :, None, None]
        )  # (B, w/2, M, M)
        x = self.fuse[1:](x)
        return torch.einsum("bc,bchw->bhw", self.hyper(token[:, 0]), x)


class SamMaskDecoderAdapter(nn.Module):
    """transformers' SAM as the mask decoder; the LLM's token is one extra sparse prompt.

    The SAM vision encoder sees the same model input (``pixel_values`` normalised for the LLaVA
    tower, converted to SAM's normalisation and size) and stays frozen; ``image_feats`` is unused
    because SAM's decoder was trained on its own encoder's embeddings.

    Arguments:
        hidden_size (int): the LLM width d.
        sam (SamModel): a built or loaded SAM (``SamModel.from_pretrained(local_dir)``).
        mask_size (int): side M of the output logits.
        pixel_mean, pixel_std: the normalisation of ``pixel_values`` (the LLaVA tower's).
    """

    def __init__(
        self,
        *,
        hidden_size: int,
        sam: SamModel,
        mask_size: int,
        pixel_mean: Sequence[float] = CLIP_MEAN,
        pixel_std: Sequence[float] = CLIP_STD,
    ) -> None:
        super().__init__()
        self.sam = sam
        self.mask_size = mask_size
        self.sam_size = sam.config.vision_config.image_size
        width = sam.config.mask_decoder_config.hidden_size
        self.token_in = nn.Sequential(nn.LayerNorm(hidden_size), nn.Linear(hidden_size, width))
        self.sam.vision_encoder.requires_grad_(False)
        mean, std = torch.tensor(pixel_mean), torch.tensor(pixel_std)
        sam_mean, sam_std = torch.tensor(SAM_MEAN), torch.tensor(SAM_STD)
        # x_sam = (x * std + mean - sam_mean) / sam_std = x * scale + shift
        self.register_buffer("scale", (std / sam_std).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer(
            "shift", ((mean - sam_mean) / sam_std).reshape(1, 3, 1, 1), persistent=False
        )

    @staticmethod
    def build(config: dict, **kwargs) -> SamMaskDecoderAdapter:
        """A randomly initialised SAM of the given ``SamConfig`` dict (its attention via sdpa);
        ``kwargs`` are the constructor's other arguments."""
        sam_config = SamConfig(**config)
        sam_config._attn_implementation = "sdpa"
        return SamMaskDecoderAdapter(sam=SamModel(sam_config), **kwargs)

    def forward(
        self,
        vis_state: torch.Tensor,
        image_feats: torch.Tensor,
        boxes: torch.Tensor,
        pixel_values: torch.Tensor,
    ) -> torch.Tensor:
        """Returns (B, M, M) mask logits."""
        del image_feats
        b = vis_state.shape[0]
        pixels = F.interpolate(
            pixel_values, size=(self.sam_size, self.sam_size), mode="bilinear", align_corners=False
        )
        embeddings = self.sam.vision_encoder(pixels * self.scale + self.shift).last_hidden_state
        positions = self.sam.get_image_wide_positional_embeddings().expand(b, -1, -1, -1)
        sparse, dense = self.sam.prompt_encoder(None, None, boxes[:, None] * self.sam_size, None)
        token = self.token_in(vis_state)[:, None, None]  # (B, 1, 1, D)
        masks, _ = self.sam.mask_decoder(
            image_embeddings=embeddings,
            image_positional_embeddings=positions,
            sparse_prompt_embeddings=torch.cat([sparse, token], dim=2),
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        size = (self.mask_size, self.mask_size)
        return F.interpolate(masks[:, 0], size=size, mode="bilinear", align_corners=False)[:, 0]


def build_mask_decoder(
    kind: str,
    *,
    hidden_size: int,
    width: int,
    grid: int,
    mask_size: int,
    sam: dict | None,
    pixel_mean: Sequence[float] = CLIP_MEAN,
    pixel_std: Sequence[float] = CLIP_STD,
) -> nn.Module:
    """The mask decoder the config names ("lite" or "sam"; SAM converts the pixels from
    ``pixel_mean``/``pixel_std`` to its own normalisation)."""
    if kind == "sam":
        return SamMaskDecoderAdapter.build(sam, hidden_size=hidden_size, mask_size=mask_size,
                                           pixel_mean=pixel_mean, pixel_std=pixel_std)  # fmt: skip
    return LiteMaskDecoder(hidden_size=hidden_size, width=width, grid=grid, mask_size=mask_size)


def use_sam_mask_decoder(model: PerceptionGPT, sam_dir: str | Path) -> None:
    """Replaces ``model``'s mask decoder by a local HF SAM checkpoint's (e.g. sam-vit-base),
    driven by ``SamMaskDecoderAdapter``; its token projection is new (random). The config records
    the SAM architecture, so a saved model rebuilds it."""
    sam_dir = Path(sam_dir)
    if not (sam_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{sam_dir} is not a Hugging Face SAM directory (no config.json); download e.g. "
            "facebook/sam-vit-base once and pass its local path"
        )
    sam = SamModel.from_pretrained(sam_dir, local_files_only=True, attn_implementation="sdpa")
    cfg = model.config
    decoder = SamMaskDecoderAdapter(hidden_size=cfg.hidden_size, sam=sam, mask_size=cfg.mask_size,
                                    pixel_mean=cfg.pixel_mean, pixel_std=cfg.pixel_std)  # fmt: skip
    model.mask_decoder = decoder.to(model.device, model.dtype)
    model.config = dataclasses.replace(model.config, mask_decoder="sam", sam=sam.config.to_dict())
