"""Prints the parameter table of docs/model.md: ``python -m tools.param_table``.

The LLaVA-1.5-7B- and LLaVA-Interleave-0.5B-shaped models are built on the meta device, so
counting them allocates no weights.
"""

from __future__ import annotations

import torch

from pgpt_ros.model import add_lora, build_model, build_perception_gpt, preset_config
from pgpt_ros.model.parameters import freeze_vision_tower, trainable_summary

LORA = dict(r=8, alpha=16, dropout=0.05)


def summaries() -> dict[str, dict[str, tuple[int, int]]]:
    """Column title -> trainable_summary() for the five set-ups in the table."""
    tiny = build_model(preset_config("tiny"))
    freeze_vision_tower(tiny)
    columns = {"tiny, full (vision frozen)": trainable_summary(tiny)}
    freeze_vision_tower(tiny, False)
    add_lora(tiny, **LORA)
    columns["tiny, LoRA r=8"] = trainable_summary(tiny)
    with torch.device("meta"):
        big = build_perception_gpt(preset_config("llava-1.5-7b"))
    freeze_vision_tower(big)
    columns["7B shape, full LM (vision frozen)"] = trainable_summary(big)
    add_lora(big, **LORA)
    columns["7B shape, LoRA r=8"] = trainable_summary(big)
    with torch.device("meta"):
        small = build_perception_gpt(preset_config("llava-interleave-qwen-0.5b"))
    freeze_vision_tower(small)
    add_lora(small, **LORA)
    columns["0.5B shape, LoRA r=8"] = trainable_summary(small)
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
