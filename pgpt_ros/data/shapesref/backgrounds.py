"""Backgrounds: what lies under the shapes, from flat grey to photo-like clutter.

Every background is muted (its chroma, max minus min channel, stays under ``MUTED_CHROMA``), so a
shape's colour name stays true against it and nothing in it could be called "the red shape".
(The embedded model's ``textured`` and ``noisy`` predate the bound and stay as they were.)
The random numbers each one takes do not depend on the canvas size (noise is drawn on fixed grids
and resized), so the same draws paint the same background at every aspect ratio.

- ``plain``, ``textured`` (low-contrast checker board, stripes or gradient), ``noisy`` (plain,
  and Gaussian noise over the finished picture): the embedded model's training backgrounds;
- ``gradient``: a strong linear or radial blend of two muted colours;
- ``grain``: wood-like streaks or a woven fabric;
- ``tiles``: floor tiles with grout lines, each tile its own shade;
- ``clouds``: a smooth multi-scale field, like an out-of-focus room;
- ``clutter``: clouds with irregular muted blobs on them (not circles, squares, triangles or
  stars), hard-edged or soft.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pgpt_ros.data.shapesref.vocabulary import hsv_rgb

DEFAULT_BACKGROUNDS: tuple[str, ...] = ("plain", "textured", "noisy")
BACKGROUNDS: tuple[str, ...] = (*DEFAULT_BACKGROUNDS, "gradient", "grain", "tiles", "clouds",
                                "clutter")  # fmt: skip
MAX_BLOBS = 6  # irregular blobs of one ``clutter`` background
# Saturation of a muted colour: with value at most 0.85 its chroma stays under MUTED_CHROMA.
MUTED_SATURATION = 0.2


def background(rng: np.random.Generator, kind: str, width: int, height: int) -> np.ndarray:
    """An HxWx3 float32 background of ``kind`` (values about 0..255, clipped later)."""
    if kind in DEFAULT_BACKGROUNDS:
        return _classic(rng, kind, width, height)
    makers = {"gradient": _gradient, "grain": _grain, "tiles": _tiles, "clouds": _clouds,
              "clutter": _clutter}  # fmt: skip
    if kind not in makers:
        raise ValueError(f"unknown background {kind!r}; choose from {BACKGROUNDS}")
    return makers[kind](rng, width, height)


def _classic(rng: np.random.Generator, kind: str, width: int, height: int) -> np.ndarray:
    """The embedded model's backgrounds (``noisy`` adds its noise after the shapes)."""
    base = rng.uniform(35, 200)
    tint = rng.uniform(-8, 8, size=3)
    image = np.full((height, width, 3), base, dtype=np.float32) + tint
    if kind == "textured":
        ys, xs = _coordinates(width, height)
        period = rng.uniform(0.06, 0.25)
        contrast = rng.uniform(15, 40) * rng.choice([-1.0, 1.0])
        pattern = rng.integers(3)
        if pattern == 0:  # checker board
            field_ = ((xs // period + ys // period) % 2).astype(np.float32)
        elif pattern == 1:  # diagonal stripes
            field_ = (((xs + ys) / period) % 1.0 < 0.5).astype(np.float32)
        else:  # gradient
            angle = rng.uniform(0, 2 * np.pi)
            field_ = xs * np.cos(angle) + ys * np.sin(angle)
            field_ = (field_ - field_.min()) / max(float(np.ptp(field_)), 1e-6)
        image += contrast * field_[..., None]
    return image


def _coordinates(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel y (Hx1) and x (1xW) in units of the short side, to broadcast."""
    side = min(width, height)
    ys = np.arange(height, dtype=np.float32)[:, None] / side
    xs = np.arange(width, dtype=np.float32)[None, :] / side
    return ys, xs


def _turned(width: int, height: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """HxW coordinates (u, v) along and across ``angle``, in units of the short side."""
    ys, xs = _coordinates(width, height)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return xs * c + ys * s, ys * c - xs * s


def muted_colour(rng: np.random.Generator, low: float = 0.15, high: float = 0.85) -> np.ndarray:
    """A random colour no colour name fits (chroma under ``MUTED_CHROMA``): RGB (3,) float32.

    Blends of muted colours plus a grey offset stay muted (chroma is convex and a grey offset
    leaves it unchanged), which is how every background below keeps the bound.
    """
    return hsv_rgb(rng.uniform(0, 360), rng.uniform(0, MUTED_SATURATION), rng.uniform(low, high))


def smooth_noise(rng: np.random.Generator, grid: int, width: int, height: int) -> np.ndarray:
    """HxW float32 smooth noise in about -1..1: a ``grid`` x ``grid`` random field, resized."""
    cells = rng.uniform(-1.0, 1.0, size=(grid, grid)).astype(np.float32)
    resized = Image.fromarray(cells).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float32)


def _blend(start: np.ndarray, end: np.ndarray, t: np.ndarray) -> np.ndarray:
    """HxWx3: ``start`` where t is 0, ``end`` where it is 1 (t clipped to 0..1)."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    return start + (end - start) * t


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    start, end = muted_colour(rng), muted_colour(rng)
    angle, cx, cy, reach = rng.uniform(0, 2 * np.pi), rng.uniform(), rng.uniform(), rng.uniform(0.6, 1.6)  # fmt: skip
    if rng.random() < 0.5:  # linear
        t, _ = _turned(width, height, angle)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    else:  # radial, centred anywhere on the canvas
        ys, xs = _coordinates(width, height)
        side = min(width, height)
        t = np.hypot(xs - cx * width / side, ys - cy * height / side) / reach
    return _blend(start, end, t)


def _grain(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    base, contrast = muted_colour(rng, 0.25, 0.8), rng.uniform(10, 35)
    angle, frequency, warp = rng.uniform(0, np.pi), rng.uniform(6, 30), rng.uniform(0.5, 3.0)
    woven = rng.random() < 0.4
    frequency = min(frequency, min(width, height) / 6)  # finer would alias into moire
    u, v = _turned(width, height, angle)
    if woven:  # fabric
        field_ = np.sin(2 * np.pi * frequency * u) * np.sin(2 * np.pi * frequency * v)
    else:  # wood: streaks bent by a smooth field
        field_ = np.sin(2 * np.pi * (frequency * u + warp * smooth_noise(rng, 5, width, height)))
    return base + contrast * field_[..., None]


def _tiles(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    base, grout = muted_colour(rng, 0.3, 0.85), muted_colour(rng, 0.1, 0.9)
    size, gap = rng.uniform(0.12, 0.35), rng.uniform(0.04, 0.1)
    angle = rng.choice([0.0, np.pi / 4]) + rng.uniform(-0.2, 0.2)
    shades = rng.uniform(-1.0, 1.0, size=(16, 16)).astype(np.float32) * rng.uniform(4, 20)
    u, v = _turned(width, height, angle)
    u, v = u / size, v / size
    image = base + shades[np.floor(u).astype(int) % 16, np.floor(v).astype(int) % 16][..., None]
    image[(u % 1.0 < gap) | (v % 1.0 < gap)] = grout
    return image


def _clouds(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    start, end = muted_colour(rng, 0.2, 0.8), muted_colour(rng, 0.2, 0.8)
    contrast = rng.uniform(20, 60)
    t = 0.5 + smooth_noise(rng, 4, width, height)
    shade = sum(
        weight * smooth_noise(rng, grid, width, height)
        for grid, weight in ((3, 1.0), (7, 0.5), (15, 0.25))
    )
    return _blend(start, end, t) + (contrast / 1.75) * shade[..., None]


def _clutter(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    image = _clouds(rng, width, height)
    return draw_blobs(rng, image, int(rng.integers(2, MAX_BLOBS + 1)))


def draw_blobs(rng: np.random.Generator, image: np.ndarray, count: int) -> np.ndarray:
    """Paints ``count`` (at most ``MAX_BLOBS``) irregular muted blobs onto ``image`` (HxWx3).

    A blob's outline wobbles (harmonics 2-4 of its angle) and is stretched, so it is none of the
    vocabulary's shapes; a third of them have soft edges, like things out of focus. The random
    numbers of all ``MAX_BLOBS`` are drawn whatever ``count`` is.
    """
    height, width = image.shape[:2]
    side = min(width, height)
    centres = rng.uniform(0, 1, size=(MAX_BLOBS, 1, 2)) * (width, height)
    radii = rng.uniform(0.08, 0.35, size=(MAX_BLOBS, 1)) * side
    stretch, angle = rng.uniform(1.3, 2.6, size=(MAX_BLOBS, 1)), rng.uniform(0, np.pi, size=(MAX_BLOBS, 1))  # fmt: skip
    amplitudes = rng.uniform(0.08, 0.25, size=(MAX_BLOBS, 3, 1))
    phases = rng.uniform(0, 2 * np.pi, size=(MAX_BLOBS, 3, 1))
    colours = [muted_colour(rng, 0.1, 0.9) for _ in range(MAX_BLOBS)]
    soft = rng.random(MAX_BLOBS) < 0.33
    theta = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    harmonics = np.arange(2, 5)[:, None] * theta  # (3, 40)
    wobble = 1 + (amplitudes * np.cos(harmonics + phases)).sum(axis=1)  # (MAX_BLOBS, 40)
    x, y = radii * wobble * np.cos(theta) * stretch, radii * wobble * np.sin(theta)
    c, s = np.cos(angle), np.sin(angle)
    outlines = np.stack([c * x - s * y, s * x + c * y], axis=-1) + centres  # (MAX_BLOBS, 40, 2)
    for index in range(count):
        points = outlines[index]
        blur = float(radii[index, 0]) * 0.25 if soft[index] else 0.0
        # Only the blob's box (and what its blur reaches) is drawn and blended.
        x0, y0 = np.maximum(np.floor(points.min(axis=0) - 2 * blur - 1), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(points.max(axis=0) + 2 * blur + 1), (width, height)).astype(int)  # fmt: skip
        if x1 <= x0 or y1 <= y0:
            continue
        alpha = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(alpha).polygon((points - (x0, y0)).ravel().tolist(), fill=255)
        if blur:
            alpha = alpha.filter(ImageFilter.GaussianBlur(blur))
        weight = np.asarray(alpha, dtype=np.float32)[..., None] / 255.0
        region = image[y0:y1, x0:x1]
        image[y0:y1, x0:x1] = region + (colours[index] - region) * weight
    return image
