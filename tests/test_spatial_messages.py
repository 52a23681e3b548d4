"""3D and tracking in ROS messages: Detection's new fields, depth/camera_info in and out, markers,
and the vision_msgs arrays (built from the ros-src kit; skipped with the reason where it is not)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from pgpt_ros.msg import Detection, DetectionArray
from pgpt_ros.ros.depth_messages import (
    add_depth_message,
    camera_info_message,
    depth_message,
    set_camera_info,
    stamp_ns,
)
from pgpt_ros.ros.spatial_messages import MIN_MARKER_SIZE_M, marker_array, set_position
from pgpt_ros.spatial import DepthSync, Intrinsics, Position3D, PositionStatus
from tests.ros_peers import ros_tools

HEADER = Header(frame_id="camera_color_optical_frame", stamp=Time(sec=12, nanosec=345))
CAMERA = Intrinsics(fx=500.0, fy=510.0, cx=319.5, cy=239.5, width=640, height=480)


def located(x=0.1, y=-0.2, z=1.5, points=None) -> Position3D:
    return Position3D(PositionStatus.OK, position=np.array([x, y, z]),
                      extent=np.array([0.2, 0.1, 0.0]), depth_pixels=321, points=points)  # fmt: skip


def detection(index: int, position: Position3D, track_id: int = 0) -> Detection:
    found = Detection(id=index, phrase=f"red mug {index}", score=0.75, center_x=100.0 + index,
                      center_y=50.0, size_x=40.0, size_y=30.0, track_id=track_id)  # fmt: skip
    return set_position(found, position)


# ---------------------------------------------------------------- Detection's 3D fields


def test_the_message_status_codes_are_the_cores():
    for status in PositionStatus:
        assert getattr(Detection, f"POSITION_{status.name}") == status.value
    assert Detection().position_status == PositionStatus.NOT_COMPUTED  # never claims a position


def test_a_position_fills_the_3d_fields_and_a_reason_fills_only_the_status():
    ok = detection(0, located(), track_id=9)
    assert ok.position_status == Detection.POSITION_OK and ok.position_message == ""
    assert (ok.position.x, ok.position.y, ok.position.z) == (0.1, -0.2, 1.5)
    assert (ok.extent.x, ok.extent.y, ok.extent.z) == (0.2, 0.1, 0.0)
    assert ok.depth_pixels == 321 and ok.track_id == 9
    reason = Position3D.unavailable(PositionStatus.STAMP_MISMATCH, "0.2 s apart")
    missing = detection(1, reason)
    assert missing.position_status == Detection.POSITION_STAMP_MISMATCH
    assert missing.position_message == "0.2 s apart"
    assert (missing.position.z, missing.depth_pixels) == (0.0, 0)


def test_3d_and_track_fields_survive_serialisation():
    array = DetectionArray(header=HEADER, detections=[detection(0, located(), 4)], standing=True)
    back = deserialize_message(serialize_message(array), DetectionArray)
    assert back == array and back.standing and back.detections[0].position.z == 1.5


# ---------------------------------------------------------------- depth and camera_info


def filed(msg: Image, camera: Intrinsics = CAMERA):
    sync = DepthSync(tolerance_s=0.01, min_m=0.1, max_m=10.0)
    set_camera_info(sync, camera_info_message(camera, HEADER))
    add_depth_message(sync, msg, max_side=4096)
    return sync.frame_for(stamp_ns(HEADER), camera.width, camera.height)


def test_stamps_are_exact_nanoseconds():
    assert stamp_ns(HEADER) == 12_000_000_345


@pytest.mark.parametrize("encoding, tolerance", [("32FC1", 0.0), ("16UC1", 0.0005)])
def test_depth_messages_round_trip_in_both_units(encoding, tolerance):
    rng = np.random.default_rng(0)
    metres = rng.uniform(0.3, 5.0, (480, 640)).astype(np.float32)
    metres[0, :10] = np.nan  # no measurement: NaN in 32FC1, 0 in 16UC1; invalid either way
    msg = depth_message(metres, HEADER, encoding)
    assert (msg.encoding, msg.width, msg.height, msg.header) == (encoding, 640, 480, HEADER)
    frame = filed(msg)
    assert frame.intrinsics == CAMERA and frame.offset_s == 0.0
    np.testing.assert_allclose(frame.depth.metres(), metres, atol=tolerance)


def test_padded_big_endian_16uc1_is_read_as_published():
    # A driver on a big-endian machine with rows padded to 8 bytes: 3 pixels = 6 bytes + 2 padding.
    mm = np.array([[1000, 2000, 0], [1500, 65535, 300]], ">u2")
    rows = np.concatenate([mm.view(np.uint8).reshape(2, 6), np.zeros((2, 2), np.uint8)], axis=1)
    msg = Image(header=HEADER, height=2, width=3, encoding="16UC1", is_bigendian=1, step=8,
                data=rows.tobytes())  # fmt: skip
    camera = Intrinsics(fx=2.0, fy=2.0, cx=1.0, cy=0.5, width=3, height=2)
    np.testing.assert_array_equal(filed(msg, camera).depth.metres(),
                                  [[1.0, 2.0, np.nan], [1.5, np.nan, 0.3]])  # fmt: skip


def test_unreadable_depth_messages_become_a_bad_depth_status():
    wrong = depth_message(np.ones((480, 640)), HEADER, "32FC1")
    wrong.encoding = "rgb8"
    result = filed(wrong)
    assert result.status == PositionStatus.BAD_DEPTH
    assert "depth image: unsupported encoding 'rgb8'" in result.message
    short = depth_message(np.ones((480, 640)), HEADER, "16UC1")
    short.data = bytes(100)
    assert "data has 100 bytes" in filed(short).message
    with pytest.raises(ValueError, match="16UC1 or 32FC1"):
        depth_message(np.ones((2, 2)), HEADER, "mono16")


def test_camera_info_of_the_demo_camera_is_an_undistorted_pinhole():
    info = camera_info_message(CAMERA, HEADER)
    assert info.header == HEADER and (info.width, info.height) == (640, 480)
    assert list(info.k) == CAMERA.k and list(info.d) == [0.0] * 5
    assert list(info.p) == [500.0, 0.0, 319.5, 0.0, 0.0, 510.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]


# ---------------------------------------------------------------- markers


def test_markers_carry_the_image_header_and_draw_only_located_objects():
    cloud = np.random.default_rng(0).normal(size=(5000, 3)).astype(np.float32)
    found = [
        detection(0, located(points=cloud), track_id=7),
        detection(1, Position3D.unavailable(PositionStatus.NO_VALID_DEPTH, "none")),
        detection(2, located(z=0.8)),
    ]
    markers = marker_array(HEADER, found, [cloud, None, None], max_points=1000).markers
    assert markers[0].action == Marker.DELETEALL  # the previous answer's markers go
    assert all(m.header == HEADER for m in markers)
    drawn = {(m.ns, m.id): m for m in markers[1:]}
    assert set(drawn) == {("boxes", 0), ("labels", 0), ("points", 0), ("boxes", 2), ("labels", 2)}
    box = drawn[("boxes", 0)]
    assert box.type == Marker.CUBE and (box.pose.position.x, box.pose.position.z) == (0.1, 1.5)
    assert (box.scale.x, box.scale.y, box.scale.z) == (0.2, 0.1, MIN_MARKER_SIZE_M)
    assert drawn[("labels", 0)].text == "red mug 0 #7 1.50 m"
    assert drawn[("labels", 2)].text == "red mug 2 0.80 m"
    assert drawn[("labels", 0)].pose.position.y < box.pose.position.y  # above: y points down
    points = drawn[("points", 0)].points
    assert len(points) == 1000 and points[1].x == pytest.approx(cloud[5, 0])
    assert [m.action for m in marker_array(HEADER, []).markers] == [Marker.DELETEALL]


# ---------------------------------------------------------------- vision_msgs

MISSING = ros_tools.vision_msgs_missing()
needs_vision_msgs = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture
def vision_msgs(monkeypatch):
    """The vision_msgs Python classes from build/ros-tools (no type support in this process)."""
    monkeypatch.syspath_prepend(str(ros_tools.SITE_PACKAGES))
    import vision_msgs.msg

    return vision_msgs.msg


@needs_vision_msgs
def test_vision_msgs_arrays_hold_phrase_score_box_and_position(vision_msgs):
    from pgpt_ros.ros.vision_messages import detection_2d_array, detection_3d_array

    reason = Position3D.unavailable(PositionStatus.NO_VALID_DEPTH, "none")
    found = [detection(0, located(), track_id=7), detection(1, reason), detection(2, located())]
    two = detection_2d_array(HEADER, found)
    assert isinstance(two, vision_msgs.Detection2DArray) and two.header == HEADER
    assert [d.id for d in two.detections] == ["7", "1", "2"]  # track id, else index
    first = two.detections[1]
    assert first.header == HEADER and first.results[0].hypothesis.class_id == "red mug 1"
    assert first.results[0].hypothesis.score == 0.75
    assert (first.bbox.center.position.x, first.bbox.center.position.y) == (101.0, 50.0)
    assert (first.bbox.size_x, first.bbox.size_y) == (40.0, 30.0)
    three = detection_3d_array(HEADER, found)
    assert [d.id for d in three.detections] == ["7", "2"]  # only those with a position
    box = three.detections[0].bbox
    assert (box.center.position.x, box.center.position.z, box.center.orientation.w) == (0.1, 1.5, 1.0)  # fmt: skip
    assert (box.size.x, box.size.y) == (0.2, 0.1)
    assert three.detections[0].results[0].pose.pose.position.y == -0.2


# Run in a child process: only there can the type support of build/ros-tools load.
SERIALISE = """
import json
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from pgpt_ros.msg import Detection
from pgpt_ros.ros.spatial_messages import set_position
from pgpt_ros.ros.vision_messages import detection_2d_array, detection_3d_array, unavailable_reason
from pgpt_ros.spatial import Position3D, PositionStatus

reason = unavailable_reason()
result = {"reason": reason}
if reason is None:
    position = Position3D(PositionStatus.OK, position=np.array([0.0, 0.1, 1.0]), extent=np.ones(3))
    found = [set_position(Detection(id=0, phrase="mug", score=0.5, track_id=3), position)]
    two, three = detection_2d_array(Header(), found), detection_3d_array(Header(), found)
    back = deserialize_message(serialize_message(three), type(three))
    result["z"] = back.detections[0].bbox.center.position.z
    [item] = deserialize_message(serialize_message(two), type(two)).detections
    result["phrase"] = item.results[0].hypothesis.class_id
print(json.dumps(result))
"""


def run_serialise(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", SERIALISE], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@needs_vision_msgs
def test_vision_msgs_arrays_serialise_where_the_type_support_loads(ros_env):
    result = run_serialise(ros_tools.environment(ros_env))
    assert result == {"reason": None, "z": 1.0, "phrase": "mug"}


def test_without_vision_msgs_the_reason_names_the_package_to_install(ros_env):
    result = run_serialise(ros_env)  # build/ros-tools is not on this process's paths
    assert "vision_msgs is not installed" in result["reason"]
    assert "ros-$ROS_DISTRO-vision-msgs" in result["reason"]
