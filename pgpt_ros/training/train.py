"""pgpt-train: train a PerceptionGPT from a YAML config, with command-line overrides.

    # the embedded default model (CPU, about 44 minutes on 2 cores)
    .venv/bin/pgpt-train --config configs/default.yaml --out pgpt_ros/default_model \
        --log-dir docs/default_model
    # a quick try: any config key can be overridden
    .venv/bin/pgpt-train --config configs/default.yaml --out out/try --set train.steps=300
    # continue an interrupted run from its last checkpoint
    .venv/bin/pgpt-train --config configs/default.yaml --out out/try --resume
    # several GPUs or nodes (docs/training.md): the same script under accelerate
    accelerate launch --multi_gpu --num_processes 4 -m pgpt_ros.training.train \
        --config configs/my_refcoco.yaml --out out/big --set train.device=auto

Writes the final model to ``--out`` (``pgpt_ros.model.save_pretrained``: config.json,
model.safetensors, tokenizer; an adapter directory under LoRA), and ``train_log.json`` (config,
losses, validation metrics, trainable parameters, wall time) and ``training_curve.png`` to
``--log-dir`` (default ``out/logs/<name of --out>``). Checkpoints go to ``--checkpoint-dir``
(default ``out/checkpoints/<name of --out>``), the last ``train.keep_checkpoints`` kept.
Validation answers through the served path (``pgpt_ros.runtime.Perceiver``, torch heads).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pgpt_ros.data.collate import Collator
from pgpt_ros.data.sample import Sample
from pgpt_ros.evaluate import evaluate
from pgpt_ros.model import PerceptionGPT, save_pretrained
from pgpt_ros.model.parameters import trainable_summary
from pgpt_ros.runtime import AnswerPolicy, Perceiver
from pgpt_ros.training import precision
from pgpt_ros.training.build import build_objective
from pgpt_ros.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from pgpt_ros.training.config import load_config
from pgpt_ros.training.curves import plot_curves
from pgpt_ros.training.data import StepBatches, answer_phrases, build_data, step_batches
from pgpt_ros.training.optim import lr_factor, make_optimizer
from pgpt_ros.training.vision_warmup import warm_up_vision


def validate(model: PerceptionGPT, samples: list[Sample], step: int, max_new_tokens: int) -> dict:
    """Validation metrics through the served path (torch heads: the weights change every step)."""
    model.eval()
    perceiver = Perceiver(model, policy=AnswerPolicy(max_new_tokens=max_new_tokens))
    with torch.no_grad():
        summary, _ = evaluate(perceiver, samples, progress=False)
    model.train()
    return {"step": step, "overall": summary["overall"], "per_kind": summary["per_kind"]}


def train(config: dict, out: Path, *, log_dir: Path | None = None,
          checkpoint_dir: Path | None = None, resume: bool = False,
          progress: bool = True) -> dict:  # fmt: skip
    """Runs the configured training; writes the model, log and curve; returns the log."""
    from accelerate import Accelerator, DistributedDataParallelKwargs, DistributedType

    tr = config["train"]
    torch.set_num_threads(tr["threads"])
    # A batch without any <vis> (all "not found") leaves the heads unused: DDP must allow that.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(cpu=tr["device"] == "cpu", mixed_precision=precision.autocast_mode(tr),
                              kwargs_handlers=[ddp])  # fmt: skip
    sharded = accelerator.distributed_type == DistributedType.FSDP
    if sharded and tr["checkpoint_every"] < tr["steps"]:
        raise ValueError(
            "under FSDP this loop writes only the final model (its checkpoints assume whole "
            "parameters); set train.checkpoint_every to train.steps or use DDP"
        )
    if tr["vision_warmup_steps"] and accelerator.num_processes > 1:
        raise ValueError("train.vision_warmup_steps trains a tower from scratch in one process; "
                         "set it to 0 under accelerate launch")  # fmt: skip
    checkpoint_dir = checkpoint_dir or Path("out/checkpoints") / out.name
    log_dir = log_dir or Path("out/logs") / out.name
    stages, val_samples = build_data(config)
    objective = build_objective(config, answer_phrases(config, stages))
    precision.configure(objective, tr)
    optimizer = make_optimizer(objective, tr)
    # CPU time beside wall time: on a machine other jobs share, the process's CPU seconds say
    # what the run costs (with one thread, about the wall time an idle core would take).
    log: dict = {"config": config, "history": [], "validation": [], "wall_time_s": 0.0,
                 "cpu_time_s": 0.0}  # fmt: skip
    step = 0
    found = latest_checkpoint(checkpoint_dir) if resume else None
    if resume and found is None:
        print(f"no checkpoint in {checkpoint_dir}; starting from scratch", file=sys.stderr)
    if found is not None:
        step, log = load_checkpoint(found, objective, optimizer)
        print(f"resumed from {found} at step {step}", file=sys.stderr)
    model = objective.model
    collate = Collator(model.require_tokenizer(), model.config,
                       patch_classes=config["objective"]["patch_classes"],
                       patch_geometry=config["objective"]["patch_geometry"])  # fmt: skip
    log["trainable_parameters"] = {k: list(v) for k, v in trainable_summary(model).items()}
    wrapped, optimizer = accelerator.prepare(objective, optimizer)
    started = time.perf_counter() - log["wall_time_s"]
    started_cpu = time.process_time() - log.get("cpu_time_s", 0.0)
    if step == 0 and tr["vision_warmup_steps"]:
        log["vision_warmup"] = warm_up_vision(objective, stages[-1], collate, tr, progress)
    running: dict[str, float] = {}
    count = 0
    per_image = config["data"]["commands_per_image"]
    bar = tqdm(total=tr["steps"], initial=step, desc="train", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    batches = step_batches(
        StepBatches(stages, collate.pack if per_image > 1 else collate, step, tr["steps"],
                    tr["batch_size"], accelerator.process_index, accelerator.num_processes,
                    per_image),
        tr["data_workers"],
    )  # fmt: skip
    while step < tr["steps"]:
        batch = {k: v.to(accelerator.device) for k, v in next(batches).items()}
        lr = tr["lr"] * lr_factor(step, tr)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        output = wrapped(batch, tr["max_mask_objects"])
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(output.loss)
        if tr["grad_clip"]:
            accelerator.clip_grad_norm_(wrapped.parameters(), tr["grad_clip"])
        optimizer.step()
        step += 1
        for name, value in {"loss": output.loss, **output.losses}.items():
            running[name] = running.get(name, 0.0) + float(value.detach())
        count += 1
        bar.update(1)
        if step % tr["log_every"] == 0 or step == tr["steps"]:
            entry = {"step": step, "lr": lr, "time_s": time.perf_counter() - started,
                     "cpu_s": time.process_time() - started_cpu,
                     **{k: v / count for k, v in running.items()}}  # fmt: skip
            log["history"].append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.3f}")
            if not progress:
                print(f"step {step}: loss {entry['loss']:.4f} ({entry['time_s']:.0f} s)",
                      flush=True)  # fmt: skip
            running, count = {}, 0
        if accelerator.is_main_process and (step % tr["eval_every"] == 0 or step == tr["steps"]):
            with accelerator.autocast():  # frozen half-precision weights meet float32 heads
                result = validate(model, val_samples[: tr["eval_size"]], step,
                                  tr["eval_max_new_tokens"])  # fmt: skip
            log["validation"].append(result)
            v = result["overall"]
            tqdm.write(f"step {step}: val acc@0.5 {v['acc@0.5']:.3f}, mask mIoU "
                       f"{v['mask_miou'] or 0:.3f}")  # fmt: skip
        log["wall_time_s"] = time.perf_counter() - started
        log["cpu_time_s"] = time.process_time() - started_cpu
        if accelerator.is_main_process and step % tr["checkpoint_every"] == 0:
            save_checkpoint(checkpoint_dir / f"step-{step:07d}", objective, optimizer, step, log)
            for old in sorted(checkpoint_dir.glob("step-*[0-9]"))[: -tr["keep_checkpoints"]]:
                shutil.rmtree(old)
    bar.close()
    # Every process takes part: under FSDP this gathers the shards; otherwise the model's own.
    state = accelerator.get_state_dict(wrapped)
    if accelerator.is_main_process:
        weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        save_pretrained(model.eval(), out, state_dict=weights)
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
        plot_curves(log, log_dir / "training_curve.png")
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--config", type=Path, default=None, help="YAML config (configs/*.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="output model directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key, e.g. train.steps=500")  # fmt: skip
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="train_log.json and training_curve.png; default out/logs/<name>")  # fmt: skip
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="default: out/checkpoints/<name of --out>")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    log = train(config, args.out, log_dir=args.log_dir, checkpoint_dir=args.checkpoint_dir,
                resume=args.resume, progress=not args.no_progress)  # fmt: skip
    if log["validation"]:
        v = log["validation"][-1]["overall"]
        print(f"done in {log['wall_time_s']:.0f} s: val acc@0.5 {v['acc@0.5']:.3f}, "
              f"mask mIoU {v['mask_miou'] or 0:.3f}; model in {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
