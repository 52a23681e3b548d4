"""Where the embedded default model lives, so the node works with an empty model path.

The default is a tiny PerceptionGPT trained on ShapesRef by ``make train-default`` and shipped in
the package (``pgpt_ros/default_model/``: pgpt_config.json, model.safetensors, tokenizer files).
This module imports nothing heavy: the node resolves the path before it loads torch.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"


def default_model_dir() -> Path:
    """The shipped model's directory; FileNotFoundError with the fix if it is missing."""
    if not (DEFAULT_MODEL_DIR / "pgpt_config.json").is_file():
        raise FileNotFoundError(
            f"the embedded default model is missing from {DEFAULT_MODEL_DIR}; rebuild it with "
            "`make train-default` or pass a model directory"
        )
    return DEFAULT_MODEL_DIR
