"""The text-coordinate baseline: formatting, robust parsing and answer() with a forced reply."""

import numpy as np
import pytest
import torch

from pgpt_ros.model import answer, build_model, preset_config, tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("red circle [0.100,0.200,0.300,0.400]", [("red circle", [0.1, 0.2, 0.3, 0.4])]),
        (
            "red circle [0.1,0.2,0.3,0.4], blue star [ 0.5 , 0.5, 1.0,0.9 ]",
            [("red circle", [0.1, 0.2, 0.3, 0.4]), ("blue star", [0.5, 0.5, 1.0, 0.9])],
        ),
        # swapped corners are ordered, out-of-range values clipped
        ("it [0.8,0.9,0.2,-0.5]", [("it", [0.2, 0.0, 0.8, 0.9])]),
        ("x [1e-1,2E-1,0.3,1.5]", [("x", [0.1, 0.2, 0.3, 1.0])]),
    ],
)
def test_parse_good_strings(text, expected):
    parsed = tokens.parse_text_boxes(text)
    assert [p for p, _ in parsed] == [p for p, _ in expected]
    for (_, box), (_, want) in zip(parsed, expected, strict=True):
        assert box.dtype == np.float32
        np.testing.assert_allclose(box, want, atol=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not found",
        "red circle [0.1,0.2,0.3]",
        "red circle [0.1,0.2,0.3,",
        "red circle [a,b,c,d]",
        "red circle [0.1;0.2;0.3;0.4]",
        "[[[[",
        "red circle [0.1,0.2,0.3,0.4,0.5]",
        "\x00\xff [nan]",
        "x [1e999,0.1,0.2,0.3]",
    ],
)
def test_parse_malformed_strings_give_nothing(text):
    assert tokens.parse_text_boxes(text) == []


def test_format_then_parse_round_trips():
    boxes = np.array([[0.1234, 0.5, 0.75, 0.9], [0.0, 0.0, 1.0, 1.0]], dtype=np.float32)
    text = tokens.answer_text(["red circle", "blue star"], boxes)
    assert text == "red circle [0.123,0.500,0.750,0.900], blue star [0.000,0.000,1.000,1.000]"
    parsed = tokens.parse_text_boxes(text)
    np.testing.assert_allclose(np.stack([b for _, b in parsed]), boxes, atol=1e-3)


def test_baseline_answer_parses_forced_text():
    torch.manual_seed(0)
    config = preset_config(
        "tiny", image_size=32, vision_width=32, text_width=64, head="text_coords"
    )
    model = build_model(config)
    assert model.box_decoder is None and model.mask_decoder is None
    tok = model.tokenizer
    reply = tok(" red circle [0.100,0.200,0.300,0.400]", add_special_tokens=False)["input_ids"]
    reply.append(model.config.eos_token_id)
    prompt_len = len(model.prompt_ids("find the red circle"))

    def force(ids, logits):
        out = torch.full_like(logits, -1e4)
        out[0, reply[ids.shape[1] - prompt_len]] = 0.0
        return out

    image = np.zeros((20, 30, 3), dtype=np.uint8)
    reply_ = answer(model, image, "find the red circle", max_new_tokens=40, logits_processor=force)
    assert reply_.text == "red circle [0.100,0.200,0.300,0.400]"
    assert reply_.num_tokens == len(reply)
    [det] = reply_.detections
    assert det.phrase == "red circle" and det.mask_logits is None and det.score == 1.0
    np.testing.assert_allclose(det.box, [0.1, 0.2, 0.3, 0.4], atol=1e-6)
