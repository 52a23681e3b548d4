"""The one-token ablation: the perception token against coordinates written as text.

    .venv/bin/python -m tools.ablation --config configs/ablation.yaml --out docs

Trains each variant of ``configs/ablation.yaml`` (same backbone, data, batch and step budget;
only the answer head differs) with ``pgpt_ros.training``, evaluates each on the same held-out
ShapesRef commands through the served path (``Perceiver``), and writes ``docs/ablation.md`` (the table, measured here) and
``docs/ablation.png`` (Acc@0.5 against training steps). Models and logs go to ``--work-dir``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

from pgpt_ros.training.config import load_config, merge
from pgpt_ros.training.train import train

# The three answers the paper's claim is about: one token per object with either box decoder,
# and the Shikra-style text coordinates.
VARIANTS = {
    "perception token, query box head": {"model": {"head": "perception", "box_decoder": "query"}},
    "perception token, MLP box head": {"model": {"head": "perception", "box_decoder": "mlp"}},
    "text coordinates (baseline)": {"model": {"head": "text_coords"}},
}


def run(
    config_path: Path, out: Path, work_dir: Path, test_size: int, skip_training: bool = False
) -> dict:
    """Trains (unless ``skip_training``: reuse WORK_DIR's models) and evaluates every variant."""
    from pgpt_ros.data.shapesref import ShapesRef
    from pgpt_ros.evaluate import evaluate
    from pgpt_ros.runtime import AnswerPolicy, Perceiver

    base = load_config(config_path, [])
    tr = base["train"]
    commit = _git_state()
    if skip_training:  # the models were built from the code recorded at training time
        commit = json.loads((work_dir / "ablation.json").read_text()).get("_source", commit)
    test = ShapesRef("test", image_size=base["data"]["image_size"], length=test_size)
    samples = [test[i] for i in range(test_size)]
    results = {}
    for name, change in VARIANTS.items():
        config = merge(copy.deepcopy(base), change)
        slug = name.split(" (")[0].replace(",", "").replace(" ", "_")
        if skip_training:
            log = json.loads((work_dir / slug / "train_log.json").read_text())
        else:
            log = train(config, work_dir / slug, log_dir=work_dir / slug,
                        checkpoint_dir=work_dir / "checkpoints" / slug)  # fmt: skip
        torch.set_num_threads(1)  # latency measured on one core, as on a busy robot computer
        policy = AnswerPolicy(max_new_tokens=tr["eval_max_new_tokens"])
        perceiver = Perceiver.load(str(work_dir / slug), head_backend="torch", policy=policy)
        summary, _ = evaluate(perceiver, samples)
        results[name] = {
            "curve": [(v["step"], v["overall"]["acc@0.5"]) for v in log["validation"]],
            "test": summary,
            "trainable": log["trainable_parameters"]["total"][0],
            "train_time_s": log["wall_time_s"],
        }
    results["_source"] = commit
    (work_dir / "ablation.json").write_text(json.dumps(results, indent=1))
    write_report(results, base, out, test_size)
    return results


def _git_state() -> str:
    """The commit the models were built from, and whether the model code differed from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "pgpt_ros/model"],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" with uncommitted model changes" if dirty else "")


def describe_model(model: dict) -> str:
    """One line of the architecture a ``model`` config section names."""
    from pgpt_ros.model import preset_config

    cfg = preset_config(model["preset"], **{k: v for k, v in model.items() if k != "preset"})
    vision, text = cfg.backbone["vision_config"], cfg.backbone["text_config"]
    return (f"{cfg.image_size} px input, patch {vision['patch_size']}, ViT {vision['hidden_size']} "
            f"wide x {vision['num_hidden_layers']} layers, Llama {text['hidden_size']} wide x "
            f"{text['num_hidden_layers']} layers, heads {cfg.head_width} wide, "
            f"{cfg.mask_size}x{cfg.mask_size} masks")  # fmt: skip


def write_report(results: dict, config: dict, out: Path, test_size: int) -> None:
    """``ablation.md`` and ``ablation.png`` from the measured results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    source = results.get("_source", "unknown commit")
    results = {k: v for k, v in results.items() if not k.startswith("_")}
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, r in results.items():
        steps, acc = zip(*r["curve"], strict=True)
        ax.plot(steps, acc, marker="o", label=name)
    ax.set_xlabel(f"training step (batch {config['train']['batch_size']})")
    ax.set_ylabel("validation Acc@0.5 (all kinds)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("ShapesRef: one perception token vs coordinates as text")
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=110)
    plt.close(fig)

    def fmt(value: float | None, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    rows = []
    for name, r in results.items():
        o, speed = r["test"]["overall"], r["test"]["speed"]
        rows.append(
            f"| {name} | {fmt(o['acc@0.5'])} | {fmt(o['box_miou'])} | {fmt(o['mask_miou'])} "
            f"| {speed['tokens_per_object']:.1f} | {speed['seconds_per_command'] * 1000:.1f} "
            f"| {r['trainable']:,} | {r['train_time_s'] / 60:.1f} |"
        )
    kinds = sorted(next(iter(results.values()))["test"]["per_kind"])
    kind_rows = [
        f"| {name} | "
        + " | ".join(fmt(r["test"]["per_kind"][k]["acc@0.5"], 2) for k in kinds)
        + " |"
        for name, r in results.items()
    ]
    model = describe_model(config["model"])
    tr = config["train"]
    text = f"""# Ablation: one perception token vs coordinates as text

Generated by `python -m tools.ablation --config configs/ablation.yaml --out docs` on
{platform.machine()} CPU (one thread for latency), model code at {source}; do not edit by hand.

Same backbone ({model}), same ShapesRef data (all five expression kinds), same batch
({tr["batch_size"]}) and step budget ({tr["steps"]} steps, learning rate {tr["lr"]}); only the
answer differs: `red circle <vis>` decoded by a box head (query or MLP) plus the mask head, or
`red circle [0.125,0.250,0.500,0.625]` written token by token.

![Acc@0.5 against training steps](ablation.png)

Held-out ShapesRef test split, {test_size} commands (the same for every variant):

| variant | Acc@0.5 | box mIoU | mask mIoU | output tokens per object | CPU latency per command (ms) | trainable parameters | training time (min) |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Acc@0.5 per expression kind:

| variant | {" | ".join(kinds)} |
|---|{"---|" * len(kinds)}
{chr(10).join(kind_rows)}

- Acc@0.5: a command is correct when its predicted boxes and target boxes pair up one to one at
  IoU >= 0.5 with none left over (no target: nothing predicted); see `pgpt_ros/metrics.py`.
- Output tokens per object: generated tokens (EOS included) of commands that have targets,
  divided by their number of target objects.
- Latency: the served path (`Perceiver.locate`: static KV cache, greedy, torch heads), one CPU
  thread, mean over the test commands; it includes mask decoding for the perception variants.
- Trainable parameters include the heads (the text baseline has none: it trains the backbone
  only).
- Latency and training time are wall times on a 2-core machine shared with other jobs: expect
  noise of tens of percent; the token counts are exact.
"""
    (out / "ablation.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--config", type=Path, default=Path("configs/ablation.yaml"))
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the report goes")
    parser.add_argument("--work-dir", type=Path, default=Path("out/ablation"))
    parser.add_argument("--test-size", type=int, default=200)
    parser.add_argument("--skip-training", action="store_true",
                        help="re-evaluate the models already trained in WORK_DIR")  # fmt: skip
    args = parser.parse_args(argv)
    run(args.config, args.out, args.work_dir, args.test_size, args.skip_training)
    print(f"wrote {args.out / 'ablation.md'} and {args.out / 'ablation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
