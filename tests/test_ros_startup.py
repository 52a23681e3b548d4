"""Starting the nodes: lifecycle transitions, params files (good and impossible), the embedded
model end to end, the demo camera, and the launch file's references (checked statically: ROS
launch is not installable from PyPI)."""

from __future__ import annotations

import ast
import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from PIL import Image as PILImage
from rcl_interfaces.srv import GetParameters
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros.images import to_array
from tests.ros_peers.harness import Client, rgb_image, start_node, stop

REPO = Path(__file__).resolve().parents[1]


# requests that change nothing, to learn that a service's replies reach us (Client.service)
PROBES = {
    GetState: GetState.Request(),
    ChangeState: ChangeState.Request(transition=Transition(id=Transition.TRANSITION_CREATE)),
    GetParameters: GetParameters.Request(),
}


def call(client: Client, service_type, name: str, request):
    future = client.service(service_type, name, PROBES[service_type]).call_async(request)
    assert client.spin_until(future.done), f"{name} did not answer"
    return future.result()


def transition(client: Client, transition_id: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return call(client, ChangeState, "/perception_node/change_state", request).success


def state(client: Client) -> int:
    return call(client, GetState, "/perception_node/get_state", GetState.Request()).current_state.id


@pytest.mark.ros
def test_lifecycle_transitions_load_serve_stop_and_free(ros_env, client, tmp_path):
    log = tmp_path / "node.log"
    node = start_node(ros_env, log, "-p", "autostart:=false")
    try:
        assert state(client) == State.PRIMARY_STATE_UNCONFIGURED
        # locate exists in every state and says why it does not answer
        assert client.locate("find it").status == DetectionArray.INACTIVE
        assert not transition(client, Transition.TRANSITION_ACTIVATE)  # not configured yet
        assert transition(client, Transition.TRANSITION_CONFIGURE)
        assert state(client) == State.PRIMARY_STATE_INACTIVE
        assert client.locate("find it").status == DetectionArray.INACTIVE

        assert transition(client, Transition.TRANSITION_ACTIVATE)
        assert client.locate("find it").status == DetectionArray.NO_IMAGE

        assert transition(client, Transition.TRANSITION_DEACTIVATE)
        assert client.locate("find it").status == DetectionArray.INACTIVE
        assert "perceiver closed" not in log.read_text()
        assert transition(client, Transition.TRANSITION_CLEANUP)
        assert state(client) == State.PRIMARY_STATE_UNCONFIGURED
        assert client.spin_until(lambda: "perceiver closed" in log.read_text(), 10.0)
    finally:
        assert stop(node) == 0, log.read_text()


def edited_params(tmp_path: Path, edits: dict[str, str]) -> Path:
    """config/pgpt.yaml with ``edits`` applied, written under ``tmp_path``; every edit must apply,
    so a changed default fails here instead of silently testing the unedited file."""
    text = (REPO / "config" / "pgpt.yaml").read_text()
    for old, new in edits.items():
        assert old in text, f"config/pgpt.yaml no longer contains {old!r}"
        text = text.replace(old, new)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


@pytest.mark.ros
@pytest.mark.slow
def test_start_from_a_params_file_with_the_embedded_model(ros_env, client, tmp_path):
    """The production perceiver (embedded default) behind the node: well-formed answers."""
    params = edited_params(
        tmp_path,
        {"max_objects: 8 ": "max_objects: 3 ", "score_threshold: 0.25": "score_threshold: 0.0"},
    )
    log = tmp_path / "node.log"
    node = start_node(ros_env, log, "--params-file", str(params), kind="real", slow_s=0.0)
    try:
        client.wait_for_node(node, log)
        reply = call(client, GetParameters, "/perception_node/get_parameters",
                     GetParameters.Request(names=["max_objects", "score_threshold"]))  # fmt: skip
        assert [v.integer_value for v in reply.values[:1]] == [3]
        assert reply.values[1].double_value == 0.0

        pixels = ShapesRef.scene(seed=3, width=320, height=200).image
        for command in ["find the red circle", "all shapes"]:
            result = client.locate(command, rgb_image(pixels, stamp_sec=77, frame_id="cam"))
            assert result.status == DetectionArray.OK, result.status_message
            assert (result.header.stamp.sec, result.header.frame_id) == (77, "cam")
            assert (result.image_width, result.image_height) == (320, 200)
            assert len(result.detections) <= 3
            for detection in result.detections:
                assert detection.center_x - detection.size_x / 2 - 1e-6 >= 0
                assert detection.center_x + detection.size_x / 2 <= 320 + 1e-6
                assert detection.center_y - detection.size_y / 2 - 1e-6 >= 0
                assert detection.center_y + detection.size_y / 2 <= 200 + 1e-6
                roi = detection.mask_roi
                assert roi.x_offset + roi.width <= 320 and roi.y_offset + roi.height <= 200
                assert (detection.mask.width, detection.mask.height) == (roi.width, roi.height)
            assert client.spin_until(
                lambda: client.overlays and client.overlays[-1].header.stamp.sec == 77
            )
            overlay = client.overlays[-1]
            assert (overlay.width, overlay.height) == (320, 200)
            masks = to_array(client.masks[-1], 4096)
            assert masks.shape == (200, 320) and masks.max() <= len(result.detections)

        result = client.locate("explode", rgb_image(pixels))  # the real model, then a failure
        assert result.status == DetectionArray.INTERNAL_ERROR and "boom" in result.status_message
        assert client.locate("the square", rgb_image(pixels)).status == DetectionArray.OK
    finally:
        assert stop(node) == 0, log.read_text()


@pytest.mark.ros
@pytest.mark.parametrize(
    "ros_args, status, message",
    [
        (["-p", "score_threshold:=1.5"], 2, "score_threshold must be in [0, 1]"),
        (["-p", "image_reliability:=sometimes"], 2, "image_reliability must be one of"),
        (["-p", "max_objects:=many"], 2, "max_objects"),
        (["-p", "model_path:=/nonexistent/model"], 1, "is not a directory"),
    ],
)
def test_impossible_parameters_stop_the_node_with_one_clear_error(
    ros_env, ros_args, status, message
):
    node = subprocess.run(
        [sys.executable, "-m", "pgpt_ros.ros.perception_node", "--ros-args", *ros_args],
        env=ros_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert node.returncode == status, node.stderr
    errors = [line for line in node.stderr.splitlines() if "[ERROR]" in line]
    assert any(message in line for line in errors), node.stderr


def test_bringup_refuses_an_impossible_params_file_before_starting_anything(tmp_path):
    params = tmp_path / "bad.yaml"
    params.write_text("perception_node:\n  ros__parameters:\n    max_image_age_s: -1.0\n")
    bringup = subprocess.run(
        [sys.executable, "-m", "pgpt_ros.ros.bringup", "--params-file", str(params)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bringup.returncode == 2
    assert "max_image_age_s must be in (0, 3600]" in bringup.stderr


@pytest.mark.ros
def test_demo_camera_publishes_stamped_scenes_with_their_ground_truth(ros_env, client, tmp_path):
    camera = subprocess.Popen(
        [sys.executable, "-m", "pgpt_ros.ros.demo_camera", "--ros-args",
         "--params-file", str(REPO / "config" / "pgpt.yaml"), "-p", "rate_hz:=20.0",
         "-p", "width:=160", "-p", "height:=120", "-p", "seed:=5", "-p", "frame_id:=demo",
         "-p", "encoding:=bgr8"],
        env=ros_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    images: list[Image] = []
    truths: list[dict] = []
    client.node.create_subscription(Image, "image", images.append, QoSProfile(depth=50))
    client.node.create_subscription(
        String, "ground_truth", lambda m: truths.append(json.loads(m.data)), QoSProfile(depth=50)
    )
    try:
        assert client.spin_until(lambda: len(images) >= 3 and len(truths) >= 3, 30.0)
    finally:
        assert stop(camera) == 0, camera.stderr.read()
    scene = ShapesRef.scene(5, 160, 120)
    by_stamp = {(t["stamp"]["sec"], t["stamp"]["nanosec"]): t for t in truths}
    image = images[-1]
    truth = by_stamp[(image.header.stamp.sec, image.header.stamp.nanosec)]
    assert image.header.frame_id == truth["frame_id"] == "demo"
    assert image.header.stamp.sec > 0 and images[0].header.stamp != images[-1].header.stamp
    np.testing.assert_array_equal(to_array(image, 4096)[:, :, ::-1], scene.image)
    assert truth["seed"] == 5 and [o["name"] for o in truth["objects"]] == [
        o.name for o in scene.objects
    ]
    np.testing.assert_allclose([o["box"] for o in truth["objects"]], [o.box for o in scene.objects])


def test_launch_file_names_only_what_the_package_installs():
    source = (REPO / "launch" / "pgpt.launch.py").read_text()
    tree = ast.parse(source)
    nodes = [
        {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node"
    ]
    rows = [line.split() for line in (REPO / "executables.txt").read_text().splitlines()]
    installed_nodes = {row[1] for row in rows if row and row[0] == "node"}
    ours = [n for n in nodes if n.get("package") == "pgpt_ros"]
    assert {n["executable"] for n in ours} == {"perception_node", "demo_camera", "voice_node"}
    assert {n["executable"] for n in ours} <= installed_nodes
    # Every file it names under the package's share directory exists in config/.
    joins = [
        [arg.value for arg in call.args if isinstance(arg, ast.Constant)]
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == "join"
    ]
    named = [parts for parts in joins if parts and parts[0] == "config"]
    assert len(named) == 3
    for parts in named:
        assert (REPO.joinpath(*parts)).is_file(), parts
    # The arguments the README and docs/ros.md promise, each with a description.
    [table] = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
               and getattr(node.targets[0], "id", None) == "ARGUMENTS"]  # fmt: skip
    declared = {key.value for key in table.keys}
    assert all(len(value.elts) == 2 for value in table.values)  # (default, description)
    assert declared == {"image_topic", "command_topic", "params_file", "model_path", "device",
                        "use_demo_camera", "use_rviz", "use_voice", "voice_source", "voice_file",
                        "voice_engine"}  # fmt: skip
    # The default params file starts the node: every key is a known, valid parameter.
    from pgpt_ros.ros.bringup import check_params_file

    check_params_file(REPO / "config" / "pgpt.yaml")
    # CMake installs both directories to share/pgpt_ros, where ros2 launch and SHARE look.
    cmake = (REPO / "CMakeLists.txt").read_text()
    for directory in ("config", "launch"):
        assert re.search(rf"install\(DIRECTORY[^)]*\b{directory}\b[^)]*DESTINATION share", cmake)


def write_video(path: Path, levels: list[int]) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for level in levels:
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), level, np.uint8), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.mark.ros
def test_demo_camera_loops_over_a_folder_and_a_video(ros_env, client, tmp_path):
    levels = [40, 120, 200]
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, level in enumerate(levels):
        PILImage.fromarray(np.full((48, 64, 3), level, np.uint8)).save(folder / f"{index}.png")
    video = tmp_path / "clip.mp4"
    write_video(video, levels)
    images: list[Image] = []
    client.node.create_subscription(Image, "image", images.append, QoSProfile(depth=50))
    for source in (folder, video):
        images.clear()
        camera = subprocess.Popen(
            [sys.executable, "-m", "pgpt_ros.ros.demo_camera", "--ros-args",
             "-p", f"source:={source}", "-p", "rate_hz:=30.0"],
            env=ros_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert client.spin_until(lambda: len(images) >= 7, 30.0), source
        finally:
            assert stop(camera) == 0, camera.stderr.read()
        assert {(i.width, i.height) for i in images} == {(64, 48)}
        means = [float(to_array(i, 4096).mean()) for i in images]
        # Every level shows up (video compression moves values by a few steps), in order.
        nearest = [min(levels, key=lambda level, m=m: abs(level - m)) for m in means]
        assert set(nearest) == set(levels), means
        assert all(abs(m - n) < 8 for m, n in zip(means, nearest, strict=True)), means
        steps = {(a, b) for a, b in zip(nearest, nearest[1:], strict=False) if a != b}
        assert steps <= {(40, 120), (120, 200), (200, 40)}, nearest


@pytest.mark.ros
@pytest.mark.slow
def test_bringup_starts_the_node_from_a_params_file_and_stops_it(ros_env, client, tmp_path):
    """pgpt-bringup with compressed input: a PNG on image/compressed is answered in its pixels."""
    params = edited_params(tmp_path, {"compressed_image: false": "compressed_image: true"})
    bringup = subprocess.Popen(
        [sys.executable, "-m", "pgpt_ros.ros.bringup", "--params-file", str(params),
         "--image-topic", "camera/image"],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    publisher = client.node.create_publisher(
        CompressedImage, "camera/image/compressed", QoSProfile(depth=1)
    )
    buffer = io.BytesIO()
    PILImage.fromarray(ShapesRef.scene(seed=2, width=200, height=150).image).save(buffer, "PNG")
    frame = CompressedImage(format="png", data=buffer.getvalue())
    frame.header.frame_id = "compressed_cam"
    try:
        assert client.spin_until(
            lambda: client.locate_client.service_is_ready() and publisher.get_subscription_count()
        ), "bringup did not start the node"
        publisher.publish(frame)
        client.spin_until(lambda: False, 0.5)
        result = client.locate("find the red circle")
        assert result.status == DetectionArray.OK, result.status_message
        assert (result.image_width, result.image_height) == (200, 150)
        assert result.header.frame_id == "compressed_cam"
    finally:
        bringup.send_signal(signal.SIGINT)
        output, _ = bringup.communicate(timeout=30)
    assert bringup.returncode == 0, output
    assert client.spin_until(lambda: not client.locate_client.service_is_ready(), 10.0)
