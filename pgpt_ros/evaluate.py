"""pgpt-eval: accuracy of a model on ShapesRef or RefCOCO-format data through the served path.

    .venv/bin/pgpt-eval --split test --num 300 --preset varied --out out/eval   # embedded model
    .venv/bin/pgpt-eval --model out/my_model --refcoco-refs refs.json \
        --refcoco-instances instances.json --refcoco-images train2014/ --split val --out out/eval

Every command is answered by ``pgpt_ros.runtime.Perceiver`` exactly as the node serves it: the same
model loading, head backend selection (``auto``), answer policy (the node's default
``max_new_tokens``, ``max_objects`` and ``score_threshold``; ``--score-threshold`` measures
another, as the node's parameter of that name sets it), de-duplication and pixel mapping.
``metrics.json`` holds ``{"model", "dataset", "backend", "policy", "overall": {...},
"per_kind": {kind: {...}}, "incomplete_answers", "speed": {...}}`` with the metrics of
``pgpt_ros.metrics`` (acc@0.5, box_miou, mask_miou, mask_ciou, precision, recall, f1,
no_target_accuracy; None where a metric has no data), the number of answers the token limit cut
(``IncompleteAnswer``: scored as no detection, as the node serves none) and the speed on this
machine (seconds per command, generated tokens per command and per target object). ``predictions.png`` shows the first commands: ground truth in white,
predictions in colour with their masks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from pgpt_ros.data.sample import Sample
from pgpt_ros.metrics import RefMetrics
from pgpt_ros.policy import AnswerPolicy
from pgpt_ros.runtime import IncompleteAnswer, Perceiver


@dataclass
class Prediction:
    """One command's result in the sample's pixels: boxes (P, 4), masks (P, H, W) or None (a
    model without a mask head: mask metrics skip it, an empty answer must not count as a perfect
    mask). ``complete`` is False for an answer the token limit cut (``IncompleteAnswer``): it is
    scored as no detection, as the node serves none from it."""

    phrases: list[str]
    boxes: np.ndarray
    masks: np.ndarray | None
    scores: np.ndarray
    text: str
    num_tokens: int
    seconds: float
    complete: bool = True


def predict(perceiver: Perceiver, sample: Sample) -> Prediction:
    """The served answer to one sample (a new frame each time, as a new camera image is)."""
    h, w = sample.image.shape[:2]
    start = time.perf_counter()
    try:
        found = perceiver.locate(sample.image, sample.command)
    except IncompleteAnswer as error:
        empty = np.zeros((0, h, w), bool) if perceiver.model.config.head == "perception" else None
        return Prediction([], np.zeros((0, 4), np.float32), empty, np.zeros(0, np.float32),
                          error.text, perceiver.policy.max_new_tokens,
                          time.perf_counter() - start, complete=False)  # fmt: skip
    masks = None
    if perceiver.model.config.head == "perception" and perceiver.policy.with_masks:
        masks = np.array([d.mask for d in found.detections], bool).reshape(-1, h, w)
    return Prediction(
        phrases=[d.phrase for d in found.detections],
        boxes=np.array([d.box for d in found.detections], np.float32).reshape(-1, 4),
        masks=masks,
        scores=np.array([d.score for d in found.detections], np.float32),
        text=found.answer,
        num_tokens=found.num_tokens,
        seconds=found.inference_s,
    )


def evaluate(perceiver: Perceiver, samples: Sequence[Sample], *,
             progress: bool = True) -> tuple[dict, list[Prediction]]:  # fmt: skip
    """Metrics over ``samples`` (see ``pgpt_ros.metrics``) plus speed; also the predictions."""
    metrics = RefMetrics()
    predictions = []
    for sample in tqdm(samples, desc="eval", disable=not progress, leave=False):
        pred = predict(perceiver, sample)
        metrics.add(sample.kind, pred.boxes, sample.boxes, pred.masks,
                    sample.masks if pred.masks is not None else None)  # fmt: skip
        predictions.append(pred)
    summary = metrics.summary()
    targets = sum(s.num_targets for s in samples)
    tokens = sum(p.num_tokens for p in predictions)
    target_tokens = sum(p.num_tokens for p, s in zip(predictions, samples, strict=True)
                        if s.num_targets)  # fmt: skip
    summary["incomplete_answers"] = sum(not p.complete for p in predictions)
    summary["speed"] = {
        "seconds_per_command": float(np.mean([p.seconds for p in predictions])),
        "tokens_per_command": tokens / max(len(samples), 1),
        "tokens_per_object": target_tokens / max(targets, 1),
    }
    return summary, predictions


_PALETTE = [(255, 64, 160), (0, 230, 255), (255, 170, 0), (140, 255, 60), (190, 120, 255)]


def prediction_grid(samples: Sequence[Sample], predictions: Sequence[Prediction], path: Path,
                    columns: int = 6, scale: int = 4) -> None:  # fmt: skip
    """Writes a PNG: per command the image (upscaled), ground-truth boxes in white, predicted
    masks tinted and boxes outlined in colour, the command above and the answer below."""
    tiles = []
    for sample, pred in zip(samples, predictions, strict=True):
        h, w = sample.image.shape[:2]
        image = sample.image.astype(np.float32)
        if pred.masks is not None:
            for k, mask in enumerate(pred.masks):
                colour = np.array(_PALETTE[k % len(_PALETTE)], np.float32)
                image[mask] = 0.55 * image[mask] + 0.45 * colour
        tile = Image.fromarray(image.astype(np.uint8)).resize((w * scale, h * scale), Image.NEAREST)
        draw = ImageDraw.Draw(tile)
        for box in sample.boxes:
            draw.rectangle([float(v) * scale for v in box], outline=(255, 255, 255), width=1)
        for k, box in enumerate(pred.boxes):
            draw.rectangle([float(v) * scale for v in box], outline=_PALETTE[k % len(_PALETTE)],
                           width=2)  # fmt: skip
        canvas = Image.new("RGB", (tile.width, tile.height + 28), (0, 0, 0))
        canvas.paste(tile, (0, 14))
        text = ImageDraw.Draw(canvas)
        text.text((2, 1), sample.command[:44], fill=(255, 255, 255))
        text.text((2, tile.height + 15), pred.text[:44], fill=(160, 255, 160))
        tiles.append(canvas)
    if not tiles:
        return
    tw, th = tiles[0].size
    rows = (len(tiles) + columns - 1) // columns
    grid = Image.new("RGB", (columns * tw, rows * th), (40, 40, 40))
    for i, tile in enumerate(tiles):
        grid.paste(tile.resize((tw, th)), ((i % columns) * tw, (i // columns) * th))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def build_dataset(args: argparse.Namespace, image_size: int):
    """The evaluation data the arguments name: RefCOCO-format files, else ShapesRef."""
    if args.refcoco_refs:
        from pgpt_ros.data.refcoco import RefCOCO

        return RefCOCO(args.refcoco_refs, args.refcoco_instances, args.refcoco_images,
                       split=args.split)  # fmt: skip
    from pgpt_ros.data.shapesref import SceneConfig, ShapesRef

    size = args.image_size or image_size
    return ShapesRef(args.split, image_size=size, length=args.num, seed=args.seed,
                     config=SceneConfig.preset(args.preset))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", default="",
                        help="model directory (save_pretrained); default: the embedded model")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and PNG")
    parser.add_argument("--split", default="test", help="ShapesRef or RefCOCO split")
    parser.add_argument("--num", type=int, default=300, help="number of commands (at most)")
    parser.add_argument("--seed", type=int, default=0, help="ShapesRef dataset seed")
    parser.add_argument("--preset", default="default",
                        help="ShapesRef scene preset (default, camera, spoken, negatives, varied: "
                             "the embedded model's training variation)")  # fmt: skip
    parser.add_argument("--image-size", type=int, default=None,
                        help="ShapesRef render size; default: the model's input size")  # fmt: skip
    parser.add_argument("--refcoco-refs", type=Path, help="refs JSON (see pgpt_ros.data.refcoco)")
    parser.add_argument("--refcoco-instances", type=Path, help="COCO instances JSON")
    parser.add_argument("--refcoco-images", type=Path, help="image folder")
    parser.add_argument("--grid", type=int, default=24, help="commands shown in predictions.png")
    parser.add_argument("--head-backend", default="auto",
                        help="as the node's head_backend (auto, torch, onnxruntime, tensorrt)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="as the node's device")
    parser.add_argument("--dtype", default="float32", help="as the node's dtype")
    parser.add_argument("--score-threshold", type=float, default=AnswerPolicy.score_threshold,
                        help="as the node's score_threshold: detections scoring below are dropped")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest for the tiny model on a busy CPU)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.refcoco_refs and not (args.refcoco_instances and args.refcoco_images):
        parser.error("--refcoco-refs needs --refcoco-instances and --refcoco-images")

    torch.set_num_threads(args.threads)
    try:
        perceiver = Perceiver.load(args.model, device=args.device, dtype=args.dtype,
                                   head_backend=args.head_backend,
                                   policy=AnswerPolicy(score_threshold=args.score_threshold))  # fmt: skip
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"pgpt-eval: {error}", file=sys.stderr)
        return 2
    dataset = build_dataset(args, perceiver.model.config.image_size)
    samples = [dataset[i] for i in range(min(args.num, len(dataset)))]
    summary, predictions = evaluate(perceiver, samples)
    result = {"model": args.model or "embedded default", "dataset": _describe(args, dataset),
              "backend": perceiver.backend, "policy": dataclasses.asdict(perceiver.policy),
              **summary}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    prediction_grid(samples[: args.grid], predictions[: args.grid], args.out / "predictions.png")
    overall = result["overall"]
    print(f"{len(samples)} commands: acc@0.5 {overall['acc@0.5']:.3f}, box mIoU "
          f"{overall['box_miou'] or 0:.3f}, mask mIoU {overall['mask_miou'] or 0:.3f} "
          f"({perceiver.backend} heads); wrote {args.out / 'metrics.json'} and "
          f"{args.out / 'predictions.png'}")  # fmt: skip
    return 0


def _describe(args: argparse.Namespace, dataset) -> dict:
    if args.refcoco_refs:
        return {"name": "refcoco", "refs": str(args.refcoco_refs), "split": args.split,
                "size": len(dataset)}  # fmt: skip
    return {"name": "shapesref", "split": args.split, "seed": args.seed, "preset": args.preset,
            "image_size": [dataset.width, dataset.height], "size": len(dataset)}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
