"""Does a model hold up off its own test split? The embedded model's bars, measured as served.

    python -m tools.robustness --out out/rob   # the embedded default (docs/bench/robustness-default-cpu.json)
    python -m tools.robustness --model out/full/A --only split aspect --num 300 --out out/rob/A

Runs the measurements of ``tools.robustness_sets`` through ``pgpt_ros.runtime.Perceiver`` (head
backend auto, the node's answer policy), prints the bars against what was measured, and writes
``robustness.json`` (every number) and ``robustness_test.png`` (the first test answers: ground
truth in white, the model's boxes and masks in colour) under ``--out``:

- split: ShapesRef's test split drawn with the ``varied`` preset: Acc@0.5, mask mIoU, per kind,
  multi-object lists by length;
- aspect: the same scenes and commands at 1:1, 16:9 and 3:4 (``AspectSet``);
- phrasing: the evaluation wordings (upper case, extra spaces, polite, reordered, "!!", " ?")
  against the plain one on the same samples, absent commands included;
- negatives: absent test commands worded as relations and extremes about what is not there;
- photos: scikit-image's real photographs with shape and plain-object commands;
- speed: commands per second on one CPU thread, 640x480 frame set once;
- camera: camera-like scenes without rotation, crowds or spoken wording (``CAMERA_LIKE``, 480 px),
  where a model trained on plain scenes does best: what the variation costs there.

``--long-side`` renders ShapesRef canvases at that long side (the model maps every frame to its
input, so 480 measures what a camera's frame goes through).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from pgpt_ros.bench.common import write_result
from pgpt_ros.evaluate import prediction_grid
from pgpt_ros.runtime import Perceiver
from tools import robustness_sets as sets

MEASUREMENTS = ("split", "aspect", "phrasing", "negatives", "photos", "speed", "camera")


def bars(result: dict) -> list[tuple[str, str, float | None, bool | None]]:
    """(bar, target, measured, met) rows for what ``result`` holds."""
    rows = []

    def add(name: str, target: str, value: float | None, met: bool | None) -> None:
        rows.append((name, target, value, met))

    if "split" in result:
        split = result["split"]
        add("test Acc@0.5", ">= 0.95", split["overall"]["acc@0.5"], split["overall"]["acc@0.5"] >= 0.95)  # fmt: skip
        mask = split["overall"]["mask_miou"]
        add("test mask mIoU", ">= 0.85", mask, mask is not None and mask >= 0.85)
        for kind, acc in split["per_kind"].items():
            add(f"test {kind}", ">= 0.90", acc, acc is not None and acc >= 0.9)
        long = split["multi_3_to_6"]
        add("test lists of 3-6", ">= 0.85", long, long is not None and long >= 0.85)
    if "camera" in result:
        add("camera-like scenes Acc@0.5", "(reported)", result["camera"]["acc@0.5"], None)
    if "aspect" in result:
        for name, gap in result["aspect"]["gap_to_1:1"].items():
            add(f"aspect {name} - 1:1", ">= -0.03", gap, gap >= -0.03)
    if "phrasing" in result:
        phrasing = result["phrasing"]
        for name, gap in phrasing["gap_to_plain"].items():
            add(f"phrasing {name} - plain", ">= -0.03", gap, gap >= -0.03)
        plain = phrasing["absent_acc"]["plain"]
        for name, acc in phrasing["absent_acc"].items():
            if name != "plain" and acc is not None and plain is not None:
                add(f"phrasing {name} - plain (absent)", ">= -0.03", acc - plain, acc - plain >= -0.03)  # fmt: skip
    if "negatives" in result:
        for wording, share in result["negatives"]["by_wording"].items():
            add(f"not there, {wording}: not found", "(reported)", share, None)
    if "photos" in result:
        photos = result["photos"]
        share = photos["shape"]["not_found_share"]
        add("photos: shape commands not found", ">= 0.95", share, share >= 0.95)
        add("photos: object commands not found", "(reported)", photos["object"]["not_found_share"], None)  # fmt: skip
        add("photos: empty/malformed/cut answers", "0", photos["bad_count"], photos["bad_count"] == 0)  # fmt: skip
    if "speed" in result:
        rate, cpu = result["speed"]["commands_per_s"], result["speed"]["commands_per_cpu_s"]
        add("commands/s, 1 thread, 640x480 (wall)", ">= 20", rate, rate >= 20)
        add("commands/s, 1 thread, 640x480 (CPU)", ">= 20", cpu, cpu >= 20)
    return rows


def print_table(rows: list) -> None:
    print(f"| {'bar':<38} | {'target':<10} | {'measured':>9} | met |")
    print(f"|{'-' * 40}|{'-' * 12}|{'-' * 11}|-----|")
    for name, target, value, met in rows:
        shown = "-" if value is None else f"{value:9.3f}"
        print(f"| {name:<38} | {target:<10} | {shown:>9} | {'' if met is None else ('yes' if met else 'NO'):<3} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools.robustness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", default="", help="model directory; default: the embedded one")
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and PNG")
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    parser.add_argument("--num", type=int, default=300, help="test commands (split, phrasing)")
    parser.add_argument("--aspect-num", type=int, default=300, help="scene groups (aspect)")
    parser.add_argument("--long-side", type=int, default=None,
                        help="ShapesRef canvas long side; default: the model's input size")  # fmt: skip
    parser.add_argument("--grid", type=int, default=24, help="test answers in the PNG")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    perceiver = Perceiver.load(args.model)
    side = args.long_side or perceiver.model.config.image_size
    result: dict = {"model": args.model or "embedded default", "backend": perceiver.backend}
    args.out.mkdir(parents=True, exist_ok=True)
    if "split" in args.only:
        result["split"], samples, predictions = sets.split(perceiver, args.num, side)
        prediction_grid(samples[: args.grid], predictions[: args.grid],
                        args.out / "robustness_test.png")  # fmt: skip
    if "aspect" in args.only:
        result["aspect"] = sets.aspect(perceiver, args.aspect_num, side)
    if "phrasing" in args.only:
        result["phrasing"] = sets.phrasing(perceiver, args.num, side)
    if "negatives" in args.only:
        result["negatives"] = sets.negatives(perceiver, args.num, side)
    if "photos" in args.only:
        result["photos"] = sets.photos(perceiver)
    if "speed" in args.only:
        result["speed"] = sets.speed(perceiver)
    if "camera" in args.only:
        result["camera"] = sets.camera_like(perceiver, args.num)
    path = write_result(args.out, "robustness.json", result)
    print_table(bars(result))
    if "split" in result:
        split = result["split"]
        print(f"per kind: {split['per_kind']}; lists: {split['multi_by_list_length']}; "
              f"absent: {split['absent_by_source']}")  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
