"""The vision probe: it counts colour and shape right on the tokens one object covers, and trains
every stem."""

import pytest
import torch

from pgpt_ros.data.shapesref.vocabulary import NUM_CLASSES, object_class
from tools.vision_probe import patch_accuracy, vision_probe


def _shares(*classes: int) -> torch.Tensor:
    """One token per class, each fully covered by it."""
    return torch.nn.functional.one_hot(torch.tensor(classes), NUM_CLASSES).float()[None]


def test_patch_accuracy_counts_colour_and_shape_apart_on_object_tokens():
    red_circle, red_star = object_class("red", "circle"), object_class("red", "star")
    blue_circle = object_class("blue", "circle")
    targets = _shares(red_circle, red_circle, red_circle, 0)
    targets[0, 2] = 0.4 * targets[0, 2] + 0.6 * _shares(red_star, 0).mean(1)[0]  # none > 0.5
    guesses = _shares(red_circle, blue_circle, red_star, red_circle)
    counts = patch_accuracy(guesses * 10, targets)
    assert counts == {"class": (1, 2), "colour": (1, 2), "shape": (2, 2)}
    background = patch_accuracy(_shares(0, 0), _shares(red_star, red_star))
    assert background == {"class": (0, 2), "colour": (0, 2), "shape": (0, 2)}


@pytest.mark.parametrize("image_size", [64, 128])
def test_vision_probe_trains_a_tower_and_reports_every_measure(image_size):
    result = vision_probe("conv", 1, steps=3, batch=4, val_images=20, image_size=image_size,
                          progress=False)  # fmt: skip
    assert result["image_size"] == image_size and result["tokens"] > 0
    assert result["ms_per_step"] > 0
    assert all(0.0 <= result[k] <= 1.0 for k in ("class", "colour", "shape"))
