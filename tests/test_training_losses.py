"""Box, heat map and mask losses against values computed by hand."""

import math

import pytest
import torch

from pgpt_ros.training import losses


def test_box_iou_by_hand():
    pred = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2]])
    target = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.5, 0.5, 1.0, 1.0]])
    # first: intersection 0.25^2 = 0.0625, union 0.25 + 0.25 - 0.0625 = 0.4375
    expected = torch.tensor([0.0625 / 0.4375, 0.0])
    assert torch.allclose(losses.box_iou(pred, target), expected, atol=1e-6)


def test_giou_loss_by_hand():
    pred = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2]])
    target = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.5, 0.5, 1.0, 1.0]])
    # first pair: IoU 1/7, enclosing 0.75^2 = 0.5625, union 0.4375
    giou1 = 0.0625 / 0.4375 - (0.5625 - 0.4375) / 0.5625
    # second pair: disjoint, union 0.04 + 0.25 = 0.29, enclosing 1.0
    giou2 = 0.0 - (1.0 - 0.29) / 1.0
    expected = ((1 - giou1) + (1 - giou2)) / 2
    assert losses.giou_loss(pred, target).item() == pytest.approx(expected, abs=1e-6)
    assert losses.giou_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)


def test_giou_has_gradient_for_disjoint_boxes():
    pred = torch.tensor([[0.0, 0.0, 0.2, 0.2]], requires_grad=True)
    losses.giou_loss(pred, torch.tensor([[0.5, 0.5, 1.0, 1.0]])).backward()
    assert pred.grad.abs().sum() > 0


def test_l1_loss_by_hand():
    pred = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]])
    target = torch.tensor([[0.0, 0.2, 0.5, 0.4], [0.5, 0.6, 0.5, 0.9]])
    # |diffs| = 0.1 + 0 + 0.2 + 0 + 0 + 0.1 + 0 + 0.4 = 0.8 over 8 numbers
    assert losses.l1_loss(pred, target).item() == pytest.approx(0.1, abs=1e-6)


def test_dice_loss_by_hand():
    logits = torch.tensor([[[10.0, -10.0], [0.0, -10.0]]])  # p ~ [1, 0, 0.5, 0]
    target = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    p = torch.sigmoid(logits).flatten()
    inter = float((p * target.flatten()).sum())
    expected = 1 - (2 * inter + 1) / (float(p.sum()) + 2 + 1)
    assert losses.dice_loss(logits, target).item() == pytest.approx(expected, abs=1e-6)
    # hand value with p rounded: inter 1.5, sum p 1.5 -> 1 - 4 / 4.5
    assert expected == pytest.approx(1 - 4 / 4.5, abs=1e-3)


def test_bce_loss_by_hand():
    logits = torch.tensor([[[0.0, 2.0]]])
    target = torch.tensor([[[1.0, 0.0]]])
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert losses.bce_loss(logits, target).item() == pytest.approx(expected, abs=1e-6)


def test_heat_map_loss_by_hand():
    # a 2 x 2 patch grid; the object covers the left column of a 4 x 4 mask
    mask = torch.zeros(1, 4, 4)
    mask[0, :, :2] = 1.0
    uniform = torch.full((1, 4), math.log(0.25))
    # target (row-major patches) 0.5, 0, 0.5, 0: KL to uniform = 2 * 0.5 * log(0.5 / 0.25)
    assert losses.heat_map_loss(uniform, mask).item() == pytest.approx(math.log(2), abs=1e-6)
    exact = torch.tensor([[0.5, 1e-12, 0.5, 1e-12]]).log()
    assert losses.heat_map_loss(exact, mask).item() == pytest.approx(0.0, abs=1e-6)
    # partial cover counts by area: a quarter of the right column's top patch
    mask[0, 0, 2] = 1.0
    target = torch.tensor([4.0, 1.0, 4.0, 0.0]) / 9
    expected = (target[target > 0] * (target[target > 0] / 0.25).log()).sum().item()
    assert losses.heat_map_loss(uniform, mask).item() == pytest.approx(expected, abs=1e-6)


def test_losses_of_no_objects_are_zero():
    empty = torch.zeros(0, 4)
    assert losses.giou_loss(empty, empty).item() == 0.0
    assert losses.l1_loss(empty, empty).item() == 0.0
    assert losses.dice_loss(torch.zeros(0, 4, 4), torch.zeros(0, 4, 4)).item() == 0.0
    assert losses.heat_map_loss(torch.zeros(0, 4), torch.zeros(0, 4, 4)).item() == 0.0
