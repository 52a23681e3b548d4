"""``ShapesRef``: the dataset, one ``Sample`` per index, each a pure function of its seed words.

Sample ``i`` of a split is drawn from ``numpy.random.default_rng((split id, dataset seed, i))``,
so splits never share a scene, every machine gets the same sample, and training needs no loader
state. ``ShapesRef.scene(seed)`` draws from yet another stream, for the demo camera.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from pgpt_ros.data.sample import Sample
from pgpt_ros.data.shapesref.config import SceneConfig, canvas_size
from pgpt_ros.data.shapesref.expressions import (
    Expression,
    expressions,
    left_to_right,
    restate_absent,
)
from pgpt_ros.data.shapesref.photos import photo_scene
from pgpt_ros.data.shapesref.phrasing import evaluation_variants, phrase
from pgpt_ros.data.shapesref.scene import Scene, render_scene
from pgpt_ros.data.shapesref.vocabulary import KINDS, object_class

# Seeds of different splits never meet: the split id is the first word of the seed sequence.
SPLIT_IDS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
SCENE_STREAM = 3  # ShapesRef.scene(seed) draws from its own stream, apart from every split


def check_split(split: str) -> None:
    if split not in SPLIT_IDS:
        raise ValueError(f"split must be one of {tuple(SPLIT_IDS)}, got {split!r}")


def kind_weights(kinds: dict[str, float] | Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Kind names and their sampling probabilities; a sequence weighs every kind the same."""
    weights = kinds if isinstance(kinds, dict) else {k: 1.0 for k in kinds}
    unknown = set(weights) - set(KINDS)
    if unknown or not weights or min(weights.values()) < 0 or sum(weights.values()) <= 0:
        raise ValueError(f"kinds must map a subset of {KINDS} to non-negative weights, "
                         f"got {kinds!r}")  # fmt: skip
    total = sum(weights.values())
    return tuple(weights), np.array([weights[k] / total for k in weights])


def to_sample(scene: Scene, expression: Expression) -> Sample:
    """The ``Sample`` for one expression; ``meta`` describes every object for checking.

    ``meta`` holds the seed, the background, every object, the targets and the expression's own
    meta (a relation's word and reference; ``"absent": "unknown"`` for a thing ShapesRef never
    draws), and ``"frame": "photo"`` for a photo-like frame without shapes.
    """
    targets = left_to_right(scene, expression.targets)
    h, w = scene.image.shape[:2]
    objects = [{"name": o.name, "colour": o.colour, "shape": o.shape, "box": o.box.tolist(),
                "ref_centre": list(o.ref_centre), "ref_area": o.ref_area} for o in scene.objects]  # fmt: skip
    class_map = np.zeros(scene.image.shape[:2], np.uint8)
    instance_map = np.zeros(scene.image.shape[:2], np.uint8)
    for i, o in enumerate(scene.objects):
        class_map[o.mask] = object_class(o.colour, o.shape)
        instance_map[o.mask] = i + 1
    frame = {"frame": scene.frame} if scene.frame != "shapes" else {}
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
            **frame,
            **expression.meta,
        },  # fmt: skip
        class_map=class_map,
        instance_map=instance_map,
    )


def draw_expression(rng: np.random.Generator, pool: list[Expression],
                    config: SceneConfig) -> Expression:  # fmt: skip
    """Takes one expression out of ``pool``: uniformly, or weighted by ``config.long_lists`` (multi
    commands of three or more targets) and ``config.unknown_absent`` (absent commands about
    things ShapesRef never draws, as a share of all absent ones)."""
    weights = np.ones(len(pool))
    long = np.array([e.kind == "multi" and len(e.targets) >= 3 for e in pool])
    weights[long] = config.long_lists
    unknown = np.array([e.meta.get("absent") == "unknown" for e in pool])
    if unknown.any() and not unknown.all():
        weights[unknown] = config.unknown_absent / unknown.sum()
        weights[~unknown] = (1 - config.unknown_absent) / (~unknown).sum()
    if np.all(weights == weights[0]):
        index = int(rng.integers(len(pool)))
    else:
        index = int(rng.choice(len(pool), p=weights / weights.sum()))
    return pool.pop(index)


