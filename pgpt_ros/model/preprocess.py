"""Image preprocessing: stretch to the square model input, CLIP-normalise.

Stretching (no crop, no letterbox) means every normalised box or mask the model outputs refers to
the full source image: a consumer gets pixel coordinates by multiplying x by W and y by H, whatever
the source aspect ratio. The price is a distorted aspect ratio inside the model, which training on
stretched images makes consistent.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from pgpt_ros.model.config import CLIP_MEAN, CLIP_STD


def check_image(image: np.ndarray) -> None:
    """Raises ValueError unless ``image`` is HxWx3 uint8 (RGB) with a non-empty size."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"image must be an HxWx3 RGB numpy array, got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")


def preprocess_images(images: list[np.ndarray], size: int) -> torch.Tensor:
    """HxWx3 uint8 RGB images -> (B, 3, size, size) float32, bicubic stretch, CLIP mean/std."""
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)
    std = np.asarray(CLIP_STD, dtype=np.float32)
    batch = []
    for image in images:
        check_image(image)
        resized = Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC)
        array = (np.asarray(resized, dtype=np.float32) / 255.0 - mean) / std
        batch.append(array.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(batch))
