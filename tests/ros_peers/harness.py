"""Helpers for tests that talk to a perception node in another process.

``start_node`` starts tests/ros_peers/perception_node_peer.py (or any module) with its output in a
log file; ``Client`` is the test's own rclpy node: it publishes images and commands, calls
``locate`` and keeps everything the node publishes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.client import Client as ServiceClient
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros.qos import COMMANDER_QOS, RESULT_READER_QOS
from pgpt_ros.srv import Locate

PEER = Path(__file__).parent / "perception_node_peer.py"
TIMEOUT_S = 60.0  # generous: a cold start imports torch on a busy 2-core machine


def start_node(
    env: dict[str, str], log: Path, *ros_args: str, kind: str = "fake", slow_s: float = 3.0
) -> subprocess.Popen:
    """The perception node with a fake (or hooked real) perceiver; output in ``log``."""
    argv = [sys.executable, str(PEER), kind, str(slow_s), "--ros-args", *ros_args]
    return subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> int:
    """SIGINT, wait, kill if needed; returns the exit status."""
    if process.poll() is None:
        process.send_signal(2)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def rgb_image(pixels: np.ndarray, stamp_sec: int = 0, frame_id: str = "camera") -> Image:
    height, width = pixels.shape[:2]
    return Image(
        header=Header(frame_id=frame_id, stamp=Time(sec=stamp_sec)),
        height=height,
        width=width,
        encoding="rgb8",
        step=width * 3,
        data=pixels.tobytes(),
    )


class Client:
    """The test's side: publishers of `image` and `command`, the `locate` client, and every
    `detections`, `overlay`, `masks` and `/diagnostics` message received."""

    def __init__(self) -> None:
        self.node = rclpy.create_node("pgpt_test_client")
        reliable = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        self.image_pub = self.node.create_publisher(Image, "image", reliable)
        self.command_pub = self.node.create_publisher(String, "command", COMMANDER_QOS)
        self.locate_client = self.node.create_client(Locate, "locate")
        self.services: dict[str, ServiceClient] = {}
        self.detections: list[DetectionArray] = []
        self.overlays: list[Image] = []
        self.masks: list[Image] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.subscriptions = [
            self.node.create_subscription(msg_type, topic, store.append, RESULT_READER_QOS)
            for msg_type, topic, store in (
                (DetectionArray, "detections", self.detections),
                (Image, "overlay", self.overlays),
                (Image, "masks", self.masks),
                (DiagnosticArray, "/diagnostics", self.diagnostics),
            )
        ]

    def spin_until(self, condition: Callable[[], object], timeout_s: float = TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return bool(condition())

    def wait_for_node(self, process: subprocess.Popen, log: Path) -> None:
        """Until `locate` is served and every topic is matched both ways; else fails with the log."""
        ready = self.spin_until(
            lambda: (
                process.poll() is not None
                or (
                    self.locate_client.service_is_ready()
                    and self.image_pub.get_subscription_count() > 0
                    and self.command_pub.get_subscription_count() > 0
                )
            )
        )
        assert ready and process.poll() is None, f"node did not start:\n{log.read_text()}"

    def service(self, service_type, name: str, probe) -> ServiceClient:
        """A client of ``name`` whose replies are known to arrive, kept for the next calls.

        ``service_is_ready`` says only that the server reads our requests: DDS discovers the two
        directions separately, and a server that has not yet matched our reply reader answers into
        the void (on a busy 2-core machine, now and then). So ``probe``, a request that changes
        nothing, is sent every 2 s until one reply comes back; after that no reply is lost.
        """
        if name not in self.services:
            service = self.node.create_client(service_type, name)
            assert self.spin_until(service.service_is_ready), f"{name} not available"
            deadline = time.monotonic() + TIMEOUT_S
            while not self.spin_until(service.call_async(probe).done, 2.0):
                assert time.monotonic() < deadline, f"{name} never answered"
            self.services[name] = service
        return self.services[name]

    def publish_image(self, image: Image, settle_s: float = 0.5) -> None:
        """Publishes and gives DDS a moment, so a command sent next finds this frame."""
        self.image_pub.publish(image)
        self.spin_until(lambda: False, settle_s)

    def command(self, text: str) -> DetectionArray:
        """Publishes on `command`; returns the next `detections` message for it."""
        seen = len(self.detections)
        self.command_pub.publish(String(data=text))
        assert self.spin_until(lambda: len(self.detections) > seen), f"no answer to {text!r}"
        return self.detections[seen]

    def locate(self, text: str, image: Image | None = None) -> DetectionArray:
        """Calls `locate` (with ``image``, or the latest frame)."""
        future = self.locate_client.call_async(Locate.Request(command=text, image=image or Image()))
        assert self.spin_until(future.done), f"locate({text!r}) got no answer"
        return future.result().result

    def close(self) -> None:
        self.node.destroy_node()
