"""The picture of a training run: losses and validation accuracy against the step."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_curves(log: dict, path: Path) -> None:
    """Training losses (log scale) and validation accuracy against the step, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    history = log["history"]
    steps = [h["step"] for h in history]
    for name in [
        k for k in (history[0] if history else {}) if k not in ("step", "lr", "time_s", "cpu_s")
    ]:
        values = np.maximum([h[name] for h in history], 1e-4)
        left.plot(steps, values, label=name, linewidth=2 if name == "loss" else 1)
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_title("training losses")
    left.legend(fontsize=8)
    val = log["validation"]
    for metric in ("acc@0.5", "box_miou", "mask_miou"):
        points = [
            (v["step"], v["overall"][metric]) for v in val if v["overall"][metric] is not None
        ]
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
