"""3D answers -> ROS messages: the Detection's 3D and track fields, and the `markers` for rviz.

Everything is in the source image's optical frame and carries the source image's header, so rviz
(with a TF from that frame) draws each object where the camera saw it, at the time it saw it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from pgpt_ros.msg import Detection
from pgpt_ros.ros.overlay import colour
from pgpt_ros.spatial import Position3D

MIN_MARKER_SIZE_M = 0.005  # rviz cannot draw a zero-thickness box; a face-on object has z extent 0
LABEL_HEIGHT_M = 0.04
POINT_SIZE_M = 0.004
BOX_ALPHA = 0.35


def set_position(detection: Detection, position: Position3D) -> Detection:
    """Fills ``detection``'s 3D fields from ``position`` (status and reason always, values if OK)."""
    detection.position_status = int(position.status)
    detection.position_message = position.message
    if position.ok:
        x, y, z = (float(v) for v in position.position)
        detection.position = Point(x=x, y=y, z=z)
        ex, ey, ez = (float(v) for v in position.extent)
        detection.extent = Vector3(x=ex, y=ey, z=ez)
        detection.depth_pixels = int(position.depth_pixels)
    return detection


def _rgba(index: int, alpha: float) -> ColorRGBA:
    r, g, b = colour(index)
    return ColorRGBA(r=r / 255, g=g / 255, b=b / 255, a=alpha)


def _label(detection: Detection) -> str:
    tracked = f" #{detection.track_id}" if detection.track_id else ""
    return f"{detection.phrase}{tracked} {detection.position.z:.2f} m"


def marker_array(
    header: Header,
    detections: Sequence[Detection],
    points: Sequence[np.ndarray | None] = (),
    *,
    max_points: int = 2000,
) -> MarkerArray:
    """The `markers` message: a DELETEALL (so objects of the previous answer vanish), then per
    detection with a position a translucent box and a label above it, and optionally its points.

    Arguments:
        header (Header): the source image's header (frame and stamp of every marker).
        detections (Sequence[Detection]): with 3D fields set (``set_position``); those without a
            position get no marker. Colours follow ``id``, as in the overlay image.
        points (Sequence[np.ndarray | None]): per detection, its (N, 3) points (``Position3D.points``),
            or empty for no point markers.
        max_points (int): points per object at most (evenly subsampled; rviz slows with many).
    """
    markers = [Marker(header=header, action=Marker.DELETEALL)]
    for index, detection in enumerate(detections):
        if detection.position_status != Detection.POSITION_OK:
            continue
        size = detection.extent
        drawn = [max(v, MIN_MARKER_SIZE_M) for v in (size.x, size.y, size.z)]
        box = Marker(
            header=header,
            ns="boxes",
            id=detection.id,
            type=Marker.CUBE,
            action=Marker.ADD,
            pose=Pose(position=detection.position, orientation=Quaternion(w=1.0)),
            scale=Vector3(x=drawn[0], y=drawn[1], z=drawn[2]),
            color=_rgba(detection.id, BOX_ALPHA),
        )
        above = Point(
            x=detection.position.x,
            y=detection.position.y - size.y / 2 - LABEL_HEIGHT_M,  # y points down
            z=detection.position.z,
        )
        label = Marker(
            header=header,
            ns="labels",
            id=detection.id,
            type=Marker.TEXT_VIEW_FACING,
            action=Marker.ADD,
            pose=Pose(position=above, orientation=Quaternion(w=1.0)),
            scale=Vector3(z=LABEL_HEIGHT_M),
            color=_rgba(detection.id, 1.0),
            text=_label(detection),
        )
        markers += [box, label]
        cloud = points[index] if index < len(points) else None
        if cloud is not None and len(cloud):
            step = max(1, -(-len(cloud) // max_points))  # ceil: at most max_points
            markers.append(
                Marker(
                    header=header,
                    ns="points",
                    id=detection.id,
                    type=Marker.POINTS,
                    action=Marker.ADD,
                    pose=Pose(orientation=Quaternion(w=1.0)),
                    scale=Vector3(x=POINT_SIZE_M, y=POINT_SIZE_M),
                    color=_rgba(detection.id, 1.0),
                    points=[Point(x=float(x), y=float(y), z=float(z)) for x, y, z in cloud[::step]],
                )
            )
    return MarkerArray(markers=markers)
