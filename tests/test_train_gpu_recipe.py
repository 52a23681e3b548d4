"""The GPU training recipe on the CPU: a wrapped LLaVA checkpoint with LoRA, bfloat16 autocast,
frozen weights stored in bfloat16, trainable ones in float32, gradient checkpointing, resume."""

from __future__ import annotations

import json
import math

import pytest
import torch
from accelerate.state import AcceleratorState

from pgpt_ros.model import load_pretrained
from pgpt_ros.training import precision
from pgpt_ros.training.build import build_objective
from pgpt_ros.training.config import load_config
from pgpt_ros.training.train import train
from tests.test_model_families import write_checkpoint
from tests.test_train import TINY

RECIPE = [
    "model={head_width: 32, mask_size: 16}", "lora={r: 4, alpha: 8, dropout: 0.0}",
    "freeze_vision=true", "train.mixed_precision=bf16", "train.weights_dtype=bfloat16",
    "train.gradient_checkpointing=true",
]  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps one state per process, fixed by the first ``Accelerator``: these runs use
    bfloat16 autocast and other test files' runs none, so each test here starts and ends without
    one (accelerate's own tests reset it the same way)."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("llava")
    torch.manual_seed(0)
    write_checkpoint(directory, "interleave")
    return directory


def recipe(llava_dir, *extra: str) -> dict:
    data_and_train = [item for item in TINY if not item.startswith("model.")]  # the checkpoint's
    return load_config(None, [*data_and_train, f"init={llava_dir}", *RECIPE, *extra])


def test_trainable_weights_are_float32_and_frozen_ones_bfloat16(llava_dir):
    objective = build_objective(recipe(llava_dir))
    precision.configure(objective, recipe(llava_dir)["train"])
    dtypes = {p.requires_grad: set() for p in objective.parameters()}
    for param in objective.parameters():
        dtypes[param.requires_grad].add(param.dtype)
    assert dtypes == {True: {torch.float32}, False: {torch.bfloat16}}
    rotary = objective.model.language_model.rotary_emb.inv_freq
    assert rotary.dtype == torch.float32  # buffers keep their precision


def test_half_precision_weights_need_autocast(llava_dir):
    config = recipe(llava_dir, "train.mixed_precision=no")
    with pytest.raises(ValueError, match="mixed_precision"):
        precision.configure(build_objective(config), config["train"])


def count_layer_calls(objective, monkeypatch) -> list[int]:
    layer = objective.model.language_model.layers[0].mlp
    calls = [0]
    forward = layer.forward

    def counted(*args, **kwargs):
        calls[0] += 1
        return forward(*args, **kwargs)

    monkeypatch.setattr(layer, "forward", counted)
    return calls


@pytest.mark.parametrize("checkpointing", [False, True])
def test_gradient_checkpointing_recomputes_each_layer_in_the_backward_pass(
    llava_dir, monkeypatch, checkpointing
):
    from pgpt_ros.data.collate import Collator
    from pgpt_ros.training.data import batch_samples, build_data

    config = recipe(llava_dir, f"train.gradient_checkpointing={str(checkpointing).lower()}",
                    "train.mixed_precision=no", "train.weights_dtype=null")  # fmt: skip
    objective = build_objective(config)
    precision.configure(objective, config["train"])
    calls = count_layer_calls(objective, monkeypatch)
    stages, _ = build_data(config)
    model = objective.model
    batch = Collator(model.require_tokenizer(), model.config)(batch_samples(stages, 0, 2))
    objective(batch).loss.backward()
    assert calls[0] == (2 if checkpointing else 1)


def test_recipe_trains_saves_an_adapter_and_resumes(tmp_path, llava_dir):
    out, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    config = recipe(llava_dir, "train.steps=6", "train.eval_every=6", "train.checkpoint_every=4",
                    "train.log_every=2")  # fmt: skip
    log = train(config, out, log_dir=tmp_path / "logs", checkpoint_dir=checkpoints,
                progress=False)  # fmt: skip
    assert all(math.isfinite(h["loss"]) for h in log["history"])
    assert (out / "adapter_model.safetensors").is_file()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(llava_dir.resolve())
    model = load_pretrained(out)
    assert model.config.prompt_template.startswith("<|im_start|>")

    more = recipe(llava_dir, "train.steps=8", "train.eval_every=1000",
                  "train.checkpoint_every=1000", "train.log_every=2")  # fmt: skip
    resumed = train(more, tmp_path / "more", checkpoint_dir=checkpoints, resume=True,
                    progress=False)  # fmt: skip
    assert [h["step"] for h in resumed["history"]][-2:] == [6, 8]
