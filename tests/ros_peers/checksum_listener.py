"""A separate ROS process for transport tests: prints what it received as one JSON line.

Subscribes ``image`` (sensor_msgs/Image, best-effort, depth 1) and ``detections``
(pgpt_ros/DetectionArray, reliable), then prints the sha256 of the image bytes and of each
detection's mask with the fields around them, and exits. (Hashing the serialised message would not
work: CDR padding bytes are not deterministic.) Usage: python checksum_listener.py TIMEOUT_S
"""

import hashlib
import json
import sys
import time

import rclpy
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from pgpt_ros.msg import DetectionArray


def summarize(msg: DetectionArray) -> dict:
    """The fields of a DetectionArray as JSON, with mask bytes replaced by their sha256."""
    return {
        "command": msg.command,
        "answer": msg.answer,
        "size": [msg.image_width, msg.image_height],
        "detections": [
            {
                "phrase": d.phrase,
                "box": [d.center_x, d.center_y, d.size_x, d.size_y],
                "roi": [
                    d.mask_roi.x_offset,
                    d.mask_roi.y_offset,
                    d.mask_roi.width,
                    d.mask_roi.height,
                ],
                "mask": [
                    d.mask.width,
                    d.mask.height,
                    d.mask.encoding,
                    hashlib.sha256(bytes(d.mask.data)).hexdigest(),
                ],
            }
            for d in msg.detections
        ],
    }


def main() -> int:
    timeout_s = float(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("checksum_listener")
    got: dict[str, dict] = {}

    def on_image(msg: Image) -> None:
        got.setdefault(
            "image",
            {
                "sha256": hashlib.sha256(bytes(msg.data)).hexdigest(),
                "width": msg.width,
                "height": msg.height,
                "encoding": msg.encoding,
            },
        )

    def on_detections(msg: DetectionArray) -> None:
        got.setdefault("detections", summarize(msg))

    node.create_subscription(Image, "image", on_image, qos_profile_sensor_data)
    node.create_subscription(DetectionArray, "detections", on_detections, QoSProfile(depth=10))
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + timeout_s
    while len(got) < 2 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps(got), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0 if len(got) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
