"""The shipped default model: present, small, inference-only safetensors, and holding up off its
own test split, all measured through the path the node serves (``Perceiver`` with the head
backend ``auto``, the answer grammar, score threshold, de-duplication, pixel mapping).

The measurements are ``tools.robustness_sets``'s, on fewer samples than the README's table
(``python -m tools.robustness``) so the file runs in about a minute on two cores.
"""

from __future__ import annotations

import pytest
import safetensors.torch
import torch

from pgpt_ros.model import load_pretrained
from pgpt_ros.runtime import DEFAULT_MODEL_DIR, Perceiver
from tools import robustness_sets as sets

NUM_TEST = 300  # ShapesRef's test split never meets training or validation seeds
NUM_GROUPS = 150  # aspect-ratio groups
# Wordings on all 300 test commands, as docs/training.md measures them: of 150, about 24 are
# absent commands with a reordered wording, so one of them is 4 points, more than the 3-point bar.
NUM_WORDINGS = NUM_TEST


@pytest.fixture(scope="module")
def perceiver():
    torch.set_num_threads(1)
    perceiver = Perceiver.load()  # what the node loads with its default parameters
    assert perceiver.backend == "onnxruntime"  # auto on a CPU machine
    return perceiver


@pytest.fixture(scope="module")
def split(perceiver):
    result, _, _ = sets.split(perceiver, NUM_TEST, perceiver.model.config.image_size)
    return result


@pytest.fixture(scope="module")
def negatives(perceiver):
    return sets.negatives(perceiver, NUM_TEST, perceiver.model.config.image_size)


def test_default_model_is_shipped_as_inference_only_safetensors_under_25_mb():
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(files)
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert sum(files.values()) <= 25 * 2**20
    stored = safetensors.torch.load_file(DEFAULT_MODEL_DIR / "model.safetensors")
    model = load_pretrained(DEFAULT_MODEL_DIR)
    assert set(stored) == set(model.state_dict())  # no training-only tensor ships
    assert len(model.config.answer_phrases) == 24  # decoding held to ShapesRef's answers


# What the shipped model holds on ShapesRef's test split drawn with the variation it trains for.
# A bar of issue 16 that the shipped model meets with a few commands to spare is asserted as the
# bar; every other floor is the shipped score less a couple of commands for another CPU's
# rounding, beside the bar (docs/training.md). Raise a floor with the model; never lower one
# below what ships.
FLOORS = {  # name: floor   (shipped score, commands; issue 16's bar)
    "acc@0.5": 0.87,  # 0.877, 300; >= 0.95
    "mask_miou": 0.83,  # 0.843, 300; >= 0.85
    "attribute": 0.90,  # 0.945, 55; >= 0.9, met
    "relation": 0.87,  # 0.909, 66; >= 0.9, met by one command
    "extreme": 0.89,  # 0.929, 56; >= 0.9, met by two commands
    "multi": 0.65,  # 0.684, 76; >= 0.9
    "absent": 0.90,  # 1.000, 47; >= 0.9, met
    "lists of 3-6": 0.51,  # 0.564, 39; >= 0.85
    "camera-like": 0.93,  # 0.943, 300 (the model trained on plain scenes: 0.867)
    "photos not found": 0.92,  # 0.932, 192 shape commands; >= 0.95
    "not there, relation": 0.85,  # 0.894, 85 (the model before the last: 0.032)
    "not there, extreme": 0.94,  # 0.981, 54 (the model before the last: 0.698)
}


def test_test_split_accuracy_and_masks(split):
    assert split["overall"]["acc@0.5"] >= FLOORS["acc@0.5"], split
    assert split["overall"]["mask_miou"] >= FLOORS["mask_miou"], split


@pytest.mark.parametrize("kind", ["attribute", "relation", "extreme", "multi", "absent"])
def test_every_kind(split, kind):
    assert split["per_kind"][kind] >= FLOORS[kind], split["per_kind"]


def test_lists_of_three_to_six(split):
    assert split["multi_3_to_6"] >= FLOORS["lists of 3-6"], split["multi_by_list_length"]


def test_camera_like_scenes_hold_what_ships(perceiver):
    assert sets.camera_like(perceiver, NUM_TEST)["acc@0.5"] >= FLOORS["camera-like"]


@pytest.mark.parametrize("wording", ["relation", "extreme"])
def test_relations_and_extremes_about_what_is_not_there_are_not_found(negatives, wording):
    assert negatives["by_wording"][wording] >= FLOORS[f"not there, {wording}"], negatives


def test_no_answer_is_cut_short(split):
    assert split["incomplete_answers"] == 0


def test_aspect_ratio_costs_at_most_three_points(perceiver):
    result = sets.aspect(perceiver, NUM_GROUPS, perceiver.model.config.image_size)
    assert min(result["gap_to_1:1"].values()) >= -0.03, result


def test_every_wording_within_three_points_of_the_plain_one(perceiver):
    result = sets.phrasing(perceiver, NUM_WORDINGS, perceiver.model.config.image_size)
    assert min(result["gap_to_plain"].values()) >= -0.03, result
    absent = {k: v for k, v in result["absent_acc"].items() if v is not None}
    assert min(absent.values()) >= absent["plain"] - 0.03, result


def test_real_photographs_hold_no_shapes_and_get_well_formed_answers(perceiver):
    result = sets.photos(perceiver)
    assert result["bad_count"] == 0, result["bad_answers"]
    assert result["shape"]["not_found_share"] >= FLOORS["photos not found"], result["shape"]
