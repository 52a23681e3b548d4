"""Where the shapes go: placement, occlusion and the reference geometry expressions are judged on.

Shapes are placed one by one in normalised coordinates (centre x, y in 0..1 of the canvas; radius
a fraction of its short side), and every rule is decided on a reference raster whose short side
is ``REFERENCE_SIDE`` pixels whatever size is rendered. So a seed gives the same scene at 64 x 64
and 512 x 512; the aspect ratio is part of the layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pgpt_ros.data.shapesref.config import SceneConfig
from pgpt_ros.data.shapesref.drawing import (
    half_extent,
    mask_to_box,
    near,
    shape_mask,
    visible_masks,
)

# Layout is judged on this raster (short side, pixels) whatever size is rendered.
REFERENCE_SIDE = 128
# Pixels of the reference raster between two shapes of the same colour (2 px at 64 x 64).
SAME_COLOUR_GAP = 4
PLACEMENT_ATTEMPTS = 30


@dataclass(frozen=True)
class Placement:
    """One shape of a layout.

    Arguments:
        colour, shape (str): its words.
        centre (tuple[float, float]): normalised (x, y) in the canvas.
        radius (float): half-extent, fraction of the short side.
        angle (float): clockwise turn in radians (0: upright).
        ref_centre (tuple[float, float]): centre of its VISIBLE box on the reference raster,
            divided by the raster's short side (so x and y are in the same units).
        ref_area (int): its visible area in reference raster pixels.
    """

    colour: str
    shape: str
    centre: tuple[float, float]
    radius: float
    angle: float = 0.0
    ref_centre: tuple[float, float] = (0.0, 0.0)
    ref_area: int = 0


def reference_size(width: int, height: int) -> tuple[int, int]:
    """The reference raster of a canvas: its aspect ratio, short side ``REFERENCE_SIDE``."""
    side = min(width, height)
    return round(REFERENCE_SIDE * width / side), round(REFERENCE_SIDE * height / side)


def layout(rng: np.random.Generator, config: SceneConfig, width: int,
           height: int) -> list[Placement]:  # fmt: skip
    """Places shapes one by one, rejecting a placement that hides too much of an earlier one or
    touches an earlier shape of its colour; bottom to top, with reference geometry."""
    ref_w, ref_h = reference_size(width, height)
    side = min(width, height)
    count = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    placed: list[Placement] = []
    full: list[np.ndarray] = []  # each shape's mask, and what later shapes leave of it
    visible: list[np.ndarray] = []
    for _ in range(count):
        for _attempt in range(PLACEMENT_ATTEMPTS):
            radius = float(rng.uniform(config.min_radius, config.max_radius))
            rx, ry = radius * side / width, radius * side / height
            centre = (float(rng.uniform(rx, 1 - rx)), float(rng.uniform(ry, 1 - ry)))
            colour = str(rng.choice(config.colours))
            shape = str(rng.choice(config.shapes))
            if config.lookalikes and placed and rng.random() < config.lookalikes:
                original = placed[int(rng.integers(len(placed)))]
                colour, shape = original.colour, original.shape
            angle = float(rng.uniform(0, 2 * np.pi)) if config.rotate and shape != "circle" else 0.0  # fmt: skip
            centre = _inside(shape, angle, centre, rx, ry)
            mask = shape_mask(shape, centre, radius, ref_w, ref_h, angle)
            if _touches_same_colour(mask, colour, placed, full):
                continue
            left = [v & ~mask for v in visible]
            if all(np.count_nonzero(v) >= config.min_visible * np.count_nonzero(f)
                   for v, f in zip(left, full, strict=True)):  # fmt: skip
                placed.append(Placement(colour, shape, centre, radius, angle))
                full.append(mask)
                visible = [*left, mask]
                break
    return _with_reference(placed, visible, ref_w, ref_h)


def _inside(shape: str, angle: float, centre: tuple[float, float], rx: float,
            ry: float) -> tuple[float, float]:  # fmt: skip
    """Moves a turned shape whose corners stick out of the canvas back in (an upright shape fits
    its radius and is never moved)."""
    ex, ey = half_extent(shape, angle)
    x = min(max(centre[0], rx * ex), 1 - rx * ex) if ex > 1 else centre[0]
    y = min(max(centre[1], ry * ey), 1 - ry * ey) if ey > 1 else centre[1]
    return x, y


def _touches_same_colour(mask: np.ndarray, colour: str, placed: list[Placement],
                         full: list[np.ndarray]) -> bool:  # fmt: skip
    """Shapes of one colour never touch: their union would be one blob whose inner boundary
    (which the ground truth draws) no one could see."""
    same = [f for p, f in zip(placed, full, strict=True) if p.colour == colour]
    return bool(same) and near(mask, same, SAME_COLOUR_GAP)


def _with_reference(placed: list[Placement], visible: list[np.ndarray], ref_w: int,
                    ref_h: int) -> list[Placement]:  # fmt: skip
    """The placements with their visible reference geometry."""
    side_ref = min(ref_w, ref_h)
    settled = []
    for item, vis in zip(placed, visible, strict=True):
        x1, y1, x2, y2 = mask_to_box(vis)
        centre = ((x1 + x2) / 2 / side_ref, (y1 + y2) / 2 / side_ref)
        settled.append(dataclasses.replace(item, ref_centre=centre, ref_area=int(vis.sum())))
    return settled


def relayout(placed: list[Placement], config: SceneConfig, width: int,
             height: int) -> list[Placement] | None:  # fmt: skip
    """The same shapes (same normalised centres, radii relative to the short side) on a canvas
    of another aspect ratio, with its reference geometry; None when a rule of ``layout`` breaks
    there (a shape out of the canvas, hidden too much, or touching one of its colour)."""
    ref_w, ref_h = reference_size(width, height)
    full = []
    for p in placed:
        ex, ey = half_extent(p.shape, p.angle)
        rx, ry = p.radius * min(width, height) / width, p.radius * min(width, height) / height
        if not (rx * ex <= p.centre[0] <= 1 - rx * ex and ry * ey <= p.centre[1] <= 1 - ry * ey):
            return None
        full.append(shape_mask(p.shape, p.centre, p.radius, ref_w, ref_h, p.angle))
    visible = visible_masks(full)
    if any(np.count_nonzero(v) < config.min_visible * np.count_nonzero(f)
           for v, f in zip(visible, full, strict=True)):  # fmt: skip
        return None
    for i, p in enumerate(placed):
        if _touches_same_colour(full[i], p.colour, placed[:i], full[:i]):
            return None
    return _with_reference(placed, visible, ref_w, ref_h)
