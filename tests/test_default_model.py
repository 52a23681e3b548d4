"""The shipped default model: present, small, inference-only safetensors, and accurate on held-out
ShapesRef through the path the node serves."""

from __future__ import annotations

import safetensors.torch
import torch

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.evaluate import evaluate
from pgpt_ros.model import load_pretrained
from pgpt_ros.runtime import DEFAULT_MODEL_DIR, Perceiver

NUM_TEST = 300  # the test split never meets training or validation seeds

# The project's bar: box Acc@0.5 >= 0.9 and mask mIoU >= 0.75 on held-out ShapesRef, measured
# through the served path (ONNX Runtime heads, score threshold, de-duplication). The shipped model
# and the README's numbers come from `pgpt-eval --split test --num 300`. Never lower a floor below
# what ships.
MIN_ACC, MIN_MASK_MIOU = 0.9, 0.75


def test_default_model_is_shipped_as_inference_only_safetensors_under_25_mb():
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert sum(files.values()) <= 25 * 2**20
    stored = safetensors.torch.load_file(DEFAULT_MODEL_DIR / "model.safetensors")
    model = load_pretrained(DEFAULT_MODEL_DIR)
    assert set(stored) == set(model.state_dict())  # no training-only tensor ships


def test_default_model_accuracy_on_held_out_shapesref_through_the_served_path():
    torch.set_num_threads(1)
    perceiver = Perceiver.load()  # what the node loads with its default parameters
    assert perceiver.backend == "onnxruntime"  # auto on a CPU machine
    dataset = ShapesRef("test", image_size=perceiver.model.config.image_size, length=NUM_TEST)
    samples = [dataset[i] for i in range(NUM_TEST)]
    summary, _ = evaluate(perceiver, samples, progress=False)
    overall = summary["overall"]
    assert overall["acc@0.5"] >= MIN_ACC, summary
    assert overall["mask_miou"] >= MIN_MASK_MIOU, summary
