"""pgpt-train: config handling, a short run that lowers the loss, checkpoints and resume."""

from __future__ import annotations

import json

import pytest

from pgpt_ros.train import build_data, load_config, main, train

# A model and data small enough for a few dozen steps in seconds on two cores.
TINY = [
    "model.image_size=32", "model.patch_size=8", "model.vision_width=32", "model.vision_layers=1",
    "model.text_width=64", "model.text_layers=1", "model.head_width=32", "model.mask_size=16",
    "data.image_size=32", "data.kinds={attribute: 1}", "data.scene={max_shapes: 2}",
    "data.val_size=4", "train.batch_size=8", "train.lr=2.0e-3", "train.warmup_steps=5",
    "train.log_every=5", "train.eval_size=2", "train.threads=1",
]  # fmt: skip


def test_config_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  steps: 7\ndata:\n  kinds: {multi: 2.0}\n")
    config = load_config(path, ["train.lr=1e-3", "model.loss_weights={dice: 3}"])
    assert config["train"]["steps"] == 7 and config["train"]["lr"] == 0.001  # YAML 1.1 says str
    assert config["train"]["batch_size"] == 16  # default kept
    assert config["data"]["kinds"] == {"multi": 2.0}  # free-form maps are replaced whole
    assert config["model"]["loss_weights"] == {"dice": 3}
    with pytest.raises(ValueError, match="unknown config key 'train.stpes'"):
        load_config(None, ["train.stpes=3"])
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml", [])


def test_short_run_lowers_the_loss_then_resumes(tmp_path):
    out, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    config = load_config(None, [*TINY, "train.steps=40", "train.eval_every=40",
                                "train.checkpoint_every=20"])  # fmt: skip
    log = train(config, out, checkpoints, progress=False)
    losses = [h["loss"] for h in log["history"]]
    assert len(losses) == 8
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
    for name in ("pgpt_config.json", "model.safetensors", "train_log.json", "training_curve.png"):
        assert (out / name).is_file()
    saved = json.loads((out / "train_log.json").read_text())
    assert saved["validation"][-1]["step"] == 40
    assert saved["trainable_parameters"]["total"][0] > 0
    assert [p.name for p in checkpoints.iterdir()] == ["step-0000040"]  # only the last is kept

    # resume: ten more steps continue from step 40's weights, optimizer and log
    config = load_config(None, [*TINY, "train.steps=50", "train.eval_every=1000",
                                "train.checkpoint_every=1000"])  # fmt: skip
    resumed = train(config, tmp_path / "more", checkpoints, resume=True, progress=False)
    steps = [h["step"] for h in resumed["history"]]
    assert steps[:8] == [h["step"] for h in log["history"]] and steps[8:] == [45, 50]
    assert resumed["history"][-1]["loss"] < losses[0]


def test_packed_run_with_mask_subsampling_lowers_the_loss(tmp_path):
    config = load_config(None, [*TINY, "train.steps=30", "train.eval_every=30",
                                "train.checkpoint_every=1000", "data.commands_per_image=3",
                                "train.max_mask_objects=4"])  # fmt: skip
    log = train(config, tmp_path / "model", tmp_path / "checkpoints", progress=False)
    losses = [h["loss"] for h in log["history"]]
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
    refcoco = load_config(None, ["data.dataset=refcoco", "data.commands_per_image=2"])
    with pytest.raises(ValueError, match="ShapesRef only"):
        build_data({**refcoco, "data": {**refcoco["data"], "refcoco": {
            "refs": "r", "instances": "i", "images": "d", "train_split": "train",
            "val_split": "val"}}})  # fmt: skip


def test_cli_rejects_bad_overrides(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x"), "--set", "nonsense"])
    assert "section.key=value" in capsys.readouterr().err


def test_vision_lr_scale_applies_to_the_image_side_only():
    from pgpt_ros.train import _optimizer_factory, build_training_model

    config = load_config(None, [*TINY, "train.vision_lr_scale=4", "model.patch_classes=25",
                                "model.patch_geometry=true", "model.image_position=true"])  # fmt: skip
    model = build_training_model(config)
    optimizer = _optimizer_factory(config)(model)
    scale_of = {id(p): g["lr_scale"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        vision = name.startswith(("backbone.model.vision_tower.", "patch_classifier.", "patch_geometry.",
                                  "backbone.model.multi_modal_projector.", "image_position."))  # fmt: skip
        assert scale_of[id(param)] == (4.0 if vision else 1.0), name
    assert len(scale_of) == len(list(model.parameters()))
