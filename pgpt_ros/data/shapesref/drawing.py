"""Shape outlines, their rasterised masks and what occlusion leaves visible.

A shape is a unit outline scaled by its radius (a fraction of the short image side), turned by
its angle and placed at its normalised centre. Ground truth comes from these masks, never from
the painted pixels, so it stays exact under blur, noise and JPEG.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


# Unit outlines (radius 1, y pointing down); circles are drawn as ellipses.
OUTLINES: dict[str, np.ndarray] = {
    "square": np.array([[-0.85, -0.85], [0.85, -0.85], [0.85, 0.85], [-0.85, 0.85]]),
    "triangle": np.array([[0.0, -1.0], [0.95, 0.8], [-0.95, 0.8]]),
    "star": _star(),
}


def outline(shape: str, angle: float = 0.0) -> np.ndarray:
    """The (K, 2) unit outline of a polygonal ``shape`` turned clockwise by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return OUTLINES[shape] @ np.array([[c, s], [-s, c]])


def half_extent(shape: str, angle: float = 0.0) -> tuple[float, float]:
    """Half width and half height of the turned shape, in units of its radius."""
    if shape == "circle":
        return 1.0, 1.0
    points = np.abs(outline(shape, angle))
    return float(points[:, 0].max()), float(points[:, 1].max())


def shape_mask(shape: str, centre: tuple[float, float], radius: float, width: int, height: int,
               angle: float = 0.0) -> np.ndarray:  # fmt: skip
    """Rasterises one shape at its full extent: HxW bool; pixel centres at half-integers.

    Arguments:
        shape (str): one of ``SHAPES``.
        centre (tuple[float, float]): normalised (x, y) in the canvas.
        radius (float): half-extent as a fraction of the short side.
        width, height (int): the canvas in pixels.
        angle (float): clockwise turn in radians (circles ignore it).
    """
    side = min(width, height)
    cx, cy = centre[0] * width, centre[1] * height
    r = radius * side
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse([cx - r - 0.5, cy - r - 0.5, cx + r - 0.5, cy + r - 0.5], fill=1)
    else:
        points = outline(shape, angle) * r + np.array([cx - 0.5, cy - 0.5])
        draw.polygon([tuple(p) for p in points], fill=1)
    return np.asarray(canvas, dtype=bool)


def visible_masks(full: list[np.ndarray]) -> list[np.ndarray]:
    """Each mask minus everything drawn after it (later shapes lie on top)."""
    visible = []
    above = np.zeros_like(full[0]) if full else None
    for mask in reversed(full):
        visible.append(mask & ~above)
        above = above | mask
    return visible[::-1]


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight pixel xyxy box around a non-empty mask (x2, y2 are exclusive pixel edges)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(cols) == 0:
        raise ValueError("cannot box an empty mask")
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """Grows a boolean mask by ``steps`` pixels (4-neighbourhood)."""
    grown = mask.copy()
    for _ in range(steps):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        step[:, 1:] |= grown[:, :-1]
        step[:, :-1] |= grown[:, 1:]
        grown = step
    return grown


def near(mask: np.ndarray, others: list[np.ndarray], gap: int) -> bool:
    """Whether any of ``others`` (masks of the same canvas) comes within ``gap`` pixels
    (4-neighbourhood steps) of a non-empty ``mask``; the same as dilating the whole canvas,
    computed on the box that dilation can reach."""
    x1, y1, x2, y2 = (int(v) for v in mask_to_box(mask))
    rows = slice(max(y1 - gap, 0), y2 + gap)
    cols = slice(max(x1 - gap, 0), x2 + gap)
    grown = dilate(mask[rows, cols], gap)
    return any((grown & other[rows, cols]).any() for other in others)
