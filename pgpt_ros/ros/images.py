"""sensor_msgs/Image (and CompressedImage) <-> numpy, without cv_bridge.

Why by hand: PyPI's cv_bridge is the ROS 1 one and breaks with NumPy 2. Decoding is a view of the
message's buffer (``np.frombuffer``: no copy for rgb8 and mono8), honouring ``step`` padding; only
encodings that need reordering or widening copy. Every malformed message raises ``BadImage`` with
the reason, which the node reports as status BAD_IMAGE.
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

# encoding -> (element dtype, channels)
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
}


class BadImage(ValueError):
    """The message cannot be read as an image; the text says why."""


def _check_size(width: int, height: int, max_side: int) -> None:
    if width <= 0 or height <= 0:
        raise BadImage(f"image has zero size ({width}x{height})")
    if width > max_side or height > max_side:
        raise BadImage(f"image {width}x{height} exceeds max_image_side {max_side}")


def to_array(
    msg: Image, max_side: int, encodings: dict[str, tuple[np.dtype, int]] = ENCODINGS
) -> np.ndarray:
    """The pixels as an HxWxC (or HxW for mono) array viewing ``msg.data``; raises BadImage.

    ``encodings`` are the ones accepted (depth images pass their own).
    """
    if msg.encoding not in encodings:
        raise BadImage(f"unsupported encoding {msg.encoding!r}; use one of {sorted(encodings)}")
    dtype, channels = encodings[msg.encoding]
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, max_side)
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes or step % dtype.itemsize:
        raise BadImage(
            f"step {step} does not fit {width} {msg.encoding} pixels ({row_bytes} bytes)"
        )
    data = np.frombuffer(msg.data, np.uint8)
    if data.size < step * height:
        raise BadImage(f"data has {data.size} bytes, step*height needs {step * height}")
    rows = data[: step * height].reshape(height, step)[:, :row_bytes]
    pixels = rows.view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    return pixels.reshape(height, width, channels) if channels > 1 else pixels


def to_rgb(msg: Image, max_side: int) -> np.ndarray:
    """HxWx3 uint8 RGB, what the Perceiver reads; a view for rgb8, a copy otherwise."""
    pixels = to_array(msg, max_side)
    encoding = msg.encoding
    if encoding == "rgb8":
        return pixels
    if encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3])
    if encoding == "mono16":
        # Stretch to the frame's own range: 10/12-bit sensors and depth images would be near
        # black if only shifted by 8 bits.
        peak = max(int(pixels.max()), 1)
        pixels = (pixels.astype(np.float32) * (255.0 / peak)).astype(np.uint8)
    return np.repeat(pixels[:, :, None], 3, axis=2)


def compressed_to_rgb(msg: CompressedImage, max_side: int) -> np.ndarray:
    """Decodes a CompressedImage (jpeg, png, ...) to HxWx3 uint8 RGB; raises BadImage."""
    data = bytes(msg.data)
    try:
        image = PILImage.open(io.BytesIO(data))
        _check_size(image.width, image.height, max_side)  # before decoding the pixels
        return np.asarray(image.convert("RGB"))
    except BadImage:
        raise
    except PILImage.UnidentifiedImageError:
        raise BadImage(
            f"{len(data)} bytes of format {msg.format!r} are not an image PIL can decode"
        ) from None
    except (OSError, ValueError, PILImage.DecompressionBombError) as error:
        # PIL's messages may name the in-memory file object; the reason is the rest.
        reason = re.sub(r"\s*<[^>]* at 0x[0-9a-f]+>", "", str(error))
        raise BadImage(f"cannot decode {msg.format!r} image: {reason}") from None


def frame_to_rgb(msg: Image | CompressedImage, max_side: int) -> np.ndarray:
    """Either kind of camera message as HxWx3 uint8 RGB; raises BadImage."""
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg, max_side)
    return to_rgb(msg, max_side)


def from_array(
    pixels: np.ndarray,
    header: Header,
    encoding: str,
    encodings: dict[str, tuple[np.dtype, int]] = ENCODINGS,
) -> Image:
    """An Image message of ``pixels`` (HxWx3 for rgb8, HxW for mono8), with no row padding."""
    dtype, channels = encodings[encoding]
    expected = pixels.shape[:2] + ((channels,) if channels > 1 else ())
    if pixels.dtype != dtype or pixels.shape != expected:
        raise ValueError(f"{encoding} needs a {dtype} array of shape HxW(xC), got {pixels.shape}")
    height, width = pixels.shape[:2]
    return Image(
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels * dtype.itemsize,
        data=pixels.tobytes(),  # bytes: assigning an array would copy element by element
    )
