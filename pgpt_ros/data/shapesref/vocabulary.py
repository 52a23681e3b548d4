"""The words ShapesRef speaks and the colours behind its colour names.

Every colour name has a base colour (the default scenes draw it with a small jitter) and a range
of shades in HSV (the camera preset draws any shade in it). The ranges keep every shade of a name
nearer in CIELAB to its own base colour than to any other name's, and clear of the muted colours
that backgrounds and photo-like clutter use, so a colour name stays true of every shade
(``tests/test_shapesref_variation.py`` checks both).
"""

from __future__ import annotations

import colorsys
from typing import NamedTuple

import numpy as np

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 45, 40),
    "orange": (245, 140, 25),
    "yellow": (235, 220, 40),
    "green": (45, 170, 65),
    "blue": (45, 95, 225),
    "purple": (150, 65, 205),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
KINDS: tuple[str, ...] = ("attribute", "relation", "extreme", "multi", "absent")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
EXTREMES: tuple[str, ...] = (
    "largest",
    "smallest",
    "leftmost",
    "rightmost",
    "topmost",
    "bottommost",
)

# Wording styles of a command (``phrasing.py``).
PHRASINGS: tuple[str, ...] = ("template", "spoken", "reordered")

# Things a robot may be asked about that ShapesRef never draws (singular -> plural). Commands
# about them are out-of-domain negatives: the answer is "not found". Nothing round, boxy or
# pointed (ball, box, sign), which a shape could be taken for.
UNKNOWN_THINGS: dict[str, str] = {
    "cat": "cats",
    "dog": "dogs",
    "cup": "cups",
    "mug": "mugs",
    "bottle": "bottles",
    "car": "cars",
    "person": "people",
    "chair": "chairs",
    "laptop": "laptops",
    "book": "books",
    "phone": "phones",
    "shoe": "shoes",
    "banana": "bananas",
    "plant": "plants",
    "bird": "birds",
    "bag": "bags",
}

# Patch classes for the training-only patch classifier: 0 is background, then every
# (colour, shape) pair.
NUM_CLASSES = 1 + len(COLOURS) * len(SHAPES)


def object_class(colour: str, shape: str) -> int:
    """The patch class of a ``colour`` ``shape`` (1 .. NUM_CLASSES - 1)."""
    return 1 + list(COLOURS).index(colour) * len(SHAPES) + SHAPES.index(shape)


class ShadeRange(NamedTuple):
    """The shades one colour name covers: hue in degrees (may wrap past 360), saturation and
    value in [0, 1], each as (low, high)."""

    hue: tuple[float, float]
    saturation: tuple[float, float]
    value: tuple[float, float]


SHADES: dict[str, ShadeRange] = {
    "red": ShadeRange((-8.0, 4.0), (0.74, 0.92), (0.70, 0.92)),
    "orange": ShadeRange((27.0, 34.0), (0.84, 0.96), (0.92, 1.0)),
    "yellow": ShadeRange((51.0, 58.0), (0.72, 0.90), (0.86, 0.98)),
    "green": ShadeRange((105.0, 145.0), (0.62, 0.85), (0.50, 0.78)),
    "blue": ShadeRange((208.0, 225.0), (0.70, 0.88), (0.75, 0.95)),
    "purple": ShadeRange((274.0, 290.0), (0.58, 0.78), (0.66, 0.86)),
}

# Background and clutter colours stay below this chroma (max - min channel, 0..255); every shade
# of a colour name lies well above it (the least colourful, a dark green, at about 79).
MUTED_CHROMA = 48.0


def hsv_rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    """RGB (3,) float32 in 0..255 of a point of HSV space (hue in degrees)."""
    r, g, b = colorsys.hsv_to_rgb((hue % 360.0) / 360.0, saturation, value)
    return np.array([r, g, b], np.float32) * 255.0


def random_shade(rng: np.random.Generator, name: str) -> np.ndarray:
    """A random shade of colour ``name``: RGB (3,) float32 in 0..255."""
    shades = SHADES[name]
    hue = rng.uniform(*shades.hue)
    saturation = rng.uniform(*shades.saturation)
    value = rng.uniform(*shades.value)
    return hsv_rgb(hue, saturation, value)
