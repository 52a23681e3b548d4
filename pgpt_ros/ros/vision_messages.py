"""vision_msgs outputs: `detections_2d` (Detection2DArray) and `detections_3d` (Detection3DArray).

For packages that already consume vision_msgs (rviz plugins, trackers, planners). Our own
DetectionArray stays the complete record (command, answer, masks, status, 3D reasons); these carry
what vision_msgs fields can hold:

- ``results[0].hypothesis``: class_id = the phrase ("red mug"), score = the detection's score;
- ``bbox``: the pixel box (2D, centre/size, theta 0), or the 3D position and extent (3D, axes of
  the optical frame);
- ``results[0].pose`` (3D only): the position;
- ``id``: the track id for standing-command answers, else the detection's index in its
  DetectionArray, so a Detection3D can be joined to its mask;
- the header is the source image's. Detection2DArray lists every detection in DetectionArray order
  (detection i is value i + 1 in the `masks` image); Detection3DArray lists only the detections
  that have a position.

vision_msgs is optional: ``unavailable_reason()`` says why it cannot be used here (not installed,
or installed without its compiled type support), and the node then skips these topics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from std_msgs.msg import Header

from pgpt_ros.msg import Detection

INSTALL_HINT = "install ros-$ROS_DISTRO-vision-msgs to get detections_2d and detections_3d"


def unavailable_reason() -> str | None:
    """None when vision_msgs messages can be published from this process; else why not."""
    try:
        from rclpy.type_support import check_for_type_support
        from vision_msgs.msg import Detection2DArray, Detection3DArray
    except ImportError as error:
        return f"vision_msgs is not installed ({error}); {INSTALL_HINT}"
    try:
        for msg_type in (Detection2DArray, Detection3DArray):
            check_for_type_support(msg_type)
    except Exception as error:  # rosidl raises its own UnsupportedTypeSupport (not exported)
        return (
            "vision_msgs is installed but its compiled type support does not load "
            f"({error}); {INSTALL_HINT}"
        )
    return None


def vision_id(detection: Detection) -> str:
    """vision_msgs' ``id``: the track id when tracked, else the index in the DetectionArray."""
    return str(detection.track_id or detection.id)


def _hypothesis(detection: Detection) -> Any:
    from vision_msgs.msg import ObjectHypothesisWithPose

    result = ObjectHypothesisWithPose()
    result.hypothesis.class_id = detection.phrase
    result.hypothesis.score = float(detection.score)
    return result


def detection_2d_array(header: Header, detections: Sequence[Detection]) -> Any:
    """A vision_msgs/Detection2DArray of every detection, in order."""
    from vision_msgs.msg import Detection2D, Detection2DArray

    out = Detection2DArray(header=header)
    for detection in detections:
        item = Detection2D(header=header, id=vision_id(detection))
        item.results.append(_hypothesis(detection))
        item.bbox.center.position.x = detection.center_x
        item.bbox.center.position.y = detection.center_y
        item.bbox.size_x, item.bbox.size_y = detection.size_x, detection.size_y
        out.detections.append(item)
    return out


def detection_3d_array(header: Header, detections: Sequence[Detection]) -> Any:
    """A vision_msgs/Detection3DArray of the detections that have a 3D position."""
    from vision_msgs.msg import Detection3D, Detection3DArray

    out = Detection3DArray(header=header)
    for detection in detections:
        if detection.position_status != Detection.POSITION_OK:
            continue
        result = _hypothesis(detection)
        result.pose.pose.position = detection.position
        result.pose.pose.orientation.w = 1.0
        item = Detection3D(header=header, id=vision_id(detection), results=[result])
        item.bbox.center.position = detection.position
        item.bbox.center.orientation.w = 1.0
        item.bbox.size = detection.extent
        out.detections.append(item)
    return out


def outputs(profile: Any) -> list[tuple[str, Any, Any]]:
    """(topic, message type, QoS) of the vision_msgs outputs; call only when
    ``unavailable_reason()`` is None."""
    from vision_msgs.msg import Detection2DArray, Detection3DArray

    return [
        ("detections_2d", Detection2DArray, profile),
        ("detections_3d", Detection3DArray, profile),
    ]
