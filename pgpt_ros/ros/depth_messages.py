"""Depth images and camera_info <-> the 3D core: what comes in on `depth` / `camera_info`, and what
demo_camera sends out on them.

Depth follows REP 118: 16UC1 in millimetres (0 = no measurement) or 32FC1 in metres (NaN = none),
registered to the colour image (same size, same optical frame, same stamp or within a frame).
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from pgpt_ros.ros.images import BadImage, from_array, to_array
from pgpt_ros.spatial import DEPTH_ENCODINGS, DepthSync, Intrinsics

# images.to_array's table format: encoding -> (element dtype, channels)
DEPTH_IMAGE_ENCODINGS = {name: (dtype, 1) for name, (dtype, _) in DEPTH_ENCODINGS.items()}


def stamp_ns(header: Header) -> int:
    """The header's stamp in integer nanoseconds (exact, unlike float seconds)."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def add_depth_message(sync: DepthSync, msg: Image, max_side: int) -> None:
    """Files a `depth` message by its stamp; one that cannot be read is filed as its reason."""
    try:
        raw = to_array(msg, max_side, DEPTH_IMAGE_ENCODINGS)
    except BadImage as error:
        sync.add_bad_depth(stamp_ns(msg.header), f"depth image: {error}")
        return
    sync.add_depth(stamp_ns(msg.header), raw, msg.encoding)


def set_camera_info(sync: DepthSync, msg: CameraInfo) -> None:
    """Takes the intrinsics (K, width, height) of a `camera_info` message; D is ignored."""
    sync.set_camera_info(np.asarray(msg.k, np.float64), int(msg.width), int(msg.height))


def depth_message(metres: np.ndarray, header: Header, encoding: str) -> Image:
    """A depth Image of HxW metres (NaN = no measurement) in ``encoding`` (16UC1 or 32FC1)."""
    if encoding == "16UC1":
        millimetres = np.nan_to_num(np.rint(metres * 1000.0), nan=0.0)
        raw = np.clip(millimetres, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    elif encoding == "32FC1":
        raw = np.asarray(metres, np.float32)
    else:
        raise ValueError(f"depth encoding must be 16UC1 or 32FC1, got {encoding!r}")
    return from_array(np.ascontiguousarray(raw), header, encoding, DEPTH_IMAGE_ENCODINGS)


def camera_info_message(intrinsics: Intrinsics, header: Header) -> CameraInfo:
    """camera_info of an undistorted pinhole camera (D zero, R identity, P = [K | 0])."""
    fx, fy, cx, cy = intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy
    return CameraInfo(
        header=header,
        width=intrinsics.width,
        height=intrinsics.height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=intrinsics.k,
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )
