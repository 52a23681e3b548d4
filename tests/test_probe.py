"""The token probe: its regression scores what is linear in the tokens, and it sees the image
position map of a model that has one."""

import numpy as np
import pytest
import torch

from pgpt_ros.model import build_model, preset_config
from tools.probe import TARGETS, probe, ridge_r2


def test_ridge_r2_is_one_for_a_linear_target_and_about_zero_for_noise():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(400, 8))
    linear = feats @ rng.normal(size=(8, 1)) + 3.0
    noise = rng.normal(size=(400, 1))
    r2 = ridge_r2(feats, np.concatenate([linear, noise], axis=1))
    assert r2[0] > 0.999 and abs(r2[1]) < 0.1
    with pytest.raises(ValueError, match="too few"):
        ridge_r2(feats[:8], linear[:8])


def test_probe_reads_patch_place_from_a_model_with_image_position():
    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=32,
                                      mask_size=8, image_position=True)  # fmt: skip
    scores = probe(build_model(config), num_images=60)
    assert set(scores) == set(TARGETS)
    assert scores["patch_x"] > 0.9 and scores["patch_y"] > 0.9
