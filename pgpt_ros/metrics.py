"""Referring-expression metrics for one or many objects per command, numpy only.

Definitions (the JSON that ``pgpt-eval`` writes uses these names):

- ``acc@0.5``: a command counts as correct when its predicted boxes and its target boxes pair up
  one to one with IoU >= 0.5 and nothing is left over; a command with no target is correct when
  nothing is predicted. For single-target commands this is the usual RefCOCO Acc@0.5.
- ``box_miou``: mean over target objects of the IoU of the prediction paired with it (0 if none).
- ``mask_miou`` / ``mask_ciou``: each command's predicted masks and target masks are merged into
  one mask each (gRefCOCO's convention). mIoU averages the per-command IoU (empty vs empty is 1),
  cIoU divides the summed intersections by the summed unions (large objects weigh more).
- ``precision`` / ``recall`` / ``f1``: object level, a prediction is a true positive when it pairs
  with a target at IoU >= 0.5.
- ``no_target_accuracy``: among commands with no target, the share answered with nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

IOU_THRESHOLD = 0.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (N, 4) x (M, 4) -> (N, M); degenerate boxes give 0."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of one shape; two empty masks agree perfectly (1.0)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def match(iou: np.ndarray, threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """Greedy one-to-one pairing of predictions (rows) with targets (columns), best IoU first.

    Only pairs with IoU >= ``threshold`` (and > 0) are made.
    """
    pairs = []
    used_rows, used_cols = set(), set()
    order = np.argsort(-iou, axis=None, kind="stable")
    for flat in order:
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < threshold or iou[i, j] <= 0:
            break
        if i not in used_rows and j not in used_cols:
            pairs.append((int(i), int(j)))
            used_rows.add(i)
            used_cols.add(j)
    return pairs


@dataclass
class _Tally:
    commands: int = 0
    correct: int = 0
    targets: int = 0
    target_iou: float = 0.0
    predictions: int = 0
    true_positives: int = 0
    masked: int = 0
    mask_iou: float = 0.0
    mask_inter: int = 0
    mask_union: int = 0
    empty_commands: int = 0
    empty_correct: int = 0

    def summary(self) -> dict[str, float | int | None]:
        def ratio(num: float, den: float) -> float | None:
            return float(num / den) if den else None

        precision = ratio(self.true_positives, self.predictions)
        recall = ratio(self.true_positives, self.targets)
        f1 = None
        if precision is not None and recall is not None:
            f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        return {
            "num_commands": self.commands,
            "acc@0.5": ratio(self.correct, self.commands),
            "box_miou": ratio(self.target_iou, self.targets),
            "mask_miou": ratio(self.mask_iou, self.masked),
            "mask_ciou": ratio(self.mask_inter, self.mask_union),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "no_target_accuracy": ratio(self.empty_correct, self.empty_commands),
        }


class RefMetrics:
    """Accumulates predictions command by command; ``summary()`` reports overall and per kind."""

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = defaultdict(_Tally)

    def add(self, kind: str, pred_boxes: np.ndarray, gt_boxes: np.ndarray,
            pred_masks: np.ndarray | None = None, gt_masks: np.ndarray | None = None) -> bool:  # fmt: skip
        """Adds one command's result; returns whether it was correct at IoU 0.5.

        Arguments:
            kind (str): the expression kind, for the per-kind breakdown.
            pred_boxes (np.ndarray): Px4 xyxy, in the same units as ``gt_boxes``.
            gt_boxes (np.ndarray): Tx4 xyxy; T == 0 means the command refers to nothing.
            pred_masks (np.ndarray | None): PxHxW bool; None skips the mask metrics.
            gt_masks (np.ndarray | None): TxHxW bool.
        """
        pred_boxes = np.asarray(pred_boxes, np.float64).reshape(-1, 4)
        gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        iou = box_iou(pred_boxes, gt_boxes)
        hits = match(iou, IOU_THRESHOLD)
        correct = len(hits) == len(pred_boxes) == len(gt_boxes)
        # box mIoU pairs each target with its best still-free prediction at any overlap
        target_iou = sum(iou[i, j] for i, j in match(iou, 0.0))
        for tally in (self._tallies[kind], self._tallies["overall"]):
            tally.commands += 1
            tally.correct += correct
            tally.targets += len(gt_boxes)
            tally.target_iou += target_iou
            tally.predictions += len(pred_boxes)
            tally.true_positives += len(hits)
            if len(gt_boxes) == 0:
                tally.empty_commands += 1
                tally.empty_correct += len(pred_boxes) == 0
        if pred_masks is not None and gt_masks is not None:
            self._add_masks(kind, np.asarray(pred_masks, bool), np.asarray(gt_masks, bool))
        return correct

    def _add_masks(self, kind: str, pred: np.ndarray, gt: np.ndarray) -> None:
        shape = gt.shape[1:]
        if pred.shape[1:] != shape and len(pred):
            raise ValueError(f"predicted masks {pred.shape[1:]} and targets {shape} differ in size")
        pred_union = pred.any(axis=0) if len(pred) else np.zeros(shape, bool)
        gt_union = gt.any(axis=0) if len(gt) else np.zeros(shape, bool)
        inter = int(np.logical_and(pred_union, gt_union).sum())
        union = int(np.logical_or(pred_union, gt_union).sum())
        for tally in (self._tallies[kind], self._tallies["overall"]):
            tally.masked += 1
            tally.mask_iou += mask_iou(pred_union, gt_union)
            tally.mask_inter += inter
            tally.mask_union += union

    def summary(self) -> dict:
        """``{"overall": {...}, "per_kind": {kind: {...}}}``; a metric without data is None."""
        kinds = sorted(k for k in self._tallies if k != "overall")
        return {
            "overall": self._tallies["overall"].summary(),
            "per_kind": {k: self._tallies[k].summary() for k in kinds},
        }
