"""3D from depth: where a detection is in the camera's optical frame. numpy only, no ROS.

sync = DepthSync(tolerance_s=0.05, min_m=0.1, max_m=10.0)
sync.set_camera_info(k, width, height)          # from camera_info
sync.add_depth(stamp_ns, raw, "16UC1")           # from each depth image
frame = sync.frame_for(colour_stamp_ns, width, height)   # DepthFrame or the reason
positions = locate_all(detections, frame)        # one Position3D per detection
"""

from pgpt_ros.spatial.camera import Intrinsics
from pgpt_ros.spatial.depth import DEPTH_ENCODINGS, DepthImage
from pgpt_ros.spatial.locate import locate, locate_all
from pgpt_ros.spatial.position import Position3D, PositionStatus
from pgpt_ros.spatial.sync import DepthFrame, DepthSync

__all__ = [
    "DEPTH_ENCODINGS",
    "DepthFrame",
    "DepthImage",
    "DepthSync",
    "Intrinsics",
    "Position3D",
    "PositionStatus",
    "locate",
    "locate_all",
]
