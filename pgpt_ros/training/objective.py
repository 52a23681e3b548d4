"""The training objective: the model, the training-only heads and the weighted loss.

``PerceptionObjective`` wraps a ``PerceptionGPT`` for training only. Its loss is the LM
cross-entropy on the answer, plus for every ``<vis>`` in the answer the box losses (L1, GIoU), the
mask losses (BCE, Dice), the score head's IoU regression and the query box head's heat map loss,
plus the optional dense losses of the training-only heads. Each term has a weight
(``LossWeights``). Training checkpoints hold this module; inference checkpoints hold only
``objective.model``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from pgpt_ros.data.collate import IGNORE_INDEX
from pgpt_ros.model.heads import QueryBoxDecoder
from pgpt_ros.model.perception_gpt import PerceptionGPT
from pgpt_ros.training import losses
from pgpt_ros.training.aux_heads import PatchClassifier, PatchGeometry


@dataclass
class LossWeights:
    """Weights of the loss terms; a zero weight still computes the term (keeps logging uniform)."""

    lm: float = 1.0
    l1: float = 5.0
    giou: float = 2.0
    bce: float = 2.0
    dice: float = 1.0
    iou: float = 1.0
    patch: float = 1.0
    geometry: float = 5.0
    heat: float = 0.0  # the query box head's heat map against the target's patches

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> LossWeights:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown loss weights {unknown}; known: {sorted(known)}")
        return cls(**values)


@dataclass
class ObjectiveOutput:
    """The weighted total, each term, and the per-``<vis>`` head outputs."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    boxes: torch.Tensor | None = None
    mask_logits: torch.Tensor | None = None
    iou: torch.Tensor | None = None


