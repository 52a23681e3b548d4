"""Samples -> a training batch for ``PerceptionGPT.forward``.

The prompt and answer formats come from ``pgpt_ros.model.tokens`` (through the model), so this
module only lays samples out as tensors:

    input_ids, attention_mask (B, T)   prompt + answer, right-padded
    labels (B, T)                      answer ids (EOS included), IGNORE_INDEX elsewhere
    pixel_values (B, 3, S, S)          stretched, CLIP-normalised
    target_boxes (K, 4)                normalised xyxy, one per answer <vis>, samples in order
    target_masks (K, M, M)             float in [0, 1] (area-resized), same order
    num_targets (B,)                   objects per sample (K = sum)
    patch_targets (B, N, C)            class fractions per image token, when the model has a
                                       patch classifier and every sample a ``class_map``
    patch_geometry (B, N, 4)           (cx, cy, w, h) of the object under each image token and
    patch_geometry_weight (B, N)       the share of the token it covers, when the model has a
                                       patch geometry head and every sample an ``instance_map``

``Collator.pack`` lays out several commands about one image in one row instead: the shared
prompt prefix (up to the image tokens) once, then each command and answer as a segment that sees
only the prefix and itself. ``attention_mask`` is then a (B, 1, T, T) additive mask and
``position_ids`` (B, T) restart every segment where a lone command would start, so each segment
is computed exactly as its own sequence would be, while the 64 image tokens that dominate a tiny
model's sequence are run once per image instead of once per command.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from pgpt_ros.data.sample import Sample
from pgpt_ros.model import tokens
from pgpt_ros.model.perception_gpt import IGNORE_INDEX, PerceptionGPT
from pgpt_ros.model.preprocess import preprocess_images


def normalised_boxes(sample: Sample) -> np.ndarray:
    """(N, 4) pixel xyxy -> normalised xyxy in [0, 1] over the full image (it is stretched)."""
    h, w = sample.image.shape[:2]
    scale = np.array([w, h, w, h], dtype=np.float32)
    return np.clip(sample.boxes.astype(np.float32) / scale, 0.0, 1.0)


def resize_masks(masks: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) bool -> (N, size, size) float32 coverage in [0, 1] (box-filter resize)."""
    out = np.zeros((len(masks), size, size), dtype=np.float32)
    for i, mask in enumerate(masks):
        image = Image.fromarray(mask.astype(np.float32))
        out[i] = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


