"""pgpt-train: train a PerceptionGPT from a YAML config, with command-line overrides.

    # the embedded default model (CPU, about 30 minutes on 2 cores)
    .venv/bin/pgpt-train --config configs/default.yaml --out pgpt_ros/default_model
    # a quick try: any config key can be overridden
    .venv/bin/pgpt-train --config configs/default.yaml --out out/try --set train.steps=300
    # continue an interrupted run from its last checkpoint
    .venv/bin/pgpt-train --config configs/default.yaml --out out/try --resume
    # several GPUs or nodes (see docs/training.md): the same script under accelerate
    accelerate launch --multi_gpu --num_processes 4 -m pgpt_ros.train \
        --config configs/default.yaml --out out/big --set train.device=auto

Writes to ``--out``: the final model (``PerceptionGPT.save_pretrained``: pgpt_config.json,
model.safetensors, tokenizer), ``train_log.json`` (config, losses, validation metrics, trainable
parameters, wall time) and ``training_curve.png``. Checkpoints (the same directory format plus
``optimizer.safetensors`` and ``trainer_state.json``) go to ``--checkpoint-dir`` (default
``out/checkpoints/<name of --out>``), the last ``train.keep_checkpoints`` kept.

Data order is a pure function of the step (sample ``step * batch + i`` of the split), so a resumed
run sees exactly the samples the uninterrupted one would have seen.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
import yaml
from tqdm import tqdm

from pgpt_ros.data.sample import Sample

# Every key a config may set, with its default; an unknown key is an error (typos never pass).
DEFAULTS: dict[str, Any] = {
    "model": {
        # keyword arguments of PerceptionGPTConfig.tiny (architecture, heads, loss weights)
        "image_size": 64,
        "patch_size": 8,
        "vision_width": 64,
        "vision_layers": 2,
        "text_width": 128,
        "text_layers": 2,
        "head": "perception",
        "box_decoder": "query",
        "mask_decoder": "lite",
        "mask_size": 32,
        "head_width": 64,
        "vision_stem": "patch",  # "conv": stride-2 convolutions instead of the patch projection
        "patch_classes": 0,  # > 0: the training-only patch classifier (ShapesRef: 25)
        "patch_geometry": False,  # the training-only per-token object box head (ShapesRef)
        "image_position": False,  # add each patch's 2-D place to the image tokens
        "loss_weights": {},
    },
    "init": None,  # a model directory to start from instead of random weights
    "freeze_vision": False,  # a random tiny tower must learn; freeze a pretrained one
    "lora": None,  # {"r": 8, "alpha": 16, "dropout": 0.05}: LoRA on the LM, rest frozen
    "data": {
        "dataset": "shapesref",  # or "refcoco"
        "image_size": 64,  # ShapesRef render size (the model stretches to its own)
        "kinds": {"attribute": 1.0, "relation": 1.0, "extreme": 1.0, "multi": 1.0, "absent": 1.0},
        "scene": {},  # SceneConfig fields, e.g. {"max_shapes": 4}
        "val_size": 200,
        "seed": 0,
        # ShapesRef only: rows of this many commands about one image (Collator.pack); the image
        # tokens then run once for them all, so a step trains on batch_size * this commands
        "commands_per_image": 1,
        # stages: [{"until": step, "kinds": {...}, "scene": {...}}]: easier data first
        "curriculum": [],
        "refcoco": {
            "refs": None,
            "instances": None,
            "images": None,
            "train_split": "train",
            "val_split": "val",
        },  # fmt: skip
    },
    "train": {
        "steps": 3000,
        "batch_size": 16,
        "lr": 5e-4,
        "min_lr_ratio": 0.1,  # cosine decay down to lr * this
        "warmup_steps": 200,
        "weight_decay": 0.01,
        "grad_clip": 1.0,  # 5e-4 without clipping diverged on these models (model-notes.md)
        "max_mask_objects": None,  # train the mask decoder on this many objects per step
        # learning-rate factor of the vision tower, projector and patch classifier: a tower
        # trained from scratch learned shapes several times faster at 6e-3 than at the LLM's 1e-3
        "vision_lr_scale": 1.0,
        "log_every": 50,
        "eval_every": 500,
        "eval_size": 100,  # validation commands decoded at each evaluation
        "eval_max_new_tokens": 48,  # answer length limit while validating (text boxes need more)
        "checkpoint_every": 500,
        "keep_checkpoints": 1,
        "seed": 0,
        "threads": 2,
        "device": "cpu",  # "auto": whatever accelerate finds (GPUs under accelerate launch)
    },
}


# ----------------------------------------------------------------------------- configuration


# Free-form maps: a new value replaces the whole map (``data.kinds: {attribute: 1}`` means only
# attribute commands); their keys are checked by the class that reads them.
_OPEN_KEYS = {"model.loss_weights", "data.kinds", "data.scene"}


def _merge(base: dict, update: dict, path: str = "") -> dict:
    """``base`` updated by ``update`` recursively; a key absent from ``base`` is an error."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            raise ValueError(f"unknown config key {where!r}; known: {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, dict) and where not in _OPEN_KEYS:
            out[key] = _merge(base[key], value, where + ".")
        else:
            out[key] = value
    return out


