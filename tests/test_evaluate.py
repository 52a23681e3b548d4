"""pgpt-eval: the JSON it documents, on a tiny checkpoint; the pixel conversion, on an oracle."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.evaluate import evaluate_model, main
from pgpt_ros.metrics import RefMetrics
from pgpt_ros.model import Answer, Detection, PerceptionGPTConfig, build_model

METRICS = {"num_commands", "acc@0.5", "box_miou", "mask_miou", "mask_ciou", "precision", "recall",
           "f1", "no_target_accuracy"}  # fmt: skip


class Oracle:
    """Answers with the ground truth, in the model's conventions (normalised box, 32x32 logits)."""

    def __init__(self, samples):
        self.samples = samples

    def answer(self, image, command, max_new_tokens=48):
        sample = next(s for s in self.samples if s.image is image and s.command == command)
        h, w = image.shape[:2]
        detections = []
        for phrase, box, mask in zip(sample.phrases, sample.boxes, sample.masks, strict=True):
            small = Image.fromarray(mask.astype(np.float32)).resize((32, 32), Image.BILINEAR)
            logits = (np.asarray(small) - 0.5) * 10
            detections.append(Detection(phrase, box / np.array([w, h, w, h]), logits, 1.0))
        return Answer(text="", detections=detections, num_tokens=2 * len(detections) + 1)


def test_oracle_scores_full_marks_after_the_pixel_round_trip():
    samples = [ShapesRef("test", length=40)[i] for i in range(40)]
    summary, predictions = evaluate_model(Oracle(samples), samples, progress=False)
    overall = summary["overall"]
    assert overall["acc@0.5"] == 1.0 and overall["box_miou"] > 0.999
    assert overall["mask_miou"] > 0.85  # only the 32x32 round trip is lost
    assert summary["per_kind"]["absent"]["no_target_accuracy"] == 1.0
    # an oracle that misses every mask pixel would score 0: the metric sees the masks
    broken = RefMetrics()
    for s, p in zip(samples, predictions, strict=True):
        broken.add(s.kind, p.boxes, s.boxes, ~p.masks if len(p.masks) else p.masks, s.masks)
    assert broken.summary()["overall"]["mask_miou"] < 0.5
    speed = summary["speed"]
    targets = sum(s.num_targets for s in samples)
    assert speed["tokens_per_object"] == sum(2 * s.num_targets + 1 for s in samples if s.num_targets) / targets  # fmt: skip


def test_cli_writes_the_documented_json_and_grid(tmp_path):
    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, vision_layers=1,
                                      text_width=64, text_layers=1, head_width=32, mask_size=16)  # fmt: skip
    save_pretrained(build_model(config), tmp_path / "tiny")
    out = tmp_path / "eval"
    args = ["--model", str(tmp_path / "tiny"), "--out", str(out), "--num", "3", "--grid", "3",
            "--threads", "1", "--max-new-tokens", "12"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert set(result) == {"model", "dataset", "overall", "per_kind", "speed"}
    assert set(result["overall"]) == METRICS and result["overall"]["num_commands"] == 3
    assert all(set(v) == METRICS for v in result["per_kind"].values())
    assert result["dataset"]["image_size"] == [32, 32]  # rendered at the model's input size
    assert set(result["speed"]) == {
        "seconds_per_command",
        "tokens_per_command",
        "tokens_per_object",
    }
    assert Image.open(out / "predictions.png").size[0] > 0
