"""PerceptionGPT: a LLaVA backbone that answers with <vis> tokens decoded into boxes and masks.

from pgpt_ros.model import build_model, load_pretrained, preset_config, save_pretrained
model = build_model(preset_config("tiny"))       # random weights, offline
save_pretrained(model, "out/m"); model = load_pretrained("out/m")
"""

from pgpt_ros.model.builder import build_model, build_perception_gpt
from pgpt_ros.model.checkpoint import is_model_dir, load_pretrained, save_pretrained
from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.generation import Answer, Detection, Generation, answer, generate
from pgpt_ros.model.grammar import AnswerGrammar, answer_grammar
from pgpt_ros.model.llava import wrap_llava
from pgpt_ros.model.lora import add_lora
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.model.registry import MODEL_PRESETS, preset_config

__all__ = [
    "MODEL_PRESETS",
    "Answer",
    "AnswerGrammar",
    "Detection",
    "Generation",
    "PerceptionGPT",
    "PerceptionGPTConfig",
    "add_lora",
    "answer",
    "answer_grammar",
    "build_model",
    "build_perception_gpt",
    "generate",
    "is_model_dir",
    "load_pretrained",
    "preset_config",
    "save_pretrained",
    "wrap_llava",
]
