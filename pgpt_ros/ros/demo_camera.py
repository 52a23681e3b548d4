"""demo_camera: a camera for demos and tests, with ground truth when it draws the scene itself.

``source`` picks the pictures: ``shapes`` renders ShapesRef scenes (a new seed every
``scene_period_s``, or one scene for good); a folder cycles through its images; a video file
(anything FFmpeg reads, through PyAV) loops. Each frame is published on ``image`` at ``rate_hz``,
stamped with the publish time and ``frame_id``; for ShapesRef scenes the same stamp goes with a JSON
description of the scene on ``ground_truth`` (std_msgs/String), so a client can score an answer
against the exact frame it was computed from.

For ShapesRef scenes it also publishes, with the image's header, ``depth`` (registered to the image;
``depth_encoding`` 32FC1 metres or 16UC1 millimetres) and ``camera_info`` (``publish_depth``): an
ideal pinhole camera of ``horizontal_fov_deg`` looks at a background plane ``background_m`` away,
each shape a flat cut-out at a depth in [``depth_near_m``, ``depth_far_m``] (nearer when drawn on
top). ``motion`` > 0 moves the shapes smoothly (path size as a fraction of the short image side,
period about ``motion_period_s``), so tracking has something to follow. ``pgpt_ros.spatial.shapes3d``
holds the geometry; the ground truth then includes each object's 3D centre in the optical frame
(x right, y down, z forward, metres):

    {"stamp": {"sec": 1, "nanosec": 2}, "frame_id": "camera", "seed": 7, "width": 640,
     "height": 480, "camera_k": [fx, 0, cx, 0, fy, cy, 0, 0, 1], "background_m": 3.0,
     "objects": [{"index": 0, "name": "red circle", "box": [x0, y0, x1, y1], "depth_m": 1.2,
                  "centre_m": [x, y, z], "visible_pixels": 5120, "fully_visible": true}, ...]}
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
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String

from pgpt_ros.ros.depth_messages import camera_info_message, depth_message
from pgpt_ros.ros.images import from_array
from pgpt_ros.spatial import DEPTH_ENCODINGS
from pgpt_ros.spatial.shapes3d import Frame3D, Geometry, Shapes3D

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
    publish_depth: bool = True
    depth_encoding: str = "32FC1"
    horizontal_fov_deg: float = 60.0
    depth_near_m: float = 0.6
    depth_far_m: float = 2.0
    background_m: float = 3.0
    motion: float = 0.0
    motion_period_s: float = 6.0

    @property
    def geometry(self) -> Geometry:
        """The 3D layout of ShapesRef scenes these parameters describe."""
        return Geometry(
            horizontal_fov_deg=self.horizontal_fov_deg,
            near_m=self.depth_near_m,
            far_m=self.depth_far_m,
            background_m=self.background_m,
            motion=self.motion,
            motion_period_s=self.motion_period_s,
        )

    def problems(self) -> list[str]:
        found = self.geometry.problems()
        if not 0.0 < self.rate_hz <= 1000.0:
            found.append(f"rate_hz must be in (0, 1000], got {self.rate_hz}")
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            found.append(f"width and height must be in 16..8192, got {self.width}x{self.height}")
        if self.scene_period_s < 0.0:
            found.append(f"scene_period_s must be >= 0, got {self.scene_period_s}")
        if self.encoding not in ("rgb8", "bgr8"):
            found.append(f"encoding must be rgb8 or bgr8, got {self.encoding!r}")
        if self.depth_encoding not in DEPTH_ENCODINGS:
            found.append(
                f"depth_encoding must be one of {sorted(DEPTH_ENCODINGS)}, "
                f"got {self.depth_encoding!r}"
            )
        if self.source != "shapes" and not Path(self.source).exists():
            found.append(f"source must be 'shapes', a folder or a video file; {self.source} does not exist")  # fmt: skip
        return found


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


@dataclass
class Rendered:
    """One ShapesRef frame's messages (headers filled in at publish time) and ground truth."""

    image: Image
    depth: Image | None
    camera_info: CameraInfo | None
    truth: dict


class DemoCamera(Node):
    """Publishes ``image`` (and ``ground_truth``, ``depth`` and ``camera_info`` for ShapesRef
    scenes) at ``rate_hz``."""

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
        shapes = self.params.source == "shapes"
        self._frames = None if shapes else open_source(self.params.source)
        self._image_pub = self.create_publisher(Image, "image", QoSProfile(depth=1))
        self._truth_pub = self.create_publisher(String, "ground_truth", QoSProfile(depth=10))
        self._depth_pubs = None
        if shapes and self.params.publish_depth:
            self._depth_pubs = (
                self.create_publisher(Image, "depth", QoSProfile(depth=1)),
                self.create_publisher(CameraInfo, "camera_info", QoSProfile(depth=1)),
            )
        self._started = time.monotonic()
        self._scene: Shapes3D | None = None
        self._still: Rendered | None = None  # a still scene is rendered once, not per frame
        self.create_timer(1.0 / self.params.rate_hz, self._publish)
        depth = f", depth {self.params.depth_encoding}" if self._depth_pubs else ""
        self.get_logger().info(
            f"publishing {self.params.source} at {self.params.rate_hz} Hz{depth}"
        )

    def _shapes_frame(self) -> Rendered:
        """The current scene at the current time (a new seed every scene_period_s)."""
        p = self.params
        elapsed = time.monotonic() - self._started
        index = int(elapsed / p.scene_period_s) if p.scene_period_s else 0
        if self._scene is None or self._scene.seed != p.seed + index:
            self._scene = Shapes3D(p.seed + index, p.width, p.height, p.geometry)
            self._still = None
        if self._still is not None:
            return self._still
        frame = self._scene.frame(elapsed - index * p.scene_period_s)
        rendered = self._render(frame)
        if p.motion == 0.0:
            self._still = rendered
        return rendered

    def _render(self, frame: Frame3D) -> Rendered:
        depth = camera_info = None
        if self._depth_pubs is not None:
            depth = depth_message(frame.depth_m, Header(), self.params.depth_encoding)
            camera_info = camera_info_message(frame.intrinsics, Header())
        truth = self._scene.truth(frame)
        return Rendered(self._to_msg(frame.image), depth, camera_info, truth)

    def _to_msg(self, rgb: np.ndarray) -> Image:
        pixels = rgb[:, :, ::-1] if self.params.encoding == "bgr8" else rgb
        return from_array(np.ascontiguousarray(pixels), Header(), self.params.encoding)

    def _publish(self) -> None:
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.params.frame_id)
        if self._frames is not None:
            msg = self._to_msg(next(self._frames)[0])
            msg.header = header
            self._image_pub.publish(msg)
            return
        rendered = self._shapes_frame()
        rendered.image.header = header
        self._image_pub.publish(rendered.image)
        if self._depth_pubs is not None:
            rendered.depth.header = rendered.camera_info.header = header
            self._depth_pubs[0].publish(rendered.depth)
            self._depth_pubs[1].publish(rendered.camera_info)
        stamp = {"sec": header.stamp.sec, "nanosec": header.stamp.nanosec}
        payload = {"stamp": stamp, "frame_id": header.frame_id, **rendered.truth}
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
