"""What every benchmark shares: timing, the machine's description, writing the JSON result."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers


def synchronize(device: torch.device) -> None:
    """Waits for the GPU, so a wall-clock time covers the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], device: torch.device, repeats: int,
               warmup: int) -> list[float]:  # fmt: skip
    """Milliseconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(1000 * (time.perf_counter() - start))
    return times


@dataclass
class Timer:
    """Milliseconds of a call: the median (or, on a machine others share, the minimum: the least
    disturbed run) of ``repeats`` timed calls after ``warmup`` untimed ones."""

    device: torch.device
    repeats: int = 5
    warmup: int = 2
    statistic: str = "median"

    def __call__(self, fn: Callable[[], object]) -> float:
        times = time_calls(fn, self.device, self.repeats, self.warmup)
        return min(times) if self.statistic == "min" else statistics.median(times)


def summary(times: list[float]) -> dict[str, float]:
    """Median, 90th percentile and minimum of a list of milliseconds."""
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered),
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
        "min_ms": ordered[0],
    }


def machine_description(device: torch.device) -> dict[str, str]:
    """The device's name, the library versions and the load (other work skews timings)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        name += f", {torch.get_num_threads()} torch threads of {os.cpu_count()} cores"
    return {
        "device": name,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda or "none",
        "load_average_1_5_15_min": ", ".join(f"{v:.1f}" for v in os.getloadavg()),
    }


def write_result(directory: Path, name: str, result: dict) -> Path:
    """Writes ``result`` as ``directory/name`` (JSON) and returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
