"""The box, heat map and mask losses (the LM loss is plain cross-entropy, in the model), and the
dense per-image-token losses of the training-only heads.

The object losses take per-object tensors in matching order and return a scalar mean over
objects; with no objects they return a zero that still belongs to the graph, so a batch of "not
found" answers trains the LM part without special cases.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def box_iou_and_union(
    pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 4), (K, 4) xyxy -> IoU (K,) and union area (K,)."""
    lt = torch.maximum(pred[:, :2], target[:, :2])
    rb = torch.minimum(pred[:, 2:], target[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=-1)
    area_p = (pred[:, 2:] - pred[:, :2]).clamp(min=0).prod(dim=-1)
    area_t = (target[:, 2:] - target[:, :2]).clamp(min=0).prod(dim=-1)
    union = area_p + area_t - inter
    return inter / union.clamp(min=1e-7), union


def box_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(K, 4), (K, 4) xyxy -> (K,) IoU of matching pairs."""
    return box_iou_and_union(pred, target)[0]


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - GIoU over matching xyxy pairs (Rezatofighi et al., 2019).

    GIoU = IoU - (area of the enclosing box - union) / area of the enclosing box; unlike IoU it
    still has a gradient when the boxes do not overlap.
    """
    iou, union = box_iou_and_union(pred, target)
    enclosing = (
        (torch.maximum(pred[:, 2:], target[:, 2:]) - torch.minimum(pred[:, :2], target[:, :2]))
        .clamp(min=0)
        .prod(dim=-1)
    )
    giou = iou - (enclosing - union) / enclosing.clamp(min=1e-7)
    return (1 - giou).sum() / max(len(pred), 1)


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per coordinate, over objects and the four coordinates."""
    return (pred - target).abs().sum() / max(pred.numel(), 1)


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel binary cross-entropy with logits; (K, M, M) each, targets in [0, 1]."""
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    return loss / max(logits.numel(), 1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Mean of 1 - soft Dice per object: 1 - (2 |P*T| + eps) / (|P| + |T| + eps), P = sigmoid."""
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    dice = (2 * (prob * target).sum(-1) + eps) / (prob.sum(-1) + target.sum(-1) + eps)
    return (1 - dice).sum() / max(len(logits), 1)


def heat_map_loss(log_heat: torch.Tensor, target_masks: torch.Tensor) -> torch.Tensor:
    """KL(target || heat map), mean over objects: the target is the share of each object's mask
    on each of the g x g patches; (K, g*g) log-probabilities and (K, M, M) masks in [0, 1].

    The box loss alone reaches the query head's patch scores only through the heat map's
    expected centre: when attention splits between the named object and a look-alike, the centre
    lands between them and says little about which one is meant. This loss names the right
    patches directly, as a classification target.
    """
    grid = math.isqrt(log_heat.shape[-1])
    cover = F.adaptive_avg_pool2d(target_masks[:, None].float(), grid).flatten(1)
    target = cover / cover.sum(-1, keepdim=True).clamp(min=1e-6)
    return F.kl_div(log_heat.float(), target, reduction="sum") / max(len(log_heat), 1)


def patch_class_loss(logits: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (B, N, C) per-token class logits against the (B, N, C) class shares of
    each token's patch (soft targets), mean over tokens."""
    return F.cross_entropy(logits.flatten(0, 1).float(), shares.flatten(0, 1))


def patch_geometry_loss(pred: torch.Tensor, target: torch.Tensor,
                        weight: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """L1 of (B, N, 4) per-token object boxes, each token weighted by how much of its patch the
    object covers ((B, N); background tokens weigh 0), mean over weighted coordinates."""
    weight = weight[..., None]
    error = (weight * (pred.float() - target).abs()).sum()
    return error / (4 * weight.sum()).clamp(min=1.0)
