"""The model's own heads as a backend: the reference every other backend is compared with."""

from __future__ import annotations

import torch

from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.runtime.backends.base import PRECISIONS, HeadOutputs


class TorchHeads:
    """Runs ``PerceptionGPT.decode_vis`` and the box encoder in the model's dtype."""

    name = "torch"

    def __init__(self, model: PerceptionGPT) -> None:
        self.model = model
        self.precision = PRECISIONS.get(model.dtype, str(model.dtype))

    def decode(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> HeadOutputs:
        dtype = self.model.dtype
        boxes, masks, iou = self.model.decode_vis(
            vis_state.to(dtype), image_feats.to(dtype), pixel_values.to(dtype)
        )
        return HeadOutputs(boxes, masks, iou)

    def encode_box(self, boxes: torch.Tensor) -> torch.Tensor:
        return self.model.box_encoder(boxes.to(self.model.dtype))
