"""demo_camera: a camera for demos and tests, with ground truth when it draws the scene itself.

``source`` picks the pictures: ``shapes`` renders ShapesRef scenes (a new seed every
``scene_period_s``, or one scene for good); a folder cycles through its images; a video file
(anything FFmpeg reads, through PyAV) loops. Each frame is published on ``image`` at ``rate_hz``,
stamped with the publish time and ``frame_id``; for ShapesRef scenes the same stamp goes with a JSON
description of the scene on ``ground_truth`` (std_msgs/String), so a client can score an answer
against the exact frame it was computed from:

    {"stamp": {"sec": 1, "nanosec": 2}, "frame_id": "camera", "seed": 7, "width": 640,
     "height": 480, "objects": [{"name": "red circle", "box": [x0, y0, x1, y1]}, ...]}
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from PIL import Image as PILImage
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.ros.images import from_array

NODE_NAME = "demo_camera"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class CameraParams:
    """What the camera shows and how often; ``problems()`` lists impossible values."""

    source: str = "shapes"
    rate_hz: float = 10.0
    width: int = 640
    height: int = 480
    seed: int = 7
    scene_period_s: float = 0.0
    frame_id: str = "camera"
    encoding: str = "rgb8"

    def problems(self) -> list[str]:
        found = []
        if not 0.0 < self.rate_hz <= 1000.0:
            found.append(f"rate_hz must be in (0, 1000], got {self.rate_hz}")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            found.append(f"width and height must be in 16..8192, got {self.width}x{self.height}")
        if self.scene_period_s < 0.0:
            found.append(f"scene_period_s must be >= 0, got {self.scene_period_s}")
        if self.encoding not in ("rgb8", "bgr8"):
            found.append(f"encoding must be rgb8 or bgr8, got {self.encoding!r}")
        if self.source != "shapes" and not Path(self.source).exists():
            found.append(f"source must be 'shapes', a folder or a video file; {self.source} does not exist")  # fmt: skip
        return found


def scene_truth(seed: int, width: int, height: int) -> tuple[np.ndarray, dict]:
    """The ShapesRef scene for ``seed``: its picture and its ground truth (without a stamp)."""
    scene = ShapesRef.scene(seed, width, height)
    objects = [{"name": o.name, "box": [float(v) for v in o.box]} for o in scene.objects]
    return scene.image, {"seed": seed, "width": width, "height": height, "objects": objects}


def folder_frames(folder: Path) -> Iterator[tuple[np.ndarray, None]]:
    """The folder's images in name order, forever."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    while True:
        for path in files:
            with PILImage.open(path) as picture:
                yield np.asarray(picture.convert("RGB")), None


def video_frames(path: Path) -> Iterator[tuple[np.ndarray, None]]:
    """The video's frames, looping at the end."""
    import av  # only this source needs FFmpeg

    while True:
        with av.open(str(path)) as container:
            decoded = 0
            for frame in container.decode(video=0):
                decoded += 1
                yield frame.to_ndarray(format="rgb24"), None
            if decoded == 0:
                raise ValueError(f"{path} has no video frames")


def open_source(source: str) -> Iterator[tuple[np.ndarray, None]]:
    """Frames of a folder or video, checked by decoding the first one (ValueError if impossible)."""
    path = Path(source)
    frames = folder_frames(path) if path.is_dir() else video_frames(path)
    try:
        first = next(frames)
    except (OSError, ValueError) as error:  # PyAV's and PIL's errors derive from these
        raise ValueError(f"cannot read frames from {source}: {error}") from None
    return itertools.chain([first], frames)


class DemoCamera(Node):
    """Publishes ``image`` (and ``ground_truth`` for ShapesRef scenes) at ``rate_hz``."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        defaults = CameraParams()
        values = {
            name: self.declare_parameter(
                name, getattr(defaults, name), ParameterDescriptor(read_only=True)
            ).value
            for name in CameraParams.__dataclass_fields__
        }
        self.params = CameraParams(**values)
        problems = self.params.problems()
        if problems:
            raise ValueError("invalid parameters: " + "; ".join(problems))
        self._frames = None if self.params.source == "shapes" else open_source(self.params.source)
        self._image_pub = self.create_publisher(Image, "image", QoSProfile(depth=1))
        self._truth_pub = self.create_publisher(String, "ground_truth", QoSProfile(depth=10))
        self._started = time.monotonic()
        self._scene: tuple[int, Image, dict] | None = None  # (seed, message, truth), reused
        self.create_timer(1.0 / self.params.rate_hz, self._publish)
        self.get_logger().info(f"publishing {self.params.source} at {self.params.rate_hz} Hz")

    def _shapes_frame(self) -> tuple[Image, dict]:
        """The current scene's message and truth; rendered once per scene, not per frame."""
        p = self.params
        index = (
            int((time.monotonic() - self._started) / p.scene_period_s) if p.scene_period_s else 0
        )
        seed = p.seed + index
        if self._scene is None or self._scene[0] != seed:
            pixels, truth = scene_truth(seed, p.width, p.height)
            self._scene = (seed, self._to_msg(pixels), truth)
        return self._scene[1], self._scene[2]

    def _to_msg(self, rgb: np.ndarray) -> Image:
        pixels = rgb[:, :, ::-1] if self.params.encoding == "bgr8" else rgb
        return from_array(np.ascontiguousarray(pixels), Header(), self.params.encoding)

    def _publish(self) -> None:
        if self._frames is None:
            msg, truth = self._shapes_frame()
        else:
            msg, truth = self._to_msg(next(self._frames)[0]), None
        msg.header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.params.frame_id)
        self._image_pub.publish(msg)
        if truth is not None:
            stamp = {"sec": msg.header.stamp.sec, "nanosec": msg.header.stamp.nanosec}
            payload = {"stamp": stamp, "frame_id": msg.header.frame_id, **truth}
            self._truth_pub.publish(String(data=json.dumps(payload)))


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``demo_camera [--ros-args -p source:=... -p rate_hz:=...]``."""
    rclpy.init(args=argv)
    try:
        node = DemoCamera()
    except (ValueError, ParameterException) as error:
        rclpy.logging.get_logger(NODE_NAME).error(str(error))
        rclpy.try_shutdown()
        return 2
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
