"""The Perceiver maps the model's normalised answers to source pixels and rejects bad input."""

import numpy as np
import pytest

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.model import Detection
from pgpt_ros.runtime import Perceiver
from pgpt_ros.runtime.perceiver import check_image, to_pixels


def test_to_pixels_scales_box_and_mask_to_a_non_square_source():
    logits = np.full((32, 32), -5.0, np.float32)
    logits[8:16, 16:32] = 5.0  # rows 1/4..1/2, columns 1/2..1 of the image
    detection = Detection("red circle", np.array([0.5, 0.25, 1.0, 0.5], np.float32), logits, 0.7)
    pixel = to_pixels(detection, width=640, height=200, with_mask=True)
    np.testing.assert_allclose(pixel.box, [320.0, 50.0, 640.0, 100.0])
    assert pixel.mask.shape == (200, 640) and pixel.mask.dtype == bool
    ys, xs = np.nonzero(pixel.mask)
    assert abs(ys.min() - 50) <= 4 and abs(ys.max() - 100) <= 4
    assert abs(xs.min() - 320) <= 12 and xs.max() == 639
    assert to_pixels(detection, 640, 200, with_mask=False).mask is None


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 10, 3), np.uint8),
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
    ],
)
def test_check_image_rejects_what_the_model_cannot_read(image):
    with pytest.raises(ValueError):
        check_image(image)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"dtype": "float8"}, ValueError),
        ({"device": "not-a-device"}, ValueError),
        ({"device": "cpu", "dtype": "float16"}, ValueError),
        ({"head_backend": "magic"}, ValueError),
        ({"model_path": "/nonexistent/model"}, FileNotFoundError),
    ],
)
def test_load_reports_bad_parameters(kwargs, error):
    with pytest.raises(error):
        Perceiver.load(**kwargs)


def test_locate_answers_in_source_pixels():
    """The embedded default on a non-square 200x120 scene (the model sees 64x64): what it finds
    comes back in the source image's pixels, masks at the source size."""
    scene = ShapesRef.scene(seed=3, width=200, height=120)
    perceiver = Perceiver.load()
    result = perceiver.locate(scene.image, "the purple shape")
    assert result.num_tokens >= 2 and result.inference_s > 0
    assert result.detections, result.answer  # the trained default finds this one
    for detection in result.detections:
        x1, y1, x2, y2 = detection.box
        assert 0 <= x1 <= x2 <= 200 and 0 <= y1 <= y2 <= 120
        assert detection.mask.shape == (120, 200) and detection.mask.dtype == bool


def test_locate_on_a_cached_frame_answers_as_a_fresh_perceiver(monkeypatch):
    """The node passes its frame sequence number as ``image_id``: a second command on that frame
    reuses the image work (the vision tower runs once) and must still answer exactly as a
    perceiver that never saw the frame, not repeat the first command's answer."""
    image = np.random.default_rng(1).integers(0, 256, (90, 160, 3), dtype=np.uint8)
    perceiver = Perceiver.load()
    encode, calls = perceiver.model.encode_image, []
    monkeypatch.setattr(perceiver.model, "encode_image", lambda p: calls.append(1) or encode(p))
    perceiver.locate(image, "find the red circle", image_id=5, max_new_tokens=12)
    cached = perceiver.locate(image, "find the blue square", image_id=5, max_new_tokens=6)
    assert len(calls) == 1
    fresh = Perceiver.load().locate(image, "find the blue square", max_new_tokens=6)
    assert cached.answer == fresh.answer and cached.num_tokens == fresh.num_tokens
    assert len(cached.detections) == len(fresh.detections)
    for got, want in zip(cached.detections, fresh.detections, strict=True):
        np.testing.assert_allclose(got.box, want.box, atol=1e-3)
