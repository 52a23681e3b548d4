"""3D from depth: back-projection, depth units, invalid depths, stamp and resolution matching."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from pgpt_ros.spatial import (
    DepthImage,
    DepthSync,
    Intrinsics,
    PositionStatus,
    locate,
    locate_all,
)
from pgpt_ros.spatial.locate import object_pixels
from pgpt_ros.spatial.sync import DepthFrame

WIDTH, HEIGHT = 64, 48
# fx 50, fy 40, principal point (30, 20): hand-computable numbers, deliberately not centred.
CAMERA = Intrinsics(fx=50.0, fy=40.0, cx=30.0, cy=20.0, width=WIDTH, height=HEIGHT)


@dataclass
class Found:
    box: np.ndarray
    mask: np.ndarray | None


def rect_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def frame(metres: np.ndarray, encoding: str = "32FC1", min_m=0.1, max_m=10.0) -> DepthFrame:
    raw = (
        np.round(metres * 1000).astype(np.uint16)
        if encoding == "16UC1"
        else metres.astype(np.float32)
    )
    return DepthFrame(DepthImage(raw, encoding, min_m, max_m), CAMERA, 0.0)


def plane(z: float) -> np.ndarray:
    return np.full((HEIGHT, WIDTH), z)


# ---------------------------------------------------------------- camera model


def test_intrinsics_read_k_row_major_and_reject_an_uncalibrated_camera():
    k = [50.0, 0.0, 30.0, 0.0, 40.0, 20.0, 0.0, 0.0, 1.0]
    assert Intrinsics.from_k(k, WIDTH, HEIGHT) == CAMERA
    assert Intrinsics.from_k(np.array(k).reshape(3, 3), WIDTH, HEIGHT).k == k
    with pytest.raises(ValueError, match="is the camera calibrated"):
        Intrinsics.from_k([0.0] * 9, WIDTH, HEIGHT)  # what an uncalibrated driver publishes
    with pytest.raises(ValueError, match="9 values"):
        Intrinsics.from_k([1.0] * 4, WIDTH, HEIGHT)


def test_back_projection_matches_hand_computed_points():
    # x = (u - cx) z / fx, y = (v - cy) z / fy, pixel centres at integer coordinates.
    points = CAMERA.back_project(np.array([30, 80, 30, 0]), np.array([20, 20, 60, 0]),
                                 np.array([1.0, 2.0, 0.5, 4.0]))  # fmt: skip
    expected = [
        [0.0, 0.0, 1.0],  # the principal point lies on the optical axis
        [2.0, 0.0, 2.0],  # 50 px right at 2 m: (80 - 30) * 2 / 50
        [0.0, 0.5, 0.5],  # 40 px down at 0.5 m: (60 - 20) * 0.5 / 40
        [-2.4, -2.0, 4.0],
    ]  # the top-left pixel centre: (0 - 30) * 4 / 50, (0 - 20) * 4 / 40
    np.testing.assert_allclose(points, expected)  # fmt: skip


def test_ideal_camera_puts_the_optical_axis_through_the_image_centre():
    camera = Intrinsics.ideal(640, 480, horizontal_fov_deg=90.0)
    assert camera.fx == camera.fy == pytest.approx(320.0)
    assert (camera.cx, camera.cy) == (319.5, 239.5)
    # The image's left edge (pixel 0's left border, u = -0.5) lies at 45 degrees.
    [[x, _, z]] = camera.back_project(np.array([-0.5]), np.array([239.5]), np.array([1.0]))
    assert x == pytest.approx(-z)


# ---------------------------------------------------------------- depth decoding


def test_16uc1_is_millimetres_with_zero_and_out_of_range_invalid():
    raw = np.array([[0, 1000, 50, 12000, 2500]], np.uint16)
    depth = DepthImage(raw, "16UC1", min_m=0.1, max_m=10.0)
    np.testing.assert_array_equal(depth.metres(), [[np.nan, 1.0, np.nan, np.nan, 2.5]])


def test_32fc1_is_metres_with_nan_inf_zero_and_out_of_range_invalid():
    raw = np.array([[np.nan, np.inf, -np.inf, 0.0, -1.0, 1.5, 0.05, 20.0]], np.float32)
    depth = DepthImage(raw, "32FC1", min_m=0.1, max_m=10.0)
    expected = [[np.nan] * 5 + [1.5, np.nan, np.nan]]
    np.testing.assert_array_equal(depth.metres(), expected)


def test_big_endian_depth_reads_the_same():
    raw = np.array([[1000, 2000]], ">u2")
    np.testing.assert_array_equal(DepthImage(raw, "16UC1", 0.1, 10.0).metres(), [[1.0, 2.0]])


def test_unsupported_depth_encodings_and_arrays_name_the_fix():
    with pytest.raises(ValueError, match="publish 16UC1"):
        DepthImage(np.zeros((2, 2), np.uint16), "mono16", 0.1, 10.0)
    with pytest.raises(ValueError, match="16UC1 depth needs an HxW uint16"):
        DepthImage(np.zeros((2, 2), np.float32), "16UC1", 0.1, 10.0)
    with pytest.raises(ValueError, match="min_m < max_m"):
        DepthImage(np.zeros((2, 2), np.float32), "32FC1", 5.0, 1.0)


# ---------------------------------------------------------------- one object's position


def test_a_square_facing_the_camera_is_located_at_its_centre():
    # 20 x 10 px square at 2 m, pixels 40..59 x 25..34: centre pixel (49.5, 29.5).
    found = Found(np.array([40, 25, 60, 35.0]), rect_mask(40, 25, 60, 35))
    result = locate(found, frame(plane(2.0)))
    assert result.ok and result.message == ""
    np.testing.assert_allclose(result.position, [(49.5 - 30) * 2 / 50, (29.5 - 20) * 2 / 40, 2.0])
    assert result.depth_pixels == 200
    # Width 20 px * 2 m / 50 px = 0.8 m, height 10 * 2 / 40 = 0.5 m; the 1-99 % range reads the
    # spread of pixel centres 2 % short.
    np.testing.assert_allclose(result.extent, [0.8, 0.5, 0.0], rtol=0.03, atol=1e-9)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_both_depth_units_give_the_same_position(encoding):
    found = Found(np.array([10, 10, 30, 30.0]), rect_mask(10, 10, 30, 30))
    result = locate(found, frame(plane(1.234), encoding))
    expected = [(19.5 - 30) * 1.234 / 50, (19.5 - 20) * 1.234 / 40, 1.234]
    np.testing.assert_allclose(result.position, expected, atol=1e-4)


def test_mask_pixels_on_the_background_and_an_occluder_are_ignored():
    depth = plane(3.0)  # background
    depth[10:30, 10:30] = 1.0  # the object
    depth[10:13, 10:30] = 0.4  # something in front of its top rows
    mask = rect_mask(6, 10, 30, 30)  # the mask spills 4 columns onto the background
    result = locate(Found(np.array([6, 10, 30, 30.0]), mask), frame(depth))
    assert result.depth_pixels == 17 * 20
    np.testing.assert_allclose(result.position, CAMERA.back_project(19.5, 21.0, 1.0))


def test_sensor_noise_is_averaged_out():
    rng = np.random.default_rng(0)
    depth = 1.0 + rng.normal(0.0, 0.005, (HEIGHT, WIDTH))  # 5 mm noise, a good stereo camera
    result = locate(Found(np.zeros(4), rect_mask(20, 10, 40, 30)), frame(depth))
    assert result.position[2] == pytest.approx(1.0, abs=0.001)
    assert result.depth_pixels == 400  # 5 mm is well inside the 5 cm gate


def test_invalid_depths_are_skipped_and_too_few_give_no_position():
    depth = plane(1.5)
    depth[:, :25] = 0.0  # no measurement left of column 25
    mask = rect_mask(20, 10, 30, 20)
    result = locate(Found(np.zeros(4), mask), frame(depth, "16UC1"))
    assert result.ok and result.depth_pixels == 50
    assert result.position[0] == pytest.approx((27 - 30) * 1.5 / 50)

    empty = locate(Found(np.zeros(4), rect_mask(0, 0, 20, 20)), frame(depth, "16UC1"))
    assert empty.status == PositionStatus.NO_VALID_DEPTH
    assert empty.position is None and empty.extent is None and empty.depth_pixels == 0
    assert "0 of the object's 400 pixels have a valid depth" in empty.message

    few = locate(Found(np.zeros(4), rect_mask(21, 0, 26, 2)), frame(depth), min_depth_pixels=3)
    assert few.status == PositionStatus.NO_VALID_DEPTH and "at least 3" in few.message
    far = locate(Found(np.zeros(4), mask), frame(plane(12.0)))
    assert far.status == PositionStatus.NO_VALID_DEPTH and "in [0.1, 10.0] m" in far.message


def test_without_a_mask_the_box_pixels_are_used():
    # Box [9.6, 5.4, 12.4, 7.4): pixel centres 10.5, 11.5 and 5.5, 6.5 lie inside it.
    rows, cols = object_pixels(np.array([9.6, 5.4, 12.4, 7.4]), None, WIDTH, HEIGHT)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [
        (5, 10),
        (5, 11),
        (6, 10),
        (6, 11),
    ]
    rows, _ = object_pixels(np.array([-5.0, -5.0, 3.0, 100.0]), None, WIDTH, HEIGHT)
    assert rows.max() == HEIGHT - 1  # clipped to the image
    depth = plane(3.0)
    depth[10:30, 20:40] = 1.0
    result = locate(Found(np.array([18, 10, 40, 30.0]), None), frame(depth))
    np.testing.assert_allclose(result.position, CAMERA.back_project(29.5, 19.5, 1.0))


def test_points_are_kept_only_when_asked_for():
    found = Found(np.zeros(4), rect_mask(0, 0, 4, 4))
    assert locate(found, frame(plane(1.0))).points is None
    points = locate(found, frame(plane(1.0)), keep_points=True).points
    assert points.shape == (16, 3) and points.dtype == np.float32


# ---------------------------------------------------------------- matching depth to colour

K = CAMERA.k
MS = 1_000_000  # nanoseconds


def test_no_depth_or_no_camera_info_say_so():
    sync = DepthSync(tolerance_s=0.02, min_m=0.1, max_m=10.0)
    assert sync.frame_for(0, WIDTH, HEIGHT).status == PositionStatus.NO_DEPTH
    sync.add_depth(0, np.ones((HEIGHT, WIDTH), np.float32), "32FC1")
    assert sync.frame_for(0, WIDTH, HEIGHT).status == PositionStatus.NO_CAMERA_INFO
    sync.set_camera_info([0.0] * 9, WIDTH, HEIGHT)
    unusable = sync.frame_for(0, WIDTH, HEIGHT)
    assert unusable.status == PositionStatus.NO_CAMERA_INFO and "calibrated" in unusable.message
    sync.set_camera_info(K, WIDTH, HEIGHT)
    assert sync.frame_for(0, WIDTH, HEIGHT).intrinsics == CAMERA


def test_the_depth_frame_nearest_in_time_is_used_within_the_tolerance():
    sync = DepthSync(tolerance_s=0.02, min_m=0.1, max_m=10.0, buffer_size=3)
    sync.set_camera_info(K, WIDTH, HEIGHT)
    for i, stamp in enumerate([1000, 1033, 1066, 1100]):  # ms; the first falls out of the buffer
        sync.add_depth(stamp * MS, np.full((HEIGHT, WIDTH), i + 1, np.uint16) * 1000, "16UC1")
    matched = sync.frame_for(1070 * MS, WIDTH, HEIGHT)
    assert matched.depth.metres()[0, 0] == 3.0 and matched.offset_s == pytest.approx(-0.004)
    assert sync.frame_for(1115 * MS, WIDTH, HEIGHT).depth.metres()[0, 0] == 4.0
    late = sync.frame_for(1200 * MS, WIDTH, HEIGHT)
    assert late.status == PositionStatus.STAMP_MISMATCH
    assert "-0.100 s from the colour frame (depth_tolerance_s is 0.02)" in late.message
    evicted = sync.frame_for(1000 * MS, WIDTH, HEIGHT)  # 1000 ms was pushed out by 1100 ms
    assert evicted.status == PositionStatus.STAMP_MISMATCH


def test_mismatched_resolutions_and_unreadable_depth_give_a_status():
    sync = DepthSync(tolerance_s=0.05, min_m=0.1, max_m=10.0)
    sync.set_camera_info(K, WIDTH, HEIGHT)
    sync.add_depth(0, np.ones((HEIGHT // 2, WIDTH // 2), np.float32), "32FC1")
    small = sync.frame_for(0, WIDTH, HEIGHT)
    assert small.status == PositionStatus.RESOLUTION_MISMATCH
    assert "depth is 32x24 but the colour image is 64x48" in small.message
    sync.add_depth(5 * MS, np.ones((HEIGHT, WIDTH), np.float32), "32FC1")
    assert sync.frame_for(5 * MS, WIDTH, HEIGHT).offset_s == 0.0
    sync.set_camera_info(K, 2 * WIDTH, 2 * HEIGHT)
    other = sync.frame_for(5 * MS, WIDTH, HEIGHT)
    assert other.status == PositionStatus.RESOLUTION_MISMATCH
    assert "camera_info is for 128x96 but the colour image is 64x48" in other.message
    sync.add_depth(10 * MS, np.ones((HEIGHT, WIDTH, 3), np.uint8), "rgb8")
    bad = sync.frame_for(10 * MS, WIDTH, HEIGHT)
    assert bad.status == PositionStatus.BAD_DEPTH and "publish 16UC1" in bad.message
    sync.add_bad_depth(20 * MS, "data has 5 bytes")
    assert sync.frame_for(20 * MS, WIDTH, HEIGHT).message == "data has 5 bytes"


def test_every_detection_of_a_frame_without_depth_gets_the_reason():
    sync = DepthSync(tolerance_s=0.05, min_m=0.1, max_m=10.0)
    found = [Found(np.zeros(4), rect_mask(0, 0, 4, 4))] * 3
    results = locate_all(found, sync.frame_for(0, WIDTH, HEIGHT))
    assert [r.status for r in results] == [PositionStatus.NO_DEPTH] * 3
    sync.set_camera_info(K, WIDTH, HEIGHT)
    sync.add_depth(0, np.ones((HEIGHT, WIDTH), np.float32), "32FC1")
    results = locate_all(found, sync.frame_for(0, WIDTH, HEIGHT), keep_points=True)
    assert all(r.ok and r.points is not None for r in results)