def gather_vis_states(
    hidden: torch.Tensor, labels: torch.Tensor, vis_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The last-layer states that predict each ``<vis>`` in the labels, in (batch, position) order.

    The state at position t predicts token t + 1, so a ``<vis>`` at t + 1 is represented by the
    state at t. Only answer positions count (prompt tokens carry IGNORE_INDEX labels).

    Arguments:
        hidden (torch.Tensor): (B, T, d) last-layer states after the final norm.
        labels (torch.Tensor): (B, T) target ids, IGNORE_INDEX outside the answer.
    Returns:
        states (K, d) and their batch indices (K,).
    """
    batch, position = (labels[:, 1:] == vis_token_id).nonzero(as_tuple=True)
    return hidden[batch, position], batch


class PerceptionObjective(nn.Module):
    """The model plus the training-only heads; ``forward(batch)`` is the loss.

    Arguments:
        model (PerceptionGPT): the model being trained.
        weights (LossWeights): the weight of each term.
        patch_classes (int): classes of the training-only patch classifier (0: none).
        patch_geometry (bool): add the training-only per-token object box head.
    """

    def __init__(
        self,
        model: PerceptionGPT,
        weights: LossWeights | None = None,
        *,
        patch_classes: int = 0,
        patch_geometry: bool = False,
    ) -> None:
        super().__init__()
        d = model.config.hidden_size
        self.model = model
        self.weights = weights or LossWeights()
        self.patch_classifier = (
            PatchClassifier(hidden_size=d, classes=patch_classes) if patch_classes else None
        )
        self.patch_geometry = PatchGeometry(hidden_size=d) if patch_geometry else None
        self.to(model.device)

    def forward(
        self, batch: dict[str, torch.Tensor], max_mask_objects: int | None = None
    ) -> ObjectiveOutput:
        """Loss on a collated batch (``pgpt_ros.data.collate``).

        The ``<vis>`` tokens of the answer are fed the ground-truth boxes (teacher forcing), and
        the mask decoder is prompted with the ground-truth box for the same reason.

        ``max_mask_objects`` trains the mask decoder on that many randomly chosen objects of the
        batch (all when None): it runs per object at full mask resolution and costs as much as
        the whole LLM on the tiny model, while segmenting inside a given box needs few examples.
        ``mask_logits`` then has a row per chosen object, in batch order.
        """
        model = self.model
        labels = batch["labels"]
        target_boxes = batch.get("target_boxes")
        hidden, image_feats = model.hidden_states(
            batch["input_ids"],
            batch["pixel_values"],
            batch.get("attention_mask"),
            target_boxes,
            batch.get("position_ids"),
        )
        # Logits only where a label is: most positions are image tokens, and the vocabulary
        # projection over all of them was a fifth of a tiny model's training step.
        supervised = labels[:, 1:] != IGNORE_INDEX
        logits = model.backbone.lm_head(hidden[:, :-1][supervised])
        parts = {"lm": F.cross_entropy(logits.float(), labels[:, 1:][supervised])}
        out = ObjectiveOutput(loss=parts["lm"], losses=parts)
        if model.config.head == "perception":
            self._head_losses(batch, hidden, image_feats, max_mask_objects, out)
        parts.update(self.patch_losses(batch, image_feats))
        out.loss = self.weighted(parts)
        return out

    def weighted(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of the named loss terms."""
        return sum(getattr(self.weights, name) * value for name, value in parts.items())

    def patch_losses(
        self, batch: dict[str, torch.Tensor], image_feats: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The training-only heads' dense terms (``patch``, ``geometry``) on the image tokens:
        part of every step, and alone in the vision warm-up (``pgpt_ros.training.vision_warmup``)."""
        parts = {}
        if self.patch_classifier is not None and "patch_targets" in batch:
            logits = self.patch_classifier(image_feats)
            parts["patch"] = losses.patch_class_loss(logits, batch["patch_targets"])
        if self.patch_geometry is not None and "patch_geometry" in batch:
            parts["geometry"] = losses.patch_geometry_loss(
                self.patch_geometry(image_feats), batch["patch_geometry"],
                batch["patch_geometry_weight"],
            )  # fmt: skip
        return parts

    def _head_losses(
        self,
        batch: dict[str, torch.Tensor],
        hidden: torch.Tensor,
        image_feats: torch.Tensor,
        max_mask_objects: int | None,
        out: ObjectiveOutput,
    ) -> None:
        """Box, mask, score and heat map terms for every ``<vis>`` of the answers (in place)."""
        model, parts = self.model, out.losses
        target_boxes = batch.get("target_boxes")
        states, index = gather_vis_states(hidden, batch["labels"], model.config.vis_token_id)
        zero = hidden.sum() * 0.0
        parts.update(l1=zero, giou=zero, bce=zero, dice=zero, iou=zero, heat=zero)
        if not len(states):
            return
        feats = image_feats[index]
        boxes = model.box_decoder(states, feats)
        chosen = torch.arange(len(states), device=states.device)
        if max_mask_objects is not None and len(states) > max_mask_objects:
            chosen = torch.randperm(len(states))[:max_mask_objects].sort().values
            chosen = chosen.to(states.device)
        masks = model.mask_decoder(
            states[chosen],
            feats[chosen],
            target_boxes[chosen],
            batch["pixel_values"][index[chosen]],
        )
        iou = model.score_head(states, boxes.detach())
        target_masks = batch["target_masks"][chosen].to(masks.dtype)
        parts.update(
            l1=losses.l1_loss(boxes, target_boxes),
            giou=losses.giou_loss(boxes, target_boxes),
            bce=losses.bce_loss(masks, target_masks),
            dice=losses.dice_loss(masks, target_masks),
            iou=F.mse_loss(iou, losses.box_iou(boxes, target_boxes).detach()),
        )
        if isinstance(model.box_decoder, QueryBoxDecoder):
            log_heat = torch.log_softmax(model.box_decoder.scores(states, feats), dim=-1)
            parts["heat"] = losses.heat_map_loss(log_heat, batch["target_masks"])
        out.boxes, out.mask_logits, out.iou = boxes, masks, iou
