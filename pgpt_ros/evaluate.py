"""pgpt-eval: accuracy of a saved model on ShapesRef or RefCOCO-format data, JSON + a PNG grid.

    .venv/bin/pgpt-eval --model pgpt_ros/default_model --split test --num 300 --out out/eval
    .venv/bin/pgpt-eval --model out/my_model --refcoco-refs refs.json \
        --refcoco-instances instances.json --refcoco-images train2014/ --split val --out out/eval

``metrics.json`` holds ``{"model", "dataset", "overall": {...}, "per_kind": {kind: {...}},
"speed": {...}}`` with the metrics of ``pgpt_ros.metrics`` (acc@0.5, box_miou, mask_miou,
mask_ciou, precision, recall, f1, no_target_accuracy; None where a metric has no data) and the
speed of the reference decoder on this machine (seconds per command, generated tokens per command
and per target object). ``predictions.png`` shows the first commands: ground truth in white,
predictions in colour with their masks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from tqdm import tqdm

from pgpt_ros.data.sample import Sample
from pgpt_ros.metrics import RefMetrics
from pgpt_ros.model.distinct import distinct_detections


@dataclass
class Prediction:
    """One command's result in the sample's pixels: boxes (P, 4), masks (P, H, W) or None."""

    phrases: list[str]
    boxes: np.ndarray
    masks: np.ndarray | None
    scores: np.ndarray
    text: str
    num_tokens: int
    seconds: float


def mask_from_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(m, m) logits over the full image -> (height, width) bool mask (bilinear, threshold 0)."""
    x = torch.from_numpy(np.ascontiguousarray(logits, np.float32))[None, None]
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return x[0, 0].numpy() > 0


def has_mask_head(model) -> bool:
    """Whether the model answers with masks (the text-coordinate baseline does not); a model
    without a config (a test double) is taken to have one."""
    config = getattr(model, "config", None)
    return getattr(config, "head", "perception") != "text_coords"


def predict(model, sample: Sample, max_new_tokens: int = 48) -> Prediction:
    """Runs ``model.answer`` on one sample and converts the detections to the sample's pixels,
    repeats of one object dropped as ``Perceiver.locate`` does.

    ``masks`` is None for a model without a mask head, so mask metrics skip it (an empty answer
    must not count as a perfect mask).
    """
    h, w = sample.image.shape[:2]
    start = time.perf_counter()
    answer = model.answer(sample.image, sample.command, max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - start
    dets = distinct_detections(answer.detections)  # each object once, as the node publishes
    scale = np.array([w, h, w, h], np.float32)
    boxes = np.array([d.box * scale for d in dets], np.float32).reshape(-1, 4)
    masks = None
    if has_mask_head(model) and all(d.mask_logits is not None for d in dets):
        masks = np.array([mask_from_logits(d.mask_logits, h, w) for d in dets], bool)
        masks = masks.reshape(-1, h, w)
    return Prediction(
        phrases=[d.phrase for d in dets],
        boxes=boxes,
        masks=masks,
        scores=np.array([d.score for d in dets], np.float32),
        text=answer.text,
        num_tokens=answer.num_tokens,
        seconds=seconds,
    )


def evaluate_model(model, samples: Sequence[Sample], *, progress: bool = True,
                   max_new_tokens: int = 48) -> tuple[dict, list[Prediction]]:  # fmt: skip
    """Metrics over ``samples`` (see ``pgpt_ros.metrics``) plus speed; also the predictions."""
    metrics = RefMetrics()
    predictions = []
    for sample in tqdm(samples, desc="eval", disable=not progress, leave=False):
        pred = predict(model, sample, max_new_tokens)
        metrics.add(sample.kind, pred.boxes, sample.boxes, pred.masks,
                    sample.masks if pred.masks is not None else None)  # fmt: skip
        predictions.append(pred)
    summary = metrics.summary()
    targets = sum(s.num_targets for s in samples)
    tokens = sum(p.num_tokens for p in predictions)
    target_tokens = sum(p.num_tokens for p, s in zip(predictions, samples, strict=True)
                        if s.num_targets)  # fmt: skip
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
    from pgpt_ros.data.shapesref import ShapesRef

    size = args.image_size or image_size
    return ShapesRef(args.split, image_size=size, length=args.num, seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", type=Path, default=None,
                        help="model directory (save_pretrained); default: the embedded model")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and PNG")
    parser.add_argument("--split", default="test", help="ShapesRef or RefCOCO split")
    parser.add_argument("--num", type=int, default=300, help="number of commands (at most)")
    parser.add_argument("--seed", type=int, default=0, help="ShapesRef dataset seed")
    parser.add_argument("--image-size", type=int, default=None,
                        help="ShapesRef render size; default: the model's input size")  # fmt: skip
    parser.add_argument("--refcoco-refs", type=Path, help="refs JSON (see pgpt_ros.data.refcoco)")
    parser.add_argument("--refcoco-instances", type=Path, help="COCO instances JSON")
    parser.add_argument("--refcoco-images", type=Path, help="image folder")
    parser.add_argument("--grid", type=int, default=24, help="commands shown in predictions.png")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="answer length limit")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest for the tiny model on a busy CPU)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.refcoco_refs and not (args.refcoco_instances and args.refcoco_images):
        parser.error("--refcoco-refs needs --refcoco-instances and --refcoco-images")

    from pgpt_ros.model import PerceptionGPT
    from pgpt_ros.model_zoo import default_model_dir

    torch.set_num_threads(args.threads)
    model_dir = args.model or default_model_dir()
    model = PerceptionGPT.from_pretrained(model_dir)
    dataset = build_dataset(args, model.config.image_size)
    samples = [dataset[i] for i in range(min(args.num, len(dataset)))]
    with torch.no_grad():
        summary, predictions = evaluate_model(model, samples, max_new_tokens=args.max_new_tokens)
    result = {"model": str(model_dir), "dataset": _describe(args, dataset), **summary}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    prediction_grid(samples[: args.grid], predictions[: args.grid], args.out / "predictions.png")
    overall = result["overall"]
    print(f"{len(samples)} commands: acc@0.5 {overall['acc@0.5']:.3f}, box mIoU "
          f"{overall['box_miou'] or 0:.3f}, mask mIoU {overall['mask_miou'] or 0:.3f}; "
          f"wrote {args.out / 'metrics.json'} and {args.out / 'predictions.png'}")  # fmt: skip
    return 0


def _describe(args: argparse.Namespace, dataset) -> dict:
    if args.refcoco_refs:
        return {"name": "refcoco", "refs": str(args.refcoco_refs), "split": args.split,
                "size": len(dataset)}  # fmt: skip
    return {"name": "shapesref", "split": args.split, "seed": args.seed,
            "image_size": [dataset.width, dataset.height], "size": len(dataset)}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
