"""demo_camera's depth, camera_info and 3D ground truth, received over loopback DDS."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from pgpt_ros.masks import mask_extent
from pgpt_ros.ros.depth_messages import DEPTH_IMAGE_ENCODINGS
from pgpt_ros.ros.images import to_array
from pgpt_ros.spatial.shapes3d import Geometry, Shapes3D
from tests.ros_peers.harness import stop

pytestmark = pytest.mark.ros

WIDTH, HEIGHT, SEED = 160, 120, 5


def run_camera(client, ros_env, *params: str, frames: int = 4):
    """Starts demo_camera with ``params``; returns its (image, depth, camera_info, truth) per stamp."""
    argv = [sys.executable, "-m", "pgpt_ros.ros.demo_camera", "--ros-args", "-p", "rate_hz:=20.0",
            "-p", f"width:={WIDTH}", "-p", f"height:={HEIGHT}", "-p", f"seed:={SEED}",
            "-p", "frame_id:=demo_optical"]  # fmt: skip
    for param in params:
        argv += ["-p", param]
    camera = subprocess.Popen(argv, env=ros_env, stderr=subprocess.PIPE, text=True)
    got: dict[str, list] = {"image": [], "depth": [], "camera_info": [], "truth": []}
    qos = QoSProfile(depth=50)
    for msg_type, topic in ((Image, "image"), (Image, "depth"), (CameraInfo, "camera_info")):
        client.node.create_subscription(msg_type, topic, got[topic].append, qos)
    client.node.create_subscription(
        String, "ground_truth", lambda m: got["truth"].append(json.loads(m.data)), qos
    )
    try:
        assert client.spin_until(lambda: all(len(v) >= frames for v in got.values()), 30.0)
    finally:
        assert stop(camera) == 0, camera.stderr.read()

    # Group by stamp: [truth, image, depth, camera_info] of one frame.
    frames = {(t["stamp"]["sec"], t["stamp"]["nanosec"]): [t] for t in got["truth"]}
    for name in ("image", "depth", "camera_info"):
        for msg in got[name]:
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            if stamp in frames:
                frames[stamp].append(msg)
    return [frame for frame in frames.values() if len(frame) == 4]


def regions_by_depth(depth: np.ndarray, objects: list[dict]) -> None:
    """Each object's visible pixels are exactly those at its depth: their extent is its box."""
    for obj in objects:
        at_depth = depth == np.float32(obj["depth_m"])
        assert int(at_depth.sum()) == obj["visible_pixels"]
        if obj["visible_pixels"]:
            assert list(mask_extent(at_depth)) == obj["box"]


def test_a_still_scene_publishes_registered_16uc1_depth_and_camera_info_with_the_image_header(
    ros_env, client
):
    frames = run_camera(client, ros_env, "depth_encoding:=16UC1", "horizontal_fov_deg:=70.0")
    assert len(frames) >= 2
    scene = Shapes3D(SEED, WIDTH, HEIGHT, Geometry(horizontal_fov_deg=70.0)).frame()
    for truth, image, depth_msg, info in frames:
        assert image.header == depth_msg.header == info.header
        assert image.header.frame_id == truth["frame_id"] == "demo_optical"
        assert depth_msg.encoding == "16UC1" and (depth_msg.width, depth_msg.height) == (
            WIDTH,
            HEIGHT,
        )
        np.testing.assert_array_equal(to_array(image, 4096), scene.image)
        millimetres = to_array(depth_msg, 4096, DEPTH_IMAGE_ENCODINGS)
        np.testing.assert_array_equal(millimetres, np.rint(scene.depth_m * 1000).astype(np.uint16))
        assert list(info.k) == truth["camera_k"] == scene.intrinsics.k
        assert (info.width, info.height) == (WIDTH, HEIGHT)
        for sent, expected in zip(truth["objects"], scene.objects, strict=True):
            np.testing.assert_allclose(sent["centre_m"], expected.centre_m, atol=1e-6)
        regions_by_depth(millimetres / np.float32(1000), truth["objects"])


def test_a_moving_scene_moves_and_its_ground_truth_follows_each_frame(ros_env, client):
    frames = run_camera(client, ros_env, "motion:=0.2", "motion_period_s:=2.0", frames=6)
    assert len(frames) >= 4
    boxes = set()
    for truth, _, depth_msg, _ in frames:
        assert depth_msg.encoding == "32FC1"
        regions_by_depth(to_array(depth_msg, 4096, DEPTH_IMAGE_ENCODINGS), truth["objects"])
        boxes.add(tuple(tuple(o["box"]) for o in truth["objects"]))
    assert len(boxes) >= 3  # the shapes moved between frames


def test_impossible_depth_parameters_exit_with_every_reason(ros_env):
    done = subprocess.run(
        [sys.executable, "-m", "pgpt_ros.ros.demo_camera", "--ros-args", "-p",
         "depth_encoding:=mono16", "-p", "depth_near_m:=5.0"],
        env=ros_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "depth_encoding must be one of ['16UC1', '32FC1']" in done.stderr
    assert "need 0 < depth_near_m <= depth_far_m < background_m" in done.stderr
