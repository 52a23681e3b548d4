"""Samples -> batch: answer layout, labels, normalised targets in <vis> order."""

import numpy as np
import pytest
import torch

from pgpt_ros.data.collate import IGNORE_INDEX, Collator, object_geometry
from pgpt_ros.data.sample import Sample
from pgpt_ros.model import build_model, preset_config, tokens
from pgpt_ros.model.preprocess import FrameTransform
from pgpt_ros.training.objective import PerceptionObjective


def sample(boxes: list[list[float]], phrases: list[str], size=(40, 80)) -> Sample:
    h, w = size
    masks = np.zeros((len(boxes), h, w), dtype=bool)
    for m, (x1, y1, x2, y2) in zip(masks, boxes, strict=True):
        m[int(y1) : int(y2), int(x1) : int(x2)] = True
    array = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    image = np.full((h, w, 3), 128, dtype=np.uint8)
    return Sample(image, "find the shapes", phrases, array, masks, "multi")


@pytest.fixture(scope="module")
def model():
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=64, mask_size=8)
    return build_model(config)


def collator(model, **kwargs) -> Collator:
    return Collator(model.tokenizer, model.config, **kwargs)


def test_batch_layout_and_targets(model):
    first = sample([[0, 0, 40, 20], [40, 20, 80, 40]], ["red circle", "blue star"])
    second = sample([], [])
    batch = collator(model)([first, second])
    cfg = model.config
    ids, labels, attention = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape == labels.shape == attention.shape and ids.dtype == torch.long
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    # targets: normalised by (W, H), in answer order, only from samples that have them
    np.testing.assert_allclose(
        batch["target_boxes"].numpy(), [[0, 0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]], atol=1e-6
    )
    assert batch["target_masks"].shape == (2, 8, 8)
    assert (
        batch["target_masks"][0, :4, :4].min() == 1 and batch["target_masks"][0, 4:, :].max() == 0
    )
    assert batch["num_targets"].tolist() == [2, 0]
    # labels: prompt ignored, the answer (with EOS) kept, padding ignored and masked
    for row, phrases in enumerate([["red circle", "blue star"], []]):
        answer = tokens.encode_answer(model.tokenizer, phrases, cfg.vis_token_id, cfg.eos_token_id)
        kept = labels[row][labels[row] != IGNORE_INDEX].tolist()
        assert kept == answer
        length = int(attention[row].sum())
        assert ids[row, length - len(answer) : length].tolist() == answer
        assert (ids[row, length:] == cfg.pad_token_id).all()
        assert (ids[row] == cfg.image_token_id).sum() == cfg.num_image_tokens
    assert (labels == cfg.vis_token_id).sum() == 2
    decoded = model.tokenizer.decode(labels[1][labels[1] != IGNORE_INDEX], skip_special_tokens=True)
    assert decoded.strip() == tokens.NOT_FOUND


def test_text_coords_batch_writes_boxes_as_text():
    config = preset_config(
        "tiny", image_size=32, vision_width=32, text_width=64, head="text_coords"
    )
    model = build_model(config)
    batch = collator(model)([sample([[0, 0, 40, 20]], ["red circle"])])
    answer = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX]
    text = model.tokenizer.decode(answer, skip_special_tokens=True)
    assert text.strip() == "red circle [0.000,0.000,0.500,0.500]"
    assert (batch["input_ids"] == model.config.vis_token_id).sum() == 0


def test_padded_frames_put_targets_where_the_image_content_is():
    """With resize_mode "pad" a 2:1 frame fills the middle half of the square input: the boxes
    and masks of the batch sit there too, and the padding is background."""
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=64, mask_size=8,
                           resize_mode="pad")  # fmt: skip
    model = build_model(config)
    batch = collator(model)([sample([[0, 0, 40, 20]], ["red circle"])])  # 80 x 40 frame
    np.testing.assert_allclose(batch["target_boxes"][0].numpy(), [0, 0.25, 0.5, 0.5], atol=1e-6)
    masks = batch["target_masks"][0].numpy()
    assert masks[2:4, 0:4].min() == 1.0 and masks[:2].max() == 0 and masks[6:].max() == 0
    pixels = batch["pixel_values"][0]
    assert pixels[:, :8].abs().max() == 0 and pixels[:, 24:].abs().max() == 0  # padding is 0


def test_frame_transform_masks_to_model_keep_coverage():
    mask = np.zeros((1, 10, 10), dtype=bool)
    mask[0, :5, :] = True
    small = FrameTransform.fit(10, 10, 4, "stretch").masks_to_model(mask, 2)
    np.testing.assert_allclose(small[0], [[1, 1], [0, 0]])
    assert small.dtype == np.float32


def test_packed_rows_compute_each_command_as_its_own_sequence():
    """Several commands about one image in one row give the losses of separate rows exactly:
    the block mask and restarted positions hide the other commands from each segment."""
    from pgpt_ros.data.shapesref import ShapesRef

    torch.manual_seed(0)
    config = preset_config("tiny", image_size=32, vision_width=32, text_width=64, mask_size=8)
    model = build_model(config).eval()
    dataset = ShapesRef("val", image_size=32, length=8)
    groups = [dataset.commands(i, 3) for i in range(3)]
    collate = collator(model)
    packed = collate.pack(groups)
    flat = collate([s for group in groups for s in group])
    assert packed["input_ids"].shape[0] == 3 and packed["pixel_values"].shape[0] == 3
    assert packed["input_ids"].shape[1] < 3 * flat["input_ids"].shape[1]
    torch.testing.assert_close(packed["target_boxes"], flat["target_boxes"])
    objective = PerceptionObjective(model)
    with torch.no_grad():
        got, want = objective(packed), objective(flat)
    for name, value in want.losses.items():
        torch.testing.assert_close(got.losses[name], value, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.boxes, want.boxes, atol=1e-5, rtol=1e-5)


def test_pack_rejects_groups_that_do_not_share_an_image(model):
    a = sample([[0, 0, 40, 20]], ["red circle"])
    b = sample([[0, 0, 40, 20]], ["red circle"])  # an equal image, but another array
    with pytest.raises(ValueError, match="sharing one image"):
        collator(model).pack([[a, b]])


def test_object_geometry_gives_each_patch_the_box_of_its_object():
    ids = np.zeros((32, 64), np.uint8)  # a wide image: boxes are normalised per axis
    ids[0:16, 0:32] = 1  # object 1: the top-left quarter, patches 0, 1, 4, 5 of the 4 x 4 grid
    ids[16:24, 48:64] = 2  # object 2: exactly patch 11 (row 2, column 3; patches are 8 x 16 px)
    stretch = FrameTransform.fit(64, 32, 32, "stretch")
    geometry, weight = object_geometry(ids, 4, stretch)
    first = np.array([0.25, 0.25, 0.5, 0.5], np.float32)
    for p in (0, 1, 4, 5):
        np.testing.assert_allclose(geometry[p], first, atol=1e-6)
        assert weight[p] == 1.0
    np.testing.assert_allclose(geometry[11], [0.875, 0.625, 0.25, 0.25], atol=1e-6)
    assert weight[11] == 1.0
    assert weight.sum() == 5.0 and not geometry[weight == 0].any()  # background: no target
    half = ids.copy()
    half[0:16, 0:32] = 0
    half[0:4, 0:32] = 1  # object 1 now covers the top half of patches 0 and 1 only
    geometry, weight = object_geometry(half, 4, stretch)
    assert weight[0] == weight[1] == 0.5 and weight[4] == 0
    np.testing.assert_allclose(geometry[0], [0.25, 0.0625, 0.5, 0.125], atol=1e-6)
