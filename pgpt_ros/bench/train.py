"""``pgpt-bench train``: what one LoRA training step costs: time, tokens/s, model FLOPs
utilisation (MFU), peak memory.

    pgpt-bench train --out DIR --preset llava-1.5-7b --device cuda --batch 8 --steps 20
    pgpt-bench train --out DIR --preset llava-interleave-qwen-0.5b --device cuda
    pgpt-bench train --out DIR --preset tiny --device cpu --steps 3          # the code path, CPU
    (``python -m pgpt_ros.bench.train ...`` runs the same)

The recipe of a real run (docs/training.md): random weights of the preset's shape built on the
device, frozen in ``--weights-dtype`` (bfloat16), LoRA r=8 on the LM's q/v projections, the
``<vis>`` rows, projector and heads trained in float32 under bfloat16 autocast, the vision tower
frozen, gradient checkpointing on (``--no-checkpointing`` to compare). Each sample is a 640x480
image, an 11-word command and a one-object answer, so a LLaVA-1.5-7B row is about 610 tokens.

Model FLOPs of a step (what MFU counts; the recomputation of checkpointing is not counted):
frozen linear layers 4 x params x tokens (forward, and the gradient of their input), attention
3 x its forward, the LM head 4 x its params x supervised tokens, the frozen vision tower its
forward, the projector 4 x params x image tokens; the heads (under 1 % at the 7B shape) are left
out. MFU divides by the GPU's published dense bfloat16 peak where known, and by the matmul rate
measured here otherwise (both are written). Writes ``OUT/train-<preset>-<device>.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pgpt_ros.bench.common import machine_description, synchronize, write_result
from pgpt_ros.bench.floor import Shape, measure_machine
from pgpt_ros.bench.llm import build_bench_model
from pgpt_ros.data.collate import IGNORE_INDEX, Collator
from pgpt_ros.data.sample import Sample
from pgpt_ros.model import PerceptionGPT, add_lora
from pgpt_ros.model.parameters import freeze_vision_tower, trainable_summary
from pgpt_ros.runtime.loading import DTYPES
from pgpt_ros.training.objective import LossWeights, PerceptionObjective
from pgpt_ros.training.optim import make_optimizer
from pgpt_ros.training.precision import enable_gradient_checkpointing, set_training_precision

COMMAND = "find the red mug next to the laptop on the table please"
PHRASE = "red mug"
IMAGE_HW = (480, 640)
# Published dense bfloat16 tensor-core peaks (NVIDIA data sheets, SXM parts), FLOP/s.
BF16_PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12}
OPTIMISER = {"lr": 1e-4, "weight_decay": 0.0, "vision_lr_scale": 1.0}


def spec_peak(device: torch.device) -> tuple[str, float] | None:
    """(name, FLOP/s) of the GPU's published dense bfloat16 peak, when this table knows it."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next(((k, v) for k, v in BF16_PEAKS.items() if k in name), None)


def samples(batch: int, seed: int = 0) -> list[Sample]:
    """``batch`` random images with the same command and one target each."""
    rng = np.random.default_rng(seed)
    h, w = IMAGE_HW
    out = []
    for _ in range(batch):
        box = np.array([[100, 80, 300, 260]], np.float32)
        mask = np.zeros((1, h, w), bool)
        mask[0, 80:260, 100:300] = True
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out.append(Sample(image, COMMAND, [PHRASE], box, mask, "attribute"))
    return out


def step_flops(model: PerceptionGPT, batch: dict[str, torch.Tensor]) -> float:
    """Model FLOPs of one LoRA step on ``batch`` (see the module docstring)."""
    shape = Shape.of(model, torch.bfloat16, COMMAND)
    rows = batch["attention_mask"].sum(dim=1).tolist()
    tokens = sum(rows)
    supervised = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    images = len(rows)
    linear = 4 * shape.layer_params * tokens
    attention = 3 * sum(2 * shape.layers * shape.hidden * t * (t + 1) for t in rows)
    head = 4 * shape.head_params * supervised
    vision = 2 * shape.vision_params * shape.vision_positions * images
    projector = 4 * shape.projector_params * shape.patches * images
    return float(linear + attention + head + vision + projector)


