"""pgpt-train: config handling, a short run that lowers the loss, checkpoints and resume, LoRA
against a saved base."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch

from pgpt_ros.data.collate import Collator
from pgpt_ros.model import load_pretrained
from pgpt_ros.training.build import build_objective
from pgpt_ros.training.config import load_config
from pgpt_ros.training.data import StepBatches, build_data, step_batches
from pgpt_ros.training.optim import make_optimizer
from pgpt_ros.training.train import main, train

# A model and data small enough for a few dozen steps in seconds on two cores.
TINY = [
    "model.preset=tiny",
    "model.image_size=32", "model.patch_size=8", "model.vision_width=32", "model.vision_layers=1",
    "model.text_width=64", "model.text_layers=1", "model.head_width=32", "model.mask_size=16",
    "data.image_size=32", "data.kinds={attribute: 1}", "data.scene={max_shapes: 2}",
    "data.val_size=4", "train.batch_size=8", "train.lr=2.0e-3", "train.warmup_steps=5",
    "train.log_every=5", "train.eval_size=2", "train.threads=1",
]  # fmt: skip


def test_config_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 7\ndata:\n  kinds: {multi: 2.0}\n")
    config = load_config(path, ["train.lr=1e-3", "objective.loss_weights={dice: 3}",
                                "model.text_layers=3"])  # fmt: skip
    assert config["train"]["steps"] == 7 and config["train"]["lr"] == 0.001  # YAML 1.1 says str
    assert config["train"]["batch_size"] == 16  # default kept
    assert config["data"]["kinds"] == {"multi": 2.0}  # free-form maps are replaced whole
    assert config["objective"]["loss_weights"] == {"dice": 3}
    assert config["model"] == {"preset": "tiny", "text_layers": 3}  # model keys add to the preset
    with pytest.raises(ValueError, match="unknown config key 'train.stpes'"):
        load_config(None, ["train.stpes=3"])
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml", [])


def test_an_override_inside_a_free_form_map_keeps_its_other_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  scene: {max_shapes: 8, aspects: ['1:1', '16:9']}\n"
                    "  kinds: {attribute: 1.0, multi: 2.0}\n")  # fmt: skip
    config = load_config(path, ["data.scene.photo_absent=0.6", "data.scene.restated_absent=0.4",
                                "data.kinds.multi=3", "objective.loss_weights.heat=1"])  # fmt: skip
    assert config["data"]["scene"] == {"max_shapes": 8, "aspects": ["1:1", "16:9"],
                                       "photo_absent": 0.6, "restated_absent": 0.4}  # fmt: skip
    assert config["data"]["kinds"] == {"attribute": 1.0, "multi": 3}
    assert config["objective"]["loss_weights"] == {"heat": 1}
    # a whole map given as a value still replaces the map
    assert load_config(path, ["data.scene={rotate: true}"])["data"]["scene"] == {"rotate": True}


def test_short_run_lowers_the_loss_then_resumes(tmp_path):
    out, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    config = load_config(None, [*TINY, "train.steps=40", "train.eval_every=40",
                                "train.checkpoint_every=20"])  # fmt: skip
    logs = tmp_path / "logs"
    log = train(config, out, log_dir=logs, checkpoint_dir=checkpoints, progress=False)
    losses = [h["loss"] for h in log["history"]]
    assert len(losses) == 8
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / name).is_file()
    assert {p.name for p in logs.iterdir()} == {"train_log.json", "training_curve.png"}
    load_pretrained(out)  # the model directory is an inference checkpoint
    saved = json.loads((logs / "train_log.json").read_text())
    assert saved["validation"][-1]["step"] == 40
    assert saved["trainable_parameters"]["total"][0] > 0
    assert [p.name for p in checkpoints.iterdir()] == ["step-0000040"]  # only the last is kept

    # resume: ten more steps continue from step 40's weights, optimizer and log
    config = load_config(None, [*TINY, "train.steps=50", "train.eval_every=1000",
                                "train.checkpoint_every=1000"])  # fmt: skip
    resumed = train(config, tmp_path / "more", checkpoint_dir=checkpoints, resume=True,
                    progress=False)  # fmt: skip
    steps = [h["step"] for h in resumed["history"]]
    assert steps[:8] == [h["step"] for h in log["history"]] and steps[8:] == [45, 50]
    assert resumed["history"][-1]["loss"] < losses[0]


def test_packed_run_with_mask_subsampling_lowers_the_loss(tmp_path):
    config = load_config(None, [*TINY, "train.steps=30", "train.eval_every=30",
                                "train.checkpoint_every=1000", "data.commands_per_image=3",
                                "train.max_mask_objects=4"])  # fmt: skip
    log = train(config, tmp_path / "model", checkpoint_dir=tmp_path / "checkpoints",
                progress=False)  # fmt: skip
    losses = [h["loss"] for h in log["history"]]
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
    refcoco = load_config(None, ["data.dataset=refcoco", "data.commands_per_image=2"])
    with pytest.raises(ValueError, match="ShapesRef only"):
        build_data({**refcoco, "data": {**refcoco["data"], "refcoco": {
            "refs": "r", "instances": "i", "images": "d", "train_split": "train",
            "val_split": "val"}}})  # fmt: skip


def test_a_data_worker_renders_the_batches_the_loop_would():
    """Batches are a function of the step, whoever renders them: a worker process gives the
    same tensors in the same order, from any first step (resume)."""
    config = load_config(None, [*TINY, "train.steps=6", "data.commands_per_image=2"])
    stages, _ = build_data(config)
    model = build_objective(config).model
    collate = Collator(model.tokenizer, model.config).pack
    here = list(step_batches(StepBatches(stages, collate, 2, 6, 8, 0, 1, 2), 0))
    worker = list(step_batches(StepBatches(stages, collate, 2, 6, 8, 0, 1, 2), 1))
    assert len(here) == len(worker) == 4
    for a, b in zip(here, worker, strict=True):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_rejects_bad_overrides(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x"), "--set", "nonsense"])
    assert "section.key=value" in capsys.readouterr().err


def test_vision_lr_scale_applies_to_the_image_side_only():
    config = load_config(None, [*TINY, "train.vision_lr_scale=4", "objective.patch_classes=25",
                                "objective.patch_geometry=true", "model.image_position=true"])  # fmt: skip
    objective = build_objective(config)
    optimizer = make_optimizer(objective, config["train"])
    scale_of = {id(p): g["lr_scale"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in objective.named_parameters():
        vision = name.startswith(("model.backbone.model.vision_tower.", "patch_classifier.",
                                  "patch_geometry.", "model.backbone.model.multi_modal_projector.",
                                  "model.image_position."))  # fmt: skip
        assert scale_of[id(param)] == (4.0 if vision else 1.0), name
    assert len(scale_of) == len(list(objective.parameters()))


def test_lora_run_saves_an_adapter_against_its_base_and_resumes(tmp_path):
    base = tmp_path / "base"
    config = load_config(None, [*TINY, "train.steps=5", "train.eval_every=1000",
                                "train.checkpoint_every=1000"])  # fmt: skip
    train(config, base, checkpoint_dir=tmp_path / "c0", progress=False)
    lora = [*TINY, f"init={base}", "lora={r: 4, alpha: 8, dropout: 0.0}", "train.eval_every=1000"]
    config = load_config(None, [*lora, "train.steps=6", "train.checkpoint_every=3"])
    train(config, tmp_path / "adapter", checkpoint_dir=tmp_path / "c1", progress=False)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    checkpoint = safetensors.torch.load_file(
        tmp_path / "c1" / "step-0000006" / "trainable.safetensors"
    )
    assert any("lora_" in k for k in checkpoint)
    assert not any("vision_tower" in k for k in checkpoint)  # frozen weights come from the base
    model = load_pretrained(tmp_path / "adapter")
    assert model.base_path == str(base)
    config = load_config(None, [*lora, "train.steps=8", "train.checkpoint_every=1000"])
    resumed = train(config, tmp_path / "again", checkpoint_dir=tmp_path / "c1", resume=True,
                    progress=False)  # fmt: skip
    assert resumed["history"][-1]["step"] == 8
    with pytest.raises(ValueError, match="lora needs init"):
        build_objective(load_config(None, [*TINY, "lora={r: 2, alpha: 4, dropout: 0.0}"]))
