"""The physical floor of answering one command on a machine: nothing can be faster than reading
the weights (and KV cache) once per decoded token at the measured copy bandwidth, or than doing the
prefill's matmuls at the measured matmul rate. ``pgpt-bench llm`` reports measured times against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pgpt_ros.bench.common import Timer
from pgpt_ros.model.family import vision_family
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.runtime.frame_cache import prefix_length


@dataclass
class Shape:
    """Parameter counts and sequence lengths: what the floor is computed from."""

    vision_params: int
    projector_params: int
    layer_params: int  # decoder layers and final norm
    head_params: int  # LM head (the input embedding table is read one row per token)
    layers: int
    hidden: int
    kv_width: int  # key (= value) width per layer
    patches: int  # image tokens the LM reads
    vision_positions: int  # positions the vision tower runs (patches, plus CLIP's class token)
    prefix_tokens: int
    command_tokens: int
    bytes_per_param: int

    @classmethod
    def of(cls, model: PerceptionGPT, dtype: torch.dtype, command: str) -> Shape:
        def count(module: torch.nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        text = model.backbone.config.text_config
        vision = model.config.backbone["vision_config"]
        lm = model.language_model
        ids = model.prompt_ids(command)
        prefix = prefix_length(model, ids)
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        return cls(
            vision_params=count(model.backbone.model.vision_tower),
            projector_params=count(model.backbone.model.multi_modal_projector),
            layer_params=count(lm) - count(lm.embed_tokens),
            head_params=count(model.backbone.lm_head),
            layers=text.num_hidden_layers,
            hidden=text.hidden_size,
            kv_width=text.num_key_value_heads * head_dim,
            patches=model.config.num_image_tokens,
            vision_positions=model.config.grid**2 + vision_family(vision).class_tokens,
            prefix_tokens=prefix,
            command_tokens=len(ids) - prefix,
            bytes_per_param=torch.finfo(dtype).bits // 8,
        )

    def lm_flops(self, tokens: int, context: int) -> float:
        """Matmul FLOPs of ``tokens`` new tokens after ``context`` cached ones (LM head once)."""
        attention = 4 * self.layers * self.hidden * tokens * (context + (tokens + 1) / 2)
        return 2 * self.layer_params * tokens + attention + 2 * self.head_params

    def weight_bytes(self, context: int) -> float:
        """Bytes one LM pass must read at least: its weights and the KV cache so far."""
        kv = 2 * self.layers * self.kv_width * context
        return (self.layer_params + self.head_params + kv) * self.bytes_per_param


def measure_machine(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """Copy bandwidth (read + write bytes / s) and matmul rate (FLOP/s) on ``device``."""
    gpu = device.type == "cuda"
    elements = (1 << 29 if gpu else 1 << 26) // 4 * 4  # 2 GiB / 256 MiB of float32
    source = torch.empty(elements, dtype=torch.float32, device=device).fill_(1.0)
    target = torch.empty_like(source)
    timer = Timer(device, repeats=10, warmup=3, statistic="min")
    copy_ms = timer(lambda: target.copy_(source))
    n = 8192 if gpu else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    matmul_ms = timer(lambda: a @ b)
    return {
        "copy_bandwidth_GBps": 2 * source.numel() * 4 / copy_ms / 1e6,
        "matmul_TFLOPs": 2 * n**3 / matmul_ms / 1e9,
    }


def floor(shape: Shape, machine: dict[str, float], answer_tokens: int) -> dict[str, float]:
    """Lower bounds (ms): nothing can be faster than reading the weights once per token or than
    doing the prefill's matmuls at the measured rate."""
    bandwidth = machine["copy_bandwidth_GBps"] * 1e6  # bytes per ms
    rate = machine["matmul_TFLOPs"] * 1e9  # FLOP per ms
    prompt = shape.prefix_tokens + shape.command_tokens

    def pass_ms(tokens: int, context: int) -> float:
        return max(shape.lm_flops(tokens, context) / rate, shape.weight_bytes(context) / bandwidth)

    vision_flops = 2 * shape.vision_params * shape.vision_positions
    vision_flops += 2 * shape.projector_params * shape.patches
    new_prefill = vision_flops / rate + pass_ms(prompt, 0)
    cached_prefill = pass_ms(shape.command_tokens, shape.prefix_tokens)
    decode = pass_ms(1, prompt + answer_tokens // 2)
    steps = answer_tokens - 1  # the prefill yields the first answer token
    return {
        "vision_prefill_ms": new_prefill,
        "command_prefill_ms": cached_prefill,
        "decode_ms_per_token": decode,
        "one_object_new_frame_ms": new_prefill + steps * decode,
        "one_object_cached_frame_ms": cached_prefill + steps * decode,
    }
