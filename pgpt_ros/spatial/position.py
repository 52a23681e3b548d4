"""The 3D answer for one detection: a position and extent, or the reason there is none."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class PositionStatus(IntEnum):
    """Why a detection has (or lacks) a 3D position. The message type repeats these codes.

    NOT_COMPUTED is 0 so that a message built without the 3D step never claims a position.
    """

    NOT_COMPUTED = 0  # 3D is off (no depth topic configured)
    OK = 1  # position, extent and depth_pixels are set
    NO_DEPTH = 2  # no depth image received yet
    NO_CAMERA_INFO = 3  # no (usable) camera_info received yet
    RESOLUTION_MISMATCH = 4  # depth or camera_info size differs from the colour image
    STAMP_MISMATCH = 5  # no depth frame close enough in time to the colour frame
    BAD_DEPTH = 6  # the matching depth message could not be read (encoding, size)
    NO_VALID_DEPTH = 7  # too few valid depths under the object's mask (or box)


@dataclass(frozen=True)
class Position3D:
    """A detection's place in the camera's optical frame (x right, y down, z forward; metres).

    Attributes:
        status (PositionStatus): OK when ``position`` is set; otherwise why not.
        message (str): the reason in words when status is not OK ("" when OK).
        position (np.ndarray | None): (3,) the object's visible surface centroid (see ``locate``).
        extent (np.ndarray | None): (3,) its size along x, y, z (robust percentile ranges).
        depth_pixels (int): pixels whose depth was used (after the outlier gate).
        points (np.ndarray | None): (depth_pixels, 3) those pixels' points, when asked for (markers).
    """

    status: PositionStatus
    message: str = ""
    position: np.ndarray | None = None
    extent: np.ndarray | None = None
    depth_pixels: int = 0
    points: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.status == PositionStatus.OK

    @classmethod
    def unavailable(cls, status: PositionStatus, message: str) -> Position3D:
        """No 3D, and why."""
        if status == PositionStatus.OK:
            raise ValueError("an unavailable position cannot have status OK")
        return cls(status, message)
