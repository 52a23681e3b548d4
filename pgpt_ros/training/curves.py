"""The picture of a training run: losses and validation accuracy against the step, and the
vision warm-up's losses when the run had one."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_curves(log: dict, path: Path) -> None:
    """Training losses (log scale), validation accuracy, and the warm-up's losses, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    warmup = log.get("vision_warmup") or []
    fig, axes = plt.subplots(1, 3 if warmup else 2, figsize=(16 if warmup else 11, 4))
    if warmup:
        _plot_losses(axes[0], warmup, "vision warm-up losses (image side alone)")
    _plot_losses(axes[-2], log["history"], "training losses")
    right = axes[-1]
    for metric in ("acc@0.5", "box_miou", "mask_miou"):
        points = [(v["step"], v["overall"][metric]) for v in log["validation"]
                  if v["overall"][metric] is not None]  # fmt: skip
        if points:
            right.plot(*zip(*points, strict=True), marker="o", label=metric)
    right.set_ylim(0, 1)
    right.set_xlabel("step")
    right.set_title("validation")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_losses(axis, history: list[dict], title: str) -> None:
    """Every logged loss of ``history`` against the step, log scale, the total in bold."""
    steps = [h["step"] for h in history]
    names = [
        k
        for k in (history[0] if history else {})
        if k not in ("step", "lr", "time_s", "cpu_s", "compute_s")
    ]
    for name in names:
        values = np.maximum([h[name] for h in history], 1e-4)
        axis.plot(steps, values, label=name, linewidth=2 if name == "loss" else 1)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_title(title)
    axis.legend(fontsize=8)
