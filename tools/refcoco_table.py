"""The RefCOCO results table of docs/training.md from ``pgpt-eval`` runs, with the paper's row.

    python -m tools.refcoco_table out/eval/refcoco-val out/eval/refcoco-testA out/eval/refcoco-testB

Each argument is a ``pgpt-eval --out`` folder (its ``metrics.json``); the dataset is named by the
folder holding its refs file (``data/refcoco/refs.json`` -> refcoco). Prints a Markdown table of
box Acc@0.5 (%) per dataset and split, under PerceptionGPT-7B's published RefCOCO numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SPLITS = ("val", "testA", "testB", "test")
# PerceptionGPT-7B, RefCOCO Acc@0.5 (%), as published (Pi et al., CVPR 2024).
PAPER = {("refcoco", "val"): 88.6, ("refcoco", "testA"): 92.5, ("refcoco", "testB"): 84.6}


def read_runs(folders: list[Path]) -> dict[tuple[str, str], tuple[float, int]]:
    """(dataset, split) -> (Acc@0.5 in %, commands) of each ``pgpt-eval`` folder."""
    runs = {}
    for folder in folders:
        result = json.loads((folder / "metrics.json").read_text())
        dataset = result["dataset"]
        if dataset["name"] != "refcoco":
            raise ValueError(f"{folder} evaluated {dataset['name']}, not RefCOCO-format data")
        name = Path(dataset["refs"]).parent.name or "refcoco"
        runs[(name, dataset["split"])] = (100 * result["overall"]["acc@0.5"], dataset["size"])
    return runs


def table(runs: dict[tuple[str, str], tuple[float, int]], label: str) -> str:
    """Markdown: one column per (dataset, split), the paper's row, then this model's."""
    columns = sorted(set(runs) | set(PAPER),
                     key=lambda c: (c[0], SPLITS.index(c[1]) if c[1] in SPLITS else 9, c[1]))  # fmt: skip
    header = "| model | " + " | ".join(f"{d} {s}" for d, s in columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    paper = [f"{PAPER[c]:.1f}" if c in PAPER else "-" for c in columns]
    ours = [f"{runs[c][0]:.1f} ({runs[c][1]:,})" if c in runs else "-" for c in columns]
    return "\n".join([header, rule, "| PerceptionGPT-7B (paper) | " + " | ".join(paper) + " |",
                      f"| {label} | " + " | ".join(ours) + " |"])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="refcoco_table", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="pgpt-eval --out folders")
    parser.add_argument("--label", default="this model (commands)", help="the model's row label")
    args = parser.parse_args(argv)
    print(table(read_runs(args.folders), args.label))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
