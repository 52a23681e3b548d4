"""Pairs a colour frame with the depth frame and intrinsics to use for it, or says why there is none.

Depth and colour come on separate topics and rarely arrive in step, so the last few depth frames are
kept by stamp and the colour frame takes the one nearest in time, if it is within ``tolerance_s``
(registered depth from one camera carries the colour frame's stamp, or one within a frame period).
Intrinsics are taken from the newest camera_info: a camera's calibration does not change while it
runs. Depth is matched after inference in the node, by which time the depth frame of the same
instant has normally arrived.

Thread-safe: the subscription callbacks add, the worker thread asks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from pgpt_ros.spatial.camera import Intrinsics
from pgpt_ros.spatial.depth import DepthImage
from pgpt_ros.spatial.position import Position3D, PositionStatus


@dataclass(frozen=True)
class DepthFrame:
    """A depth image and intrinsics that fit a colour frame, and how far apart their stamps are."""

    depth: DepthImage
    intrinsics: Intrinsics
    offset_s: float


class DepthSync:
    """The recent depth frames and the newest intrinsics.

    Arguments:
        tolerance_s (float): largest |depth stamp - colour stamp| accepted, seconds.
        min_m, max_m (float): valid depth range in metres.
        buffer_size (int): depth frames kept (at 30 Hz, 10 frames cover a third of a second).
    """

    def __init__(
        self, tolerance_s: float, min_m: float, max_m: float, buffer_size: int = 10
    ) -> None:
        if tolerance_s < 0 or buffer_size < 1:
            raise ValueError(
                f"need tolerance_s >= 0 and buffer_size >= 1, got {tolerance_s}, {buffer_size}"
            )
        self.tolerance_s, self.min_m, self.max_m = tolerance_s, min_m, max_m
        self._lock = threading.Lock()
        self._depth: deque[tuple[int, DepthImage | str]] = deque(maxlen=buffer_size)
        self._intrinsics: Intrinsics | str | None = None

    def add_depth(self, stamp_ns: int, raw: np.ndarray, encoding: str) -> None:
        """Keeps a depth frame; one that cannot be read is kept as its reason (BAD_DEPTH later)."""
        try:
            item: DepthImage | str = DepthImage(raw, encoding, self.min_m, self.max_m)
        except ValueError as error:
            item = str(error)
        self._add(stamp_ns, item)

    def add_bad_depth(self, stamp_ns: int, reason: str) -> None:
        """Records a depth message that could not even be turned into an array, and why."""
        self._add(stamp_ns, reason)

    def _add(self, stamp_ns: int, item: DepthImage | str) -> None:
        with self._lock:
            self._depth.append((stamp_ns, item))

    def set_camera_info(self, k: np.ndarray, width: int, height: int) -> None:
        """The camera matrix K (9 values) and its image size; an uncalibrated K is kept as a reason."""
        try:
            intrinsics: Intrinsics | str = Intrinsics.from_k(k, width, height)
        except ValueError as error:
            intrinsics = f"camera_info is unusable: {error}"
        with self._lock:
            self._intrinsics = intrinsics

    def frame_for(self, stamp_ns: int, width: int, height: int) -> DepthFrame | Position3D:
        """The depth frame and intrinsics for a ``width`` x ``height`` colour frame stamped
        ``stamp_ns``, or a ``Position3D`` saying why there are none (for every detection of it)."""
        with self._lock:
            depth = list(self._depth)
            intrinsics = self._intrinsics
        if not depth:
            return Position3D.unavailable(PositionStatus.NO_DEPTH, "no depth image received yet")
        if intrinsics is None:
            return Position3D.unavailable(
                PositionStatus.NO_CAMERA_INFO, "no camera_info received yet"
            )
        if isinstance(intrinsics, str):
            return Position3D.unavailable(PositionStatus.NO_CAMERA_INFO, intrinsics)
        depth_stamp, image = min(depth, key=lambda item: abs(item[0] - stamp_ns))
        offset_s = (depth_stamp - stamp_ns) * 1e-9
        if abs(offset_s) > self.tolerance_s:
            return Position3D.unavailable(
                PositionStatus.STAMP_MISMATCH,
                f"the nearest depth frame is {offset_s:+.3f} s from the colour frame "
                f"(depth_tolerance_s is {self.tolerance_s})",
            )
        if isinstance(image, str):
            return Position3D.unavailable(PositionStatus.BAD_DEPTH, image)
        if (image.width, image.height) != (width, height):
            return Position3D.unavailable(
                PositionStatus.RESOLUTION_MISMATCH,
                f"depth is {image.width}x{image.height} but the colour image is {width}x{height}: "
                "publish depth registered (aligned) to the colour image",
            )
        if (intrinsics.width, intrinsics.height) != (width, height):
            return Position3D.unavailable(
                PositionStatus.RESOLUTION_MISMATCH,
                f"camera_info is for {intrinsics.width}x{intrinsics.height} but the colour image "
                f"is {width}x{height}: use the colour camera's camera_info",
            )
        return DepthFrame(image, intrinsics, offset_s)
