"""Training data: the curriculum's datasets, the validation samples, the samples of each step.

Data order is a pure function of the step (sample ``step * batch + i`` of the split), so a
resumed run sees exactly the samples the uninterrupted one would have seen, and several
processes under ``accelerate launch`` see disjoint samples without a sampler.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from pgpt_ros.data.sample import Sample


@dataclass
class Stage:
    """The training data of one curriculum stage (a ShapesRef or RefCOCO dataset), until a step."""

    until: float
    dataset: Any


def build_data(config: dict) -> tuple[list[Stage], list[Sample]]:
    """Training stages (the last runs to the end) and the fixed validation samples."""
    data = config["data"]
    if data["dataset"] == "refcoco":
        from pgpt_ros.data.refcoco import RefCOCO

        if data["commands_per_image"] != 1:
            raise ValueError("data.commands_per_image > 1 is implemented for ShapesRef only")
        ref = data["refcoco"]
        missing = [k for k in ("refs", "instances", "images") if not ref.get(k)]
        if missing:
            raise ValueError(f"data.refcoco needs {missing} (paths to your RefCOCO-format files)")
        train = RefCOCO(ref["refs"], ref["instances"], ref["images"], split=ref["train_split"])
        val = RefCOCO(ref["refs"], ref["instances"], ref["images"], split=ref["val_split"])
        stages = [Stage(math.inf, train)]
    elif data["dataset"] == "shapesref":
        from pgpt_ros.data.shapesref import SceneConfig, ShapesRef

        def shapes(split: str, kinds: dict, scene: dict, length: int) -> ShapesRef:
            return ShapesRef(split, image_size=data["image_size"], length=length, kinds=kinds,
                             config=SceneConfig(**_tupled(scene)), seed=data["seed"])  # fmt: skip

        steps = config["train"]["steps"] * config["train"]["batch_size"]
        stages = [Stage(s["until"], shapes("train", s.get("kinds", data["kinds"]),
                                            {**data["scene"], **s.get("scene", {})}, steps + 1))
                  for s in data["curriculum"]]  # fmt: skip
        stages.append(Stage(math.inf, shapes("train", data["kinds"], data["scene"], steps + 1)))
        val = shapes("val", data["kinds"], data["scene"], data["val_size"])
    else:
        raise ValueError(f"data.dataset must be 'shapesref' or 'refcoco', got {data['dataset']!r}")
    val_samples = [val[i] for i in range(min(data["val_size"], len(val)))]
    return stages, val_samples


def answer_phrases(config: dict, stages: list[Stage]) -> list[str]:
    """Every phrase the training answers can name: the answer vocabulary a new model's decoding
    is held to (``PerceptionGPTConfig.answer_phrases``)."""
    if config["data"]["dataset"] == "refcoco":
        # a target of an unknown category is called "object" (pgpt_ros.data.refcoco)
        return sorted({*stages[-1].dataset.categories.values(), "object"})
    from pgpt_ros.data.shapesref import COLOURS, SHAPES

    return [f"{colour} {shape}" for colour in COLOURS for shape in SHAPES]


def _tupled(scene: dict) -> dict:
    """YAML gives lists; SceneConfig's vocabulary fields are tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in scene.items()}


def batch_samples(stages: list[Stage], step: int, batch_size: int, rank: int = 0, world: int = 1,
                  commands_per_image: int = 1) -> list[Sample] | list[list[Sample]]:  # fmt: skip
    """The samples of one step for one process: a pure function of the step.

    With ``commands_per_image`` > 1, one group of commands about one image per batch row.
    """
    dataset = next(s.dataset for s in stages if step < s.until)
    start = (step * world + rank) * batch_size
    indices = [(start + i) % len(dataset) for i in range(batch_size)]
    if commands_per_image > 1:
        return [dataset.commands(i, commands_per_image) for i in indices]
    return [dataset[i] for i in indices]


class StepBatches(Dataset):
    """Item ``i`` is the collated batch of step ``first + i`` (``batch_samples``), so a
    ``DataLoader``'s workers can render the next steps while the model trains on this one; the
    order stays a pure function of the step."""

    def __init__(self, stages: list[Stage], collate: Callable[[list], dict[str, torch.Tensor]],
                 first: int, last: int, batch_size: int, rank: int, world: int,
                 commands_per_image: int) -> None:  # fmt: skip
        self.stages, self.collate = stages, collate
        self.first, self.last = first, last
        self.args = (batch_size, rank, world, commands_per_image)

    def __len__(self) -> int:
        return max(0, self.last - self.first)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.collate(batch_samples(self.stages, self.first + index, *self.args))


def step_batches(batches: StepBatches, workers: int) -> Iterator[dict[str, torch.Tensor]]:
    """The batches in step order, rendered by ``workers`` processes ahead of the model (0: in
    this process, when asked)."""
    if workers:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the workers are forked
    loader = DataLoader(batches, batch_size=None, shuffle=False, num_workers=workers,
                        prefetch_factor=2 if workers else None)  # fmt: skip
    return iter(loader)
