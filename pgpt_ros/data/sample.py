"""The one record every dataset yields and every collator, trainer and metric consumes.

Keeping it a plain dataclass of numpy arrays (no tensors, no tokens) lets ShapesRef, the RefCOCO
loader, the demo camera and the tests share it without importing torch or the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sample:
    """An image, a referring command and its ground truth.

    Arguments:
        image (np.ndarray): HxWx3 uint8, RGB.
        command (str): the referring expression, e.g. "the red circle left of the blue square".
        phrases (list[str]): one short phrase per target, in answer order ("red circle").
        boxes (np.ndarray): Nx4 float32, pixel xyxy in the image, x2 >= x1, y2 >= y1.
        masks (np.ndarray): NxHxW bool instance masks, same order as ``boxes``.
        kind (str): the expression kind ("attribute", "relation", "extreme", "multi", "absent").
            N == 0 means the command refers to nothing in the image.
        meta (dict): free-form provenance (seed, source file, annotation ids).
        class_map (np.ndarray | None): HxW uint8, the class of the object seen at each pixel
            (0: background), when the dataset knows every object (ShapesRef does, RefCOCO does
            not); it trains the model's optional patch classifier.
        instance_map (np.ndarray | None): HxW uint8, which object is seen at each pixel (0:
            background, i: the i-th object the dataset knows), under the same condition; it
            trains the model's optional patch geometry head.
    """

    image: np.ndarray
    command: str
    phrases: list[str]
    boxes: np.ndarray
    masks: np.ndarray
    kind: str
    meta: dict = field(default_factory=dict)
    class_map: np.ndarray | None = None
    instance_map: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.phrases)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must be ({n}, 4) for {n} phrases, got {self.boxes.shape}")
        if self.masks.shape != (n, *self.image.shape[:2]):
            raise ValueError(
                f"masks must be ({n}, {self.image.shape[0]}, {self.image.shape[1]}), "
                f"got {self.masks.shape}"
            )
        for name in ("class_map", "instance_map"):
            dense = getattr(self, name)
            if dense is not None and dense.shape != self.image.shape[:2]:
                raise ValueError(f"{name} must be {self.image.shape[:2]}, got {dense.shape}")

    @property
    def num_targets(self) -> int:
        return len(self.phrases)
