"""``pgpt-bench spatial``: what 3D and tracking add, and how well 3D matches the demo's truth.

    pgpt-bench spatial                       # all three parts, embedded default model
    pgpt-bench spatial --no-model            # latency only (no torch)
    pgpt-bench spatial --out docs/bench --scenes 20 --frames 60

1. **Latency per detection** of the 3D step at 640x480 and 1280x720, on demo scenes (ShapesRef
   shapes with 16UC1 depth): ``locate`` from the mask, from the box only, then with the Detection's
   3D fields and the rviz markers (what the node adds per object), and with the markers' points.
2. **3D error** of the embedded model's answers: for each uniquely named shape of ``--scenes`` demo
   scenes (640x480, shapes at 0.6-2.0 m), "the <colour> <shape>" -> best detection -> 3D position,
   against the shape's true visible-surface centre.
3. **Standing commands**: on each of ``--track-scenes`` moving demo scenes, one command (naming
   several shapes where the scene allows) answered on each of ``--frames`` frames at 10 Hz scene
   time (model + 3D + tracking per frame, no ROS transport): the rate achieved, the id switches.

Prints Markdown tables and writes ``DIR/spatial-<device>.json`` (``--out DIR``, default docs/bench).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from pgpt_ros.data.shapesref import commands_for
from pgpt_ros.metrics import box_iou, match
from pgpt_ros.spatial import DepthImage, DepthSync, locate, locate_all
from pgpt_ros.spatial.shapes3d import Frame3D, Geometry, Shapes3D
from pgpt_ros.spatial.sync import DepthFrame
from pgpt_ros.tracking import Tracker

SIZES = ((640, 480), (1280, 720))
SCORE_THRESHOLD = 0.25  # the node's default score_threshold


def depth_frame(frame: Frame3D) -> DepthFrame:
    """The frame's depth as a camera sends it (16UC1 millimetres) with its intrinsics."""
    raw = np.rint(frame.depth_m * 1000).astype(np.uint16)
    return DepthFrame(DepthImage(raw, "16UC1", 0.1, 10.0), frame.intrinsics, 0.0)


def time_ms(fn, repeats: int) -> float:
    """Least wall-clock milliseconds of ``fn()`` over ``repeats`` calls (the least disturbed)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def latency(scenes: int, repeats: int) -> list[dict]:
    """Per size: median over the scenes' objects of each variant's best time per detection."""
    from std_msgs.msg import Header

    from pgpt_ros.msg import Detection
    from pgpt_ros.ros.spatial_messages import marker_array, set_position

    header = Header(frame_id="camera")
    rows = []
    for width, height in SIZES:
        times: dict[str, list[float]] = {"mask": [], "box": [], "markers": [], "points": []}
        pixels = []
        for seed in range(scenes):
            frame = Shapes3D(seed, width, height, Geometry()).frame()
            depth = depth_frame(frame)
            for obj in frame.objects:
                box_only = dataclasses.replace(obj, mask=None)

                def with_markers(points: bool, obj=obj, depth=depth):
                    position = locate(obj, depth, keep_points=points)
                    found = set_position(Detection(phrase=obj.name), position)
                    marker_array(header, [found], [position.points] if points else [])

                times["mask"].append(time_ms(lambda obj=obj, d=depth: locate(obj, d), repeats))
                times["box"].append(time_ms(lambda b=box_only, d=depth: locate(b, d), repeats))
                times["markers"].append(time_ms(lambda: with_markers(False), repeats))
                times["points"].append(time_ms(lambda: with_markers(True), repeats))
                pixels.append(int(obj.mask.sum()))
        row = {"size": f"{width}x{height}", "objects": len(pixels)}
        row["median_mask_pixels"] = int(statistics.median(pixels))
        row.update({f"{k}_ms": statistics.median(v) for k, v in times.items()})
        rows.append(row)
    return rows


def load_perceiver():
    from pgpt_ros.runtime import Perceiver

    perceiver = Perceiver.load("")
    perceiver.warmup()
    return perceiver


def best_detection(perceiver, image: np.ndarray, command: str):
    found = [d for d in perceiver.locate(image, command).detections if d.score >= SCORE_THRESHOLD]
    return max(found, key=lambda d: d.score, default=None)


def error_3d(perceiver, scenes: int) -> dict:
    """3D error of the model's answer for every uniquely named shape of ``scenes`` demo scenes."""
    import torch

    torch.set_num_threads(1)  # the answers do not depend on it; one thread is fastest when busy
    rows = []
    for seed in range(7, 7 + scenes):
        shapes = Shapes3D(seed, 640, 480, Geometry())
        frame = shapes.frame()
        depth = depth_frame(frame)
        names = [o.name for o in frame.objects]
        for truth in frame.objects:
            if names.count(truth.name) > 1:
                continue
            found = best_detection(perceiver, frame.image, f"the {truth.name}")
            row = {"seed": seed, "object": truth.name, "depth_m": truth.depth_m}
            row["fully_visible"] = truth.fully_visible
            if found is None:
                rows.append({**row, "status": "not found"})
                continue
            position = locate(found, depth)
            row["box_iou"] = float(box_iou(found.box, truth.box)[0, 0])
            row["status"] = position.status.name
            if position.ok:
                row["error_mm"] = float(np.linalg.norm(position.position - truth.centre_m) * 1e3)
                row["depth_pixels"] = position.depth_pixels
            rows.append(row)
    return {"rows": rows, "summary": error_summary(rows)}


