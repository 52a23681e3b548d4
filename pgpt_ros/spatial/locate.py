"""A detection's 3D position and extent from the depths under its mask.

The estimate, and why each step:

1. The object's pixels are its mask (or, with masks off, its box) and their valid depths; pixels
   with no valid depth (NaN, 0, out of range) are left out, never filled in.
2. The median depth is the object's typical distance: a mask's edge pixels that spill onto the
   background (far) or onto an occluder (near) cannot move it while they are under half the mask.
3. Pixels farther than max(3 robust sigmas, 5 cm) from that median are outliers (sigma from the
   median absolute deviation, so it follows the object's own depth spread and the sensor's noise).
4. The position is the centroid of the remaining pixels' back-projected points: the centre of the
   object's visible surface, what a robot reaches for. A per-axis median would be as robust but is
   biased on asymmetric shapes (on a ShapesRef triangle it sits 0.07 radius below the centroid).
5. The extent is the 1st-99th percentile range of those points per axis (stray pixels under 1 % of
   the mask cannot stretch it), plus one pixel's footprint in x and y (N pixels span N pixel widths,
   their centres N - 1). A flat object facing the camera has z extent 0.

Fewer than ``min_depth_pixels`` valid pixels give no position (status NO_VALID_DEPTH), never a
guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from pgpt_ros.masks import mask_extent
from pgpt_ros.spatial.position import Position3D, PositionStatus
from pgpt_ros.spatial.sync import DepthFrame

GATE_SIGMAS = 3.0
MIN_GATE_M = 0.05
MAD_TO_SIGMA = 1.4826  # sigma of a normal distribution per unit of median absolute deviation
EXTENT_PERCENTILES = (1.0, 99.0)


class Located(Protocol):
    """What the 3D step reads of a detection (``runtime.PixelDetection`` fits)."""

    box: np.ndarray  # (4,) xyxy in source pixels, exclusive ends
    mask: np.ndarray | None  # (H, W) bool over the source image


def object_pixels(
    box: np.ndarray, mask: np.ndarray | None, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the detection's pixels: its mask's, else those whose centres are in its box."""
    if mask is not None:
        extent = mask_extent(mask)
        if extent is None:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        x0, y0, x1, y1 = extent
        rows, cols = np.nonzero(mask[y0:y1, x0:x1])
        return rows + y0, cols + x0
    # Pixel u covers [u, u + 1) in box coordinates; its centre u + 0.5 must lie inside the box.
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    cols = np.arange(max(0, int(np.ceil(x0 - 0.5))), min(width, int(np.ceil(x1 - 0.5))))
    rows = np.arange(max(0, int(np.ceil(y0 - 0.5))), min(height, int(np.ceil(y1 - 0.5))))
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    return grid_rows.reshape(-1), grid_cols.reshape(-1)


def locate(
    detection: Located, frame: DepthFrame, *, min_depth_pixels: int = 10, keep_points: bool = False
) -> Position3D:
    """The detection's position and extent in the optical frame, or why there is none.

    Arguments:
        detection (Located): its box and (optional) mask in the colour image's pixels.
        frame (DepthFrame): depth and intrinsics matching the colour image (``DepthSync``).
        min_depth_pixels (int): fewest valid depth pixels that make a position.
        keep_points (bool): also return the points used (for rviz markers).

    Returns:
        (Position3D): status OK with position, extent and depth_pixels, or NO_VALID_DEPTH.
    """
    depth = frame.depth
    rows, cols = object_pixels(detection.box, detection.mask, depth.width, depth.height)
    metres = depth.at(rows, cols)
    valid = np.isfinite(metres)
    if int(valid.sum()) < min_depth_pixels:
        return Position3D.unavailable(
            PositionStatus.NO_VALID_DEPTH,
            f"{int(valid.sum())} of the object's {rows.size} pixels have a valid depth "
            f"(in [{depth.min_m}, {depth.max_m}] m); at least {min_depth_pixels} are needed",
        )
    rows, cols, metres = rows[valid], cols[valid], metres[valid]
    median = np.median(metres)
    deviation = np.abs(metres - median)
    gate = max(GATE_SIGMAS * MAD_TO_SIGMA * float(np.median(deviation)), MIN_GATE_M)
    inlier = deviation <= gate  # the median pixel itself always passes
    points = frame.intrinsics.back_project(cols[inlier], rows[inlier], metres[inlier])
    low, high = np.percentile(points, EXTENT_PERCENTILES, axis=0)
    footprint = median * np.array([1 / frame.intrinsics.fx, 1 / frame.intrinsics.fy, 0.0])
    return Position3D(
        PositionStatus.OK,
        position=points.mean(axis=0),
        extent=high - low + footprint,
        depth_pixels=len(points),
        points=points.astype(np.float32) if keep_points else None,
    )


def locate_all(
    detections: Sequence[Located],
    frame: DepthFrame | Position3D,
    *,
    min_depth_pixels: int = 10,
    keep_points: bool = False,
) -> list[Position3D]:
    """``locate`` for each detection; when ``frame`` is a reason (no depth, ...), that for each."""
    if isinstance(frame, Position3D):
        return [frame] * len(detections)
    return [
        locate(d, frame, min_depth_pixels=min_depth_pixels, keep_points=keep_points)
        for d in detections
    ]