def load_config(path: Path | None, overrides: list[str]) -> dict:
    """DEFAULTS, updated by the YAML file, updated by ``key.sub=value`` overrides (YAML values)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"config {path} not found (see configs/ for examples)")
        config = _merge(config, yaml.safe_load(path.read_text()) or {})
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.key=value")
        dotted, value = item.split("=", 1)
        update: dict = {}
        node = update
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = _scalar(value)
        config = _merge(config, update)
    return config


def _scalar(text: str) -> Any:
    """A YAML value, except that "1e-3" is a float: PyYAML (YAML 1.1) reads it as a string."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


# ----------------------------------------------------------------------------- data


class _Stage:
    """The training data of one curriculum stage (a ShapesRef or RefCOCO dataset)."""

    def __init__(self, until: float, dataset) -> None:
        self.until = until
        self.dataset = dataset


def build_data(config: dict) -> tuple[list[_Stage], list[Sample]]:
    """Training stages (the last runs to the end) and the fixed validation samples."""
    data = config["data"]
    if data["dataset"] == "refcoco":
        from pgpt_ros.data.refcoco import RefCOCO

        if data["commands_per_image"] != 1:
            raise ValueError("data.commands_per_image > 1 is implemented for ShapesRef only")
        ref = data["refcoco"]
        missing = [k for k in ("refs", "instances", "images") if not ref.get(k)]
        if missing:
            raise ValueError(f"data.refcoco needs {missing} (paths to your RefCOCO-format files)")
        train = RefCOCO(ref["refs"], ref["instances"], ref["images"], split=ref["train_split"])
        val = RefCOCO(ref["refs"], ref["instances"], ref["images"], split=ref["val_split"])
        stages = [_Stage(math.inf, train)]
    elif data["dataset"] == "shapesref":
        from pgpt_ros.data.shapesref import SceneConfig, ShapesRef

        def shapes(split: str, kinds: dict, scene: dict, length: int) -> ShapesRef:
            return ShapesRef(split, image_size=data["image_size"], length=length, kinds=kinds,
                             config=SceneConfig(**_tupled(scene)), seed=data["seed"])  # fmt: skip

        steps = config["train"]["steps"] * config["train"]["batch_size"]
        stages = [_Stage(s["until"], shapes("train", s.get("kinds", data["kinds"]),
                                             {**data["scene"], **s.get("scene", {})}, steps + 1))
                  for s in data["curriculum"]]  # fmt: skip
        stages.append(_Stage(math.inf, shapes("train", data["kinds"], data["scene"], steps + 1)))
        val = shapes("val", data["kinds"], data["scene"], data["val_size"])
    else:
        raise ValueError(f"data.dataset must be 'shapesref' or 'refcoco', got {data['dataset']!r}")
    val_samples = [val[i] for i in range(min(data["val_size"], len(val)))]
    return stages, val_samples