def error_summary(rows: list[dict]) -> dict:
    """Median / 90th percentile / max error (mm and % of depth), for found shapes (IoU >= 0.5)."""
    summary = {}
    for label, keep in (("fully visible", True), ("partly hidden", False)):
        hits = [
            r
            for r in rows
            if "error_mm" in r and r["box_iou"] >= 0.5 and r["fully_visible"] == keep
        ]
        errors = sorted(r["error_mm"] for r in hits)
        relative = sorted(r["error_mm"] / (10 * r["depth_m"]) for r in hits)  # % of depth
        if errors:
            summary[label] = {
                "objects": len(errors),
                "median_mm": statistics.median(errors),
                "p90_mm": float(np.percentile(errors, 90)),
                "max_mm": errors[-1],
                "median_percent_of_depth": statistics.median(relative),
            }
    return summary


def standing(perceiver, scenes: int, frames: int, threads: int, rate_hz: float = 10.0) -> dict:
    """A standing command on ``frames`` frames of each of ``scenes`` moving demo scenes with
    ``threads`` torch threads: the rate, the time per stage, and id switches against the truth
    (detections paired with true shapes at box IoU >= 0.5)."""
    import torch

    torch.set_num_threads(threads)
    stages: dict[str, list[float]] = {"model_ms": [], "spatial_ms": [], "tracking_ms": []}
    runs = []
    start = time.perf_counter()
    for seed in range(7, 7 + scenes):
        shapes = Shapes3D(seed, 640, 480, Geometry(motion=0.1))
        # A command naming several shapes when the scene has one, so that ids have to stay apart.
        expressions = commands_for(shapes.scene)
        kinds = [e.kind for e in expressions]
        command = expressions[kinds.index("multi") if "multi" in kinds else 0].command
        sync = DepthSync(tolerance_s=0.05, min_m=0.1, max_m=10.0)
        sync.set_camera_info(shapes.intrinsics.k, 640, 480)
        tracker, last, switches, paired = Tracker(), {}, 0, 0
        for step in range(frames):
            frame = shapes.frame(step / rate_hz)
            stamp = step * 100_000_000
            sync.add_depth(stamp, np.rint(frame.depth_m * 1000).astype(np.uint16), "16UC1")
            t0 = time.perf_counter()
            answer = perceiver.locate(frame.image, command)
            found = [d for d in answer.detections if d.score >= SCORE_THRESHOLD]
            t1 = time.perf_counter()
            locate_all(found, sync.frame_for(stamp, 640, 480))
            t2 = time.perf_counter()
            ids = tracker.update(found)
            t3 = time.perf_counter()
            for key, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2), strict=True):
                stages[key].append(seconds * 1e3)
            truth = np.array([o.box for o in frame.objects]).reshape(-1, 4)
            predicted = np.array([d.box for d in found]).reshape(-1, 4)
            for i, j in match(box_iou(predicted, truth), threshold=0.5):
                paired += 1
                switches += j in last and last[j] != ids[i]
                last[j] = ids[i]
        runs.append({"seed": seed, "command": command, "object_frames": paired,
                     "id_switches": switches})  # fmt: skip
    elapsed = time.perf_counter() - start
    return {
        "torch_threads": threads,
        "frames": frames * scenes,
        "rate_hz": frames * scenes / elapsed,
        **{key: statistics.median(values) for key, values in stages.items()},
        "object_frames": sum(r["object_frames"] for r in runs),
        "id_switches": sum(r["id_switches"] for r in runs),
        "runs": runs,
    }


