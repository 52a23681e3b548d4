"""From a camera frame to the square model input, and from model outputs back to the frame.

``FrameTransform`` is the one place where source pixels and the model's normalised frame meet:
images, training targets (boxes, masks, label maps) go in through it, and decoded boxes and mask
logits come back through it. Two modes (``PerceptionGPTConfig.resize_mode``):

- "stretch": both sides are scaled to the model side S; a 16:9 frame is squeezed, so shapes
  look taller than they are.
- "pad": the long side is scaled to S and the frame is centred on an S x S canvas of the
  tower's mean colour (zero after normalisation), LLaVA's "pad" mode; the aspect ratio is kept.

Both are one affine map per axis, ``u = (x * content / source + offset) / S``, with the content
size and offset rounded to whole model pixels once, so the image that is drawn and the mapping
that is inverted agree exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# CLIP's normalisation (LLaVA-1.5's tower, and the default); SigLIP towers use 0.5 and 0.5.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESIZE_MODES = ("stretch", "pad")


def check_image(image: np.ndarray) -> None:
    """Raises ValueError unless ``image`` is a non-empty HxWx3 uint8 (RGB) numpy array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"image must be an HxWx3 RGB numpy array, got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")


@dataclass(frozen=True)
class FrameTransform:
    """The map between one source frame (W x H pixels) and the S x S model input.

    The frame's content covers ``content_width`` x ``content_height`` model pixels starting at
    (``offset_x``, ``offset_y``); outside it is padding. Normalised model coordinates run over the
    whole S x S input (what boxes and mask logits are in).
    """

    width: int
    height: int
    size: int
    content_width: int
    content_height: int
    offset_x: int
    offset_y: int

    @classmethod
    def fit(cls, width: int, height: int, size: int, mode: str) -> FrameTransform:
        """The transform of a ``width`` x ``height`` frame into an S = ``size`` square input."""
        if mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        if mode == "stretch":
            return cls(width, height, size, size, size, 0, 0)
        scale = size / max(width, height)
        content_w = min(size, max(1, round(width * scale)))
        content_h = min(size, max(1, round(height * scale)))
        return cls(width, height, size, content_w, content_h,
                   (size - content_w) // 2, (size - content_h) // 2)  # fmt: skip

    # ------------------------------------------------------------------------------ coordinates
    def _axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per xyxy coordinate: source length, content length, offset (model pixels)."""
        source = np.array([self.width, self.height] * 2, np.float64)
        content = np.array([self.content_width, self.content_height] * 2, np.float64)
        offset = np.array([self.offset_x, self.offset_y] * 2, np.float64)
        return source, content, offset

    def boxes_to_model(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) source pixel xyxy -> (N, 4) float32 normalised xyxy over the model input."""
        source, content, offset = self._axes()
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return ((boxes * content / source + offset) / self.size).astype(np.float32)

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) normalised model xyxy -> (N, 4) float64 source pixel xyxy, clipped to the frame
        (a box that reaches into the padding ends at the frame's edge)."""
        source, content, offset = self._axes()
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        pixels = (boxes * self.size - offset) * source / content
        return np.clip(pixels, 0.0, source)

    def _source_grid(self, device: torch.device) -> torch.Tensor:
        """(1, H, W, 2) grid_sample coordinates (-1..1 over the model input) of every source
        pixel centre."""

        def axis(n: int, content: int, offset: int) -> torch.Tensor:
            centres = (torch.arange(n, dtype=torch.float32, device=device) + 0.5) * (content / n)
            return 2.0 * (centres + offset) / self.size - 1.0

        xs = axis(self.width, self.content_width, self.offset_x)
        ys = axis(self.height, self.content_height, self.offset_y)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([grid_x, grid_y], dim=-1)[None]

    def masks_to_source(self, logits: torch.Tensor) -> np.ndarray:
        """(K, M, M) mask logits over the model input -> (K, H, W) bool masks of the frame.

        The logits are sampled bilinearly at each source pixel's centre, then thresholded at 0:
        smooth edges at any frame size, and padding never reaches the frame.
        """
        if len(logits) == 0:
            return np.zeros((0, self.height, self.width), bool)
        logits = logits.float()[:, None]  # (K, 1, M, M)
        grid = self._source_grid(logits.device).expand(len(logits), -1, -1, -1)
        sampled = F.grid_sample(logits, grid, mode="bilinear", padding_mode="border",
                                align_corners=False)  # fmt: skip
        return (sampled[:, 0] > 0).cpu().numpy()

    # ------------------------------------------------------------------------ into the model
    def image_to_model(
        self, image: np.ndarray, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD
    ) -> np.ndarray:
        """HxWx3 uint8 RGB -> (3, S, S) float32, bicubic resize, normalised with the vision
        tower's RGB ``mean`` and ``std``, padded with 0 (the mean colour)."""
        check_image(image)
        mean = np.asarray(mean, np.float32)
        std = np.asarray(std, np.float32)
        content = Image.fromarray(image).resize(
            (self.content_width, self.content_height), Image.Resampling.BICUBIC
        )
        out = np.zeros((self.size, self.size, 3), np.float32)
        y, x = self.offset_y, self.offset_x
        out[y : y + self.content_height, x : x + self.content_width] = (
            np.asarray(content, np.float32) / 255.0 - mean
        ) / std
        return out.transpose(2, 0, 1)

    def masks_to_model(self, masks: np.ndarray, side: int) -> np.ndarray:
        """(N, H, W) bool -> (N, side, side) float32 share of each cell the mask covers, over
        the model input (padding is background). Box-filter resizing at model resolution."""
        out = np.zeros((len(masks), side, side), np.float32)
        y, x = self.offset_y, self.offset_x
        for i, mask in enumerate(masks):
            content = Image.fromarray(np.asarray(mask, np.float32)).resize(
                (self.content_width, self.content_height), Image.Resampling.BOX
            )
            canvas = np.zeros((self.size, self.size), np.float32)
            canvas[y : y + self.content_height, x : x + self.content_width] = np.asarray(content)
            out[i] = np.asarray(
                Image.fromarray(canvas).resize((side, side), Image.Resampling.BOX), np.float32
            )
        return np.clip(out, 0.0, 1.0)

    def labels_to_model(self, labels: np.ndarray, side: int) -> np.ndarray:
        """HxW integer label map -> (side, side) labels of the model input, nearest sampling at
        cell centres; padding is 0 (background)."""
        centres = (np.arange(side) + 0.5) * self.size / side  # model pixels

        def source_index(content: int, offset: int, n: int) -> tuple[np.ndarray, np.ndarray]:
            position = (centres - offset) * n / content
            inside = (position >= 0) & (position < n)
            return np.clip(position.astype(np.int64), 0, n - 1), inside

        xs, x_in = source_index(self.content_width, self.offset_x, self.width)
        ys, y_in = source_index(self.content_height, self.offset_y, self.height)
        out = np.asarray(labels)[ys[:, None], xs[None, :]]
        return np.where(y_in[:, None] & x_in[None, :], out, 0).astype(labels.dtype)


def preprocess_images(
    images: list[np.ndarray],
    size: int,
    mode: str,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> tuple[torch.Tensor, list[FrameTransform]]:
    """HxWx3 uint8 RGB images -> (B, 3, S, S) float32 model input (normalised with ``mean`` and
    ``std``) and each frame's transform."""
    transforms = []
    batch = []
    for image in images:
        check_image(image)
        transform = FrameTransform.fit(image.shape[1], image.shape[0], size, mode)
        batch.append(transform.image_to_model(image, mean, std))
        transforms.append(transform)
    return torch.from_numpy(np.stack(batch)), transforms