class Collator:
    """Callable for ``DataLoader(collate_fn=Collator(model))``; holds only the tokenizer and the
    config, so it can run in worker processes without touching the model's weights."""

    def __init__(self, model: PerceptionGPT) -> None:
        self.tokenizer = model.require_tokenizer()
        self.config = model.config

    def encode(self, sample: Sample) -> tuple[list[int], list[int]]:
        """(input ids, labels) of one sample."""
        cfg = self.config
        prompt = tokens.encode_prompt(
            self.tokenizer,
            cfg.prompt_template,
            sample.command,
            cfg.image_token_id,
            cfg.num_image_tokens,
        )
        text_boxes = normalised_boxes(sample) if cfg.head == "text_coords" else None
        answer = tokens.encode_answer(
            self.tokenizer, sample.phrases, cfg.vis_token_id, cfg.eos_token_id, text_boxes
        )
        return prompt + answer, [IGNORE_INDEX] * len(prompt) + answer

    def __call__(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        cfg = self.config
        encoded = [self.encode(s) for s in samples]
        length = max(len(ids) for ids, _ in encoded)
        input_ids = torch.full((len(samples), length), cfg.pad_token_id, dtype=torch.long)
        labels = torch.full((len(samples), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(samples), length), dtype=torch.long)
        for row, (ids, lab) in enumerate(encoded):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(lab)] = torch.tensor(lab)
            attention_mask[row, : len(ids)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "pixel_values": preprocess_images([s.image for s in samples], cfg.image_size),
            **self._targets(samples),
            "num_targets": torch.tensor([s.num_targets for s in samples]),
            **self._patch_targets(samples),
        }

    def pack(self, groups: Sequence[Sequence[Sample]]) -> dict[str, torch.Tensor]:
        """One row per group of commands about the same image (see the module docstring)."""
        cfg = self.config
        rows = []
        for group in groups:
            if not group or any(s.image is not group[0].image for s in group):
                raise ValueError("each group must be one or more samples sharing one image")
            encoded = [self.encode(s) for s in group]
            prefix = _image_prefix_length(encoded[0][0], cfg.image_token_id)
            if any(ids[:prefix] != encoded[0][0][:prefix] for ids, _ in encoded):
                raise ValueError("packing needs a prompt template whose text before the image "
                                 "does not contain the command")  # fmt: skip
            ids, labels = list(encoded[0][0][:prefix]), [IGNORE_INDEX] * prefix
            segments = []
            for seg_ids, seg_labels in encoded:
                segments.append((len(ids), len(ids) + len(seg_ids) - prefix))
                ids += seg_ids[prefix:]
                labels += seg_labels[prefix:]
            rows.append((ids, labels, prefix, segments))
        length = max(len(ids) for ids, *_ in rows)
        input_ids = torch.full((len(rows), length), cfg.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.arange(length).repeat(len(rows), 1)
        allowed = torch.eye(length, dtype=torch.bool).repeat(len(rows), 1, 1)  # padding: itself
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        for row, (ids, lab, prefix, segments) in enumerate(rows):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(lab)] = torch.tensor(lab)
            allowed[row, :prefix, :prefix] = causal[:prefix, :prefix]
            for start, end in segments:
                allowed[row, start:end, :prefix] = True
                allowed[row, start:end, start:end] = causal[: end - start, : end - start]
                position_ids[row, start:end] = torch.arange(prefix, prefix + end - start)
        mask = torch.zeros(allowed.shape, dtype=torch.float32)
        mask.masked_fill_(~allowed, torch.finfo(torch.float32).min)
        samples = [s for group in groups for s in group]
        return {
            "input_ids": input_ids,
            "attention_mask": mask[:, None],
            "position_ids": position_ids,
            "labels": labels,
            "pixel_values": preprocess_images([g[0].image for g in groups], cfg.image_size),
            **self._targets(samples),
            "num_targets": torch.tensor([sum(s.num_targets for s in g) for g in groups]),
            **self._patch_targets([g[0] for g in groups]),
        }

    def _targets(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
        """Normalised boxes and resized masks of every target, samples in order."""
        size = self.config.mask_size
        boxes = [normalised_boxes(s) for s in samples]
        masks = [resize_masks(s.masks, size) for s in samples]
        return {
            "target_boxes": torch.from_numpy(np.concatenate(boxes).reshape(-1, 4)),
            "target_masks": torch.from_numpy(np.concatenate(masks).reshape(-1, size, size)),
        }

    def _patch_targets(self, samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
        """The dense per-token targets the model has heads for and every sample has maps for."""
        cfg, out = self.config, {}
        grid = int(round(cfg.num_image_tokens**0.5))
        if cfg.patch_classes and all(s.class_map is not None for s in samples):
            out["patch_targets"] = torch.from_numpy(
                np.stack([class_fractions(s.class_map, grid, cfg.patch_classes) for s in samples])
            )
        if cfg.patch_geometry and all(s.instance_map is not None for s in samples):
            geometry = [object_geometry(s.instance_map, grid) for s in samples]
            out["patch_geometry"] = torch.from_numpy(np.stack([g for g, _ in geometry]))
            out["patch_geometry_weight"] = torch.from_numpy(np.stack([w for _, w in geometry]))
        return out


def class_fractions(class_map: np.ndarray, grid: int, classes: int, sub: int = 4) -> np.ndarray:
    """HxW class ids -> (grid * grid, classes) float32 share of each class in each patch.

    The map is stretched like the image (nearest, ``sub`` x ``sub`` samples per patch), so the
    patches line up with the image tokens (row-major).
    """
    if int(class_map.max(initial=0)) >= classes:
        raise ValueError(f"class_map holds class {class_map.max()}, the model has {classes}")
    side = grid * sub
    small = np.asarray(Image.fromarray(class_map).resize((side, side), Image.Resampling.NEAREST))
    onehot = np.eye(classes, dtype=np.float32)[small]  # (side, side, C)
    blocks = onehot.reshape(grid, sub, grid, sub, classes).mean(axis=(1, 3))
    return blocks.reshape(grid * grid, classes)


def object_geometry(
    instance_map: np.ndarray, grid: int, sub: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """HxW instance ids -> (grid * grid, 4) float32 normalised (cx, cy, w, h) of the box of the
    object under each patch, and (grid * grid,) the share of the patch that objects cover.

    A patch that two objects share gets their share-weighted mean; a background patch gets zeros
    and weight 0. Boxes are those of the visible pixels, like the ground-truth boxes.
    """
    h, w = instance_map.shape
    count = int(instance_map.max(initial=0))
    shares = class_fractions(instance_map, grid, count + 1)[:, 1:]  # (N, K), background dropped
    boxes = np.zeros((count, 4), np.float32)
    for k in range(count):
        ys, xs = np.nonzero(instance_map == k + 1)
        if len(xs):  # an object hidden entirely keeps a zero box and, having no pixels, no share
            x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
            boxes[k] = [(x1 + x2) / (2 * w), (y1 + y2) / (2 * h), (x2 - x1) / w, (y2 - y1) / h]
    weight = shares.sum(axis=1)
    geometry = shares @ boxes / np.maximum(weight, 1e-6)[:, None]
    return geometry.astype(np.float32), weight.astype(np.float32)


def _image_prefix_length(ids: list[int], image_token_id: int) -> int:
    """Number of prompt ids up to and including the last image token."""
    return max(i for i, token in enumerate(ids) if token == image_token_id) + 1


def collate(samples: list[Sample], model: PerceptionGPT) -> dict[str, torch.Tensor]:
    """One batch from ``samples`` (see the module docstring for its keys)."""
    return Collator(model)(samples)
