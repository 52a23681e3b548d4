"""PerceptionGPT: a LLaVA backbone that answers with <vis> tokens decoded into boxes and masks."""

from pgpt_ros.model.builder import build_model
from pgpt_ros.model.config import LossWeights, PerceptionGPTConfig
from pgpt_ros.model.perception_gpt import (
    Answer,
    Detection,
    Generation,
    ModelOutput,
    PerceptionGPT,
    gather_vis_states,
)

__all__ = [
    "Answer",
    "Detection",
    "Generation",
    "LossWeights",
    "ModelOutput",
    "PerceptionGPT",
    "PerceptionGPTConfig",
    "build_model",
    "gather_vis_states",
]
