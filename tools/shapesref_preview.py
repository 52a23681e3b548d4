"""A picture of ShapesRef samples: each image with its command above and its target boxes drawn.

    python -m tools.shapesref_preview --preset varied --out docs/shapesref_varied.png

What the data looks like is easier to judge from a picture than from its parameters; the docs
show the ``varied`` preset this way.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw

from pgpt_ros.data.sample import Sample
from pgpt_ros.data.shapesref.config import PRESETS, SceneConfig
from pgpt_ros.data.shapesref.dataset import ShapesRef

TEXT_LINES = 3  # lines of command (and answer) above each image
LINE_HEIGHT = 12
CHARS_PER_LINE = 30


def tile(sample: Sample, side: int) -> Image.Image:
    """One sample on a ``side`` x ``side`` cell (scaled, aspect kept) with text above it."""
    h, w = sample.image.shape[:2]
    scale = side / max(w, h)
    picture = Image.fromarray(sample.image).resize(
        (round(w * scale), round(h * scale)), Image.Resampling.NEAREST
    )
    cell = Image.new("RGB", (side, side + TEXT_LINES * LINE_HEIGHT + 4), (24, 24, 24))
    top = TEXT_LINES * LINE_HEIGHT + 4
    left = (side - picture.width) // 2
    cell.paste(picture, (left, top + (side - picture.height) // 2))
    draw = ImageDraw.Draw(cell)
    answer = ", ".join(sample.phrases) or "(nothing)"
    lines = textwrap.wrap(repr(sample.command), CHARS_PER_LINE)[: TEXT_LINES - 1]
    for row, line in enumerate([*lines, f"-> {answer}"]):
        colour = (235, 235, 235) if row < len(lines) else (150, 230, 150)
        draw.text((3, 2 + row * LINE_HEIGHT), line[: CHARS_PER_LINE + 6], fill=colour)
    for x1, y1, x2, y2 in sample.boxes * scale:
        y_off = top + (side - picture.height) // 2
        draw.rectangle([left + x1, y_off + y1, left + x2 - 1, y_off + y2 - 1], outline=(255, 255, 255))  # fmt: skip
    return cell


def grid(samples: list[Sample], columns: int, side: int) -> Image.Image:
    """The tiles of ``samples`` in rows of ``columns``."""
    tiles = [tile(s, side) for s in samples]
    rows = (len(tiles) + columns - 1) // columns
    width, height = tiles[0].size
    sheet = Image.new("RGB", (columns * (width + 2), rows * (height + 2)), (0, 0, 0))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % columns) * (width + 2), (i // columns) * (height + 2)))
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--preset", default="varied", choices=sorted(PRESETS))
    parser.add_argument("--split", default="val")
    parser.add_argument("--image-size", type=int, default=128, help="long side of a sample")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--tile", type=int, default=192, help="side of one image cell")
    args = parser.parse_args(argv)
    dataset = ShapesRef(args.split, args.image_size, args.count, config=SceneConfig.preset(args.preset))  # fmt: skip
    sheet = grid([dataset[i] for i in range(args.count)], args.columns, args.tile)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width} x {sheet.height})")


if __name__ == "__main__":
    main()
