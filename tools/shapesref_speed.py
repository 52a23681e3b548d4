"""Render time of ShapesRef samples: training renders every sample on the fly, on the CPU.

    python -m tools.shapesref_speed --out docs/bench

Prints a table (CPU milliseconds per sample; rendering runs on one thread) and writes
``shapesref_speed.json`` under ``--out``. Each row renders ``--samples`` samples ``--repeats``
times and keeps the fastest pass. CPU time, not wall time: on a machine shared with other jobs
it still says what a sample costs one core.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

from pgpt_ros.data.shapesref.config import SceneConfig
from pgpt_ros.data.shapesref.dataset import ShapesRef


def per_sample_ms(render: Callable[[int], object], samples: int, repeats: int) -> float:
    """Fastest of ``repeats`` passes over ``samples`` indices, in CPU milliseconds per sample."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for index in range(samples):
            render(index)
        best = min(best, (time.process_time() - start) / samples)
    return best * 1000.0


def rows(samples: int, repeats: int) -> list[dict]:
    """One row per (config, canvas) that training or the demo camera uses."""
    default, camera, varied = SceneConfig(), SceneConfig.preset("camera"), SceneConfig.preset("varied")  # fmt: skip
    cases = []
    for name, config in (("default", default), ("camera", camera), ("varied", varied)):
        for side in (64, 96, 128):
            dataset = ShapesRef("train", side, samples, config=config)
            canvas = f"{side} (long side)" if config.aspects else f"{side} x {side}"
            cases.append((name, canvas, "sample", dataset.__getitem__))
        dataset = ShapesRef("train", 64, samples, config=config)
        cases.append((name, "64 (long side)", "4 commands", lambda i, d=dataset: d.commands(i, 4)))
    for name, config in (("default", default), ("varied", varied)):
        scene = lambda i, c=config: ShapesRef.scene(i, 640, 480, c)  # noqa: E731
        cases.append((name, "640 x 480", "demo scene", scene))
    found = []
    for name, canvas, what, render in cases:
        count = samples if "640" not in canvas else max(samples // 10, 5)
        ms = per_sample_ms(render, count, repeats)
        found.append({"config": name, "canvas": canvas, "render": what, "ms": round(ms, 3)})
        print(f"| {name:8s} | {canvas:16s} | {what:10s} | {ms:7.2f} |", flush=True)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON")
    parser.add_argument("--samples", type=int, default=200, help="samples per pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the fastest is kept")
    args = parser.parse_args(argv)
    print("| config   | canvas           | render     | ms/item |")
    print("|----------|------------------|------------|---------|")
    table = rows(args.samples, args.repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "shapesref_speed.json"
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "samples": args.samples, "repeats": args.repeats}  # fmt: skip
    path.write_text(json.dumps({"meta": meta, "rows": table}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
