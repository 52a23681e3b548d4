"""The vision warm-up: a tower trained from scratch learns to see before the LLM reads it.

The tiny default model's wrong answers were mostly another object boxed, named as the one asked
for: its tower told colours apart but not shapes. Trained alone on the training-only heads'
dense per-token targets (``PerceptionObjective.patch_losses``), a tower learns shapes in a few
minutes, several times faster per step than inside the whole model, where the LLM, the heads
and the mask decoder run as well and every image sees one command's worth of gradient.
``train.vision_warmup_steps`` > 0 runs these steps before the first training step of a fresh
run (a resumed run's checkpoint already holds the warmed tower), with an optimiser of its own
over the image side only, at the image side's learning rate with its own warm-up and cosine
decay. The images are the last curriculum stage's (every camera condition), a step's batch the
run's ``batch_size``, rendered by the run's data workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from tqdm import tqdm

from pgpt_ros.training.data import Stage, StepBatches, step_batches
from pgpt_ros.training.objective import PerceptionObjective
from pgpt_ros.training.optim import is_image_side, lr_factor


def warm_up_vision(objective: PerceptionObjective, stage: Stage,
                   collate: Callable[[list], dict[str, torch.Tensor]], train: dict,
                   progress: bool = True) -> list[dict]:  # fmt: skip
    """Trains the image side alone for ``train["vision_warmup_steps"]`` steps; returns the loss
    history (one entry every ``train["log_every"]`` steps), with the wall seconds so far
    (``time_s``) and the seconds spent in the steps themselves, rendering excluded
    (``compute_s``)."""
    if objective.patch_classifier is None and objective.patch_geometry is None:
        raise ValueError(
            "train.vision_warmup_steps needs a training-only patch head "
            "(objective.patch_classes or objective.patch_geometry)"
        )
    steps = train["vision_warmup_steps"]
    params = [p for name, p in objective.named_parameters()
              if p.requires_grad and is_image_side(name)]  # fmt: skip
    lr = train["lr"] * train["vision_lr_scale"]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=train["weight_decay"])
    schedule = {"steps": steps, "warmup_steps": min(train["warmup_steps"], steps // 10),
                "min_lr_ratio": train["min_lr_ratio"]}  # fmt: skip
    batches = step_batches(
        StepBatches([stage], collate, 0, steps, train["batch_size"], 0, 1, 1), train["data_workers"]
    )
    history, running, count, started, compute = [], {}, 0, time.perf_counter(), 0.0
    model = objective.model
    for step in tqdm(range(steps), desc="vision warm-up", disable=not progress, dynamic_ncols=True):
        batch = {k: v.to(model.device) for k, v in next(batches).items()}
        begun = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(step, schedule)
        parts = objective.patch_losses(batch, model.encode_image(batch["pixel_values"]))
        loss = objective.weighted(parts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(params, train["grad_clip"])
        optimizer.step()
        compute += time.perf_counter() - begun
        for name, value in {"loss": loss, **parts}.items():
            running[name] = running.get(name, 0.0) + float(value.detach())
        count += 1
        if (step + 1) % train["log_every"] == 0 or step + 1 == steps:
            history.append({"step": step + 1, "time_s": time.perf_counter() - started,
                            "compute_s": compute,
                            **{k: v / count for k, v in running.items()}})  # fmt: skip
            if not progress:
                entry = history[-1]
                print(f"vision warm-up step {entry['step']}: loss {entry['loss']:.4f} "
                      f"({entry['time_s']:.0f} s)", flush=True)  # fmt: skip
            running, count = {}, 0
    return history
