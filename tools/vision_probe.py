"""How well a vision tower learns to see ShapesRef's shapes, trained alone.

    .venv/bin/python -m tools.vision_probe --steps 1500
    .venv/bin/python -m tools.vision_probe --image-size 128 --steps 1500 --out out/vp/128.json

The embedded model's wrong answers to attribute commands are mostly another object boxed and
named as the one asked for ("the triangle" -> "green triangle" on a green star): the tower does
not tell the shapes apart. A full training run takes 40 minutes; this trains only a fresh
tower (the ``shapes`` preset with ``--stem``, ``--vision-layers`` and ``--image-size``, always
8 x 8 tokens; the image position map and projector included) with the training-only patch
classifier and patch geometry heads on the ``varied`` ShapesRef scenes rendered at that size, 16
images a step, lr 6e-3 (the default model's vision rate) with the trainer's warm-up and cosine
decay (``lr_factor``) and its loss weights, and
reports the share of validation image tokens (those one object covers at least half of) whose
class, colour and shape the classifier names right, and the milliseconds a training step of the
tower takes on one CPU thread. Chance is 1/6 for the colour and 1/4 for the shape.
docs/training.md has its numbers and the full runs they led to.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pgpt_ros.data.collate import Collator
from pgpt_ros.data.shapesref import SceneConfig, ShapesRef
from pgpt_ros.data.shapesref.vocabulary import NUM_CLASSES, SHAPES
from pgpt_ros.model import build_model, preset_config
from pgpt_ros.model.parameters import parameter_groups
from pgpt_ros.training.aux_heads import PatchClassifier, PatchGeometry
from pgpt_ros.training.losses import patch_class_loss, patch_geometry_loss
from pgpt_ros.training.objective import LossWeights
from pgpt_ros.training.optim import lr_factor

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
    d = model.config.hidden_size
    classifier = PatchClassifier(hidden_size=d, classes=NUM_CLASSES)
    geometry = PatchGeometry(hidden_size=d)
    groups = parameter_groups(model)
    tower = [p for name in TOWER_GROUPS for p in groups.get(name, [])]
    params = tower + [*classifier.parameters(), *geometry.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    collate = Collator(model.require_tokenizer(), model.config, patch_classes=NUM_CLASSES,
                       patch_geometry=True)  # fmt: skip
    scenes = SceneConfig.preset("varied")
    train = ShapesRef(
        "train", image_size=image_size, length=steps * batch, config=scenes, seed=seed
    )
    val = ShapesRef("val", image_size=image_size, length=val_images, config=scenes)
    schedule = {"steps": steps, "warmup_steps": 100, "min_lr_ratio": 0.1}
    weights = LossWeights()  # the training objective's weights of the two dense terms
    seconds = 0.0
    for step in tqdm(range(steps), desc="vision probe", disable=not progress):
        b = collate([train[step * batch + i] for i in range(batch)])
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(step, schedule)
        start = time.perf_counter()
        feats = model.encode_image(b["pixel_values"])
        loss = weights.patch * patch_class_loss(classifier(feats), b["patch_targets"])
        loss = loss + weights.geometry * patch_geometry_loss(
            geometry(feats), b["patch_geometry"], b["patch_geometry_weight"]
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        seconds += time.perf_counter() - start
    counts = {"class": [0, 0], "colour": [0, 0], "shape": [0, 0]}
    model.eval()
    with torch.no_grad():
        for i in range(0, val_images, 50):
            b = collate([val[j] for j in range(i, min(i + 50, val_images))])
            logits = classifier(model.encode_image(b["pixel_values"]))
            for name, (right, n) in patch_accuracy(logits, b["patch_targets"]).items():
                counts[name][0] += right
                counts[name][1] += n
    return {"stem": stem, "vision_layers": vision_layers, "image_size": image_size, "steps": steps,
            "tower_parameters": sum(p.numel() for p in tower),
            "ms_per_step": round(1000 * seconds / max(1, steps), 1), "tokens": counts["class"][1],
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
