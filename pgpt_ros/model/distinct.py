"""Drops detections that repeat an object already found in the same answer.

The decoding loop returns one detection per emitted ``<vis>``, which is what tests of the loop and
the export parity checks compare. A small model sometimes names one object twice in a
multi-object answer ("blue circle <vis>, green star <vis>, blue circle <vis>"); what acts on
objects (the perceiver behind the ROS node, the evaluation) must not count it twice.
"""

from __future__ import annotations

import numpy as np

from pgpt_ros.metrics import box_iou

# Two boxes of one answer that overlap this much are one object named twice. Two different
# ShapesRef targets keep 70 % of their area visible, so their boxes overlap far less.
DUPLICATE_IOU = 0.7


def distinct_detections(detections: list, max_iou: float = DUPLICATE_IOU) -> list:
    """The detections whose box does not repeat an earlier kept one (IoU > ``max_iou``), in
    answer order. Works on anything with a normalised xyxy ``box``."""
    kept: list = []
    for det in detections:
        boxes = np.array([k.box for k in kept], np.float64).reshape(-1, 4)
        if not kept or box_iou(np.asarray(det.box, np.float64)[None], boxes).max() <= max_iou:
            kept.append(det)
    return kept