def build_objective(preset: str, device: str, weights_dtype: torch.dtype, checkpointing: bool,
                    text_layers: int | None) -> PerceptionObjective:  # fmt: skip
    """The preset's model with random frozen weights in ``weights_dtype`` on ``device``, LoRA
    r=8, trainable parameters in float32, gradient checkpointing as asked."""
    model = build_bench_model(preset, device, weights_dtype, text_layers)
    add_lora(model, r=8, alpha=16, dropout=0.05)
    freeze_vision_tower(model)
    objective = PerceptionObjective(model, LossWeights()).train()
    set_training_precision(objective, str(weights_dtype).removeprefix("torch."))
    if checkpointing:
        enable_gradient_checkpointing(objective)
    return objective


def bench(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    weights_dtype = DTYPES[args.weights_dtype]
    objective = build_objective(args.preset, args.device, weights_dtype,
                                not args.no_checkpointing, args.text_layers)  # fmt: skip
    model = objective.model
    optimizer = make_optimizer(objective, OPTIMISER)
    batch = Collator(model.require_tokenizer(), model.config)(samples(args.batch))
    batch = {k: v.to(device) for k, v in batch.items()}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def step() -> float:
        with autocast:
            loss = objective(batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(objective.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for index in range(args.warmup + args.steps):
        synchronize(device)
        start = time.perf_counter()
        losses.append(step())
        synchronize(device)
        if index >= args.warmup:
            times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    flops = step_flops(model, batch)
    tokens = int(batch["attention_mask"].sum())
    ceilings = measure_machine(device, torch.bfloat16)
    result: dict = {
        "preset": args.preset,
        "text_layers": model.backbone.config.text_config.num_hidden_layers,
        "machine": machine_description(device),
        "recipe": {
            "batch": args.batch,
            "weights_dtype": args.weights_dtype,
            "autocast": "bfloat16",
            "gradient_checkpointing": not args.no_checkpointing,
            "lora": "r=8 on the LM's q/v",
            "vision_tower": "frozen",
        },  # fmt: skip
        "trainable_parameters": trainable_summary(model)["total"][0],
        "tokens_per_step": tokens,
        "steps_timed": args.steps,
        "warmup_steps": args.warmup,
        "step_s_median": seconds,
        "step_s_min": float(min(times)),
        "tokens_per_s": tokens / seconds,
        "model_tflops_per_step": flops / 1e12,
        "achieved_tflops": flops / seconds / 1e12,
        "measured_bf16_matmul_tflops": ceilings["matmul_TFLOPs"],
        "mfu_vs_measured_matmul": flops / seconds / (ceilings["matmul_TFLOPs"] * 1e12),
        "losses": losses,
    }
    peak = spec_peak(device)
    if peak is not None:
        result["spec_bf16_peak"] = {"gpu": peak[0], "tflops": peak[1] / 1e12}
        result["mfu"] = flops / seconds / peak[1]
    else:
        result["mfu"] = result["mfu_vs_measured_matmul"]
    if device.type == "cuda":
        result["peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(prog="pgpt-bench train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON")
    parser.add_argument("--preset", default="llava-1.5-7b" if cuda else "tiny")
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--batch", type=int, default=8, help="images per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--weights-dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--no-checkpointing", action="store_true",
                        help="keep every activation (no gradient checkpointing)")  # fmt: skip
    parser.add_argument("--text-layers", type=int, default=None, help="fewer LM layers")
    return parser.parse_args(argv)


def summary_line(result: dict) -> str:
    memory = f", peak {result['peak_memory_gb']:.1f} GB" if "peak_memory_gb" in result else ""
    return (f"{result['preset']}: {result['step_s_median'] * 1000:.0f} ms per step of "
            f"{result['tokens_per_step']} tokens, {result['tokens_per_s']:.0f} tokens/s, "
            f"MFU {100 * result['mfu']:.1f} %{memory}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    result = bench(args)
    kind = torch.device(args.device).type
    out = write_result(args.out, f"train-{args.preset}-{kind}.json", result)
    print(summary_line(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
