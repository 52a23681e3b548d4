"""The vision warm-up: it trains the image side alone, lowers the patch heads' loss, is logged
by a run and skipped on resume, and refuses a run that has no patch head to train it with."""

from __future__ import annotations

import json

import pytest
import torch

from pgpt_ros.data.collate import Collator
from pgpt_ros.training.build import build_objective
from pgpt_ros.training.config import load_config
from pgpt_ros.training.data import build_data
from pgpt_ros.training.optim import is_image_side
from pgpt_ros.training.train import train
from pgpt_ros.training.vision_warmup import warm_up_vision
from tests.test_train import TINY

HEADS = ["objective.patch_classes=25", "objective.patch_geometry=true",
         "model.image_position=true", "train.vision_lr_scale=3"]  # fmt: skip


def _setup(overrides: list[str]):
    config = load_config(None, [*TINY, *overrides])
    stages, _ = build_data(config)
    objective = build_objective(config)
    model = objective.model
    collate = Collator(model.require_tokenizer(), model.config,
                       patch_classes=config["objective"]["patch_classes"],
                       patch_geometry=config["objective"]["patch_geometry"])  # fmt: skip
    return config, stages, objective, collate


def test_warm_up_trains_the_image_side_alone_and_lowers_its_loss():
    config, stages, objective, collate = _setup([*HEADS, "train.vision_warmup_steps=40"])
    before = {n: p.detach().clone() for n, p in objective.named_parameters()}
    history = warm_up_vision(objective, stages[-1], collate, config["train"], progress=False)
    assert [h["step"] for h in history] == list(range(5, 41, 5))
    assert 0 < history[-1]["compute_s"] <= history[-1]["time_s"]
    assert history[-1]["patch"] < history[0]["patch"]
    assert history[-1]["geometry"] < history[0]["geometry"]
    changed = {n for n, p in objective.named_parameters() if not torch.equal(p, before[n])}
    # the LLM, its embeddings and the answer heads are exactly as built
    assert all(is_image_side(name) for name in changed), changed
    for part in ("vision_tower.", "multi_modal_projector.", "image_position.", "patch_classifier.",
                 "patch_geometry."):  # fmt: skip
        assert any(part in name for name in changed), part


def test_a_run_logs_its_warm_up_and_a_resumed_run_skips_it(tmp_path):
    overrides = [*HEADS, "train.vision_warmup_steps=10", "train.eval_every=1000",
                 "train.checkpoint_every=4"]  # fmt: skip
    config = load_config(None, [*TINY, *overrides, "train.steps=4"])
    train(config, tmp_path / "m", log_dir=tmp_path / "log", checkpoint_dir=tmp_path / "c",
          progress=False)  # fmt: skip
    log = json.loads((tmp_path / "log" / "train_log.json").read_text())
    assert [h["step"] for h in log["vision_warmup"]] == [5, 10]
    assert log["history"][-1]["step"] == 4
    config = load_config(None, [*TINY, *overrides, "train.steps=8"])
    resumed = train(config, tmp_path / "m", log_dir=tmp_path / "log",
                    checkpoint_dir=tmp_path / "c", resume=True, progress=False)  # fmt: skip
    assert [h["step"] for h in resumed["vision_warmup"]] == [5, 10]  # the checkpoint's, not rerun
    assert resumed["history"][-1]["step"] == 8


def test_warm_up_without_a_patch_head_is_refused():
    config, stages, objective, collate = _setup(["train.vision_warmup_steps=5"])
    with pytest.raises(ValueError, match="patch head"):
        warm_up_vision(objective, stages[-1], collate, config["train"])
