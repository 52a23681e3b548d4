"""ShapesRef: seeded procedural scenes of coloured shapes with referring expressions.

It trains the embedded default model, is the CPU benchmark and feeds the ROS demo camera. Every
sample is a pure function of (split, index, seed, canvas). The default ``SceneConfig`` is the
embedded model's training distribution; its presets add what a camera and a speaking person
bring (aspect ratios, shades, backgrounds, rotation, blur, noise, JPEG, spoken phrasing,
out-of-domain negatives). Vocabulary, knobs and rules: ``docs/data.md``.

    >>> from pgpt_ros.data.shapesref import ShapesRef, SceneConfig, commands_for
    >>> sample = ShapesRef("train")[0]                      # a Sample, 64x64
    >>> varied = ShapesRef("train", config=SceneConfig.preset("varied"))
    >>> scene = ShapesRef.scene(seed=7, width=640, height=480)
    >>> [e.command for e in commands_for(scene)][:3]

One job per module: ``vocabulary`` (words, colours and their shades), ``config`` (knobs and
presets), ``drawing`` (outlines, masks), ``backgrounds``, ``camera`` (blur, noise, JPEG),
``layout`` (placement, occlusion, reference geometry), ``scene`` (painting), ``photos``
(photo-like frames without shapes), ``expressions`` (what is true of a scene), ``phrasing``
(command wording), ``dataset`` (``ShapesRef``), ``aspect_set`` (one scene at several aspect
ratios), ``preview`` and ``speed`` (a picture of samples, render timings).
"""

from pgpt_ros.data.shapesref.aspect_set import AspectSet
from pgpt_ros.data.shapesref.backgrounds import BACKGROUNDS, DEFAULT_BACKGROUNDS
from pgpt_ros.data.shapesref.config import PRESETS, SceneConfig, canvas_size
from pgpt_ros.data.shapesref.dataset import SPLIT_IDS, ShapesRef, to_sample
from pgpt_ros.data.shapesref.drawing import mask_to_box
from pgpt_ros.data.shapesref.expressions import (
    AREA_RATIO,
    POSITION_MARGIN,
    Description,
    Expression,
    commands_for,
    relation_holds,
)
from pgpt_ros.data.shapesref.phrasing import EVALUATION_VARIANTS, command_words, evaluation_variants
from pgpt_ros.data.shapesref.scene import Scene, ShapeObject, render_scene
from pgpt_ros.data.shapesref.vocabulary import (
    COLOURS,
    EXTREMES,
    KINDS,
    NUM_CLASSES,
    PHRASINGS,
    RELATIONS,
    SHADES,
    SHAPES,
    UNKNOWN_THINGS,
    object_class,
)

__all__ = [
    "AREA_RATIO",
    "AspectSet",
    "BACKGROUNDS",
    "COLOURS",
    "DEFAULT_BACKGROUNDS",
    "Description",
    "EVALUATION_VARIANTS",
    "EXTREMES",
    "Expression",
    "KINDS",
    "NUM_CLASSES",
    "PHRASINGS",
    "POSITION_MARGIN",
    "PRESETS",
    "RELATIONS",
    "SHADES",
    "SHAPES",
    "SPLIT_IDS",
    "Scene",
    "SceneConfig",
    "ShapeObject",
    "ShapesRef",
    "UNKNOWN_THINGS",
    "canvas_size",
    "command_words",
    "commands_for",
    "evaluation_variants",
    "mask_to_box",
    "object_class",
    "relation_holds",
    "render_scene",
    "to_sample",
]
