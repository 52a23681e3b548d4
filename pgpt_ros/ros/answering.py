"""What the node's worker does for one job: the frame, the model, 3D, tracking, the messages.

Runs on the worker thread only (``CommandServer``), so the standing command's tracker needs no
lock. Depth frames arrive on callback threads into ``DepthSync``, which locks itself. Every
failure a user can act on is a status answer with the reason; the ``DetectionArray`` it returns
is published by the node (``detections``), the overlay, masks, markers and vision_msgs here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sensor_msgs.msg import CameraInfo, Image

from pgpt_ros.commands import BadCommand
from pgpt_ros.msg import DetectionArray
from pgpt_ros.policy import IncompleteAnswer
from pgpt_ros.ros import messages, vision_messages
from pgpt_ros.ros.depth_messages import add_depth_message, set_camera_info, stamp_ns
from pgpt_ros.ros.images import BadImage, frame_to_rgb, from_array
from pgpt_ros.ros.messages import STATUS_NAMES
from pgpt_ros.ros.overlay import draw_overlay
from pgpt_ros.ros.params import NodeParams
from pgpt_ros.ros.records import Frame, FrameSlot, Job
from pgpt_ros.ros.spatial_messages import marker_array, set_position
from pgpt_ros.spatial import DepthSync, locate_all
from pgpt_ros.tracking import StandingCommands


class Answering:
    """Answers jobs with one loaded perceiver.

    Arguments:
        perceiver: the loaded model (``pgpt_ros.runtime.Perceiver`` or a test stand-in).
        params: returns the node's current parameters (they change at run time).
        frames (FrameSlot): the latest camera frame.
        publish: (output name, message) -> publishes it if that output exists.
        warn: logs one line.
        vision (bool): publish vision_msgs outputs too.
    """

    def __init__(
        self,
        perceiver: Any,
        params: Callable[[], NodeParams],
        frames: FrameSlot,
        publish: Callable[[str, Any], None],
        warn: Callable[[str], None],
        *,
        vision: bool,
    ) -> None:
        first = params()
        self.perceiver = perceiver
        self._params, self._frames, self._publish, self._warn = params, frames, publish, warn
        self._vision = vision
        self.depth = DepthSync(first.depth_tolerance_s, first.depth_min_m, first.depth_max_m)
        self.standing = StandingCommands(
            max_missed=first.track_max_missed, min_iou=first.track_min_iou
        )
        self.last_inference_s = 0.0

    # ------------------------------------------------------------------ inputs (callbacks)
    def on_depth(self, msg: Image) -> None:
        add_depth_message(self.depth, msg, self._params().max_image_side)

    def on_camera_info(self, msg: CameraInfo) -> None:
        set_camera_info(self.depth, msg)

    def standing_job(self) -> Job | None:
        """The standing command's next answer, when it is due on a new, fresh frame."""
        current, frame, params = self.standing.current, self._frames.frame, self._params()
        if current is None or frame is None:
            return None
        if time.monotonic() - frame.received > params.max_image_age_s:
            return None
        if not current.due(time.monotonic(), frame.seq, params.track_rate_hz):
            return None
        return Job(current.command_id, current.command, time.monotonic(), kind="standing")

    # ------------------------------------------------------------------ the worker
    def answer(self, job: Job) -> DetectionArray | None:
        """The answer to ``job`` (None for a cancel, which is not a command)."""
        if job.kind == "cancel":
            self.standing.cancel()
            return None
        if job.kind == "track":
            self.standing.replace(job.command, job.command_id)
        params = self._params()
        self.depth.tolerance_s = params.depth_tolerance_s
        if job.image is not None:
            frame = Frame(job.image, job.accepted, seq=-1)
        else:
            frame = self._frames.take()
            if frame is None:
                return self.status(job, DetectionArray.NO_IMAGE, "no image received yet")
            age = time.monotonic() - frame.received
            if age > params.max_image_age_s:
                message = (
                    f"newest image is {age:.2f} s old (max_image_age_s {params.max_image_age_s})"
                )
                return self.status(job, DetectionArray.STALE_IMAGE, message, frame)
        try:
            rgb = frame_to_rgb(frame.msg, params.max_image_side)
        except BadImage as error:
            return self.status(job, DetectionArray.BAD_IMAGE, str(error), frame)
        started = time.monotonic()
        try:
            perception = self.perceiver.locate(
                rgb, job.command, image_id=frame.seq if frame.seq >= 0 else None,
                policy=params.policy(),
            )  # fmt: skip
        except BadCommand as error:  # e.g. more tokens than the model reads
            return self.status(job, DetectionArray.BAD_COMMAND, str(error), frame)
        except IncompleteAnswer as error:  # a parameter the user can raise, not a model fault
            return self.status(job, DetectionArray.INCOMPLETE_ANSWER, str(error), frame)
        self.last_inference_s = perception.inference_s
        found, header = perception.detections, frame.msg.header
        height, width = rgb.shape[:2]
        result = messages.detection_array(
            found, header=header, width=width, height=height, command_id=job.command_id,
            command=job.command, answer=perception.answer, latency_s=0.0,
        )  # fmt: skip
        points = self._locate_3d(params, result, found, header, width, height)
        if job.kind in ("track", "standing") and self.standing.current is not None:
            ids = self.standing.current.answered(started, frame.seq, found)
            for detection, track_id in zip(result.detections, ids, strict=True):
                detection.track_id = track_id
            result.standing = True
        self._publish_images(params, job, rgb, found, header)
        if params.use_depth and params.publish_markers:
            self._publish("markers", marker_array(header, result.detections, points))
        if self._vision:
            self._publish(
                "detections_2d", vision_messages.detection_2d_array(header, result.detections)
            )
            self._publish(
                "detections_3d", vision_messages.detection_3d_array(header, result.detections)
            )
        return result

    def _locate_3d(self, params: NodeParams, result: DetectionArray, found: list, header,
                   width: int, height: int) -> list:  # fmt: skip
        """Fills the 3D fields of ``result``'s detections; returns their points (for markers)."""
        if not params.use_depth:
            return []
        frame = self.depth.frame_for(stamp_ns(header), width, height)
        positions = locate_all(found, frame, min_depth_pixels=params.min_depth_pixels,
                               keep_points=params.marker_points)  # fmt: skip
        for detection, position in zip(result.detections, positions, strict=True):
            set_position(detection, position)
        return [p.points for p in positions] if params.marker_points else []

    def _publish_images(self, params: NodeParams, job: Job, rgb, found: list, header) -> None:
        height, width = rgb.shape[:2]
        if params.publish_masks:
            self._publish("masks", messages.instance_image(found, header, height, width))
        if params.publish_overlay:
            caption = f"{job.command} -> {len(found)} found"
            self._publish("overlay", from_array(draw_overlay(rgb, found, caption), header, "rgb8"))

    def status(
        self, job: Job, status: int, message: str, frame: Frame | None = None
    ) -> DetectionArray:
        """A non-OK answer, logged as one line; the frame's header when a frame was involved."""
        self._warn(
            f"command {job.command_id} {job.command[:80]!r}: {STATUS_NAMES[status]}: {message}"
        )
        size: dict[str, Any] = {}
        if frame is not None:
            size = {"header": frame.msg.header}
            if isinstance(frame.msg, Image):
                size.update(width=frame.msg.width, height=frame.msg.height)
        result = messages.status_array(
            status, message, command_id=job.command_id, command=job.command, **size
        )
        result.standing = job.kind in ("track", "standing")
        return result
