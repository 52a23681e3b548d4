"""Samples -> a training batch for ``PerceptionGPT.forward``.

The prompt and answer formats come from ``pgpt_ros.model.tokens`` (through the model), so this
module only lays samples out as tensors:

    input_ids, attention_mask (B, T)   prompt + answer, right-padded
    labels (B, T)                      answer ids (EOS included), IGNORE_INDEX elsewhere
    pixel_values (B, 3, S, S)          stretched, CLIP-normalised
    target_boxes (K, 4)                normalised xyxy, one per answer <vis>, samples in order
    target_masks (K, M, M)             float in [0, 1] (area-resized), same order
    num_targets (B,)                   objects per sample (K = sum)
"""

from __future__ import annotations

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
        boxes = [normalised_boxes(s) for s in samples]
        masks = [resize_masks(s.masks, cfg.mask_size) for s in samples]
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "pixel_values": preprocess_images([s.image for s in samples], cfg.image_size),
            "target_boxes": torch.from_numpy(np.concatenate(boxes).reshape(-1, 4)),
            "target_masks": torch.from_numpy(
                np.concatenate(masks).reshape(-1, cfg.mask_size, cfg.mask_size)
            ),
            "num_targets": torch.tensor([s.num_targets for s in samples]),
        }


def collate(samples: list[Sample], model: PerceptionGPT) -> dict[str, torch.Tensor]:
    """One batch from ``samples`` (see the module docstring for its keys)."""
    return Collator(model)(samples)
