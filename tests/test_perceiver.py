"""The Perceiver: bad input and parameters are clear errors, answers come back in the frame's
pixels, a cached frame answers as a fresh one, and commands are checked in tokens."""

import numpy as np
import pytest

from pgpt_ros.commands import BadCommand
from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.model.preprocess import check_image
from pgpt_ros.runtime import AnswerPolicy, Perceiver


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
    perceiver.locate(
        image, "find the red circle", image_id=5, policy=AnswerPolicy(max_new_tokens=12)
    )
    short = AnswerPolicy(max_new_tokens=6)
    cached = perceiver.locate(image, "find the blue square", image_id=5, policy=short)
    assert len(calls) == 1
    fresh = Perceiver.load().locate(image, "find the blue square", policy=short)
    assert cached.answer == fresh.answer and cached.num_tokens == fresh.num_tokens
    assert len(cached.detections) == len(fresh.detections)
    for got, want in zip(cached.detections, fresh.detections, strict=True):
        np.testing.assert_allclose(got.box, want.box, atol=1e-3)


def test_set_image_then_predict_is_locate():
    scene = ShapesRef.scene(seed=3, width=200, height=120)
    perceiver = Perceiver.load(head_backend="torch")
    with pytest.raises(RuntimeError, match="set_image"):
        perceiver.predict("the purple shape")
    perceiver.set_image(scene.image)
    first = perceiver.predict("the purple shape")
    second = perceiver.predict("the purple shape")  # the same frame again: the prefix is reused
    located = perceiver.locate(scene.image, "the purple shape")
    for result in (second, located):
        assert result.answer == first.answer
        np.testing.assert_allclose([d.box for d in result.detections],
                                   [d.box for d in first.detections], atol=1e-4)  # fmt: skip


def test_commands_are_normalised_and_limited_in_tokens():
    scene = ShapesRef.scene(seed=3, width=200, height=120)
    perceiver = Perceiver.load(head_backend="torch")
    perceiver.set_image(scene.image)
    plain = perceiver.predict("the purple shape")
    shouted = perceiver.predict("  THE PURPLE   SHAPE ?!")
    assert shouted.answer == plain.answer
    with pytest.raises(BadCommand, match="tokens"):
        perceiver.predict("the purple shape " * 100)
    with pytest.raises(BadCommand, match="tokens"):
        perceiver.predict("赤い丸を見つけて" * 30)  # a short text of many byte-level tokens
    with pytest.raises(BadCommand, match="reserved"):
        perceiver.predict("what is at <vis>")
    with pytest.raises(BadCommand, match="U\\+0000"):
        perceiver.predict("the purple\x00 shape")
