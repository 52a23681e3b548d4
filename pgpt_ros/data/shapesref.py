"""ShapesRef: seeded procedural scenes of coloured shapes with referring expressions.

It trains the embedded default model, is the CPU benchmark and feeds the ROS demo camera. Every
scene is a pure function of its seed and image size: shapes are placed in normalised coordinates
and their layout (occlusion, relations, extremes) is decided on a fixed reference raster, so the
same seed renders the same scene at 64x64 for training and at 512x512 for a demo window (the
aspect ratio is part of the layout; 640x480 is its own scene).

Vocabulary (also in ``docs/data.md``):

- colours: red, orange, yellow, green, blue, purple;
- shapes: circle, square, triangle, star;
- expression kinds and their words:
  ``attribute`` ("find the red circle", "the circle", "where is the blue shape?"),
  ``relation`` ("the shape left of the blue triangle"; left of / right of / above / below),
  ``extreme`` ("the largest circle"; largest / smallest / leftmost / rightmost / topmost /
  bottommost), ``multi`` ("all green shapes", "find all circles"), ``absent`` ("the purple star"
  when there is none: no target).

Ground truth: per target a tight pixel xyxy box around its VISIBLE mask (after occlusion by the
shapes drawn above it) and that mask. Answer phrases are always "<colour> <shape>"; several
targets are listed left to right.

    >>> from pgpt_ros.data.shapesref import ShapesRef, commands_for
    >>> sample = ShapesRef("train")[0]                      # a Sample, 64x64
    >>> scene = ShapesRef.scene(seed=7, width=640, height=480)
    >>> [e.command for e in commands_for(scene)][:3]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from pgpt_ros.data.sample import Sample

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
BACKGROUNDS: tuple[str, ...] = ("plain", "textured", "noisy")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
EXTREMES: tuple[str, ...] = (
    "largest",
    "smallest",
    "leftmost",
    "rightmost",
    "topmost",
    "bottommost",
)

# Patch classes for the training-only patch classifier: 0 is background, then every
# (colour, shape) pair.
NUM_CLASSES = 1 + len(COLOURS) * len(SHAPES)


def object_class(colour: str, shape: str) -> int:
    """The patch class of a ``colour`` ``shape`` (1 .. NUM_CLASSES - 1)."""
    return 1 + list(COLOURS).index(colour) * len(SHAPES) + SHAPES.index(shape)


# Seeds of different splits never meet: the split id is the first word of the seed sequence.
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
_SCENE_STREAM = 3  # ShapesRef.scene(seed) draws from its own stream, apart from every split

# Layout is judged on this raster (short side, pixels) whatever size is rendered.
REFERENCE_SIDE = 128
# A relation or position extreme must hold by this much (fraction of the short side), and a
# size extreme by this area ratio, so that no expression hinges on a pixel.
POSITION_MARGIN = 0.08
AREA_RATIO = 1.4
# Pixels of the reference raster between two shapes of the same colour (2 px at 64 x 64).
SAME_COLOUR_GAP = 4

_SINGULAR_TEMPLATES = ("{}", "the {}", "find the {}", "where is the {}?", "locate the {}",
                       "show me the {}", "point to the {}")  # fmt: skip
_PLURAL_TEMPLATES = ("all {}", "find all {}", "all the {}", "where are all the {}?",
                     "show me all the {}")  # fmt: skip


@dataclass(frozen=True)
class SceneConfig:
    """What scenes may contain. The defaults are the embedded model's training distribution.

    Arguments:
        min_shapes, max_shapes (int): number of shapes drawn (fewer when the layout is crowded).
        colours, shapes (tuple[str]): subsets of ``COLOURS`` and ``SHAPES``.
        min_radius, max_radius (float): shape half-extent as a fraction of the short image side.
        min_visible (float): every shape keeps at least this fraction of its area unoccluded.
        backgrounds (tuple[str]): subset of ``BACKGROUNDS``.
    """

    min_shapes: int = 1
    max_shapes: int = 6
    colours: tuple[str, ...] = tuple(COLOURS)
    shapes: tuple[str, ...] = SHAPES
    min_radius: float = 0.09
    max_radius: float = 0.17
    min_visible: float = 0.7
    backgrounds: tuple[str, ...] = BACKGROUNDS

    def __post_init__(self) -> None:
        if not 1 <= self.min_shapes <= self.max_shapes:
            raise ValueError(f"need 1 <= min_shapes <= max_shapes, got {self.min_shapes}, "
                             f"{self.max_shapes}")  # fmt: skip
        for name, values, known in (("colours", self.colours, COLOURS),
                                    ("shapes", self.shapes, SHAPES),
                                    ("backgrounds", self.backgrounds, BACKGROUNDS)):  # fmt: skip
            unknown = set(values) - set(known)
            if unknown or not values:
                raise ValueError(f"{name} must be a non-empty subset of {tuple(known)}, "
                                 f"got {tuple(values)}")  # fmt: skip
        if not 0.02 <= self.min_radius <= self.max_radius <= 0.4:
            raise ValueError("need 0.02 <= min_radius <= max_radius <= 0.4")


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

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    """A rendered scene: HxWx3 uint8 RGB image and its shapes, bottom to top."""

    image: np.ndarray
    objects: list[ShapeObject]
    seed: tuple[int, ...]
    background: str


@dataclass(frozen=True)
class Expression:
    """A referring command about a scene and the indices of the objects it refers to."""

    command: str
    kind: str
    targets: tuple[int, ...]
    plural: bool = False  # "all ..." commands
    meta: dict = field(default_factory=dict, compare=False)


# ----------------------------------------------------------------------------- drawing


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = -np.pi / 2 + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


# Unit outlines (radius 1, y pointing down); circles are drawn as ellipses.
_OUTLINES: dict[str, np.ndarray] = {
    "square": np.array([[-0.85, -0.85], [0.85, -0.85], [0.85, 0.85], [-0.85, 0.85]]),
    "triangle": np.array([[0.0, -1.0], [0.95, 0.8], [-0.95, 0.8]]),
    "star": _star(),
}


def _shape_mask(shape: str, centre: tuple[float, float], radius: float, width: int,
                height: int) -> np.ndarray:  # fmt: skip
    """Rasterises one shape at its full extent; pixel centres sit at half-integer coordinates."""
    side = min(width, height)
    cx, cy = centre[0] * width, centre[1] * height
    r = radius * side
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse([cx - r - 0.5, cy - r - 0.5, cx + r - 0.5, cy + r - 0.5], fill=1)
    else:
        outline = _OUTLINES[shape] * r + np.array([cx - 0.5, cy - 0.5])
        draw.polygon([tuple(p) for p in outline], fill=1)
    return np.asarray(canvas, dtype=bool)


def _visible_masks(full: list[np.ndarray]) -> list[np.ndarray]:
    """Each mask minus everything drawn after it (later shapes lie on top)."""
    visible = []
    above = np.zeros_like(full[0]) if full else None
    for mask in reversed(full):
        visible.append(mask & ~above)
        above = above | mask
    return visible[::-1]


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight pixel xyxy box around a non-empty mask (x2, y2 are exclusive pixel edges)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("cannot box an empty mask")
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
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


def _reference_size(width: int, height: int) -> tuple[int, int]:
    side = min(width, height)
    return round(REFERENCE_SIDE * width / side), round(REFERENCE_SIDE * height / side)


def _background(rng: np.random.Generator, kind: str, width: int, height: int) -> np.ndarray:
    """Low-saturation backgrounds so that a shape's colour name stays unambiguous."""
    base = rng.uniform(35, 200)
    tint = rng.uniform(-8, 8, size=3)
    image = np.full((height, width, 3), base, dtype=np.float32) + tint
    if kind == "textured":
        side = min(width, height)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / side
        period = rng.uniform(0.06, 0.25)
        contrast = rng.uniform(15, 40) * rng.choice([-1.0, 1.0])
        pattern = rng.integers(3)
        if pattern == 0:  # checker board
            field_ = ((xs // period + ys // period) % 2).astype(np.float32)
        elif pattern == 1:  # diagonal stripes
            field_ = (((xs + ys) / period) % 1.0 < 0.5).astype(np.float32)
        else:  # gradient
            angle = rng.uniform(0, 2 * np.pi)
            field_ = xs * np.cos(angle) + ys * np.sin(angle)
            field_ = (field_ - field_.min()) / max(float(np.ptp(field_)), 1e-6)
        image += contrast * field_[..., None]
    return image


# ----------------------------------------------------------------------------- scenes


def _layout(rng: np.random.Generator, config: SceneConfig, width: int, height: int) -> list[dict]:
    """Places shapes one by one, rejecting a placement that hides too much of an earlier one."""
    ref_w, ref_h = _reference_size(width, height)
    side = min(width, height)
    count = int(rng.integers(config.min_shapes, config.max_shapes + 1))
    placed: list[dict] = []
    full: list[np.ndarray] = []
    for _ in range(count):
        for _attempt in range(30):
            radius = float(rng.uniform(config.min_radius, config.max_radius))
            rx, ry = radius * side / width, radius * side / height
            centre = (float(rng.uniform(rx, 1 - rx)), float(rng.uniform(ry, 1 - ry)))
            colour = str(rng.choice(config.colours))
            shape = str(rng.choice(config.shapes))
            mask = _shape_mask(shape, centre, radius, ref_w, ref_h)
            # Shapes of one colour never touch: their union would be one blob whose inner
            # boundary (which the ground truth draws) no one could see.
            near = _dilate(mask, SAME_COLOUR_GAP)
            if any(
                p["colour"] == colour and (near & f).any()
                for p, f in zip(placed, full, strict=True)
            ):
                continue
            visible = _visible_masks([*full, mask])
            if all(
                v.sum() >= config.min_visible * f.sum() for v, f in zip(visible, full, strict=False)
            ):
                placed.append(dict(colour=colour, shape=shape, centre=centre, radius=radius))
                full.append(mask)
                break
    side_ref = min(ref_w, ref_h)
    for item, vis in zip(placed, _visible_masks(full), strict=True):
        x1, y1, x2, y2 = mask_to_box(vis)
        item["ref_centre"] = ((x1 + x2) / 2 / side_ref, (y1 + y2) / 2 / side_ref)
        item["ref_area"] = int(vis.sum())
    return placed


def render_scene(rng: np.random.Generator, config: SceneConfig, width: int, height: int,
                 seed: tuple[int, ...]) -> Scene:  # fmt: skip
    """Draws a fresh scene from ``rng``: layout, background, shapes, optional noise."""
    if width < 16 or height < 16:
        raise ValueError(f"image must be at least 16x16 pixels, got {width}x{height}")
    placed = _layout(rng, config, width, height)
    background = str(rng.choice(config.backgrounds))
    image = _background(rng, background, width, height)
    full = [_shape_mask(p["shape"], p["centre"], p["radius"], width, height) for p in placed]
    objects = []
    for item, mask, vis in zip(placed, full, _visible_masks(full), strict=True):
        colour = np.array(COLOURS[item["colour"]], np.float32) + rng.uniform(-12, 12, size=3)
        image[mask] = colour
        if not vis.any():  # only at absurdly small render sizes
            raise ValueError(f"{width}x{height} is too small to show every shape; render larger")
        objects.append(ShapeObject(item["colour"], item["shape"], item["centre"], item["radius"],
                                   mask_to_box(vis), vis, item["ref_centre"], item["ref_area"]))  # fmt: skip
    if background == "noisy":
        image += rng.normal(0.0, rng.uniform(6, 18), size=image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Scene(image=image, objects=objects, seed=seed, background=background)


# ----------------------------------------------------------------------------- expressions


def _matches(obj: ShapeObject, colour: str | None, shape: str | None) -> bool:
    return (colour is None or obj.colour == colour) and (shape is None or obj.shape == shape)


def _describe(colour: str | None, shape: str | None, plural: bool = False) -> str:
    noun = shape or "shape"
    return " ".join(filter(None, [colour, noun + ("s" if plural else "")]))


def _descriptions(objects: Sequence[ShapeObject]) -> list[tuple[str | None, str | None]]:
    """Every (colour, shape) description that fits at least one object; None is "any"."""
    found = {(None, None)}
    for o in objects:
        found |= {(o.colour, o.shape), (None, o.shape), (o.colour, None)}
    return sorted(found, key=lambda d: (d[0] or "", d[1] or ""))


def relation_holds(relation: str, target: tuple[float, float], reference: tuple[float, float],
                   margin: float = POSITION_MARGIN, dominance: float = 1.0) -> bool:  # fmt: skip
    """Whether ``target`` is ``relation`` the reference; centres in the same (isotropic) units.

    The relation's axis must dominate: "left of" means mostly left (the leftward offset at least
    ``dominance`` times the vertical one) and by at least ``margin``.
    """
    dx, dy = target[0] - reference[0], target[1] - reference[1]
    along, across = {"left of": (-dx, dy), "right of": (dx, dy),
                     "above": (-dy, dx), "below": (dy, dx)}[relation]  # fmt: skip
    return along >= margin and along >= dominance * abs(across)


def relation_nearly_holds(relation: str, target: tuple[float, float],
                          reference: tuple[float, float]) -> bool:  # fmt: skip
    """A looser test: an object a person might still call ``relation`` the reference.

    A relation expression's target passes ``relation_holds``; every other object of the named kind
    must fail this one, so no expression hinges on a few pixels or a 45-degree judgement call.
    """
    return relation_holds(relation, target, reference, POSITION_MARGIN / 2, dominance=0.7)


def _attribute(objects: Sequence[ShapeObject]) -> list[Expression]:
    found = []
    for colour, shape in _descriptions(objects):
        hits = [i for i, o in enumerate(objects) if _matches(o, colour, shape)]
        if (colour or shape) and len(hits) == 1:
            found.append(Expression(_describe(colour, shape), "attribute", tuple(hits)))
    return found


def _multi(objects: Sequence[ShapeObject]) -> list[Expression]:
    found = []
    for colour, shape in _descriptions(objects):
        hits = [i for i, o in enumerate(objects) if _matches(o, colour, shape)]
        if len(hits) >= 2:
            found.append(Expression(_describe(colour, shape, True), "multi", tuple(hits), True))
    return found


def _absent(objects: Sequence[ShapeObject], config: SceneConfig) -> list[Expression]:
    found = []
    candidates = [(c, s) for c in config.colours for s in config.shapes]
    candidates += [(None, s) for s in config.shapes] + [(c, None) for c in config.colours]
    for colour, shape in candidates:
        if not any(_matches(o, colour, shape) for o in objects):
            for plural in (False, True):  # "the purple star", "all purple stars"
                found.append(Expression(_describe(colour, shape, plural), "absent", (), plural))
    return found


def _extreme(objects: Sequence[ShapeObject]) -> list[Expression]:
    keys = {
        "leftmost": lambda o: -o.ref_centre[0], "rightmost": lambda o: o.ref_centre[0],
        "topmost": lambda o: -o.ref_centre[1], "bottommost": lambda o: o.ref_centre[1],
    }  # fmt: skip
    found = []
    for colour, shape in _descriptions(objects):
        group = [i for i, o in enumerate(objects) if _matches(o, colour, shape)]
        if len(group) < 2:
            continue
        for word in EXTREMES:
            if word in keys:
                ranked = sorted(group, key=lambda i: keys[word](objects[i]), reverse=True)
                first, second = (keys[word](objects[i]) for i in ranked[:2])
                clear = first - second >= POSITION_MARGIN
            else:  # the winner's area differs from the runner-up's by AREA_RATIO
                largest = word == "largest"
                ranked = sorted(group, key=lambda i: objects[i].ref_area, reverse=largest)
                first, second = (objects[i].ref_area for i in ranked[:2])
                clear = max(first, second) >= AREA_RATIO * min(first, second)
            if clear:
                text = f"{word} {_describe(colour, shape)}"
                found.append(Expression(text, "extreme", (ranked[0],)))
    return found


def _relation(objects: Sequence[ShapeObject]) -> list[Expression]:
    """ "the <target> <relation> the <reference>": the reference has a unique description, and the
    target description alone is ambiguous but the relation singles out one object."""
    found = []
    descriptions = _descriptions(objects)
    for ref_index, ref in enumerate(objects):
        ref_descs = [d for d in descriptions if (d[0] or d[1]) and _matches(ref, *d)
                     and sum(_matches(o, *d) for o in objects) == 1]  # fmt: skip
        if not ref_descs:
            continue
        ref_desc = max(ref_descs, key=lambda d: (d[0] is not None) + (d[1] is not None))
        others = [i for i in range(len(objects)) if i != ref_index]
        for relation in RELATIONS:
            for colour, shape in descriptions:
                fits = [i for i in others if _matches(objects[i], colour, shape)]
                hits = [
                    i
                    for i in fits
                    if relation_holds(relation, objects[i].ref_centre, ref.ref_centre)
                ]
                near = [i for i in fits
                        if relation_nearly_holds(relation, objects[i].ref_centre, ref.ref_centre)]  # fmt: skip
                if len(fits) >= 2 and len(hits) == 1 and near == hits:
                    text = f"{_describe(colour, shape)} {relation} the {_describe(*ref_desc)}"
                    meta = {"relation": relation, "reference": ref_index}
                    found.append(Expression(text, "relation", (hits[0],), False, meta))
    return found


def _expressions(scene: Scene, kind: str, config: SceneConfig) -> list[Expression]:
    objects = scene.objects
    if kind == "attribute":
        return _attribute(objects)
    if kind == "relation":
        return _relation(objects)
    if kind == "extreme":
        return _extreme(objects)
    if kind == "multi":
        return _multi(objects)
    if kind == "absent":
        return _absent(objects, config)
    raise ValueError(f"unknown expression kind {kind!r}; choose from {KINDS}")


def _phrase_command(rng: np.random.Generator, expression: Expression) -> Expression:
    """Wraps the bare description in a randomly chosen command template."""
    templates = _PLURAL_TEMPLATES if expression.plural else _SINGULAR_TEMPLATES
    command = templates[int(rng.integers(len(templates)))].format(expression.command)
    return Expression(command, expression.kind, expression.targets, expression.plural,
                      expression.meta)  # fmt: skip


def commands_for(scene: Scene, config: SceneConfig | None = None,
                 kinds: Sequence[str] = KINDS) -> list[Expression]:  # fmt: skip
    """Every expression of the given kinds that is true of ``scene``, as "the ..." commands.

    Multi-object targets are listed left to right, the order answers use.
    """
    config = config or SceneConfig()
    found = []
    for kind in kinds:
        for e in _expressions(scene, kind, config):
            text = ("all " if e.plural else "the ") + e.command
            targets = _left_to_right(scene, e.targets)
            found.append(Expression(text, e.kind, targets, e.plural, e.meta))
    return found


def _left_to_right(scene: Scene, targets: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(targets, key=lambda i: (scene.objects[i].ref_centre, i)))


def to_sample(scene: Scene, expression: Expression) -> Sample:
    """The ``Sample`` for one expression; ``meta`` describes every object for checking."""
    targets = _left_to_right(scene, expression.targets)
    h, w = scene.image.shape[:2]
    objects = [{"name": o.name, "colour": o.colour, "shape": o.shape, "box": o.box.tolist(),
                "ref_centre": list(o.ref_centre), "ref_area": o.ref_area} for o in scene.objects]  # fmt: skip
    class_map = np.zeros(scene.image.shape[:2], np.uint8)
    instance_map = np.zeros(scene.image.shape[:2], np.uint8)
    for i, o in enumerate(scene.objects):
        class_map[o.mask] = object_class(o.colour, o.shape)
        instance_map[o.mask] = i + 1
    return Sample(
        image=scene.image,
        command=expression.command,
        phrases=[scene.objects[i].name for i in targets],
        boxes=np.array([scene.objects[i].box for i in targets], np.float32).reshape(-1, 4),
        masks=np.array([scene.objects[i].mask for i in targets], bool).reshape(-1, h, w),
        kind=expression.kind,
        meta={
            "seed": list(scene.seed),
            "background": scene.background,
            "objects": objects,
            "targets": list(targets),
            **expression.meta,
        },  # fmt: skip
        class_map=class_map,
        instance_map=instance_map,
    )


# ----------------------------------------------------------------------------- dataset


class ShapesRef:
    """The dataset: ``len(ds)`` samples, each a pure function of (split, index, seed, size).

    Arguments:
        split (str): "train", "val" or "test"; their seed streams are disjoint.
        image_size (int | tuple[int, int]): square side, or (width, height).
        length (int): number of samples; train is usually indexed with a running step counter.
        kinds (dict[str, float] | Sequence[str]): expression kinds and their sampling weights.
        config (SceneConfig): what scenes may contain.
        seed (int): a further seed word, to draw a different dataset of the same split.
    """

    def __init__(self, split: str = "train", image_size: int | tuple[int, int] = 64,
                 length: int = 10_000, kinds: dict[str, float] | Sequence[str] = KINDS,
                 config: SceneConfig | None = None, seed: int = 0) -> None:  # fmt: skip
        if split not in SPLIT_IDS:
            raise ValueError(f"split must be one of {tuple(SPLIT_IDS)}, got {split!r}")
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        weights = kinds if isinstance(kinds, dict) else {k: 1.0 for k in kinds}
        unknown = set(weights) - set(KINDS)
        if unknown or not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ValueError(f"kinds must map a subset of {KINDS} to non-negative weights, "
                             f"got {kinds!r}")  # fmt: skip
        self.split = split
        self.width, self.height = int(image_size[0]), int(image_size[1])
        self.length = int(length)
        self.kinds = tuple(weights)
        total = sum(weights.values())
        self.kind_p = np.array([weights[k] / total for k in self.kinds])
        self.config = config or SceneConfig()
        self.seed = int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        return self.commands(index, 1)[0]

    def commands(self, index: int, count: int) -> list[Sample]:
        """Up to ``count`` different commands about one scene (for ``Collator.pack``); the first
        is ``self[index]``.

        The first command's kind is drawn by the kind weights and the scene redrawn until it
        supports it (a relation needs two shapes, ...); the others are drawn by the same weights
        among the kinds the scene supports. The samples share one image array.
        """
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        key = (SPLIT_IDS[self.split], self.seed, int(index))
        rng = np.random.default_rng(key)
        kind = str(rng.choice(self.kinds, p=self.kind_p))
        for _ in range(100):
            scene = render_scene(rng, self.config, self.width, self.height, key)
            pools = {kind: _expressions(scene, kind, self.config)}
            if pools[kind]:
                break
        else:
            raise RuntimeError(f"no scene supports {kind!r} expressions with {self.config}")
        if count > 1:
            pools |= {k: _expressions(scene, k, self.config) for k in self.kinds if k != kind}
        samples = []
        while True:
            pool = pools[kind]
            expression = pool.pop(int(rng.integers(len(pool))))
            samples.append(to_sample(scene, _phrase_command(rng, expression)))
            left = [i for i, k in enumerate(self.kinds) if pools.get(k) and self.kind_p[i] > 0]
            if len(samples) == count or not left:
                return samples
            weights = self.kind_p[left] / self.kind_p[left].sum()
            kind = self.kinds[int(rng.choice(left, p=weights))]

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(self.length))

    @staticmethod
    def scene(seed: int, width: int = 640, height: int = 480,
              config: SceneConfig | None = None) -> Scene:  # fmt: skip
        """A scene for the demo camera, independent of every split's samples."""
        key = (_SCENE_STREAM, int(seed))
        return render_scene(np.random.default_rng(key), config or SceneConfig(), width, height, key)
