"""Converts a model directory of the first layout (``pgpt_config.json``) to the current one.

    python -m pgpt_ros.model.convert OLD_DIR NEW_DIR

The first layout kept training-only parts with the model: loss weights and the patch classifier
and patch geometry heads in the config, their weights in ``model.safetensors``. The conversion
keeps the same weights for everything inference uses, drops the rest, records that the model was
trained on stretched frames (``resize_mode: "stretch"``), and writes ``config.json`` (see
``pgpt_ros.model.checkpoint``). Files other than the model's (logs, pictures) are not copied.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import safetensors.torch

from pgpt_ros.model.checkpoint import (
    CONFIG_NAME,
    LEGACY_CONFIG_NAME,
    WEIGHTS_NAME,
    load_pretrained,
)
from pgpt_ros.model.config import PerceptionGPTConfig

# Config keys of the first layout that describe training, not the architecture.
TRAINING_KEYS = ("loss_weights", "patch_classes", "patch_geometry", "tokenizer_vocab_size")
TRAINING_TENSORS = ("patch_classifier.", "patch_geometry.")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "tokenizer.model", "chat_template.jinja")  # fmt: skip


def convert(old: Path, new: Path) -> PerceptionGPTConfig:
    """Writes ``old`` (first layout) to ``new`` (current layout); returns the new config."""
    legacy = json.loads((old / LEGACY_CONFIG_NAME).read_text())
    if legacy.get("lora") or legacy.get("base_llava") or (old / "adapter.safetensors").is_file():
        raise ValueError(
            f"{old} holds a LoRA model of the first layout, which cannot be converted without "
            "its training run; retrain it (pgpt-train) to get an adapter directory"
        )
    fields = {k: v for k, v in legacy.items() if k not in (*TRAINING_KEYS, "lora", "base_llava")}
    config = PerceptionGPTConfig.from_dict({**fields, "resize_mode": "stretch"})
    state = safetensors.torch.load_file(old / WEIGHTS_NAME)
    kept = {k: v for k, v in state.items() if not k.startswith(TRAINING_TENSORS)}
    new.mkdir(parents=True, exist_ok=True)
    (new / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    safetensors.torch.save_file(kept, new / WEIGHTS_NAME)
    for name in TOKENIZER_FILES:
        if (old / name).is_file():
            shutil.copyfile(old / name, new / name)
    load_pretrained(new)  # the result must load, or the conversion failed
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pgpt_ros.model.convert", description=__doc__.split("\n")[0]
    )
    parser.add_argument("old", type=Path, help=f"a directory with {LEGACY_CONFIG_NAME}")
    parser.add_argument("new", type=Path, help="where to write the converted model")
    args = parser.parse_args(argv)
    if not (args.old / LEGACY_CONFIG_NAME).is_file():
        print(f"{args.old} has no {LEGACY_CONFIG_NAME}: nothing to convert", file=sys.stderr)
        return 2
    try:
        convert(args.old, args.new)
    except (ValueError, OSError) as error:
        print(f"cannot convert {args.old}: {error}", file=sys.stderr)
        return 1
    print(f"converted {args.old} -> {args.new}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
