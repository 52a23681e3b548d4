"""RefCOCO-format loading from tiny files the test writes, and the explicit pickle conversion."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from pgpt_ros.data.refcoco import RefCOCO, decode_rle, main


@pytest.fixture
def refcoco_dir(tmp_path):
    """One 40x30 image, a triangle 'person' (polygon) and a square 'dog' (RLE), three refs."""
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(images / "COCO_1.jpg")
    dog = np.zeros((30, 40), bool)
    dog[5:15, 20:30] = True  # rows 5..14, columns 20..29
    counts, flat, run, value = [], dog.T.reshape(-1), 0, False  # column-major runs
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            run, value = 0, pixel
        run += 1
    counts.append(run)
    instances = {
        "images": [{"id": 1, "file_name": "COCO_1.jpg", "height": 30, "width": 40}],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "bbox": [2, 4, 10, 10],
                "segmentation": [[2, 4, 12, 4, 2, 14]],
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 2,
                "bbox": [20, 5, 10, 10],
                "segmentation": {"size": [30, 40], "counts": counts},
            },
        ],  # fmt: skip
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    refs = [
        {"ref_id": 0, "image_id": 1, "split": "train", "ann_id": 10, "category_id": 1,
         "sentences": [{"sent": "man on the left", "raw": "Man on the left"},
                       {"sent": "the person", "raw": "the person"}]},
        {"ref_id": 1, "image_id": 1, "split": "val", "ann_id": 11,
         "sentences": [{"sent": "brown dog", "raw": "brown dog"}]},
        {"ref_id": 2, "image_id": 1, "split": "val", "ann_id": [],
         "sentences": [{"raw": "the cat"}]},
    ]  # fmt: skip
    (tmp_path / "refs.p").write_bytes(pickle.dumps(refs))
    return tmp_path, dog


def test_convert_then_load(refcoco_dir):
    root, dog = refcoco_dir
    with pytest.warns(UserWarning, match="trusted source"):
        assert main(["convert", str(root / "refs.p"), str(root / "refs.json")]) == 0
    assert json.loads((root / "refs.json").read_text())[0]["ann_id"] == 10
    everything = RefCOCO(root / "refs.json", root / "instances.json", root / "images")
    assert len(everything) == 4  # one sample per sentence

    person = everything[0]
    assert person.command == "man on the left" and person.phrases == ["person"]
    assert person.kind == "single" and person.image.shape == (30, 40, 3)
    np.testing.assert_array_equal(person.boxes, [[2, 4, 12, 14]])  # xywh -> xyxy
    ys, xs = np.nonzero(person.masks[0])
    assert xs.min() >= 2 and xs.max() <= 12 and ys.min() >= 4 and ys.max() <= 14
    assert person.masks[0][5, 3] and not person.masks[0][13, 11]  # the triangle's inside/outside

    val = RefCOCO(root / "refs.json", root / "instances.json", root / "images", split="val")
    assert len(val) == 2
    np.testing.assert_array_equal(val[0].masks[0], dog)
    assert val[0].phrases == ["dog"]
    absent = val[1]
    assert absent.kind == "absent" and absent.num_targets == 0 and absent.command == "the cat"


def test_loader_refuses_pickles_and_missing_files(refcoco_dir):
    root, _ = refcoco_dir
    with pytest.raises(ValueError, match="convert"):
        RefCOCO(root / "refs.p", root / "instances.json", root / "images")
    with pytest.raises(FileNotFoundError):
        RefCOCO(root / "nope.json", root / "instances.json", root / "images")


def test_compressed_rle_hand_cases():
    assert decode_rle({"size": [2, 2], "counts": "04"}).all()
    # runs 1,1,1,1 column-major: the bottom row is set; the 4th count is coded as a 0 delta
    np.testing.assert_array_equal(decode_rle({"size": [2, 2], "counts": "1110"}),
                                  [[False, False], [True, True]])  # fmt: skip
    # runs 1,1,2,0: the 4th count is 1 + (-1), 'O' being the 5-bit code of -1
    np.testing.assert_array_equal(decode_rle({"size": [2, 2], "counts": "112O"}),
                                  [[False, False], [True, False]])  # fmt: skip
