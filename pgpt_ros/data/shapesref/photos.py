"""Photo-like frames that hold no shape of the vocabulary: negatives for commands about shapes.

A robot's camera mostly sees rooms, not coloured shapes, and a model trained only on shape scenes
boxed something in most real photographs it was asked about. These frames are smooth fields,
textures, tiles and irregular muted blobs, through the same camera effects as shape scenes; every
command about them refers to nothing. The blobs are muted and irregular on purpose: a saturated
red oval would make "the red shape" ambiguous, and the answer must be "not found".
"""

from __future__ import annotations

import numpy as np

from pgpt_ros.data.shapesref.backgrounds import MAX_BLOBS, background, draw_blobs
from pgpt_ros.data.shapesref.config import SceneConfig
from pgpt_ros.data.shapesref.scene import Scene, check_canvas, draw_camera

PHOTO_BACKGROUNDS: tuple[str, ...] = ("clouds", "clutter", "grain", "tiles", "gradient")


def photo_scene(rng: np.random.Generator, config: SceneConfig, width: int, height: int,
                seed: tuple[int, ...]) -> Scene:  # fmt: skip
    """A photo-like frame with no objects: a background of ``PHOTO_BACKGROUNDS`` with one to
    ``MAX_BLOBS`` irregular blobs over it, then the config's camera effects."""
    check_canvas(width, height)
    kind = str(rng.choice(PHOTO_BACKGROUNDS))
    image = background(rng, kind, width, height)
    image = draw_blobs(rng, image, int(rng.integers(1, MAX_BLOBS + 1)))
    camera = draw_camera(rng, config)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if camera is not None:
        image = camera.apply(rng, image)
    return Scene(image=image, objects=[], seed=seed, background=kind, frame="photo")
