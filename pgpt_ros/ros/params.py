"""The node's parameters: one declaration (default, meaning, whether it may change at run time) and
one validation, usable without a running node.

Why pure Python: the same checks run at start (an impossible value is one clear error and a non-zero
exit), on every run-time change (the change is refused with the reason) and in unit tests, and
``pgpt-bringup`` reads the same YAML file without rclpy. Model-specific values (``model_path``,
``device``, ``dtype``, ``head_backend``) are checked where they are used, by ``Perceiver.load``,
which owns their meaning; the node reports its error the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pgpt_ros.policy import AnswerPolicy

IMAGE_RELIABILITIES = ("best_effort", "reliable")
# The `masks` topic is a mono8 instance-id image: id + 1 per detection must fit in a byte.
MAX_OBJECTS_LIMIT = 254


def _param(default: Any, help: str, runtime: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "runtime": runtime})


@dataclass(frozen=True)
class NodeParams:
    """Every parameter of ``perception_node``, with its default. ``runtime`` ones may change live."""

    model_path: str = _param("", "model directory (save_pretrained); empty = embedded default")
    device: str = _param("cpu", "torch device: cpu, cuda, cuda:1, ...")
    dtype: str = _param("float32", "float32, float16 (GPU only) or bfloat16")
    head_backend: str = _param("auto", "box/mask heads: auto, torch, onnxruntime or tensorrt")
    engine_dir: str = _param(
        "", "cache of exported heads and TensorRT engines; empty = the per-user cache directory"
    )
    force_engine_rebuild: bool = _param(False, "rebuild engines even if the cache matches")
    image_reliability: str = _param(
        "best_effort", "image QoS: best_effort or reliable (depth 1 either way)"
    )
    compressed_image: bool = _param(
        False, "subscribe sensor_msgs/CompressedImage on image/compressed"
    )
    command_queue_size: int = _param(4, "commands waiting for the model; more are answered BUSY")
    num_threads: int = _param(
        1, "CPU threads of torch and ONNX Runtime (the executor and DDS need the other cores)"
    )
    autostart: bool = _param(True, "configure and activate at start (plain `ros2 run`)")
    max_image_side: int = _param(4096, "images with a longer side are BAD_IMAGE", runtime=True)
    max_command_length: int = _param(200, "longer commands are BAD_COMMAND (characters)", True)
    max_new_tokens: int = _param(AnswerPolicy.max_new_tokens, "answer length limit (tokens)")
    max_objects: int = _param(AnswerPolicy.max_objects, "detections per answer at most", True)
    score_threshold: float = _param(
        AnswerPolicy.score_threshold, "detections scoring below are dropped", runtime=True
    )
    publish_masks: bool = _param(True, "compute masks and publish the `masks` image", runtime=True)
    publish_overlay: bool = _param(True, "draw and publish the `overlay` image", runtime=True)
    max_image_age_s: float = _param(1.0, "older frames (since received) are STALE_IMAGE", True)
    use_depth: bool = _param(False, "subscribe `depth` and `camera_info`: 3D positions")
    depth_tolerance_s: float = _param(0.05, "largest depth-to-image stamp difference (s)", True)
    depth_min_m: float = _param(0.1, "nearer depths are invalid (m)")
    depth_max_m: float = _param(10.0, "farther depths are invalid (m)")
    min_depth_pixels: int = _param(10, "fewest valid depths under a mask for a position", True)
    publish_markers: bool = _param(True, "publish `markers` (MarkerArray) for rviz", True)
    marker_points: bool = _param(False, "also draw each object's 3D points", runtime=True)
    publish_vision_msgs: bool = _param(
        True, "also publish vision_msgs `detections_2d`/`detections_3d` where installed"
    )
    track_rate_hz: float = _param(10.0, "answers per second to the standing command at most", True)
    track_max_missed: int = _param(5, "a track ends after this many answers without it")
    track_min_iou: float = _param(0.1, "least overlap that continues a track")

    def problems(self) -> list[str]:
        """Why these values cannot work, one line each (empty when they can)."""
        checks = [
            (self.image_reliability in IMAGE_RELIABILITIES,
             f"image_reliability must be one of {IMAGE_RELIABILITIES}, got {self.image_reliability!r}"),
            (1 <= self.command_queue_size <= 100,
             f"command_queue_size must be in 1..100, got {self.command_queue_size}"),
            (1 <= self.num_threads <= 256,
             f"num_threads must be in 1..256, got {self.num_threads}"),
            (16 <= self.max_image_side <= 32768,
             f"max_image_side must be in 16..32768 pixels, got {self.max_image_side}"),
            (1 <= self.max_command_length <= 10000,
             f"max_command_length must be in 1..10000 characters, got {self.max_command_length}"),
            (1 <= self.max_new_tokens <= 512,
             f"max_new_tokens must be in 1..512, got {self.max_new_tokens}"),
            (1 <= self.max_objects <= MAX_OBJECTS_LIMIT,
             f"max_objects must be in 1..{MAX_OBJECTS_LIMIT} (mask ids are one byte), "
             f"got {self.max_objects}"),
            (0.0 <= self.score_threshold <= 1.0,
             f"score_threshold must be in [0, 1], got {self.score_threshold}"),
            (0.0 < self.max_image_age_s <= 3600.0,
             f"max_image_age_s must be in (0, 3600] seconds, got {self.max_image_age_s}"),
            (0.0 <= self.depth_tolerance_s <= 10.0,
             f"depth_tolerance_s must be in [0, 10] seconds, got {self.depth_tolerance_s}"),
            (0.0 <= self.depth_min_m < self.depth_max_m,
             f"need 0 <= depth_min_m < depth_max_m, got {self.depth_min_m}, {self.depth_max_m}"),
            (self.min_depth_pixels >= 1, f"min_depth_pixels must be >= 1, got {self.min_depth_pixels}"),
            (0.0 < self.track_rate_hz <= 1000.0,
             f"track_rate_hz must be in (0, 1000], got {self.track_rate_hz}"),
            (self.track_max_missed >= 1, f"track_max_missed must be >= 1, got {self.track_max_missed}"),
            (0.0 <= self.track_min_iou <= 1.0,
             f"track_min_iou must be in [0, 1], got {self.track_min_iou}"),
            (self.model_path == self.model_path.strip(),
             f"model_path has leading or trailing spaces: {self.model_path!r}"),
        ]  # fmt: skip
        return [message for ok, message in checks if not ok]

    def policy(self) -> AnswerPolicy:
        """The answer policy these parameters ask of the Perceiver."""
        return AnswerPolicy(
            max_new_tokens=self.max_new_tokens,
            max_objects=self.max_objects,
            score_threshold=self.score_threshold,
            with_masks=self.publish_masks,
        )

    def validated(self) -> NodeParams:
        """Returns self, or raises ValueError naming every impossible value."""
        problems = self.problems()
        if problems:
            raise ValueError("invalid parameters: " + "; ".join(problems))
        return self

    def replace(self, **changes: Any) -> NodeParams:
        """A validated copy with ``changes``; ValueError for unknown or read-only names."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown parameters: {', '.join(unknown)}")
        fixed = sorted(name for name in changes if not fields[name].metadata["runtime"])
        if fixed:
            raise ValueError(f"{', '.join(fixed)} can only be set at start (restart the node)")
        return dataclasses.replace(self, **changes).validated()


def describe() -> list[tuple[str, Any, str, bool]]:
    """(name, default, help, runtime) for every parameter, in declaration order."""
    return [
        (f.name, f.default, f.metadata["help"], f.metadata["runtime"])
        for f in dataclasses.fields(NodeParams)
    ]


def read_params_file(path: str | Path, node_name: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node_name`` in a ROS params YAML file ({} if it has none).

    Accepts the node's name with or without a leading slash, and the ``/**`` wildcard section, as
    ``--params-file`` does; a specific section wins over the wildcard.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file {path} does not exist")
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ValueError(f"params file {path} must map node names to ros__parameters")
    merged: dict[str, Any] = {}
    for key in ("/**", node_name.lstrip("/"), "/" + node_name.lstrip("/")):
        section = document.get(key) or {}
        merged.update(section.get("ros__parameters") or {})
    return merged
