"""Prints the parameter table of docs/model.md: ``python -m pgpt_ros.model.param_table``.

The LLaVA-1.5-7B-shaped model is built on the meta device, so counting it allocates no weights.
"""

from __future__ import annotations

import torch

from pgpt_ros.model.builder import build_model
from pgpt_ros.model.config import PerceptionGPTConfig
from pgpt_ros.model.perception_gpt import PerceptionGPT

LORA = dict(r=8, alpha=16, dropout=0.05)


def summaries() -> dict[str, dict[str, tuple[int, int]]]:
    """Column title -> trainable_summary() for the four set-ups in the table."""
    tiny = build_model(PerceptionGPTConfig.tiny())
    tiny.freeze_vision_tower()
    columns = {"tiny, full (vision frozen)": tiny.trainable_summary()}
    tiny.freeze_vision_tower(False)
    tiny.add_lora(**LORA)
    columns["tiny, LoRA r=8"] = tiny.trainable_summary()
    with torch.device("meta"):
        big = PerceptionGPT(PerceptionGPTConfig.llava_7b_shape())
    big.freeze_vision_tower()
    columns["7B shape, full LM (vision frozen)"] = big.trainable_summary()
    big.add_lora(**LORA)
    columns["7B shape, LoRA r=8"] = big.trainable_summary()
    return columns


def markdown(columns: dict[str, dict[str, tuple[int, int]]]) -> str:
    """Rows: groups; per column "trainable / total"."""
    groups: list[str] = []
    for summary in columns.values():
        groups += [g for g in summary if g not in groups and g != "total"]
    groups.append("total")
    lines = ["| group | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for group in groups:
        cells = []
        for summary in columns.values():
            trainable, total = summary.get(group, (0, 0))
            cells.append(f"{trainable:,} / {total:,}" if total else "-")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    del argv
    torch.manual_seed(0)
    print(markdown(summaries()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
