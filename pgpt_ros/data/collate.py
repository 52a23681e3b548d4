"""Samples -> a training batch for ``PerceptionObjective`` (``pgpt_ros.training``).

The prompt and answer formats come from ``pgpt_ros.model.tokens`` and the frame geometry from
``pgpt_ros.model.preprocess.FrameTransform`` (the same code inference uses), so this module only
lays samples out as tensors:

    input_ids, attention_mask (B, T)   prompt + answer, right-padded
    labels (B, T)                      answer ids (EOS included), IGNORE_INDEX elsewhere
    pixel_values (B, 3, S, S)          the model input (stretched or padded), normalised
    target_boxes (K, 4)                normalised xyxy in the model's frame, one per answer <vis>
    target_masks (K, M, M)             share of each mask cell covered, same order
    num_targets (B,)                   objects per sample (K = sum)
    patch_targets (B, N, C)            class shares per image token, when asked for and every
                                       sample has a ``class_map``
    patch_geometry (B, N, 4)           (cx, cy, w, h) of the object under each image token and
    patch_geometry_weight (B, N)       the share of the token it covers, when asked for and every
                                       sample has an ``instance_map``

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
from transformers import PreTrainedTokenizerBase

from pgpt_ros.commands import normalize_command
from pgpt_ros.data.sample import Sample
from pgpt_ros.model import tokens
from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.preprocess import FrameTransform, preprocess_images

# Label of positions that carry no target (the prompt, padding): cross-entropy skips them.
IGNORE_INDEX = -100


class Collator:
    """Callable for ``DataLoader(collate_fn=Collator(tokenizer, config))``; it holds no weights,
    so it runs in worker processes and never touches the model.

    Arguments:
        tokenizer: the model's tokenizer (``<image>`` and ``<vis>`` included).
        config (PerceptionGPTConfig): token ids, prompt template, image size and resize mode.
        patch_classes (int): > 0 adds ``patch_targets`` with this many classes (the training-only
            patch classifier's targets).
        patch_geometry (bool): adds ``patch_geometry`` and its weight (the training-only box head).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        config: PerceptionGPTConfig,
        *,
        patch_classes: int = 0,
        patch_geometry: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.patch_classes = patch_classes
        self.patch_geometry = patch_geometry

    def _pixels(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list[FrameTransform]]:
        cfg = self.config
        return preprocess_images(images, cfg.image_size, cfg.resize_mode, cfg.pixel_mean,
                                 cfg.pixel_std)  # fmt: skip

    def encode(self, sample: Sample) -> tuple[list[int], list[int]]:
        """(input ids, labels) of one sample. The command is normalised as at inference
        (``pgpt_ros.commands``), so the model only ever reads that form."""
        cfg = self.config
        prompt = tokens.encode_prompt(
            self.tokenizer,
            cfg.prompt_template,
            normalize_command(sample.command),
            cfg.image_token_id,
            cfg.num_image_tokens,
        )
        text_boxes = None
        if cfg.head == "text_coords":
            transform = FrameTransform.fit(
                sample.image.shape[1], sample.image.shape[0], cfg.image_size, cfg.resize_mode
            )
            text_boxes = np.clip(transform.boxes_to_model(sample.boxes), 0.0, 1.0)
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
        pixels, transforms = self._pixels([s.image for s in samples])
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "pixel_values": pixels,
            **self._targets(samples, transforms),
            "num_targets": torch.tensor([s.num_targets for s in samples]),
            **self._patch_targets(samples, transforms),
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
        pixels, transforms = self._pixels([g[0].image for g in groups])
        per_sample = [t for g, t in zip(groups, transforms, strict=True) for _ in g]
        return {
            "input_ids": input_ids,
            "attention_mask": mask[:, None],
            "position_ids": position_ids,
            "labels": labels,
            "pixel_values": pixels,
            **self._targets(samples, per_sample),
            "num_targets": torch.tensor([sum(s.num_targets for s in g) for g in groups]),
            **self._patch_targets([g[0] for g in groups], transforms),
        }

    def _targets(
        self, samples: Sequence[Sample], transforms: Sequence[FrameTransform]
    ) -> dict[str, torch.Tensor]:
        """Boxes and masks of every target in the model's frame, samples in order."""
        size = self.config.mask_size
        boxes = [t.boxes_to_model(s.boxes) for s, t in zip(samples, transforms, strict=True)]
        masks = [t.masks_to_model(s.masks, size) for s, t in zip(samples, transforms, strict=True)]
        return {
            "target_boxes": torch.from_numpy(np.clip(np.concatenate(boxes), 0, 1).reshape(-1, 4)),
            "target_masks": torch.from_numpy(np.concatenate(masks).reshape(-1, size, size)),
        }

    def _patch_targets(
        self, samples: Sequence[Sample], transforms: Sequence[FrameTransform]
    ) -> dict[str, torch.Tensor]:
        """The dense per-token targets the training-only heads need, when every sample has the
        maps for them (``Sample.class_map`` / ``instance_map``)."""
        grid, out = self.config.grid, {}
        pairs = list(zip(samples, transforms, strict=True))
        classes = self.patch_classes
        if classes and all(s.class_map is not None for s in samples):
            out["patch_targets"] = torch.from_numpy(
                np.stack([class_fractions(s.class_map, grid, classes, t) for s, t in pairs])
            )
        if self.patch_geometry and all(s.instance_map is not None for s in samples):
            geometry = [object_geometry(s.instance_map, grid, t) for s, t in pairs]
            out["patch_geometry"] = torch.from_numpy(np.stack([g for g, _ in geometry]))
            out["patch_geometry_weight"] = torch.from_numpy(np.stack([w for _, w in geometry]))
        return out


def _label_shares(labels: np.ndarray, grid: int, classes: int, sub: int = 4) -> np.ndarray:
    """(side, side) model-frame labels, side = grid * sub -> (grid * grid, classes) shares."""
    onehot = np.eye(classes, dtype=np.float32)[labels]  # (side, side, C)
    blocks = onehot.reshape(grid, sub, grid, sub, classes).mean(axis=(1, 3))
    return blocks.reshape(grid * grid, classes)


def class_fractions(
    class_map: np.ndarray, grid: int, classes: int, transform: FrameTransform, sub: int = 4
) -> np.ndarray:
    """HxW class ids -> (grid * grid, classes) float32 share of each class in each patch of the
    model input (``sub`` x ``sub`` nearest samples per patch; padding is background, class 0)."""
    if int(class_map.max(initial=0)) >= classes:
        raise ValueError(f"class_map holds class {class_map.max()}, the head has {classes}")
    return _label_shares(transform.labels_to_model(class_map, grid * sub), grid, classes, sub)


def object_geometry(
    instance_map: np.ndarray, grid: int, transform: FrameTransform, sub: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """HxW instance ids -> (grid * grid, 4) float32 normalised (cx, cy, w, h), in the model's
    frame, of the box of the object under each patch, and (grid * grid,) the share of the patch
    that objects cover.

    A patch that two objects share gets their share-weighted mean; a background patch gets zeros
    and weight 0. Boxes are those of the visible pixels, like the ground-truth boxes.
    """
    count = int(instance_map.max(initial=0))
    labels = transform.labels_to_model(instance_map, grid * sub)
    shares = _label_shares(labels, grid, count + 1, sub)[:, 1:]  # (N, K), background dropped
    boxes = np.zeros((count, 4), np.float32)
    for k in range(count):
        ys, xs = np.nonzero(instance_map == k + 1)
        if len(xs):  # an object hidden entirely keeps a zero box and, having no pixels, no share
            x1, y1, x2, y2 = transform.boxes_to_model(
                [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            )[0]
            boxes[k] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    weight = shares.sum(axis=1)
    geometry = shares @ boxes / np.maximum(weight, 1e-6)[:, None]
    return geometry.astype(np.float32), weight.astype(np.float32)


def _image_prefix_length(ids: list[int], image_token_id: int) -> int:
    """Number of prompt ids up to and including the last image token."""
    return max(i for i, token in enumerate(ids) if token == image_token_id) + 1
