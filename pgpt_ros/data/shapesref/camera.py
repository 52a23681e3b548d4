"""What a camera does to a picture: defocus blur, sensor noise and JPEG compression.

The effects change pixels only; masks and boxes come from the shapes' geometry and stay exact.
Their strengths scale with the short side, so a 64-pixel training image and a 640-pixel demo
frame look alike once both are brought to the model's input size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

BLUR_SIGMA = (0.004, 0.015)  # Gaussian sigma, fraction of the short side (0.3-1 px at 64)
NOISE_SIGMA = (2.0, 10.0)  # per-pixel Gaussian sigma, grey levels
NOISE_COLOUR = 0.5  # up to this share of the noise differs between channels
JPEG_QUALITY = (25, 85)


@dataclass(frozen=True)
class CameraEffects:
    """The effects one picture gets; ``None`` or 0 means the effect is off."""

    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    noise_colour: float = 0.0
    jpeg_quality: int | None = None

    @classmethod
    def draw(cls, rng: np.random.Generator, blur: float, noise: float,
             jpeg: float) -> CameraEffects:  # fmt: skip
        """Each effect with its probability; the number of draws never depends on the picture,
        so the same generator state gives the same effects at every canvas size."""
        on = rng.random(3) < (blur, noise, jpeg)
        sigma, noise_sigma = rng.uniform(*BLUR_SIGMA), rng.uniform(*NOISE_SIGMA)
        colour, quality = rng.uniform(0, NOISE_COLOUR), int(rng.integers(*JPEG_QUALITY, endpoint=True))  # fmt: skip
        return cls(sigma if on[0] else 0.0, noise_sigma if on[1] else 0.0,
                   colour if on[1] else 0.0, quality if on[2] else None)  # fmt: skip

    def apply(self, rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 -> HxWx3 uint8: blur, then sensor noise, then JPEG (a camera's order)."""
        if self.blur_sigma > 0:
            radius = self.blur_sigma * min(image.shape[:2])
            image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)))
        if self.noise_sigma > 0:
            # Mostly brightness noise shared by the channels, partly colour noise of each.
            shared = rng.standard_normal(size=(*image.shape[:2], 1), dtype=np.float32)
            own = rng.standard_normal(size=image.shape, dtype=np.float32)
            mixed = (1 - self.noise_colour) * shared + self.noise_colour * own
            image = np.clip(np.rint(image + mixed * self.noise_sigma), 0, 255).astype(np.uint8)
        if self.jpeg_quality is not None:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "JPEG", quality=self.jpeg_quality)
            image = np.asarray(Image.open(buffer).convert("RGB"))
        return image
