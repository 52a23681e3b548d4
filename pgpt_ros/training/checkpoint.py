"""Training checkpoints: what a run needs to resume, never what inference loads.

A checkpoint directory holds ``trainable.safetensors`` (every trainable tensor of the objective:
the model's trained weights, LoRA, the training-only heads), ``optimizer.safetensors`` and
``trainer_state.json`` (step, optimiser groups, the log so far). Frozen weights are not stored:
resuming rebuilds the objective from the same config (the same preset and seed, or the same
``init``), which recreates them exactly, then loads these tensors. safetensors and JSON only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import safetensors.torch
import torch

from pgpt_ros.training.objective import PerceptionObjective


def save_checkpoint(directory: Path, objective: PerceptionObjective,
                    optimizer: torch.optim.Optimizer, step: int, log: dict) -> None:  # fmt: skip
    """Writes a complete checkpoint or nothing (a temporary directory renamed at the end)."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {n: p.detach().contiguous() for n, p in objective.named_parameters()
                 if p.requires_grad}  # fmt: skip
    safetensors.torch.save_file(trainable, tmp / "trainable.safetensors")
    state = optimizer.state_dict()
    tensors = {f"{index}.{name}": value.contiguous()
               for index, slots in state["state"].items() for name, value in slots.items()}  # fmt: skip
    safetensors.torch.save_file(tensors, tmp / "optimizer.safetensors")
    meta = {"step": step, "param_groups": state["param_groups"], "log": log}
    (tmp / "trainer_state.json").write_text(json.dumps(meta))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def load_checkpoint(directory: Path, objective: PerceptionObjective,
                    optimizer: torch.optim.Optimizer) -> tuple[int, dict]:  # fmt: skip
    """Loads a checkpoint into a freshly built ``objective`` and its ``optimizer``; returns
    (step, log). ValueError when the checkpoint does not fit the objective (another config)."""
    tensors = safetensors.torch.load_file(directory / "trainable.safetensors")
    params = dict(objective.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(tensors) != expected:
        diff = sorted(set(tensors) ^ expected)[:5]
        raise ValueError(f"{directory} does not fit this training config (differs in {diff})")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)
    meta = json.loads((directory / "trainer_state.json").read_text())
    state: dict[int, dict] = {}
    for key, value in safetensors.torch.load_file(directory / "optimizer.safetensors").items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta["step"], meta["log"]


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(directory.glob("step-*[0-9]"))
    return found[-1] if found else None
