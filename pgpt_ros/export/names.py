"""The exported heads' names, tensor names and per-sample shapes, defined once.

Export, the ONNX Runtime backend, the TensorRT builder and runner and the manifests all read these,
so a renamed tensor cannot drift between the graph and the code that feeds it (nanosam repeats
its names in two places; nanoowl defines them once, as here).

Every head graph takes K ``<vis>`` objects as its batch: the first axis is the only dynamic one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgpt_ros.model.config import PerceptionGPTConfig

OPSET = 18
# Largest K an exported head accepts: the TensorRT profile's max and the export's dynamic bound.
MAX_BATCH = 16
# The batch a TensorRT profile is tuned for: one object per command is the common case.
OPT_BATCH = 1
BATCH_AXIS = "batch"

ONNX_MANIFEST = "manifest.json"
ENGINE_MANIFEST = "engines.json"


@dataclass(frozen=True)
class HeadSpec:
    """One exported head: the ``PerceptionGPT`` attribute it comes from and its tensor names."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def onnx_file(self) -> str:
        return f"{self.name}.onnx"

    def engine_file(self, precision: str) -> str:
        return f"{self.name}.{precision}.engine"


BOX_DECODER = HeadSpec("box_decoder", ("vis_state", "image_feats"), ("boxes",))
BOX_ENCODER = HeadSpec("box_encoder", ("boxes",), ("box_embedding",))
MASK_DECODER = HeadSpec(
    "mask_decoder", ("vis_state", "image_feats", "boxes", "pixel_values"), ("mask_logits",)
)
SCORE_HEAD = HeadSpec("score_head", ("vis_state", "boxes"), ("iou",))
HEADS: dict[str, HeadSpec] = {
    h.name: h for h in (BOX_DECODER, BOX_ENCODER, MASK_DECODER, SCORE_HEAD)
}


def sample_shapes(config: PerceptionGPTConfig) -> dict[str, tuple[int, ...]]:
    """Shape of one object's slice of every head tensor (the batch axis left out)."""
    d, s, m = config.hidden_size, config.image_size, config.mask_size
    return {
        "vis_state": (d,),
        "image_feats": (config.num_image_tokens, d),
        "boxes": (4,),
        "pixel_values": (3, s, s),
        "box_embedding": (d,),
        "mask_logits": (m, m),
        "iou": (),
    }
