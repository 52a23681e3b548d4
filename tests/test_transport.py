"""Large messages cross process boundaries intact on loopback DDS with the project's profile.

A 1920x1080 rgb8 image does not fit Fast DDS's default 512 KB shared-memory segment, so with
best-effort QoS it would never arrive; config/fastdds_localhost.xml is what makes this pass.
"""

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from pgpt_ros.msg import Detection, DetectionArray
from tests.ros_peers.checksum_listener import summarize

LISTENER = Path(__file__).parent / "ros_peers" / "checksum_listener.py"
TIMEOUT_S = 30.0

pytestmark = pytest.mark.ros


def full_hd_image() -> Image:
    pixels = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    return Image(
        header=Header(frame_id="camera"),
        height=1080,
        width=1920,
        encoding="rgb8",
        step=1920 * 3,
        data=pixels.tobytes(),
    )


def detections_with_mask() -> DetectionArray:
    mask = np.zeros((200, 300), np.uint8)
    mask[50:150, 60:240] = 255
    detection = Detection(
        id=0,
        phrase="red mug",
        score=0.9,
        center_x=960.0,
        center_y=540.0,
        size_x=300.0,
        size_y=200.0,
        mask_roi=RegionOfInterest(x_offset=810, y_offset=440, width=300, height=200),
        mask=Image(height=200, width=300, encoding="mono8", step=300, data=mask.tobytes()),
    )
    return DetectionArray(
        command_id=1,
        command="find the red mug",
        answer="red mug <vis>",
        detections=[detection],
        image_width=1920,
        image_height=1080,
    )


def test_full_hd_image_and_detections_arrive_intact(ros_env):
    image, detections = full_hd_image(), detections_with_mask()
    expected = {
        "image": {
            "sha256": hashlib.sha256(bytes(image.data)).hexdigest(),
            "width": 1920,
            "height": 1080,
            "encoding": "rgb8",
        },
        "detections": summarize(detections),
    }
    listener = subprocess.Popen(
        [sys.executable, str(LISTENER), str(TIMEOUT_S)],
        env=ros_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert json.loads(listener.stdout.readline()) == {"ready": True}, listener.stderr.read()

    rclpy.init()
    try:
        node = rclpy.create_node("transport_publisher")
        image_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
        detections_pub = node.create_publisher(DetectionArray, "detections", QoSProfile(depth=10))
        deadline = time.monotonic() + TIMEOUT_S
        while listener.poll() is None and time.monotonic() < deadline:
            image_pub.publish(image)
            detections_pub.publish(detections)
            time.sleep(0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown()
    out, err = listener.communicate(timeout=10)
    assert listener.returncode == 0, f"listener received only {out!r}\n{err}"
    assert json.loads(out.strip().splitlines()[-1]) == expected
