"""What every head backend is: the ``HeadBackend`` protocol, its output type, and the decode chain
the exported backends share.

The decoding loop calls ``backend.decode`` when the LLM emits ``<vis>`` and ``backend.encode_box``
to feed the box back; it cannot tell which backend ran (one output type for every backend).
Exported graphs take and return float32 (K objects = the batch); ``ExportedHeads`` casts at the
boundary, so a float16 model works with every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from pgpt_ros.export.manifest import OnnxManifest
from pgpt_ros.export.names import BOX_DECODER, BOX_ENCODER, HEADS, MASK_DECODER, SCORE_HEAD

PRECISIONS = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass
class HeadOutputs:
    """What the heads give for K ``<vis>`` objects, on the model's device and dtype.

    Attributes:
        boxes (torch.Tensor): (K, 4) normalised xyxy.
        mask_logits (torch.Tensor): (K, M, M) over the model input.
        iou (torch.Tensor): (K,) predicted IoU in [0, 1].
    """

    boxes: torch.Tensor
    mask_logits: torch.Tensor
    iou: torch.Tensor


class HeadBackend(Protocol):
    """The interface the decoding loop calls."""

    name: str  # "torch" | "onnxruntime" | "tensorrt"
    precision: str  # "fp32" | "fp16" | "bf16" | "mixed"

    def decode(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> HeadOutputs:
        """(K, d) states, (K, N, d) image features, (K, 3, S, S) pixels -> the heads' outputs."""
        ...

    def encode_box(self, boxes: torch.Tensor) -> torch.Tensor:
        """(K, 4) boxes -> (K, d) box encodings (the caller adds the ``<vis>`` embedding)."""
        ...


# A runner executes one exported head: float32 tensors by input name -> outputs by name.
HeadRunner = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class ExportedHeads:
    """The decode chain over the four exported graphs; ONNX Runtime and TensorRT differ only in
    the runner that executes one graph.

    Arguments:
        name (str), precision (str): reported to the node's diagnostics.
        runners (dict): head name -> ``HeadRunner``.
        manifest (OnnxManifest): the graphs' output shapes and batch bound (a larger K is run
            in chunks; K = 0 gives empty outputs without running anything).
        device, dtype: the model's; outputs are returned there.
    """

    def __init__(
        self,
        name: str,
        precision: str,
        runners: dict[str, HeadRunner],
        manifest: OnnxManifest,
        *,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.name = name
        self.precision = precision
        self.runners = runners
        self.device = device
        self.dtype = dtype
        self.max_batch = manifest.max_batch
        self.output_shapes = {
            head: record.outputs[0].sample_shape for head, record in manifest.heads.items()
        }

    def _run(self, head: str, **tensors: torch.Tensor) -> torch.Tensor:
        """One graph's single output, float32 on the model's device."""
        inputs = {k: v.to(self.device, torch.float32).contiguous() for k, v in tensors.items()}
        output = HEADS[head].outputs[0]
        batch = next(iter(inputs.values())).shape[0]
        if batch == 0:
            return torch.empty((0, *self.output_shapes[head]), device=self.device)
        chunks = [
            self.runners[head]({k: v[start : start + self.max_batch] for k, v in inputs.items()})
            for start in range(0, batch, self.max_batch)
        ]
        return torch.cat([c[output].to(self.device) for c in chunks])

    def decode(
        self, vis_state: torch.Tensor, image_feats: torch.Tensor, pixel_values: torch.Tensor
    ) -> HeadOutputs:
        boxes = self._run(BOX_DECODER.name, vis_state=vis_state, image_feats=image_feats)
        masks = self._run(
            MASK_DECODER.name,
            vis_state=vis_state,
            image_feats=image_feats,
            boxes=boxes,
            pixel_values=pixel_values,
        )
        iou = self._run(SCORE_HEAD.name, vis_state=vis_state, boxes=boxes)
        return HeadOutputs(boxes.to(self.dtype), masks.to(self.dtype), iou.to(self.dtype))

    def encode_box(self, boxes: torch.Tensor) -> torch.Tensor:
        return self._run(BOX_ENCODER.name, boxes=boxes).to(self.dtype)
