"""A rendered scene: a layout painted on a background, then through a camera.

Painting takes its random numbers in a fixed order whose count never depends on the canvas size
until the very last (per-pixel noise), so one generator state paints the same colours, background
and camera effects on canvases of any aspect ratio (``aspect_set.py`` relies on it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pgpt_ros.data.shapesref.backgrounds import background
from pgpt_ros.data.shapesref.camera import CameraEffects
from pgpt_ros.data.shapesref.config import SceneConfig
from pgpt_ros.data.shapesref.drawing import mask_to_box, shape_mask, visible_masks
from pgpt_ros.data.shapesref.layout import Placement, layout
from pgpt_ros.data.shapesref.vocabulary import COLOURS, random_shade

MIN_SIDE = 16


@dataclass
class ShapeObject:
    """One drawn shape. ``box`` and ``mask`` are in the rendered image's pixels (visible part)."""

    colour: str
    shape: str
    centre: tuple[float, float]  # normalised (x, y) of the drawn shape
    radius: float  # fraction of the short side
    box: np.ndarray  # (4,) float32 pixel xyxy, tight around ``mask``
    mask: np.ndarray  # HxW bool, visible pixels
    # On the reference raster: visible box centre normalised by the short side, visible area.
    ref_centre: tuple[float, float] = (0.0, 0.0)
    ref_area: int = 0
    angle: float = 0.0  # clockwise turn in radians

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    """A rendered scene: HxWx3 uint8 RGB image and its shapes, bottom to top.

    ``frame`` is "shapes", or "photo" for a photo-like frame that holds no shape of the
    vocabulary (``photos.py``).
    """

    image: np.ndarray
    objects: list[ShapeObject]
    seed: tuple[int, ...]
    background: str
    frame: str = "shapes"


def check_canvas(width: int, height: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ValueError(f"image must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got "
                         f"{width}x{height}")  # fmt: skip


def render_scene(rng: np.random.Generator, config: SceneConfig, width: int, height: int,
                 seed: tuple[int, ...]) -> Scene:  # fmt: skip
    """Draws a fresh scene from ``rng``: layout, background, shapes, camera."""
    check_canvas(width, height)
    return paint(rng, layout(rng, config, width, height), config, width, height, seed)


def draw_camera(rng: np.random.Generator, config: SceneConfig) -> CameraEffects | None:
    """The camera effects of one picture; None (and no random number taken) when all are off."""
    if not (config.blur or config.sensor_noise or config.jpeg):
        return None
    return CameraEffects.draw(rng, config.blur, config.sensor_noise, config.jpeg)


def paint(rng: np.random.Generator, placed: list[Placement], config: SceneConfig, width: int,
          height: int, seed: tuple[int, ...]) -> Scene:  # fmt: skip
    """Paints a layout at ``width`` x ``height``; masks and boxes come from the geometry."""
    kind = str(rng.choice(config.backgrounds))
    image = background(rng, kind, width, height)
    full = [shape_mask(p.shape, p.centre, p.radius, width, height, p.angle) for p in placed]
    objects = []
    for item, mask, vis in zip(placed, full, visible_masks(full), strict=True):
        if config.shades:
            colour = random_shade(rng, item.colour)
        else:
            colour = np.array(COLOURS[item.colour], np.float32) + rng.uniform(-12, 12, size=3)
        image[mask] = colour
        if not vis.any():  # only at absurdly small render sizes
            raise ValueError(f"{width}x{height} is too small to show every shape; render larger")
        objects.append(ShapeObject(item.colour, item.shape, item.centre, item.radius,
                                   mask_to_box(vis), vis, item.ref_centre, item.ref_area,
                                   item.angle))  # fmt: skip
    camera = draw_camera(rng, config)
    if kind == "noisy":
        image += rng.normal(0.0, rng.uniform(6, 18), size=image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if camera is not None:
        image = camera.apply(rng, image)
    return Scene(image=image, objects=objects, seed=seed, background=kind)
