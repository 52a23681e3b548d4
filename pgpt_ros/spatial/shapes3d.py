"""ShapesRef scenes in 3D, optionally moving: the demo camera's depth, intrinsics and ground truth.

Geometry (documented in the project's docs, relied on by the tests):

- An ideal pinhole camera of ``horizontal_fov_deg`` (square pixels, optical axis through the image
  centre, no distortion) looks along z at a background plane ``background_m`` away.
- Each shape is a flat cut-out facing the camera at its own depth. Depths are drawn per scene in
  [``near_m``, ``far_m``] and sorted so that a shape drawn on top of another is nearer: the picture
  and the depth agree about occlusion. ``near_m == far_m`` puts every shape at that depth.
- With ``motion`` > 0 each cut-out moves on its own smooth closed path (a Lissajous figure of
  ``motion`` x the short image side around its place, period about ``motion_period_s``), the
  later-drawn shapes still on top. A moving shape keeps the outline it has in the still scene (a
  shape partly hidden there keeps that bite), and the background becomes flat (its median colour),
  so nothing under a shape needs to be invented.
- Ground truth per object: its visible mask and box, its depth, and its 3D centre: the centroid of
  its visible pixels back-projected at its depth (x right, y down, z forward, metres), i.e. the
  centre of its visible surface, what ``pgpt_ros.spatial.locate`` estimates. ``fully_visible`` is
  false when a shape above it or the image border cuts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.masks import mask_extent
from pgpt_ros.spatial.camera import Intrinsics

_DEPTH_STREAM = 19  # seeds the depth draw apart from ShapesRef's own streams


@dataclass(frozen=True)
class Geometry:
    """Where the camera and the shapes are, and how the shapes move; ``problems()`` lists errors."""

    horizontal_fov_deg: float = 60.0
    near_m: float = 0.6
    far_m: float = 2.0
    background_m: float = 3.0
    motion: float = 0.0  # path size as a fraction of the short image side; 0 = still
    motion_period_s: float = 6.0

    def problems(self) -> list[str]:
        found = []
        if not 1.0 <= self.horizontal_fov_deg <= 170.0:
            found.append(f"horizontal_fov_deg must be in [1, 170], got {self.horizontal_fov_deg}")
        if not 0.0 < self.near_m <= self.far_m < self.background_m:
            found.append(
                "need 0 < depth_near_m <= depth_far_m < background_m, got "
                f"{self.near_m}, {self.far_m}, {self.background_m}"
            )
        if not 0.0 <= self.motion <= 0.5:
            found.append(f"motion must be in [0, 0.5], got {self.motion}")
        if self.motion_period_s <= 0.0:
            found.append(f"motion_period_s must be > 0, got {self.motion_period_s}")
        return found


@dataclass
class ObjectTruth:
    """One shape as the camera sees it in one frame.

    Attributes:
        index (int): its place in the scene's drawing order (the same in every frame).
        name (str): "<colour> <shape>".
        mask (np.ndarray): (H, W) bool, its visible pixels.
        box (np.ndarray): (4,) float xyxy around ``mask``, exclusive ends (zeros if it left the image).
        depth_m (float): distance of its plane along the optical axis.
        centre_m (np.ndarray | None): (3,) visible-surface centroid in the optical frame.
        fully_visible (bool): nothing above it and no image border cuts it.
    """

    index: int
    name: str
    mask: np.ndarray
    box: np.ndarray
    depth_m: float
    centre_m: np.ndarray | None
    fully_visible: bool

    def to_json(self) -> dict:
        centre = None if self.centre_m is None else [round(float(v), 6) for v in self.centre_m]
        return {
            "index": self.index,
            "name": self.name,
            "box": [float(v) for v in self.box],
            "depth_m": self.depth_m,
            "centre_m": centre,
            "visible_pixels": int(self.mask.sum()),
            "fully_visible": self.fully_visible,
        }


@dataclass
class Frame3D:
    """A rendered frame: RGB image, depth in metres, the camera, and each shape's truth."""

    image: np.ndarray  # (H, W, 3) uint8
    depth_m: np.ndarray  # (H, W) float32
    intrinsics: Intrinsics
    objects: list[ObjectTruth]


def _touches(mask: np.ndarray, other: np.ndarray) -> bool:
    """Whether ``other`` covers a pixel of ``mask`` or one of its 4-neighbours."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return bool((grown & other).any())


def _on_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _shift(array: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``array`` moved by (dx, dy) pixels; what leaves the image is lost, what enters is zero."""
    moved = np.zeros_like(array)
    height, width = array.shape[:2]
    if abs(dx) >= width or abs(dy) >= height:
        return moved
    src_y, dst_y = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
    src_x, dst_x = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
    moved[dst_y, dst_x] = array[src_y, src_x]
    return moved