class ShapesRef:
    """The dataset: ``len(ds)`` samples, each a pure function of (split, index, seed, canvas).

    Arguments:
        split (str): "train", "val" or "test"; their seed streams are disjoint.
        image_size (int | tuple[int, int]): an int is a square side, or, when ``config.aspects``
            lists aspect ratios, the long side of a canvas of an aspect drawn per sample (64 at
            16:9 is 64 x 36: nothing is resampled); a tuple is the exact (width, height).
        length (int): number of samples; train is usually indexed with a running step counter.
        kinds (dict[str, float] | Sequence[str]): expression kinds and their sampling weights.
        config (SceneConfig): what scenes and commands may contain.
        seed (int): a further seed word, to draw a different dataset of the same split.

    ``width`` and ``height`` are the canvas (with drawn aspects, the square it fits in).
    """

    def __init__(self, split: str = "train", image_size: int | tuple[int, int] = 64,
                 length: int = 10_000, kinds: dict[str, float] | Sequence[str] = KINDS,
                 config: SceneConfig | None = None, seed: int = 0) -> None:  # fmt: skip
        check_split(split)
        self.config = config or SceneConfig()
        self.aspects = self.config.aspects if isinstance(image_size, int) else ()
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        self.split = split
        self.width, self.height = int(image_size[0]), int(image_size[1])
        self.length = int(length)
        self.kinds, self.kind_p = kind_weights(kinds)
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
        among the kinds the scene supports. The samples share one image array. An "absent" first
        command is about a photo-like frame with probability ``config.photo_absent``; such a
        frame supports only absent commands.
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        rng, scene, kind, pools = self._scene(index, more_kinds=count > 1)
        samples = []
        while True:
            expression = self._draw(rng, pools[kind], scene)
            samples.append(to_sample(scene, phrase(rng, expression, self.config)))
            left = [i for i, k in enumerate(self.kinds) if pools.get(k) and self.kind_p[i] > 0]
            if len(samples) == count or not left:
                return samples
            weights = self.kind_p[left] / self.kind_p[left].sum()
            kind = self.kinds[int(rng.choice(left, p=weights))]

    def variants(self, index: int) -> dict[str, Sample]:
        """``self[index]``'s scene and expression in every evaluation wording
        (``phrasing.EVALUATION_VARIANTS``: plain, upper, spaces, polite, reordered where it
        applies, exclaim, question), to measure each against the plain one on the same data."""
        rng, scene, kind, pools = self._scene(index, more_kinds=False)
        expression = self._draw(rng, pools[kind], scene)
        return {name: to_sample(scene, e) for name, e in evaluation_variants(expression).items()}

    def _draw(self, rng: np.random.Generator, pool: list[Expression], scene: Scene) -> Expression:
        """One expression out of ``pool``; a singular absent one restated as a relation or an
        extreme with probability ``config.restated_absent`` (no number drawn when it is 0)."""
        expression = draw_expression(rng, pool, self.config)
        restate = self.config.restated_absent
        if (restate and expression.kind == "absent" and not expression.plural
                and rng.random() < restate):  # fmt: skip
            expression = restate_absent(rng, expression, scene.objects, self.config)
        return expression

    def _scene(self, index: int, more_kinds: bool) -> tuple[np.random.Generator, Scene, str, dict]:
        """The generator, scene, first kind and expression pools of sample ``index``: the first
        kind's pool, and with ``more_kinds`` every other kind's."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        key = (SPLIT_IDS[self.split], self.seed, int(index))
        rng = np.random.default_rng(key)
        config = self.config
        kind = str(rng.choice(self.kinds, p=self.kind_p))
        width, height = self.width, self.height
        if self.aspects:
            width, height = canvas_size(str(rng.choice(self.aspects)), self.width)
        photo = kind == "absent" and config.photo_absent and rng.random() < config.photo_absent
        for _ in range(100):
            if photo:
                scene = photo_scene(rng, config, width, height, key)
            else:
                scene = render_scene(rng, config, width, height, key)
            pools = {kind: expressions(scene, kind, config)}
            if pools[kind]:
                break
        else:
            raise RuntimeError(f"no scene supports {kind!r} expressions with {config}")
        if more_kinds:
            pools |= {k: expressions(scene, k, config) for k in self.kinds if k != kind}
        return rng, scene, kind, pools

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(self.length))

    @staticmethod
    def scene(seed: int, width: int = 640, height: int = 480,
              config: SceneConfig | None = None) -> Scene:  # fmt: skip
        """A scene for the demo camera, independent of every split's samples."""
        key = (SCENE_STREAM, int(seed))
        return render_scene(np.random.default_rng(key), config or SceneConfig(), width, height, key)
