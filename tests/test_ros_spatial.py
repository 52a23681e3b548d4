"""3D and tracking end to end: demo_camera (depth, camera_info, ground truth) -> perception_node with
the embedded model -> `detections` with positions, `markers`, and a standing command's track ids.

Each test starts demo_camera and the node as separate processes on loopback DDS and checks the
answers against the ground truth of the exact frame each one was computed from.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String
from visualization_msgs.msg import Marker, MarkerArray

from pgpt_ros.metrics import box_iou, match
from pgpt_ros.msg import Detection, DetectionArray
from tests.ros_peers.harness import TIMEOUT_S, start_node, stop

pytestmark = [
    pytest.mark.ros,
    pytest.mark.slow,
]

NODE_PARAMS = ("-p", "use_depth:=true", "-p", "depth_tolerance_s:=0.05",
               "-p", "image_reliability:=reliable", "-p", "track_rate_hz:=10.0")  # fmt: skip


def start_camera(env: dict[str, str], *params: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "pgpt_ros.ros.demo_camera", "--ros-args", "-p", "rate_hz:=10.0",
            "-p", "frame_id:=camera_optical"]  # fmt: skip
    for param in params:
        argv += ["-p", param]
    return subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)


class Scene:
    """The camera's ground truth by stamp, and the node's markers, kept by the test's node."""

    def __init__(self, client) -> None:
        self.truth: dict[tuple[int, int], dict] = {}
        self.markers: list[MarkerArray] = []
        qos = QoSProfile(depth=200, reliability=QoSReliabilityPolicy.RELIABLE)
        client.node.create_subscription(String, "ground_truth", self._on_truth, qos)
        client.node.create_subscription(MarkerArray, "markers", self.markers.append, qos)

    def _on_truth(self, msg: String) -> None:
        truth = json.loads(msg.data)
        self.truth[(truth["stamp"]["sec"], truth["stamp"]["nanosec"])] = truth

    def of(self, answer: DetectionArray) -> dict:
        return self.truth[(answer.header.stamp.sec, answer.header.stamp.nanosec)]


def wait_for_frames(client) -> None:
    """Until the node's diagnostics count camera frames (the camera may start after the node)."""

    def receiving() -> bool:
        values = [
            {kv.key: kv.value for kv in s.values} for d in client.diagnostics for s in d.status
        ]
        return any(int(v.get("frames_received", 0)) > 2 for v in values)

    assert client.spin_until(receiving), "the node receives no camera frames"


def boxes(detections: list[Detection]) -> np.ndarray:
    return np.array([[d.center_x - d.size_x / 2, d.center_y - d.size_y / 2,
                      d.center_x + d.size_x / 2, d.center_y + d.size_y / 2]
                     for d in detections]).reshape(-1, 4)  # fmt: skip


def test_a_fully_visible_shape_at_1_m_is_located_within_1_cm_and_drawn_with_the_image_header(
    ros_env, client, tmp_path
):
    # Every shape at 1 m in front of a plane at 2.5 m; seed 7 at 640x480 has a green star on top.
    camera = start_camera(ros_env, "seed:=7", "depth_near_m:=1.0", "depth_far_m:=1.0",
                          "background_m:=2.5", "depth_encoding:=16UC1")  # fmt: skip
    log = tmp_path / "node.log"
    node = start_node(ros_env, log, *NODE_PARAMS, kind="real")
    scene = Scene(client)
    try:
        client.wait_for_node(node, log)
        wait_for_frames(client)
        answer = client.command("the green star")
        assert answer.status == DetectionArray.OK, answer.status_message
        truth = scene.of(answer)
        [star] = [o for o in truth["objects"] if o["name"] == "green star"]
        assert star["fully_visible"] and star["depth_m"] == 1.0
        [found] = answer.detections
        assert found.position_status == Detection.POSITION_OK, found.position_message
        position = [found.position.x, found.position.y, found.position.z]
        assert np.linalg.norm(np.subtract(position, star["centre_m"])) < 0.01
        assert found.depth_pixels > 0.5 * star["visible_pixels"]

        # The markers of that answer carry its image's header (frame and stamp).
        assert client.spin_until(
            lambda: any(m.markers and m.markers[0].header == answer.header for m in scene.markers)
        ), "no markers with the answer's header"
        [drawn] = [m for m in scene.markers if m.markers[0].header == answer.header]
        assert all(m.header == answer.header for m in drawn.markers)
        cube = [m for m in drawn.markers if m.type == Marker.CUBE]
        assert len(cube) == 1 and cube[0].pose.position == found.position
    finally:
        assert stop(node) == 0, log.read_text()
        stop(camera)


def test_a_standing_command_keeps_ids_over_30_frames_of_a_moving_scene(ros_env, client, tmp_path):
    # Seed 9: a purple and an orange triangle and a red star, moving on their demo paths.
    camera = start_camera(ros_env, "seed:=9", "motion:=0.1")
    log = tmp_path / "node.log"
    node = start_node(ros_env, log, *NODE_PARAMS, kind="real")
    scene = Scene(client)
    track = client.node.create_publisher(String, "track", QoSProfile(depth=10))
    try:
        client.wait_for_node(node, log)
        wait_for_frames(client)
        assert client.spin_until(lambda: track.get_subscription_count() > 0 and scene.truth)
        track.publish(String(data="all shapes"))

        def standing() -> list[DetectionArray]:
            return [a for a in client.detections if a.standing and a.status == DetectionArray.OK]

        assert client.spin_until(lambda: len(standing()) >= 30, 3 * TIMEOUT_S), log.read_text()
        answers = standing()[:30]
        assert len({(a.header.stamp.sec, a.header.stamp.nanosec) for a in answers}) == 30
        assert len({a.command_id for a in answers}) == 1  # one command, answered again and again
        last: dict[int, int] = {}
        switches = object_frames = 0
        for answer in answers:
            truth = scene.of(answer)
            assert all(d.track_id > 0 for d in answer.detections)
            truth_boxes = np.array([o["box"] for o in truth["objects"]])
            for i, j in match(box_iou(boxes(answer.detections), truth_boxes), threshold=0.5):
                object_frames += 1
                track_id = answer.detections[i].track_id
                switches += j in last and last[j] != track_id
                last[j] = track_id
        assert object_frames >= 60  # three shapes, nearly always found
        assert switches <= 1  # the bar: at most 1 per 100 object-frames

        track.publish(String(data=""))  # cancel: the standing answers stop
        client.spin_until(lambda: False, 1.0)
        count = len(standing())
        client.spin_until(lambda: False, 2.0)
        assert len(standing()) == count
    finally:
        assert stop(node) == 0, log.read_text()
        stop(camera)