class Shapes3D:
    """The ShapesRef scene of ``seed`` in 3D; ``frame(t_s)`` renders it ``t_s`` seconds in.

    Arguments:
        seed (int): the ShapesRef scene (``ShapesRef.scene(seed, width, height)``).
        width, height (int): image size in pixels.
        geometry (Geometry): camera, depths and motion.
    """

    def __init__(self, seed: int, width: int, height: int, geometry: Geometry) -> None:
        problems = geometry.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.seed, self.geometry = seed, geometry
        self.scene = ShapesRef.scene(seed, width, height)
        self.intrinsics = Intrinsics.ideal(width, height, geometry.horizontal_fov_deg)
        rng = np.random.default_rng((_DEPTH_STREAM, seed))
        drawn = rng.uniform(geometry.near_m, geometry.far_m, len(self.scene.objects))
        self.depths = [round(float(d), 3) for d in np.sort(drawn)[::-1]]  # bottom shape farthest
        self._phases = rng.uniform(0.0, 2 * math.pi, (len(self.scene.objects), 2))
        outside = ~np.logical_or.reduce([o.mask for o in self.scene.objects])
        self._flat = np.median(self.scene.image[outside], axis=0).astype(np.uint8)

    def offset(self, index: int, t_s: float) -> tuple[int, int]:
        """Pixel displacement of shape ``index`` at ``t_s``: a Lissajous path, zero when still."""
        g = self.geometry
        if g.motion == 0.0:
            return 0, 0
        amplitude = g.motion * min(self.intrinsics.width, self.intrinsics.height)
        period = g.motion_period_s * (1.0 + 0.15 * index)  # shapes out of step with each other
        phase_x, phase_y = self._phases[index]
        dx = amplitude * math.sin(2 * math.pi * t_s / period + phase_x)
        dy = amplitude * math.sin(2 * math.pi * t_s / (1.3 * period) + phase_y)
        return round(dx), round(dy)

    def frame(self, t_s: float = 0.0) -> Frame3D:
        """The scene at ``t_s`` seconds: image, depth and per-shape truth."""
        objects = self.scene.objects
        if self.geometry.motion == 0.0:
            image, masks = self.scene.image, [o.mask for o in objects]
        else:
            image = np.broadcast_to(self._flat, self.scene.image.shape).copy()
            masks = []
            for index, obj in enumerate(objects):
                dx, dy = self.offset(index, t_s)
                mask = _shift(obj.mask, dx, dy)
                image[mask] = _shift(self.scene.image, dx, dy)[mask]
                masks.append(mask)
            visible = np.zeros_like(masks[0]) if masks else None
            for index in reversed(range(len(masks))):  # later shapes hide earlier ones
                masks[index] = masks[index] & ~visible
                visible |= masks[index]
        depth = np.full(image.shape[:2], self.geometry.background_m, np.float32)
        truths = []
        for index, (obj, mask, depth_m) in enumerate(zip(objects, masks, self.depths, strict=True)):
            depth[mask] = depth_m
            above = np.logical_or.reduce(masks[index + 1 :]) if index + 1 < len(masks) else None
            truths.append(
                ObjectTruth(
                    index=index,
                    name=obj.name,
                    mask=mask,
                    box=np.array(mask_extent(mask) or (0, 0, 0, 0), np.float64),
                    depth_m=depth_m,
                    centre_m=self._centre(mask, depth_m),
                    fully_visible=bool(mask.any())
                    and not _on_border(mask)
                    and (above is None or not _touches(mask, above)),
                )
            )
        return Frame3D(image, depth, self.intrinsics, truths)

    def _centre(self, mask: np.ndarray, depth_m: float) -> np.ndarray | None:
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            return None
        return self.intrinsics.back_project(xs.mean(), ys.mean(), depth_m)

    def truth(self, frame: Frame3D) -> dict:
        """The frame's ground truth as JSON-ready data (the demo camera's ``ground_truth``)."""
        return {
            "seed": self.seed,
            "width": self.intrinsics.width,
            "height": self.intrinsics.height,
            "camera_k": self.intrinsics.k,
            "background_m": self.geometry.background_m,
            "objects": [o.to_json() for o in frame.objects],
        }
