"""Comparing a head backend with the torch reference on fresh random inputs.

Parity checks draw new inputs every run (seeded from the OS, the seed reported), so repeated runs
probe new numbers while any failure is reproducible from its seed.
"""

from __future__ import annotations

import os

import torch

from pgpt_ros.export.onnx_export import random_boxes
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.runtime.backends.base import HeadBackend


def random_head_inputs(
    model: PerceptionGPT, batch: int, *, seed: int | None = None
) -> tuple[dict[str, torch.Tensor], int]:
    """Fresh random head inputs on the model's device and dtype, and the seed that made them
    (drawn from the OS unless given)."""
    seed = int.from_bytes(os.urandom(4), "little") if seed is None else seed
    generator = torch.Generator().manual_seed(seed)
    cfg = model.config
    d, n, s = cfg.hidden_size, cfg.num_image_tokens, cfg.image_size
    inputs = {
        "vis_state": torch.randn(batch, d, generator=generator),
        "image_feats": torch.randn(batch, n, d, generator=generator),
        "pixel_values": torch.randn(batch, 3, s, s, generator=generator),
        "boxes": random_boxes(batch, generator),
    }
    return {k: v.to(model.device, model.dtype) for k, v in inputs.items()}, seed


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    """max |output - reference| over max |reference| (float32)."""
    diff = (output.float() - reference.float()).abs().max()
    return float(diff / reference.float().abs().max().clamp_min(1e-6))


def compare_backends(
    reference: HeadBackend, candidate: HeadBackend, inputs: dict[str, torch.Tensor]
) -> dict[str, tuple[float, float]]:
    """(max abs error, relative error) of every head output of ``candidate`` against
    ``reference`` on the same inputs."""
    states, feats, pixels = inputs["vis_state"], inputs["image_feats"], inputs["pixel_values"]
    ref, out = reference.decode(states, feats, pixels), candidate.decode(states, feats, pixels)
    pairs = {
        "boxes": (out.boxes, ref.boxes),
        "mask_logits": (out.mask_logits, ref.mask_logits),
        "iou": (out.iou, ref.iou),
        "box_embedding": (
            candidate.encode_box(inputs["boxes"]),
            reference.encode_box(inputs["boxes"]),
        ),
    }
    return {
        key: (float((o.float() - r.float()).abs().max()), relative_error(o, r))
        for key, (o, r) in pairs.items()
    }
