"""The shipped default model: present, small, safetensors, and accurate on held-out ShapesRef."""

from __future__ import annotations

import torch

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.evaluate import evaluate_model
from pgpt_ros.model import PerceptionGPT
from pgpt_ros.model_zoo import default_model_dir

NUM_TEST = 300  # the test split never meets training or validation seeds

# Issue 4's bar: box Acc@0.5 >= 0.9 and mask mIoU >= 0.75 on held-out ShapesRef. The shipped
# model measures 0.907 and 0.906 on these 300 commands (docs/training.md; an untrained model
# scores about 0.1, only "not found" answers being right). Never lower a floor below what ships.
MIN_ACC, MIN_MASK_MIOU = 0.9, 0.75


def test_default_model_is_shipped_as_safetensors_under_25_mb():
    directory = default_model_dir()
    files = {p.name: p.stat().st_size for p in directory.iterdir() if p.is_file()}
    assert "model.safetensors" in files and "pgpt_config.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert sum(files.values()) <= 25 * 2**20


def test_default_model_accuracy_on_held_out_shapesref():
    torch.set_num_threads(1)
    model = load_pretrained(default_model_dir())
    dataset = ShapesRef("test", image_size=model.config.image_size, length=NUM_TEST)
    samples = [dataset[i] for i in range(NUM_TEST)]
    with torch.no_grad():
        summary, _ = evaluate_model(model, samples, progress=False)
    overall = summary["overall"]
    assert overall["acc@0.5"] >= MIN_ACC, summary
    assert overall["mask_miou"] >= MIN_MASK_MIOU, summary