def _tupled(scene: dict) -> dict:
    """YAML gives lists; SceneConfig's vocabulary fields are tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in scene.items()}


def batch_samples(stages: list[_Stage], step: int, batch_size: int, rank: int = 0, world: int = 1,
                  commands_per_image: int = 1) -> list[Sample] | list[list[Sample]]:  # fmt: skip
    """The samples of one step for one process: a pure function of the step.

    With ``commands_per_image`` > 1, one group of commands about one image per batch row.
    """
    dataset = next(s.dataset for s in stages if step < s.until)
    start = (step * world + rank) * batch_size
    indices = [(start + i) % len(dataset) for i in range(batch_size)]
    if commands_per_image > 1:
        return [dataset.commands(i, commands_per_image) for i in indices]
    return [dataset[i] for i in indices]


# ----------------------------------------------------------------------------- model


def build_training_model(config: dict):
    """A fresh (or ``init``-loaded) model, with the configured parts frozen or LoRA-wrapped."""
    from pgpt_ros.model import PerceptionGPT, PerceptionGPTConfig, build_model

    torch.manual_seed(config["train"]["seed"])
    if config["init"]:
        model = PerceptionGPT.from_pretrained(config["init"])
    else:
        model = build_model(PerceptionGPTConfig.tiny(**copy.deepcopy(config["model"])))
    if config["lora"]:
        model.add_lora(**config["lora"])
    if config["freeze_vision"]:
        model.freeze_vision_tower()
    return model.train()


def _lr_factor(step: int, train: dict) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio``."""
    if step < train["warmup_steps"]:
        return (step + 1) / train["warmup_steps"]
    progress = (step - train["warmup_steps"]) / max(1, train["steps"] - train["warmup_steps"])
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return train["min_lr_ratio"] + (1 - train["min_lr_ratio"]) * cosine


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(directory: Path, model, optimizer: torch.optim.Optimizer, step: int,
                    log: dict) -> None:  # fmt: skip
    """Model directory + optimizer state as safetensors + JSON state (never pickle)."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    state = optimizer.state_dict()
    tensors = {f"{index}.{name}": value.contiguous()
               for index, slots in state["state"].items() for name, value in slots.items()}  # fmt: skip
    safetensors.torch.save_file(tensors, str(tmp / "optimizer.safetensors"))
    meta = {"step": step, "param_groups": state["param_groups"], "log": log}
    (tmp / "trainer_state.json").write_text(json.dumps(meta))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)  # a checkpoint is complete or absent, never half-written


def load_checkpoint(directory: Path, optimizer_factory, config: dict) -> tuple[Any, Any, int, dict]:
    """(model, optimizer, step, log) from ``save_checkpoint``'s directory."""
    from pgpt_ros.model import PerceptionGPT

    model = PerceptionGPT.from_pretrained(directory).train()
    if config["freeze_vision"]:  # requires_grad is not part of a saved model
        model.freeze_vision_tower()
    optimizer = optimizer_factory(model)
    meta = json.loads((directory / "trainer_state.json").read_text())
    tensors = safetensors.torch.load_file(str(directory / "optimizer.safetensors"))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return model, optimizer, meta["step"], meta["log"]


def latest_checkpoint(directory: Path) -> Path | None:
    found = sorted(directory.glob("step-*[0-9]"))
    return found[-1] if found else None


# ----------------------------------------------------------------------------- the loop


# The image side (vision tower, projector, image position map, patch heads): what
# ``vision_lr_scale`` speeds up.
_VISION = re.compile(
    r"backbone\.model\.(vision_tower|multi_modal_projector)\.|patch_(classifier|geometry)\.|image_position\."
)


def _optimizer_factory(config: dict):
    train = config["train"]

    def make(model) -> torch.optim.Optimizer:
        groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if param.requires_grad:
                decays = param.ndim >= 2 and "norm" not in name
                groups.setdefault((decays, bool(_VISION.match(name))), []).append(param)
        return torch.optim.AdamW(
            [{"params": params, "weight_decay": train["weight_decay"] if decays else 0.0,
              "lr_scale": train["vision_lr_scale"] if vision else 1.0}
             for (decays, vision), params in sorted(groups.items())],
            lr=train["lr"],
        )  # fmt: skip

    return make


