"""Perceiver answers -> ROS messages: DetectionArray, per-detection masks, the instance-id image.

Everything here is in source-image pixels and copies the source image's header, so a consumer can
match an answer to the exact camera frame (and its TF time) it was computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from pgpt_ros.masks import mask_extent
from pgpt_ros.msg import Detection, DetectionArray
from pgpt_ros.ros.images import from_array

if TYPE_CHECKING:  # the runtime imports torch; building messages does not need it
    from pgpt_ros.runtime import PixelDetection

# Status code -> name, for logs and tables.
STATUS_NAMES = {
    getattr(DetectionArray, name): name
    for name in (
        "OK",
        "NO_IMAGE",
        "STALE_IMAGE",
        "BAD_IMAGE",
        "BAD_COMMAND",
        "BUSY",
        "INTERNAL_ERROR",
        "STOPPING",
        "INACTIVE",
        "INCOMPLETE_ANSWER",
    )
}


def to_detection(
    index: int, found: PixelDetection, header: Header, width: int, height: int
) -> Detection:
    """One Detection: box clipped to the image as centre/size; mask cropped to its own extent."""
    x0, y0, x1, y1 = np.clip(np.asarray(found.box, np.float64), 0, [width, height, width, height])
    x1, y1 = max(x1, x0), max(y1, y0)
    detection = Detection(
        id=index,
        phrase=found.phrase,
        score=float(found.score),
        center_x=float(x0 + x1) / 2,
        center_y=float(y0 + y1) / 2,
        size_x=float(x1 - x0),
        size_y=float(y1 - y0),
    )
    extent = None if found.mask is None else mask_extent(found.mask)
    if extent is not None:
        mx0, my0, mx1, my1 = extent
        crop = found.mask[my0:my1, mx0:mx1].view(np.uint8) * np.uint8(255)  # bool -> 0/255
        detection.mask_roi = RegionOfInterest(
            x_offset=mx0, y_offset=my0, width=mx1 - mx0, height=my1 - my0
        )
        detection.mask = from_array(crop, header, "mono8")
    return detection


def detection_array(
    found: Sequence[PixelDetection],
    *,
    header: Header,
    width: int,
    height: int,
    command_id: int,
    command: str,
    answer: str,
    latency_s: float,
) -> DetectionArray:
    """An OK answer; ``found`` are the detections kept (after the score threshold), in order."""
    return DetectionArray(
        header=header,
        image_width=width,
        image_height=height,
        command_id=command_id,
        command=command,
        answer=answer,
        detections=[to_detection(i, d, header, width, height) for i, d in enumerate(found)],
        status=DetectionArray.OK,
        latency_s=float(latency_s),
    )


def status_array(
    status: int,
    message: str,
    *,
    command_id: int,
    command: str,
    latency_s: float = 0.0,
    header: Header | None = None,
    width: int = 0,
    height: int = 0,
) -> DetectionArray:
    """An answer without detections that says why (NO_IMAGE, BAD_COMMAND, BUSY, ...)."""
    return DetectionArray(
        header=header or Header(),
        image_width=width,
        image_height=height,
        command_id=command_id,
        command=command,
        status=status,
        status_message=message,
        latency_s=float(latency_s),
    )


def instance_ids(found: Sequence[PixelDetection], height: int, width: int) -> np.ndarray:
    """HxW uint8: 0 background, id + 1 where detection ``id``'s mask is (later ids on top)."""
    ids = np.zeros((height, width), np.uint8)
    for index, detection in enumerate(found):
        if detection.mask is not None:
            np.copyto(ids, index + 1, where=detection.mask)
    return ids


def instance_image(
    found: Sequence[PixelDetection], header: Header, height: int, width: int
) -> Image:
    """The `masks` topic's mono8 instance-id image of the source size."""
    return from_array(instance_ids(found, height, width), header, "mono8")
