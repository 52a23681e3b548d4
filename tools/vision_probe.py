"""How well a vision tower learns to see ShapesRef's shapes, trained alone.

    .venv/bin/python -m tools.vision_probe --steps 1500
    .venv/bin/python -m tools.vision_probe --image-size 128 --steps 1500 --out out/vp/128.json

The embedded model's wrong answers to attribute commands are mostly another object boxed and
named as the one asked for ("the triangle" -> "green triangle" on a green star): the tower does
not tell the shapes apart. A full training run takes 40 minutes; this trains only a fresh
tower (the ``shapes`` preset with ``--stem``, ``--vision-layers`` and ``--image-size``, always
8 x 8 tokens; the image position map and projector included) with the training-only patch
classifier and patch geometry heads on the ``varied`` ShapesRef scenes rendered at that size, 16
images a step, lr 6e-3 (R0's vision rate), through the trainer's own vision warm-up
(``pgpt_ros.training.vision_warmup``, 100 steps of learning-rate warm-up), and reports the share
of validation image tokens (those one object covers at least half of) whose class, colour and
shape the classifier names right, and the milliseconds a training step of the tower takes on one
CPU thread. Chance is 1/6 for the colour and 1/4 for the shape.
docs/training.md has its numbers and the full runs they led to.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from pgpt_ros.data.collate import Collator
from pgpt_ros.data.shapesref import SceneConfig, ShapesRef
from pgpt_ros.data.shapesref.vocabulary import NUM_CLASSES, SHAPES
from pgpt_ros.model import build_model, preset_config
from pgpt_ros.model.parameters import parameter_groups
from pgpt_ros.training.config import DEFAULTS
from pgpt_ros.training.data import Stage
from pgpt_ros.training.objective import PerceptionObjective
from pgpt_ros.training.vision_warmup import warm_up_vision

# what encode_image runs, in pgpt_ros.model.parameters' groups
TOWER_GROUPS = ("vision tower", "projector", "image position")


def patch_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Correct and counted tokens for class, colour and shape, over the tokens one object covers
    at least half of (``targets``: the collator's class shares, class 0 the background)."""
    share, target = targets.max(-1)
    keep = (target > 0) & (share > 0.5)
    guess, truth = logits.argmax(-1)[keep] - 1, target[keep] - 1
    named = guess >= 0  # the background names neither colour nor shape
    n = len(truth)
    return {
        "class": (int((guess == truth).sum()), n),
        "colour": (int((named & (guess // len(SHAPES) == truth // len(SHAPES))).sum()), n),
        "shape": (int((named & (guess % len(SHAPES) == truth % len(SHAPES))).sum()), n),
    }


def vision_probe(stem: str, vision_layers: int, steps: int, *, batch: int = 16, lr: float = 6e-3,
                 val_images: int = 800, seed: int = 0, image_size: int = 64,
                 progress: bool = True) -> dict:  # fmt: skip
    """Trains a fresh tower for ``steps`` steps; returns its validation accuracies and speed."""
    torch.manual_seed(seed)
    # 8 x 8 tokens at any input size, as the LLM reads them
    model = build_model(preset_config("shapes", image_size=image_size, patch_size=image_size // 8,
                                      vision_stem=stem, vision_layers=vision_layers))  # fmt: skip
    objective = PerceptionObjective(model, patch_classes=NUM_CLASSES, patch_geometry=True)
    collate = Collator(model.require_tokenizer(), model.config, patch_classes=NUM_CLASSES,
                       patch_geometry=True)  # fmt: skip
    scenes = SceneConfig.preset("varied")
    train = ShapesRef(
        "train", image_size=image_size, length=steps * batch, config=scenes, seed=seed
    )
    val = ShapesRef("val", image_size=image_size, length=val_images, config=scenes)
    # the trainer's warm-up, rendering in this process between steps (not timed)
    settings = {**DEFAULTS["train"], "vision_warmup_steps": steps, "lr": lr, "vision_lr_scale": 1.0,
                "warmup_steps": 100, "batch_size": batch, "data_workers": 0,
                "log_every": steps}  # fmt: skip
    history = warm_up_vision(objective, Stage(math.inf, train), collate, settings, progress)
    counts = {"class": [0, 0], "colour": [0, 0], "shape": [0, 0]}
    model.eval()
    with torch.no_grad():
        for i in range(0, val_images, 50):
            b = collate([val[j] for j in range(i, min(i + 50, val_images))])
            logits = objective.patch_classifier(model.encode_image(b["pixel_values"]))
            for name, (right, n) in patch_accuracy(logits, b["patch_targets"]).items():
                counts[name][0] += right
                counts[name][1] += n
    groups = parameter_groups(model)
    tower = [p for name in TOWER_GROUPS for p in groups.get(name, [])]
    return {"stem": stem, "vision_layers": vision_layers, "image_size": image_size, "steps": steps,
            "tower_parameters": sum(p.numel() for p in tower),
            "ms_per_step": round(1000 * history[-1]["compute_s"] / max(1, steps), 1),
            "tokens": counts["class"][1],
            **{name: round(right / max(1, n), 3) for name, (right, n) in counts.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.vision_probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--stem", default="conv", choices=("patch", "conv"))
    parser.add_argument("--vision-layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument(
        "--image-size",
        type=int,
        default=64,
        help="the square input; patches of a power-of-two size keep 8 x 8 tokens",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = vision_probe(args.stem, args.vision_layers, args.steps, seed=args.seed,
                          image_size=args.image_size)  # fmt: skip
    print("  ".join(f"{k} {v}" for k, v in result.items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