def markdown(header: list[str], rows: list[list[object]]) -> list[str]:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def tables(result: dict) -> str:
    """The three parts as Markdown (what docs/spatial.md quotes)."""
    lines = markdown(
        ["image", "objects", "median mask px", "locate (mask) ms", "locate (box) ms",
         "+ Detection fields + markers ms", "+ 2000 marker points ms"],
        [[r["size"], r["objects"], r["median_mask_pixels"], f"{r['mask_ms']:.2f}",
          f"{r['box_ms']:.2f}", f"{r['markers_ms']:.2f}", f"{r['points_ms']:.2f}"]
         for r in result["latency"]],
    )  # fmt: skip
    if "error" in result:
        lines.append("")
        lines += markdown(
            ["shapes", "found", "median mm", "p90 mm", "max mm", "median % of depth"],
            [[label, s["objects"], f"{s['median_mm']:.1f}", f"{s['p90_mm']:.1f}",
              f"{s['max_mm']:.1f}", f"{s['median_percent_of_depth']:.2f}"]
             for label, s in result["error"]["summary"].items()],
        )  # fmt: skip
    if "standing" in result:
        lines.append("")
        lines += markdown(
            ["torch threads", "frames", "rate Hz", "model ms", "3D ms", "tracking ms",
             "object-frames", "id switches"],
            [[s["torch_threads"], s["frames"], f"{s['rate_hz']:.1f}", f"{s['model_ms']:.0f}",
              f"{s['spatial_ms']:.1f}", f"{s['tracking_ms']:.2f}", s["object_frames"],
              s["id_switches"]] for s in result["standing"]],
        )  # fmt: skip
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgpt-bench spatial", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/bench"), help="output directory")
    parser.add_argument("--scenes", type=int, default=10, help="demo scenes per measurement")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per detection")
    parser.add_argument("--frames", type=int, default=30, help="frames per standing command")
    parser.add_argument("--track-scenes", type=int, default=6, help="moving scenes to track")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="torch threads to try (standing)"
    )
    parser.add_argument("--no-model", action="store_true", help="latency only, no model")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = {"cpu": platform.machine(), "cpu_count": os.cpu_count() or 0}
    # Other work on the machine slows every number; the load says how busy it was.
    machine["load_average_1min"] = round(os.getloadavg()[0], 2)
    result: dict = {"machine": machine, "latency": latency(args.scenes, args.repeats)}
    if not args.no_model:
        perceiver = load_perceiver()
        result["error"] = error_3d(perceiver, args.scenes)
        result["standing"] = [
            standing(perceiver, args.track_scenes, args.frames, threads) for threads in args.threads
        ]
    result["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    result["command"] = "pgpt-bench spatial " + " ".join(argv if argv is not None else [])
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "spatial-cpu.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(tables(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
