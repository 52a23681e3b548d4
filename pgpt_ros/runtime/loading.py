"""From the node's ``model_path``, ``device`` and ``dtype`` parameters to a loaded model.

One policy for every caller (node, evaluation, demo, benchmarks): an empty path is the embedded
default model shipped in the package; any other path must be a saved model directory; anything
missing or impossible is a ``ValueError`` / ``FileNotFoundError`` that names the fix. Never a
silently untrained model.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pgpt_ros.model.checkpoint import is_model_dir, load_pretrained
from pgpt_ros.model.perception_gpt import PerceptionGPT

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_model_path(model_path: str | Path) -> Path:
    """``model_path`` as a directory to load ("" = the embedded default); FileNotFoundError with
    the fix when it is not there."""
    if not str(model_path):
        if not is_model_dir(DEFAULT_MODEL_DIR):
            raise FileNotFoundError(
                f"the embedded default model is missing from {DEFAULT_MODEL_DIR}; reinstall the "
                "package, rebuild it with `make train-default`, or set model_path"
            )
        return DEFAULT_MODEL_DIR
    path = Path(model_path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"model_path {path} is not a directory")
    return path


def torch_device(device: str) -> torch.device:
    """The torch device named ``device``; ValueError when this machine or this torch cannot
    provide it (a CPU-only torch build is told apart from a machine without a visible GPU)."""
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a torch device: {error}") from None
    if parsed.type == "cuda":
        if torch.version.cuda is None:
            raise ValueError(
                f"device {device!r} asked for, but this torch {torch.__version__} is a CPU-only "
                "build; install a CUDA build of torch (on a Jetson: JetPack's torch)"
            )
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but no CUDA GPU is visible here")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist"
            )
    return parsed


def load_model(
    model_path: str | Path, device: str = "cpu", dtype: str = "float32"
) -> PerceptionGPT:
    """The model at ``model_path`` ("" = embedded default) on ``device`` in ``dtype``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    parsed = torch_device(device)
    if parsed.type == "cpu" and dtype == "float16":
        raise ValueError("float16 needs a GPU device; use float32 (or bfloat16) on the CPU")
    return load_pretrained(resolve_model_path(model_path), dtype=DTYPES[dtype], device=str(parsed))
