"""RefCOCO-format annotations as ``Sample`` records: refs JSON + COCO instances JSON + images.

The RefCOCO/RefCOCO+/RefCOCOg releases ship their referring expressions as a Python pickle
(``refs(unc).p``). Unpickling runs arbitrary code, so this loader never reads pickles; a separate,
explicit command converts one you trust into plain JSON once:

    python -m pgpt_ros.data.refcoco convert refs(unc).p refs.json

Each ref is ``{"ref_id", "image_id", "split", "ann_id", "sentences": [{"sent": ...}, ...]}``.
``ann_id`` may also be a list (gRefCOCO style): several targets, or none for a no-target
expression. Every sentence becomes one sample; the answer phrase of a target is its COCO category
name ("person"). Kinds: "single", "multi" (several targets) and "absent" (none).

    >>> ds = RefCOCO("refs.json", "instances.json", "train2014/", split="val")
    >>> sample = ds[0]   # image at its native size, boxes in pixels, masks from the polygons
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pgpt_ros.data.sample import Sample


def decode_rle(rle: dict) -> np.ndarray:
    """COCO run-length encoding (compressed string or count list) -> HxW bool mask.

    Counts alternate background/foreground runs over the image in column-major order; the
    compressed form stores them as 5-bit groups offset by 48, each delta-coded against the count
    two places back (the COCO API's ``rleFrString``).
    """
    height, width = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, str):
        values: list[int] = []
        pos = 0
        while pos < len(counts):
            value, shift, more = 0, 0, True
            while more:
                c = ord(counts[pos]) - 48
                value |= (c & 0x1F) << (5 * shift)
                more = bool(c & 0x20)
                pos += 1
                shift += 1
                if not more and c & 0x10:
                    value |= -1 << (5 * shift)
            if len(values) > 2:
                value += values[-2]
            values.append(value)
        counts = values
    flat = np.zeros(height * width, dtype=bool)
    start = 0
    for i, run in enumerate(counts):
        if i % 2:
            flat[start : start + run] = True
        start += run
    return flat.reshape((width, height)).T


def annotation_mask(annotation: dict, height: int, width: int) -> np.ndarray:
    """The instance mask of a COCO annotation: polygons are rasterised, RLE decoded."""
    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, dict):
        return decode_rle(segmentation)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in segmentation or []:
        if len(polygon) >= 6:
            draw.polygon(list(map(float, polygon)), fill=1)
    return np.asarray(canvas, dtype=bool)


class RefCOCO:
    """Referring expressions over COCO images, one ``Sample`` per sentence.

    Arguments:
        refs (str | Path): the refs JSON (see ``convert`` for the original pickle).
        instances (str | Path): COCO instances JSON with images, annotations and categories.
        image_dir (str | Path): folder holding the images named in ``instances``.
        split (str | None): keep refs of this split ("train", "val", "testA", ...); None keeps all.
    """

    def __init__(self, refs: str | Path, instances: str | Path, image_dir: str | Path,
                 split: str | None = None) -> None:  # fmt: skip
        for path in (refs, instances, image_dir):
            if not Path(path).exists():
                raise FileNotFoundError(f"{path} does not exist")
        if str(refs).endswith((".p", ".pkl", ".pickle")):
            raise ValueError(f"{refs} looks like a pickle; convert it first with "
                             "`python -m pgpt_ros.data.refcoco convert REFS.p REFS.json`")  # fmt: skip
        self.image_dir = Path(image_dir)
        coco = json.loads(Path(instances).read_text())
        self.images = {im["id"]: im for im in coco["images"]}
        self.annotations = {a["id"]: a for a in coco["annotations"]}
        self.categories = {c["id"]: c["name"] for c in coco.get("categories", [])}
        self.items: list[tuple[dict, str]] = []
        for ref in json.loads(Path(refs).read_text()):
            if split is not None and ref.get("split") != split:
                continue
            for sentence in ref["sentences"]:
                self.items.append((ref, sentence.get("sent") or sentence.get("raw", "")))
        if split is not None and not self.items:
            raise ValueError(f"no refs of split {split!r} in {refs}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        ref, command = self.items[index]
        info = self.images[ref["image_id"]]
        path = self.image_dir / info["file_name"]
        if not path.exists():
            raise FileNotFoundError(f"image {path} named in the instances file is missing")
        image = np.asarray(Image.open(path).convert("RGB"))
        height, width = image.shape[:2]
        ann_ids = ref["ann_id"] if isinstance(ref["ann_id"], list) else [ref["ann_id"]]
        annotations = [self.annotations[a] for a in ann_ids if a in self.annotations]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in annotations)],
                         np.float32).reshape(-1, 4)  # fmt: skip
        masks = np.array([annotation_mask(a, height, width) for a in annotations], bool)
        kind = {0: "absent", 1: "single"}.get(len(annotations), "multi")
        return Sample(
            image=image,
            command=command,
            phrases=[self.categories.get(a["category_id"], "object") for a in annotations],
            boxes=boxes,
            masks=masks.reshape(-1, height, width),
            kind=kind,
            meta={
                "ref_id": ref.get("ref_id"),
                "image_id": ref["image_id"],
                "ann_ids": ann_ids,
                "file_name": info["file_name"],
            },  # fmt: skip
        )


def convert(pickle_path: Path, json_path: Path) -> int:
    """Converts a refs pickle to JSON, keeping the fields the loader reads. Returns the ref count.

    Unpickling can run arbitrary code: only convert a file from a source you trust.
    """
    warnings.warn(f"unpickling {pickle_path}: this runs code from the file; only convert refs "
                  "files from a trusted source (the official RefCOCO release)", stacklevel=2)  # fmt: skip
    with open(pickle_path, "rb") as f:
        refs = pickle.load(f)  # noqa: S301 - explicit, documented, user-requested conversion
    keep = ("ref_id", "image_id", "split", "ann_id", "category_id", "file_name")
    out = []
    for ref in refs:
        item = {k: ref[k] for k in keep if k in ref}
        item["sentences"] = [{"sent": s.get("sent") or s.get("raw", "")} for s in ref["sentences"]]
        out.append(item)
    json_path.write_text(json.dumps(out))
    return len(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pgpt_ros.data.refcoco", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="refs pickle -> JSON (the pickle must be trusted)")
    conv.add_argument("pickle", type=Path, help="refs(unc).p from a trusted RefCOCO release")
    conv.add_argument("json", type=Path, help="output JSON path")
    args = parser.parse_args(argv)
    if not args.pickle.exists():
        parser.error(f"{args.pickle} does not exist")
    count = convert(args.pickle, args.json)
    print(f"wrote {count} refs to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
