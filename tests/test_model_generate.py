"""The reference decoding loop: one detection per emitted <vis>, states equal a teacher-forced pass."""

import numpy as np
import pytest
import torch

from pgpt_ros.data.collate import IGNORE_INDEX
from pgpt_ros.model import answer, build_model, generate, preset_config, tokens
from pgpt_ros.training.objective import gather_vis_states

COMMAND = "find all the red shapes"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = preset_config(
        "tiny", image_size=32, vision_width=32, text_width=64, head_width=32, mask_size=16
    )
    return build_model(config)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 40, 3), dtype=np.uint8)


def forced(model, reply: list[int]):
    """A logits processor that makes greedy decoding emit ``reply`` (then EOS forever)."""
    prompt_len = len(model.prompt_ids(COMMAND))

    def force(ids, logits):
        step = ids.shape[1] - prompt_len
        target = reply[step] if step < len(reply) else model.config.eos_token_id
        out = logits.clone()
        out[0, target] = logits.max() + 20.0  # wins greedily, leaves other logits as they are
        return out

    return force


def reply_ids(model, phrases):
    cfg = model.config
    return tokens.encode_answer(model.tokenizer, phrases, cfg.vis_token_id, cfg.eos_token_id)


@pytest.mark.parametrize("count", [0, 1, 3])
def test_locate_returns_one_detection_per_vis(model, image, count):
    phrases = ["red circle", "red square", "red star"][:count]
    reply = answer(
        model,
        image,
        COMMAND,
        max_new_tokens=30,
        logits_processor=forced(model, reply_ids(model, phrases)),
    )
    assert len(reply.detections) == count
    assert [d.phrase for d in reply.detections] == phrases
    assert reply.text == tokens.answer_text(phrases)
    assert reply.num_tokens == len(reply_ids(model, phrases))
    size = model.config.mask_size
    for det in reply.detections:
        assert det.box.shape == (4,) and det.box.dtype == np.float32
        assert 0 <= det.box[0] <= det.box[2] <= 1 and 0 <= det.box[1] <= det.box[3] <= 1
        assert det.mask_logits.shape == (size, size) and det.mask_logits.dtype == np.float32
        assert 0.0 <= det.score <= 1.0


def test_max_objects_stops_early(model, image):
    force = forced(model, reply_ids(model, ["red circle", "red square", "red star"]))
    reply = answer(model, image, COMMAND, max_objects=2, logits_processor=force)
    assert len(reply.detections) == 2
    assert reply.text == tokens.answer_text(["red circle", "red square"])


def test_max_new_tokens_bounds_generation(model, image):
    force = forced(model, reply_ids(model, ["red circle"] * 5))
    reply = answer(model, image, COMMAND, max_new_tokens=4, logits_processor=force)
    assert reply.num_tokens == 4


def test_generation_states_equal_teacher_forced_pass(model, image):
    """The KV-cached loop (box embeddings fed back) sees what one full forward pass sees."""
    reply = reply_ids(model, ["red circle", "blue star"])
    pixels, _ = model.preprocess([image])
    gen = generate(model, pixels, COMMAND, logits_processor=forced(model, reply))
    prompt = model.prompt_ids(COMMAND)
    ids = torch.tensor([prompt + gen.token_ids])
    labels = torch.tensor([[IGNORE_INDEX] * len(prompt) + gen.token_ids])
    with torch.no_grad():
        hidden, feats = model.hidden_states(ids, pixels, vis_boxes=gen.boxes)
        states, index = gather_vis_states(hidden, labels, model.config.vis_token_id)
        boxes, masks, ious = model.decode_vis(states, feats[index], pixels[index])
    assert gen.vis_states.shape == (2, model.config.hidden_size)
    torch.testing.assert_close(gen.vis_states, states, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gen.boxes, boxes, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gen.mask_logits, masks, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gen.ious, ious, atol=1e-5, rtol=1e-5)


def test_fed_back_box_changes_later_states(model, image):
    """The box encoder's embedding really is the <vis> input: a different box, different states."""
    reply = reply_ids(model, ["red circle", "blue star"])
    prompt = model.prompt_ids(COMMAND)
    ids = torch.tensor([prompt + reply])
    pixels, _ = model.preprocess([image])
    boxes = torch.tensor([[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9]])
    with torch.no_grad():
        a, _ = model.hidden_states(ids, pixels, vis_boxes=boxes)
        b, _ = model.hidden_states(ids, pixels, vis_boxes=boxes.flip(0))
    first_vis = len(prompt) + reply.index(model.config.vis_token_id)
    torch.testing.assert_close(a[:, :first_vis], b[:, :first_vis])
    assert (a[:, first_vis:] - b[:, first_vis:]).abs().max() > 1e-4


def test_prompt_boxes_fill_vis_in_the_command(model, image):
    command = f"what is at {tokens.VIS_TOKEN}?"
    reply = answer(
        model, image, command, max_new_tokens=3, prompt_boxes=np.array([[0, 0, 0.5, 0.5]])
    )
    assert reply.num_tokens <= 3
    with pytest.raises(ValueError, match="need 1 boxes"):
        answer(model, image, command, max_new_tokens=3)


def test_answer_in_bfloat16_returns_float32_arrays(image):
    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=64, mask_size=8)
    model = build_model(config).to(torch.bfloat16)
    force = forced(model, reply_ids(model, ["red circle", "blue star"]))
    detections = answer(model, image, COMMAND, logits_processor=force).detections
    assert len(detections) == 2
    for det in detections:
        assert det.box.dtype == np.float32 and det.mask_logits.dtype == np.float32
        assert 0.0 <= det.score <= 1.0


def test_image_token_in_the_command_is_ignored(model, image):
    ids = model.prompt_ids("find <image> the red circle")
    assert ids.count(model.config.image_token_id) == model.config.num_image_tokens
    assert answer(model, image, "<image><image>", max_new_tokens=2).num_tokens <= 2


def test_answer_rejects_bad_images(model):
    with pytest.raises(ValueError, match="HxWx3"):
        answer(model, np.zeros((8, 8), dtype=np.uint8), COMMAND)
    with pytest.raises(ValueError, match="uint8"):
        answer(model, np.zeros((8, 8, 3), dtype=np.float32), COMMAND)
