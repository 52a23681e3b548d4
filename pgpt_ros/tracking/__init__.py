"""Track ids across the answers of a standing command. numpy only, no ROS.

standing = StandingCommands()
command = standing.replace("all circles", command_id=7)
if command.due(time.monotonic(), frame_seq, rate_hz=10.0):
    ids = command.answered(time.monotonic(), frame_seq, detections)   # one id per detection
"""

from pgpt_ros.tracking.standing import StandingCommand, StandingCommands
from pgpt_ros.tracking.tracker import Track, Tracker

__all__ = ["StandingCommand", "StandingCommands", "Track", "Tracker"]
