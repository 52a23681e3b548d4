"""What a saved model's image tokens carry: linear probes of the tokens the LLM reads.

    .venv/bin/python -m tools.probe --model pgpt_ros/default_model --num 600

A relation ("left of the blue triangle") or an extreme ("the largest circle") can only be
answered if the image tokens tell the LLM where each object is and how big; naming the right
colour and shape is not enough. This fits a ridge regression from the tokens (``encode_image``:
projector outputs, plus the image position map when the model has one) to the place of the patch
and to the box of the object under it, on 75 % of the tokens of ``--num`` ShapesRef validation
images, and prints R^2 on the other 25 % (1: the value is a linear read-out of the token; 0: no
better than its mean). Only tokens mostly covered by one object count.

The first default model scored R^2 ~0 for every place and 0.75 for object size: its tokens said
what and how big, never where (docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from pgpt_ros.data.collate import object_geometry
from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.model.common import patch_centres

TARGETS = ("patch_x", "patch_y", "object_cx", "object_cy", "object_w", "object_h")


def token_dataset(model, num_images: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(T, d) image tokens and (T, 6) targets (``TARGETS``) of the tokens that one object covers
    at least half of, over ``num_images`` ShapesRef validation images."""
    grid = model.config.grid
    centres = patch_centres(grid).numpy()
    dataset = ShapesRef("val", image_size=model.config.image_size, length=num_images, seed=seed)
    feats, targets = [], []
    for i in range(num_images):
        sample = dataset[i]
        with torch.no_grad():
            pixels, (transform,) = model.preprocess([sample.image])
            tokens = model.encode_image(pixels)[0].float().numpy()
        geometry, weight = object_geometry(sample.instance_map, grid, transform)
        keep = weight >= 0.5
        feats.append(tokens[keep])
        targets.append(np.concatenate([centres[keep], geometry[keep]], axis=1))
    return np.concatenate(feats), np.concatenate(targets)


def ridge_r2(feats: np.ndarray, targets: np.ndarray, ridge: float = 1e-2,
             train_share: float = 0.75) -> np.ndarray:  # fmt: skip
    """Held-out R^2 of one ridge regression per target column (first ``train_share`` fits)."""
    x = np.concatenate([feats, np.ones((len(feats), 1))], axis=1).astype(np.float64)
    n = int(len(x) * train_share)
    if n < x.shape[1] or len(x) - n < 2:
        raise ValueError(f"{len(x)} tokens are too few to probe {feats.shape[1]} features")
    weights = np.linalg.solve(x[:n].T @ x[:n] + ridge * np.eye(x.shape[1]), x[:n].T @ targets[:n])
    error = ((x[n:] @ weights - targets[n:]) ** 2).mean(axis=0)
    return 1.0 - error / np.maximum(targets[n:].var(axis=0), 1e-12)


def probe(model, num_images: int = 600, seed: int = 0) -> dict[str, float]:
    """``{target: held-out R^2}`` for ``TARGETS``."""
    feats, targets = token_dataset(model, num_images, seed)
    scores = ridge_r2(feats, targets)
    return {name: round(float(r2), 3) for name, r2 in zip(TARGETS, scores, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", default="", help="model directory; default: the embedded model")
    parser.add_argument("--num", type=int, default=600, help="validation images")
    parser.add_argument("--out", type=Path, default=None, help="also write the R^2 as JSON here")
    args = parser.parse_args(argv)

    from pgpt_ros.runtime import load_model

    torch.set_num_threads(1)
    model = load_model(args.model)
    scores = probe(model, args.num)
    print("\n".join(f"{name:>10}  R^2 {r2:6.3f}" for name, r2 in scores.items()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(scores, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
