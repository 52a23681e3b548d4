"""Metrics against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pgpt_ros.metrics import RefMetrics, box_iou, mask_iou, match


def test_box_iou_hand_cases():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 5, 5], [3, 3, 3, 8]])
    # 50/150, identical, disjoint, contained 25/100, zero-area box
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 1.0, 0.0, 0.25, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 5)


def test_mask_iou_hand_cases():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0  # nothing predicted for nothing
    a[:2, :2] = True  # 4 pixels
    b[:2, :] = True  # 8 pixels, 4 shared
    assert mask_iou(a, b) == pytest.approx(0.5)
    assert mask_iou(a, np.zeros_like(a)) == 0.0


def test_match_is_one_to_one_and_best_first():
    iou = np.array([[0.9, 0.6], [0.8, 0.1], [0.55, 0.7]])
    assert sorted(match(iou)) == [(0, 0), (2, 1)]  # row 1 loses target 0 to row 0
    assert match(iou, 0.95) == []


def test_single_target_accuracy_and_box_miou():
    m = RefMetrics()
    gt = np.array([[0, 0, 10, 10]])
    assert m.add("attribute", [[0, 0, 10, 10]], gt)  # IoU 1
    assert not m.add("attribute", [[5, 0, 15, 10]], gt)  # IoU 1/3
    assert not m.add("relation", np.zeros((0, 4)), gt)  # missed: IoU 0
    assert not m.add("relation", [[0, 0, 10, 10], [20, 20, 30, 30]], gt)  # extra box
    s = m.summary()
    assert s["overall"]["num_commands"] == 4
    assert s["overall"]["acc@0.5"] == pytest.approx(0.25)
    assert s["per_kind"]["attribute"]["acc@0.5"] == pytest.approx(0.5)
    assert s["per_kind"]["attribute"]["box_miou"] == pytest.approx((1 + 1 / 3) / 2)
    assert s["overall"]["box_miou"] == pytest.approx((1 + 1 / 3 + 0 + 1) / 4)
    # 1 + 1 + 0 + 2 predictions, 2 of them hits (commands 1 and 4); 4 targets
    assert s["overall"]["precision"] == pytest.approx(2 / 4)
    assert s["overall"]["recall"] == pytest.approx(2 / 4)
    assert s["overall"]["f1"] == pytest.approx(0.5)
    assert s["overall"]["no_target_accuracy"] is None and s["overall"]["mask_miou"] is None


def test_multi_and_absent():
    m = RefMetrics()
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])
    # two of three found, in the wrong order (order does not matter), one false positive
    pred = np.array([[20, 0, 30, 10], [0, 0, 10, 9], [60, 60, 70, 70]])
    assert not m.add("multi", pred, gt)
    assert m.add("absent", np.zeros((0, 4)), np.zeros((0, 4)))
    assert not m.add("absent", [[0, 0, 1, 1]], np.zeros((0, 4)))
    s = m.summary()
    multi = s["per_kind"]["multi"]
    assert multi["precision"] == pytest.approx(2 / 3) and multi["recall"] == pytest.approx(2 / 3)
    assert multi["box_miou"] == pytest.approx((0.9 + 1.0 + 0.0) / 3)
    absent = s["per_kind"]["absent"]
    assert absent["acc@0.5"] == pytest.approx(0.5) and absent["no_target_accuracy"] == 0.5
    assert absent["recall"] is None and absent["precision"] == 0.0  # one prediction, no target


def test_mask_miou_and_ciou_merge_instances_per_command():
    m = RefMetrics()
    gt = np.zeros((2, 4, 4), bool)
    gt[0, :2, :2] = True  # 4 px
    gt[1, 2:, 2:] = True  # 4 px
    pred = gt[:1].copy()  # finds only the first object: IoU 4/8
    m.add("multi", np.zeros((1, 4)), np.zeros((2, 4)), pred, gt)
    big_gt = np.ones((1, 4, 4), bool)  # 16 px, predicted 12 of them: IoU 12/16
    big_pred = big_gt.copy()
    big_pred[0, 0] = False
    m.add("attribute", np.zeros((1, 4)), np.zeros((1, 4)), big_pred, big_gt)
    m.add("absent", np.zeros((0, 4)), np.zeros((0, 4)), np.zeros((0, 4, 4)), np.zeros((0, 4, 4)))
    s = m.summary()["overall"]
    assert s["mask_miou"] == pytest.approx((0.5 + 0.75 + 1.0) / 3)
    assert s["mask_ciou"] == pytest.approx((4 + 12 + 0) / (8 + 16 + 0))
    with pytest.raises(ValueError, match="size"):
        m.add("attribute", np.zeros((1, 4)), np.zeros((1, 4)), np.ones((1, 2, 2)), big_gt)