def train(config: dict, out: Path, checkpoint_dir: Path | None = None, resume: bool = False,
          progress: bool = True) -> dict:  # fmt: skip
    """Runs the configured training; writes the model, log and curve to ``out``; returns the log."""
    from accelerate import Accelerator, DistributedDataParallelKwargs

    from pgpt_ros.data.collate import Collator

    tr = config["train"]
    torch.set_num_threads(tr["threads"])
    # A batch without any <vis> (all "not found") leaves the heads unused: DDP must allow that.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(cpu=tr["device"] == "cpu", kwargs_handlers=[ddp])
    checkpoint_dir = checkpoint_dir or Path("out/checkpoints") / out.name
    stages, val_samples = build_data(config)
    make_optimizer = _optimizer_factory(config)
    log: dict = {"config": config, "history": [], "validation": [], "wall_time_s": 0.0}
    step = 0
    found = latest_checkpoint(checkpoint_dir) if resume else None
    if resume and found is None:
        print(f"no checkpoint in {checkpoint_dir}; starting from scratch", file=sys.stderr)
    if found is not None:
        model, optimizer, step, log = load_checkpoint(found, make_optimizer, config)
        print(f"resumed from {found} at step {step}", file=sys.stderr)
    else:
        model = build_training_model(config)
        optimizer = make_optimizer(model)
    unwrapped = model
    collate = Collator(unwrapped)
    trainable = {k: list(v) for k, v in unwrapped.trainable_summary().items()}
    log["trainable_parameters"] = trainable
    model, optimizer = accelerator.prepare(model, optimizer)
    started = time.perf_counter() - log["wall_time_s"]
    running: dict[str, float] = {}
    count = 0
    bar = tqdm(total=tr["steps"], initial=step, desc="train", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    while step < tr["steps"]:
        per_image = config["data"]["commands_per_image"]
        samples = batch_samples(stages, step, tr["batch_size"], accelerator.process_index,
                                accelerator.num_processes, per_image)  # fmt: skip
        tensors = collate.pack(samples) if per_image > 1 else collate(samples)
        batch = {k: v.to(accelerator.device) for k, v in tensors.items()}
        lr = tr["lr"] * _lr_factor(step, tr)  # a function of the step, so resume needs no state
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        output = model(batch, tr["max_mask_objects"])
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(output.loss)
        if tr["grad_clip"]:
            accelerator.clip_grad_norm_(model.parameters(), tr["grad_clip"])
        optimizer.step()
        step += 1
        for name, value in {"loss": output.loss, **output.losses}.items():
            running[name] = running.get(name, 0.0) + float(value.detach())
        count += 1
        bar.update(1)
        if step % tr["log_every"] == 0 or step == tr["steps"]:
            entry = {"step": step, "lr": lr,
                     "time_s": time.perf_counter() - started,
                     **{k: v / count for k, v in running.items()}}  # fmt: skip
            log["history"].append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.3f}")
            if not progress:
                print(
                    f"step {step}: loss {entry['loss']:.4f} ({entry['time_s']:.0f} s)", flush=True
                )
            running, count = {}, 0
        if accelerator.is_main_process and (step % tr["eval_every"] == 0 or step == tr["steps"]):
            log["validation"].append(
                _validate(
                    accelerator.unwrap_model(model),
                    val_samples[: tr["eval_size"]],
                    step,
                    tr["eval_max_new_tokens"],
                )  # fmt: skip
            )
            v = log["validation"][-1]["overall"]
            tqdm.write(f"step {step}: val acc@0.5 {v['acc@0.5']:.3f}, mask mIoU "
                       f"{v['mask_miou'] or 0:.3f}")  # fmt: skip
        log["wall_time_s"] = time.perf_counter() - started
        if accelerator.is_main_process and (step % tr["checkpoint_every"] == 0):
            save_checkpoint(checkpoint_dir / f"step-{step:07d}", accelerator.unwrap_model(model),
                            optimizer, step, log)  # fmt: skip
            for old in sorted(checkpoint_dir.glob("step-*[0-9]"))[: -tr["keep_checkpoints"]]:
                shutil.rmtree(old)
    bar.close()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model).eval()
        final.save_pretrained(out)
        (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")
        plot_curves(log, out / "training_curve.png")
    return log


def _validate(model, samples: list[Sample], step: int, max_new_tokens: int) -> dict:
    from pgpt_ros.evaluate import evaluate_model

    model.eval()
    with torch.no_grad():
        summary, _ = evaluate_model(model, samples, progress=False, max_new_tokens=max_new_tokens)
    model.train()
    return {"step": step, "overall": summary["overall"], "per_kind": summary["per_kind"]}


def plot_curves(log: dict, path: Path) -> None:
    """Training losses (log scale) and validation accuracy against the step, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    history = log["history"]
    steps = [h["step"] for h in history]
    for name in [k for k in (history[0] if history else {}) if k not in ("step", "lr", "time_s")]:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--config", type=Path, default=None, help="YAML config (configs/*.yaml)")
    parser.add_argument("--out", type=Path, required=True, help="output model directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config key, e.g. train.steps=500")  # fmt: skip
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="default: out/checkpoints/<name of --out>")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    log = train(config, args.out, args.checkpoint_dir, args.resume, not args.no_progress)
    if log["validation"]:
        v = log["validation"][-1]["overall"]
        print(f"done in {log['wall_time_s']:.0f} s: val acc@0.5 {v['acc@0.5']:.3f}, "
              f"mask mIoU {v['mask_miou'] or 0:.3f}; model in {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
