"""The demo camera's 3D scenes: depth agrees with the picture, ground truth with the geometry, and
moving scenes can be tracked."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.spatial import DepthImage, locate
from pgpt_ros.spatial.shapes3d import Geometry, Shapes3D
from pgpt_ros.spatial.sync import DepthFrame
from pgpt_ros.tracking import Tracker

WIDTH, HEIGHT = 320, 240


@dataclass
class Found:
    phrase: str
    box: np.ndarray
    mask: np.ndarray | None


def test_a_still_scene_is_the_shapesref_scene_with_depths_that_agree_with_occlusion():
    scene = ShapesRef.scene(7, WIDTH, HEIGHT)
    shapes = Shapes3D(7, WIDTH, HEIGHT, Geometry(near_m=0.6, far_m=2.0, background_m=3.0))
    frame = shapes.frame(12.5)  # still: the time does not matter
    np.testing.assert_array_equal(frame.image, scene.image)
    assert [o.name for o in frame.objects] == [o.name for o in scene.objects]
    assert shapes.depths == sorted(shapes.depths, reverse=True)  # drawn later = nearer
    assert all(0.6 <= d <= 2.0 for d in shapes.depths)
    background = np.ones((HEIGHT, WIDTH), bool)
    for truth, obj, depth_m in zip(frame.objects, scene.objects, shapes.depths, strict=True):
        np.testing.assert_array_equal(truth.mask, obj.mask)
        np.testing.assert_array_equal(truth.box, obj.box)
        assert (frame.depth_m[truth.mask] == np.float32(depth_m)).all()
        background &= ~truth.mask
    assert (frame.depth_m[background] == 3.0).all()


def test_ground_truth_centres_project_onto_the_visible_pixels_centroid():
    frame = Shapes3D(11, WIDTH, HEIGHT, Geometry(horizontal_fov_deg=70.0)).frame()
    camera = frame.intrinsics
    assert camera.fx == pytest.approx((WIDTH / 2) / np.tan(np.radians(35.0)))
    for truth in frame.objects:
        x, y, z = truth.centre_m
        ys, xs = np.nonzero(truth.mask)
        assert z == truth.depth_m
        assert x * camera.fx / z + camera.cx == pytest.approx(xs.mean())
        assert y * camera.fy / z + camera.cy == pytest.approx(ys.mean())


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_locating_each_shape_from_its_true_mask_recovers_its_true_centre(encoding):
    frame = Shapes3D(3, 640, 480, Geometry(near_m=1.0, far_m=1.0, background_m=2.5)).frame()
    raw = np.round(frame.depth_m * 1000).astype(np.uint16) if encoding == "16UC1" else frame.depth_m
    depth = DepthFrame(DepthImage(raw, encoding, 0.1, 10.0), frame.intrinsics, 0.0)
    for truth in frame.objects:
        assert truth.depth_m == 1.0
        result = locate(Found(truth.name, truth.box, truth.mask), depth)
        np.testing.assert_allclose(result.position, truth.centre_m, atol=1e-6)


def test_fully_visible_is_false_only_for_shapes_cut_by_another_or_the_border():
    seen = {True: 0, False: 0}
    for seed in range(8):
        shapes = Shapes3D(seed, WIDTH, HEIGHT, Geometry(motion=0.3))
        for t in (0.0, 1.0, 2.0):
            frame = shapes.frame(t)
            for index, truth in enumerate(frame.objects):
                seen[truth.fully_visible] += 1
                if truth.fully_visible:  # its whole cut-out is in view
                    assert truth.mask.sum() == shapes.scene.objects[index].mask.sum()
    assert seen[True] > 0 and seen[False] > 0


def test_moving_shapes_keep_their_outline_and_depth_and_move_smoothly():
    shapes = Shapes3D(5, WIDTH, HEIGHT, Geometry(motion=0.1, motion_period_s=6.0))
    amplitude = 0.1 * HEIGHT
    for index in range(len(shapes.scene.objects)):
        path = np.array([shapes.offset(index, t / 10) for t in range(61)])
        assert np.abs(path).max() <= round(amplitude)
        assert np.abs(np.diff(path, axis=0)).max() <= 3  # px per 0.1 s: smooth
        assert len({tuple(p) for p in path}) > 10  # it does move
    before, after = shapes.frame(0.0), shapes.frame(1.0)
    assert not np.array_equal(before.image, after.image)
    for truth, depth_m in zip(after.objects, shapes.depths, strict=True):
        assert (after.depth_m[truth.mask] == np.float32(depth_m)).all()


def test_ground_truth_is_json_with_the_camera():
    shapes = Shapes3D(7, WIDTH, HEIGHT, Geometry())
    truth = json.loads(json.dumps(shapes.truth(shapes.frame())))
    assert truth["camera_k"] == shapes.intrinsics.k and truth["width"] == WIDTH
    first = truth["objects"][0]
    assert set(first) == {"index", "name", "box", "depth_m", "centre_m", "visible_pixels",
                          "fully_visible"}  # fmt: skip


def test_impossible_geometry_is_refused_with_every_reason():
    with pytest.raises(ValueError) as error:
        Shapes3D(0, WIDTH, HEIGHT, Geometry(near_m=2.0, far_m=1.0, motion=0.9))
    assert "depth_near_m <= depth_far_m" in str(error.value) and "motion" in str(error.value)


def test_the_demos_moving_scenes_track_with_at_most_one_id_switch_per_100_object_frames():
    # The detector is imperfect: it misses 5 % of the objects and its masks lose a random edge.
    rng = np.random.default_rng(0)
    switches = object_frames = 0
    for seed in range(6):
        shapes = Shapes3D(seed, WIDTH, HEIGHT, Geometry(motion=0.1))
        tracker, last = Tracker(), {}
        for step in range(30):  # 3 s at 10 Hz
            found, truths = [], []
            for truth in shapes.frame(step / 10).objects:
                if truth.mask.sum() < 50 or rng.random() < 0.05:
                    continue
                mask = truth.mask.copy()
                mask[: int(truth.box[1] + rng.integers(0, 4))] = False
                found.append(Found(truth.name, truth.box, mask))
                truths.append(truth.index)
            for index, track_id in zip(truths, tracker.update(found), strict=True):
                object_frames += 1
                switches += index in last and last[index] != track_id
                last[index] = track_id
    assert object_frames > 300
    assert switches <= object_frames / 100
