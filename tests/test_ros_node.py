"""perception_node in its own process, driven over loopback DDS by this test's rclpy node.

The node runs with tests/ros_peers/fake_perceiver.py: it "finds" the non-black pixels and names
their mean colour, so every check below knows the exact right answer in source pixels. Each test
starts one node and makes several checks against it (a start costs seconds on two cores).
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros.images import to_array
from tests.ros_peers.harness import rgb_image, start_node, stop

pytestmark = pytest.mark.ros

# A non-square frame of a size no model uses, with one coloured rectangle (x 50..149, y 40..89).
WIDTH, HEIGHT = 333, 211
BOX = (50, 40, 150, 90)  # xyxy, exclusive ends
COLOUR = (200, 30, 10)


def scene(colour=COLOUR) -> np.ndarray:
    pixels = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    x0, y0, x1, y1 = BOX
    pixels[y0:y1, x0:x1] = colour
    return pixels


def encoded(encoding: str, pad: int = 6, big_endian: bool = False) -> tuple[Image, str]:
    """The scene in ``encoding`` with ``pad`` bytes of row padding, and the phrase expected."""
    rgb = scene()
    x0, y0, x1, y1 = BOX
    phrase = "rgb {} {} {}".format(*COLOUR)
    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8"):
        pixels = rgb[:, :, ::-1] if encoding.startswith("bgr") else rgb
        if encoding.endswith("a8"):
            pixels = np.concatenate([pixels, np.full((HEIGHT, WIDTH, 1), 255, np.uint8)], axis=2)
    elif encoding == "mono8":
        pixels = np.zeros((HEIGHT, WIDTH), np.uint8)
        pixels[y0:y1, x0:x1] = 77
        phrase = "rgb 77 77 77"
    else:  # mono16: stretched to the frame's peak
        pixels = np.zeros((HEIGHT, WIDTH), ">u2" if big_endian else "<u2")
        pixels[y0:y1, x0:x1] = 1000
        phrase = "rgb 255 255 255"
    rows = pixels.reshape(HEIGHT, -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((HEIGHT, pad), 9, np.uint8)], axis=1)
    image = Image(
        header=Header(frame_id="cam_optical", stamp=Time(sec=7, nanosec=5)),
        height=HEIGHT,
        width=WIDTH,
        encoding=encoding,
        is_bigendian=int(big_endian),
        step=padded.shape[1],
        data=padded.tobytes(),
    )
    return image, phrase


def assert_rectangle_found(result: DetectionArray, phrase: str) -> None:
    x0, y0, x1, y1 = BOX
    assert result.status == DetectionArray.OK, result.status_message
    assert (result.image_width, result.image_height) == (WIDTH, HEIGHT)
    [detection] = result.detections
    assert detection.phrase == phrase
    assert (detection.center_x, detection.center_y) == ((x0 + x1) / 2, (y0 + y1) / 2)
    assert (detection.size_x, detection.size_y) == (x1 - x0, y1 - y0)
    roi = detection.mask_roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (x0, y0, x1 - x0, y1 - y0)
    assert (detection.mask.width, detection.mask.height) == (roi.width, roi.height)
    assert (to_array(detection.mask, 4096) == 255).all()


def test_topic_and_service_answers_are_in_source_pixels_with_the_source_header(
    ros_env, client, tmp_path
):
    log = tmp_path / "node.log"
    node = start_node(
        ros_env, log, "-p", "image_reliability:=reliable", "-p", "max_image_age_s:=30.0"
    )
    try:
        client.wait_for_node(node, log)
        assert client.command("find it").status == DetectionArray.NO_IMAGE

        # Topic path: image on `image`, command on `command`, answer on `detections`.
        client.publish_image(rgb_image(scene(), stamp_sec=12, frame_id="cam_optical"))
        result = client.command("  find the red box \n")
        assert result.command == "find the red box"
        assert (result.header.stamp.sec, result.header.frame_id) == (12, "cam_optical")
        assert_rectangle_found(result, "rgb 200 30 10")

        # Masks: mono8 instance ids of the source size; overlay: rgb8 of the source size.
        assert client.spin_until(lambda: client.masks and client.overlays)
        masks = to_array(client.masks[-1], 4096)
        expected = np.zeros((HEIGHT, WIDTH), np.uint8)
        expected[BOX[1] : BOX[3], BOX[0] : BOX[2]] = 1
        np.testing.assert_array_equal(masks, expected)
        overlay = client.overlays[-1]
        assert (overlay.width, overlay.height, overlay.encoding) == (WIDTH, HEIGHT, "rgb8")
        assert overlay.header.stamp.sec == 12
        assert not np.array_equal(to_array(overlay, 4096), scene())  # something was drawn

        # Service path, latest frame, and every encoding in the request, with row padding.
        assert_rectangle_found(client.locate("find it"), "rgb 200 30 10")
        for encoding, big_endian in [("rgb8", False), ("bgr8", False), ("rgba8", False),
                                     ("bgra8", False), ("mono8", False), ("mono16", False),
                                     ("mono16", True)]:  # fmt: skip
            image, phrase = encoded(encoding, big_endian=big_endian)
            result = client.locate("find it", image)
            assert (result.header.stamp.sec, result.header.stamp.nanosec) == (7, 5), encoding
            assert_rectangle_found(result, phrase)
        assert client.detections[-1].command_id == result.command_id  # also on `detections`

        # pgpt-say prints the answer as a table.
        client.publish_image(rgb_image(scene(colour=(0, 0, 255))))
        say = subprocess.run(
            [sys.executable, "-m", "pgpt_ros.ros.say", "--timeout", "20", "find it"],
            env=ros_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert say.returncode == 0, say.stderr
        assert "OK" in say.stdout and "rgb 0 0 255" in say.stdout and "100.0" in say.stdout
        # Thresholds change at run time; impossible values are refused with the reason.
        set_params = client.node.create_client(SetParameters, "/perception_node/set_parameters")
        for value, accepted in [(0.95, True), (1.5, False)]:
            request = SetParameters.Request(parameters=[Parameter(
                name="score_threshold",
                value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))])  # fmt: skip
            future = set_params.call_async(request)
            assert client.spin_until(future.done)
            [outcome] = future.result().results
            assert outcome.successful == accepted, outcome.reason
        assert "score_threshold" in outcome.reason
        client.publish_image(rgb_image(scene()))
        result = client.locate("find it")
        assert result.status == DetectionArray.OK and result.detections == []  # 0.9 < 0.95

    finally:
        assert stop(node) == 0, log.read_text()


def test_bad_input_gets_a_status_and_one_log_line_and_the_node_keeps_serving(
    ros_env, client, tmp_path
):
    log = tmp_path / "node.log"
    node = start_node(
        ros_env, log, "-p", "max_image_age_s:=1.0", "-p", "max_image_side:=4096",
        "-p", "max_command_length:=50", "-p", "image_reliability:=reliable",
    )  # fmt: skip
    try:
        client.wait_for_node(node, log)
        for command in ["", "   \t ", "x" * 51, "find the\x07red box", "find\u200bit"]:
            result = client.command(command)
            assert result.status == DetectionArray.BAD_COMMAND, command
            assert result.header.frame_id == "" and result.status_message

        good = rgb_image(scene())
        bad_images = {
            "wrong step": dict(step=WIDTH * 3 - 1),
            "short data": dict(data=bytes(WIDTH * 3 * HEIGHT - 1)),
            "unsupported encoding": dict(encoding="yuv422"),
            "absurd dimensions": dict(width=100_000, height=100_000, step=300_000),
        }
        for name, change in bad_images.items():
            image = rgb_image(scene())
            for field, value in change.items():
                setattr(image, field, value)
            result = client.locate("find it", image)
            assert result.status == DetectionArray.BAD_IMAGE, name
            assert result.header.frame_id == "camera"  # the header of the image that was bad
        client.publish_image(Image(header=Header(frame_id="camera"), encoding="rgb8"))  # 0x0
        assert client.command("find it").status == DetectionArray.BAD_IMAGE

        client.publish_image(good)
        time.sleep(1.5)
        result = client.command("find it")
        assert result.status == DetectionArray.STALE_IMAGE and "old" in result.status_message

        result = client.locate("explode now", good)
        assert result.status == DetectionArray.INTERNAL_ERROR
        assert "boom" in result.status_message

        client.publish_image(good)
        assert_rectangle_found(client.locate("find it"), "rgb 200 30 10")  # still serving
    finally:
        assert stop(node) == 0
    lines = log.read_text().splitlines()
    for status, count in [("BAD_COMMAND", 5), ("BAD_IMAGE", 5), ("STALE_IMAGE", 1),
                          ("INTERNAL_ERROR", 1)]:  # fmt: skip
        assert sum(f": {status}: " in line for line in lines) == count, status


def test_a_command_uses_the_newest_frame_and_overflow_is_busy(ros_env, client, tmp_path):
    log = tmp_path / "node.log"
    node = start_node(
        ros_env, log, "-p", "command_queue_size:=1", "-p", "image_reliability:=reliable",
        "-p", "max_image_age_s:=30.0", slow_s=4.0,
    )  # fmt: skip
    try:
        client.wait_for_node(node, log)
        client.publish_image(rgb_image(scene(), stamp_sec=1000))
        seen = len(client.detections)
        client.command_pub.publish(String(data="slow: find it"))  # the worker sleeps 4 s
        time.sleep(0.5)
        for stamp in range(1, 101):  # 100 frames while the model is busy
            client.image_pub.publish(rgb_image(scene(), stamp_sec=stamp))
        client.spin_until(lambda: False, 0.5)
        client.command_pub.publish(String(data="find it"))  # queued (queue size 1)
        client.spin_until(lambda: False, 0.2)
        client.command_pub.publish(String(data="find it again"))  # no room: BUSY
        assert client.spin_until(lambda: len(client.detections) >= seen + 3)
        answers = {a.command: a for a in client.detections[seen:]}
        assert answers["find it again"].status == DetectionArray.BUSY
        assert answers["slow: find it"].header.stamp.sec == 1000
        assert answers["find it"].status == DetectionArray.OK
        assert answers["find it"].header.stamp.sec == 100  # the newest, not the next in line
        # Diagnostics: 101 frames in, 2 used, the frames replaced before any command are unused.
        assert client.spin_until(
            lambda: client.diagnostics and dict_of(client.diagnostics[-1]).get("frames_used") == "2"
        )
        values = dict_of(client.diagnostics[-1])
        assert values["backend"] == "fake" and values["commands_busy"] == "1"
        received, unused = int(values["frames_received"]), int(values["frames_unused"])
        assert received >= 2 and unused == received - 2
    finally:
        assert stop(node) == 0


def dict_of(diagnostics) -> dict[str, str]:
    [status] = diagnostics.status
    return {kv.key: kv.value for kv in status.values}
