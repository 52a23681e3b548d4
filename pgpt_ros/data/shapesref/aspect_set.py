"""The same scenes and commands at several aspect ratios, to measure what the aspect alone costs.

``AspectSet(...)[i]`` is a dict aspect -> ``Sample``: one scene drawn on canvases of each aspect
(long side ``long_side``), one command, the same target objects. The rule that makes them "the
same scene":

1. The layout is drawn for a square canvas, so every shape fits any canvas: normalised centres
   stay put (x scales with the width, y with the height) and radii stay a fraction of the short
   side. Against the square, a wider or taller canvas only moves shapes apart along its long axis.
2. Each aspect's canvas is checked against the layout rules (inside the canvas, at least
   ``min_visible`` of every shape visible, shapes of one colour apart) and its expressions are
   recomputed from its own reference geometry; a scene that breaks a rule at any aspect is
   redrawn.
3. A command is kept only if it is true at EVERY aspect with the same targets in the same answer
   order (stretching one axis can make a relation or an extreme hold by too small a margin, or
   make a look-alike qualify); the command is worded once and shared.
4. Background, shade of each shape and camera effects come from one generator state replayed for
   every canvas, so they match (per-pixel noise differs, as between two frames of a camera).

The scenes are the split's (split id first in the seed words) but a stream of their own, so they
are not ``ShapesRef``'s samples of the same index. Photo-like frames (``photo_absent``) are left
out: they hold no layout to compare.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pgpt_ros.data.sample import Sample
from pgpt_ros.data.shapesref.config import SceneConfig, canvas_size
from pgpt_ros.data.shapesref.dataset import (
    SPLIT_IDS,
    check_split,
    draw_expression,
    kind_weights,
    to_sample,
)
from pgpt_ros.data.shapesref.expressions import Expression, expressions, left_to_right
from pgpt_ros.data.shapesref.layout import layout, relayout
from pgpt_ros.data.shapesref.phrasing import phrase
from pgpt_ros.data.shapesref.scene import Scene, check_canvas, paint
from pgpt_ros.data.shapesref.vocabulary import KINDS

ASPECT_SET_STREAM = 1  # a fourth seed word: apart from ShapesRef's samples of the same index


class AspectSet:
    """``len`` groups of samples, each one scene and command at every aspect of ``aspects``.

    Arguments:
        split (str): "train", "val" or "test".
        long_side (int): the long side of every canvas, in pixels.
        aspects (Sequence[str]): aspect ratios "W:H"; the first is the baseline by convention.
        length (int): number of groups.
        kinds (dict[str, float] | Sequence[str]): expression kinds and their weights.
        config (SceneConfig): what scenes and commands may contain (its ``aspects`` are unused).
        seed (int): a further seed word.
    """

    def __init__(self, split: str = "test", long_side: int = 64,
                 aspects: Sequence[str] = ("1:1", "16:9", "3:4"), length: int = 300,
                 kinds: dict[str, float] | Sequence[str] = KINDS,
                 config: SceneConfig | None = None, seed: int = 0) -> None:  # fmt: skip
        check_split(split)
        self.config = config or SceneConfig()
        self.kinds, self.kind_p = kind_weights(kinds)
        self.aspects = tuple(aspects)
        self.canvases = {a: canvas_size(a, long_side) for a in self.aspects}
        for width, height in self.canvases.values():
            check_canvas(width, height)
        self.split, self.long_side, self.length, self.seed = split, long_side, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Sample]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        key = (SPLIT_IDS[self.split], self.seed, int(index), ASPECT_SET_STREAM)
        rng = np.random.default_rng(key)
        kind = str(rng.choice(self.kinds, p=self.kind_p))
        for _ in range(100):
            scenes = self._scenes(rng, key)
            common = self._common(scenes, kind) if scenes else []
            if common:
                break
        else:
            raise RuntimeError(f"no scene supports {kind!r} at every aspect of {self.aspects}")
        expression = phrase(rng, draw_expression(rng, common, self.config), self.config)
        return {a: to_sample(scene, expression) for a, scene in scenes.items()}

    def _scenes(self, rng: np.random.Generator, key: tuple[int, ...]) -> dict[str, Scene] | None:
        """One layout painted at every aspect, or None if it breaks a rule at one of them."""
        placed = layout(rng, self.config, self.long_side, self.long_side)
        paint_seed = int(rng.integers(2**63))
        scenes = {}
        for aspect, (width, height) in self.canvases.items():
            settled = relayout(placed, self.config, width, height)
            if settled is None:
                return None
            paint_rng = np.random.default_rng(paint_seed)
            scenes[aspect] = paint(paint_rng, settled, self.config, width, height, key)
        return scenes

    def _common(self, scenes: dict[str, Scene], kind: str) -> list[Expression]:
        """The expressions of ``kind`` true at every aspect with the same ordered targets."""
        found = None
        for scene in scenes.values():
            here = {(e.command, left_to_right(scene, e.targets)): e
                    for e in expressions(scene, kind, self.config)}  # fmt: skip
            found = here if found is None else {k: e for k, e in found.items() if k in here}
        return list(found.values())
