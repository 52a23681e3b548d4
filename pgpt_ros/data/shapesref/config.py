"""What ShapesRef scenes and commands may contain: ``SceneConfig`` and its named presets.

The defaults are the embedded model's training distribution, draw for draw: a field left at its
default takes no random number, so a seed renders the same sample it rendered before the field
existed. ``PRESETS`` turn the variation a camera and a speaking person bring on:

    >>> SceneConfig.preset("camera")            # aspect ratios, shades, backgrounds, blur, ...
    >>> SceneConfig.preset("varied", max_shapes=6)   # camera + spoken + negatives, overridden
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pgpt_ros.data.shapesref.backgrounds import BACKGROUNDS, DEFAULT_BACKGROUNDS
from pgpt_ros.data.shapesref.vocabulary import COLOURS, PHRASINGS, SHAPES

MAX_OBJECTS = 8  # instance maps are uint8; eight shapes already crowd a 64-pixel canvas


@dataclass(frozen=True)
class SceneConfig:
    """What scenes may contain. The defaults are the embedded model's training distribution.

    Arguments:
        min_shapes, max_shapes (int): number of shapes drawn (fewer when the layout is crowded),
            at most 8.
        colours, shapes (tuple[str]): subsets of ``COLOURS`` and ``SHAPES``.
        min_radius, max_radius (float): shape half-extent as a fraction of the short image side.
        min_visible (float): every shape keeps at least this fraction of its area unoccluded.
        backgrounds (tuple[str]): subset of ``BACKGROUNDS``, drawn uniformly.
        aspects (tuple[str]): canvas aspect ratios "W:H" drawn uniformly per sample when
            ``ShapesRef`` gets one ``image_size`` (the long side); empty: a square canvas.
        shades (bool): each shape a random shade of its colour name (``vocabulary.SHADES``)
            instead of the name's base colour with a small jitter.
        rotate (bool): squares, triangles and stars at any angle, not upright.
        lookalikes (float): probability that a shape after the first repeats the colour and
            shape of an earlier one, so relations and extremes must tell look-alikes apart and
            multi-object lists grow longer.
        long_lists (float): weight of a multi-object command with three or more targets against
            one with two, when a multi-object command is drawn.
        blur, sensor_noise, jpeg (float): probability of each camera effect per image
            (``camera.py`` has their ranges).
        phrasing (Mapping[str, float]): weights of the wording styles of ``PHRASINGS``.
        case, spaces, punctuation (float): probability that a command's letter case changes,
            that it gets stray spaces, that it gets trailing punctuation ("?", "!!", ...).
        unknown_absent (float): share of "absent" commands that name a thing ShapesRef never
            draws ("the cat", "the red car") instead of a shape that is not there.
        photo_absent (float): share of "absent" samples drawn on a photo-like frame that holds
            no shape of the vocabulary (``photos.py``).
        restated_absent (float): share of singular "absent" commands worded as an extreme or a
            relation about what is not there ("the largest purple star", "the purple star left
            of the red circle", "the red circle left of the purple star").
    """

    min_shapes: int = 1
    max_shapes: int = 6
    colours: tuple[str, ...] = tuple(COLOURS)
    shapes: tuple[str, ...] = SHAPES
    min_radius: float = 0.09
    max_radius: float = 0.17
    min_visible: float = 0.7
    backgrounds: tuple[str, ...] = DEFAULT_BACKGROUNDS
    aspects: tuple[str, ...] = ()
    shades: bool = False
    rotate: bool = False
    lookalikes: float = 0.0
    long_lists: float = 1.0
    blur: float = 0.0
    sensor_noise: float = 0.0
    jpeg: float = 0.0
    phrasing: Mapping[str, float] = field(default_factory=lambda: {"template": 1.0})
    case: float = 0.0
    spaces: float = 0.0
    punctuation: float = 0.0
    unknown_absent: float = 0.0
    photo_absent: float = 0.0
    restated_absent: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_shapes <= self.max_shapes <= MAX_OBJECTS:
            raise ValueError(f"need 1 <= min_shapes <= max_shapes <= {MAX_OBJECTS}, got "
                             f"{self.min_shapes}, {self.max_shapes}")  # fmt: skip
        for name, values, known in (("colours", self.colours, COLOURS),
                                    ("shapes", self.shapes, SHAPES),
                                    ("backgrounds", self.backgrounds, BACKGROUNDS)):  # fmt: skip
            unknown = set(values) - set(known)
            if unknown or not values:
                raise ValueError(f"{name} must be a non-empty subset of {tuple(known)}, "
                                 f"got {tuple(values)}")  # fmt: skip
        if not 0.02 <= self.min_radius <= self.max_radius <= 0.4:
            raise ValueError("need 0.02 <= min_radius <= max_radius <= 0.4")
        object.__setattr__(self, "aspects", tuple(str(a) for a in self.aspects))
        for aspect in self.aspects:
            parse_aspect(aspect)
        for name in ("min_visible", "lookalikes", "blur", "sensor_noise", "jpeg", "case",
                     "spaces", "punctuation", "unknown_absent", "photo_absent",
                     "restated_absent"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        if self.long_lists <= 0:
            raise ValueError(f"long_lists is a positive weight, got {self.long_lists}")
        weights = dict(self.phrasing)
        if (set(weights) - set(PHRASINGS) or not weights or min(weights.values()) < 0
                or sum(weights.values()) <= 0):  # fmt: skip
            raise ValueError(f"phrasing must map a subset of {PHRASINGS} to non-negative "
                             f"weights, got {weights!r}")  # fmt: skip
        object.__setattr__(self, "phrasing", weights)  # a copy: the caller's dict may change

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SceneConfig:
        """The config of a named preset (``PRESETS``), with any field overridden."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {tuple(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


def parse_aspect(aspect: str) -> float:
    """ "16:9" -> 16 / 9 (width over height); a ValueError names the expected form."""
    try:
        width, height = (float(part) for part in aspect.split(":"))
    except ValueError:
        raise ValueError(f"an aspect ratio is 'W:H' such as '16:9', got {aspect!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"an aspect ratio needs positive sides, got {aspect!r}")
    return width / height


def canvas_size(aspect: str, long_side: int) -> tuple[int, int]:
    """(width, height) of a canvas of ``aspect`` whose long side is ``long_side`` pixels."""
    ratio = parse_aspect(aspect)
    if ratio >= 1.0:
        return long_side, max(1, round(long_side / ratio))
    return max(1, round(long_side * ratio)), long_side


# The variation a camera brings: every aspect ratio a robot's camera has, landscape and
# portrait; any shade of a colour name; every background; rotated shapes; up to eight shapes
# with look-alikes; and blur, sensor noise and JPEG on part of the images.
CAMERA: dict[str, Any] = {
    "max_shapes": 8,
    "aspects": ("1:1", "4:3", "3:4", "16:9", "9:16"),
    "shades": True,
    "rotate": True,
    "backgrounds": BACKGROUNDS,
    "lookalikes": 0.35,
    "long_lists": 2.0,
    "blur": 0.3,
    "sensor_noise": 0.4,
    "jpeg": 0.4,
}
# The way people speak to robots: polite wrappers, questions, reordered attributes, and some
# loose typing (letter case, spaces, trailing punctuation).
SPOKEN: dict[str, Any] = {
    "phrasing": {"template": 1.0, "spoken": 1.0, "reordered": 1.0},
    "case": 0.15,
    "spaces": 0.1,
    "punctuation": 0.3,
}
# Commands the picture cannot answer: things ShapesRef never draws, and frames without shapes.
NEGATIVES: dict[str, Any] = {"unknown_absent": 0.3, "photo_absent": 0.3}
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "camera": CAMERA,
    "spoken": SPOKEN,
    "negatives": NEGATIVES,
    "varied": {**CAMERA, **SPOKEN, **NEGATIVES},
}
