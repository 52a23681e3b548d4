"""The pinhole camera model that turns a pixel and its depth into a point in the optical frame.

Conventions (REP 103 / sensor_msgs/CameraInfo): the optical frame has x right, y down, z forward
(along the optical axis), in metres. Pixel (u, v) is the pixel in column u, row v, and its CENTRE
has coordinates (u, v): the convention of CameraInfo's K (and OpenCV), which puts the centre of the
top-left pixel at (0, 0). A point (x, y, z) projects to u = fx x / z + cx, v = fy y / z + cy.

Lens distortion is ignored: only K is used, CameraInfo's D is not. That is exact for rectified
images (D = 0, what depth cameras publish for depth registered to colour) and for the demo camera;
for a distorted lens the error grows toward the image edges (on a typical webcam lens, a few pixels
at the corners, i.e. a few millimetres per metre of depth).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera: focal lengths and principal point in pixels, and the image size.

    Arguments:
        fx, fy (float): focal lengths in pixels (> 0).
        cx, cy (float): principal point in pixels (pixel centres at integer coordinates).
        width, height (int): the image size these values are for, in pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(
                f"camera intrinsics need finite values and fx, fy > 0, got fx={self.fx} "
                f"fy={self.fy} cx={self.cx} cy={self.cy}: is the camera calibrated?"
            )
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> Intrinsics:
        """From CameraInfo's K: the 3x3 camera matrix, row-major (9 values), and its image size."""
        k = np.asarray(k, np.float64).reshape(-1)
        if k.size != 9:
            raise ValueError(f"K must have 9 values (3x3, row-major), got {k.size}")
        return cls(float(k[0]), float(k[4]), float(k[2]), float(k[5]), int(width), int(height))

    @classmethod
    def ideal(cls, width: int, height: int, horizontal_fov_deg: float) -> Intrinsics:
        """A camera with square pixels and the optical axis through the image centre."""
        if not 1.0 <= horizontal_fov_deg <= 170.0:
            raise ValueError(f"horizontal_fov_deg must be in [1, 170], got {horizontal_fov_deg}")
        f = (width / 2) / math.tan(math.radians(horizontal_fov_deg) / 2)
        return cls(f, f, (width - 1) / 2, (height - 1) / 2, width, height)

    @property
    def k(self) -> list[float]:
        """CameraInfo's K (row-major 3x3) for these intrinsics."""
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    def back_project(self, u: np.ndarray, v: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Points in the optical frame of pixels (u, v) at depth z (metres along the optical axis).

        Arguments:
            u, v (np.ndarray): pixel columns and rows, shape (N,) (pixel centres are integers).
            z (np.ndarray): depths in metres, shape (N,).

        Returns:
            (np.ndarray): (N, 3) float64 points (x right, y down, z forward) in metres.
        """
        z = np.asarray(z, np.float64)
        x = (np.asarray(u, np.float64) - self.cx) * z / self.fx
        y = (np.asarray(v, np.float64) - self.cy) * z / self.fy
        return np.stack([x, y, z], axis=-1)
