"""The served path: ``Perceiver`` (frame + command -> detections in pixels), the static-cache
decoder, the head backends (torch, ONNX Runtime, TensorRT) and model loading."""

from pgpt_ros.policy import AnswerPolicy, IncompleteAnswer
from pgpt_ros.runtime.loading import DEFAULT_MODEL_DIR, load_model
from pgpt_ros.runtime.perceiver import Perceiver, Perception
from pgpt_ros.runtime.postprocess import PixelDetection

__all__ = [
    "DEFAULT_MODEL_DIR",
    "AnswerPolicy",
    "IncompleteAnswer",
    "Perceiver",
    "Perception",
    "PixelDetection",
    "load_model",
]
