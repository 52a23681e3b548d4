"""pgpt-eval: the JSON it documents, on a tiny checkpoint; the served pixel mapping, on an oracle
perceiver that answers with the ground truth in the model's frame."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.evaluate import evaluate, main
from pgpt_ros.metrics import RefMetrics
from pgpt_ros.model import Answer, Detection, build_model, preset_config, save_pretrained
from pgpt_ros.runtime import Perceiver

METRICS = {"num_commands", "acc@0.5", "box_miou", "mask_miou", "mask_ciou", "precision", "recall",
           "f1", "no_target_accuracy"}  # fmt: skip


class OraclePerceiver(Perceiver):
    """The served path (frame transform, selection, pixel mapping) over a model-frame answer that
    is the ground truth: boxes mapped into the model's frame, masks as 32 x 32 logits over it."""

    def __init__(self, samples, resize_mode: str):
        config = preset_config("tiny", image_size=32, vision_width=32, text_width=64, mask_size=32,
                               resize_mode=resize_mode)  # fmt: skip
        super().__init__(build_model(config))
        self.samples = samples

    def set_image(self, image, image_id=None):
        super().set_image(image, image_id)
        self.image = image

    def answer(self, command, *, policy=None, logits_processor=None):
        sample = next(s for s in self.samples if s.image is self.image and s.command == command)
        transform = self._frame.transform
        boxes = transform.boxes_to_model(sample.boxes)
        logits = (transform.masks_to_model(sample.masks, 32) - 0.5) * 10
        detections = [Detection(p, b, m, 1.0) for p, b, m in zip(sample.phrases, boxes, logits,
                                                                  strict=True)]  # fmt: skip
        return Answer(text="", detections=detections, num_tokens=2 * len(detections) + 1)


@pytest.mark.parametrize("resize_mode", ["stretch", "pad"])
def test_oracle_scores_full_marks_after_the_pixel_round_trip(resize_mode):
    samples = [ShapesRef("test", length=40, image_size=(80, 48))[i] for i in range(40)]
    summary, predictions = evaluate(OraclePerceiver(samples, resize_mode), samples,
                                    progress=False)  # fmt: skip
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


def test_an_answer_the_token_limit_cut_scores_as_no_detection():
    """The served path refuses such an answer (IncompleteAnswer); evaluation counts it, and
    scores it as the node serves it: nothing found."""
    samples = [s for s in (ShapesRef("test", length=30, image_size=48)[i] for i in range(30))
               if s.num_targets][:4]  # fmt: skip

    class Cut(OraclePerceiver):
        def answer(self, command, *, policy=None, logits_processor=None):
            whole = super().answer(command)
            return Answer("red circle <vis>,", whole.detections, 32, complete=False)

    summary, predictions = evaluate(Cut(samples, "stretch"), samples, progress=False)
    assert summary["incomplete_answers"] == 4
    assert all(not p.complete and len(p.boxes) == 0 for p in predictions)
    assert summary["overall"]["acc@0.5"] == 0.0


def test_cli_writes_the_documented_json_and_grid(tmp_path):
    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, vision_layers=1, text_width=64,
                           text_layers=1, head_width=32, mask_size=16)  # fmt: skip
    save_pretrained(build_model(config), tmp_path / "tiny")
    out = tmp_path / "eval"
    args = ["--model", str(tmp_path / "tiny"), "--out", str(out), "--num", "3", "--grid", "3",
            "--threads", "1", "--head-backend", "torch", "--preset", "varied",
            "--score-threshold", "0.4"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert set(result) == {
        "model",
        "dataset",
        "backend",
        "policy",
        "overall",
        "per_kind",
        "speed",
        "incomplete_answers",
    }
    assert result["backend"] == "torch" and result["policy"]["score_threshold"] == 0.4
    assert set(result["overall"]) == METRICS and result["overall"]["num_commands"] == 3
    assert all(set(v) == METRICS for v in result["per_kind"].values())
    assert result["dataset"]["image_size"] == [32, 32]  # rendered at the model's input size
    assert result["dataset"]["preset"] == "varied"
    assert set(result["speed"]) == {
        "seconds_per_command",
        "tokens_per_command",
        "tokens_per_object",
    }
    assert Image.open(out / "predictions.png").size[0] > 0


def test_cli_explains_a_missing_model(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    assert "not a directory" in capsys.readouterr().err
