"""What is served from a decoded answer: each object once, above the score threshold, in pixels.

The decoding loop returns one detection per emitted ``<vis>``; a small model sometimes names one
object twice in a multi-object answer ("blue circle <vis>, green star <vis>, blue circle <vis>").
``select`` drops such repeats and low scores; ``to_pixels`` maps what is left to the frame through
its ``FrameTransform``. The node, the evaluation and the benchmarks all go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pgpt_ros.metrics import box_iou
from pgpt_ros.model.generation import Detection
from pgpt_ros.model.preprocess import FrameTransform
from pgpt_ros.policy import AnswerPolicy


@dataclass
class PixelDetection:
    """One object in source-image pixels.

    Attributes:
        phrase (str): the answer words before its ``<vis>``.
        score (float): in [0, 1].
        box (np.ndarray): (4,) float64 xyxy in source pixels (x right, y down), inside the frame.
        mask (np.ndarray | None): (H, W) bool over the frame; None when masks were not asked for
            or the model has no mask head.
    """

    phrase: str
    score: float
    box: np.ndarray
    mask: np.ndarray | None


def distinct_detections(detections: Sequence[Detection], max_iou: float) -> list[Detection]:
    """The detections whose box does not repeat an earlier kept one (IoU > ``max_iou``), in
    answer order."""
    kept: list[Detection] = []
    for det in detections:
        boxes = np.array([k.box for k in kept], np.float64).reshape(-1, 4)
        if not kept or box_iou(np.asarray(det.box, np.float64)[None], boxes).max() <= max_iou:
            kept.append(det)
    return kept


def select(detections: Sequence[Detection], policy: AnswerPolicy) -> list[Detection]:
    """Each object once, then only those scoring at least ``policy.score_threshold``."""
    distinct = distinct_detections(detections, policy.duplicate_iou)
    return [d for d in distinct if d.score >= policy.score_threshold]


def to_pixels(
    detections: Sequence[Detection], transform: FrameTransform, with_masks: bool
) -> list[PixelDetection]:
    """Model-frame detections -> the frame's pixels (boxes clipped to it, masks at its size)."""
    boxes = transform.boxes_to_source(np.array([d.box for d in detections]).reshape(-1, 4))
    masks: list[np.ndarray | None] = [None] * len(detections)
    if with_masks and detections and all(d.mask_logits is not None for d in detections):
        logits = torch.from_numpy(np.stack([d.mask_logits for d in detections]))
        masks = list(transform.masks_to_source(logits))
    return [
        PixelDetection(d.phrase, float(d.score), box, mask)
        for d, box, mask in zip(detections, boxes, masks, strict=True)
    ]
