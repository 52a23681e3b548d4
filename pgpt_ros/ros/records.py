"""The records the node keeps while it serves: the latest-frame slot, accepted commands, counters.

Plain dataclasses (no rclpy), so the node's bookkeeping reads on its own and ``diagnostics`` can
turn the counters into a status without the node.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sensor_msgs.msg import CompressedImage, Image

from pgpt_ros.msg import DetectionArray


@dataclass
class Frame:
    """The latest-frame slot's content: the message as received, when, and its sequence number."""

    msg: Image | CompressedImage
    received: float  # time.monotonic()
    seq: int
    used: bool = False


@dataclass
class Job:
    """One accepted command; ``done`` is set when ``result`` is ready (the service waits on it)."""

    command_id: int
    command: str
    accepted: float
    image: Image | None = None  # from a Locate request; None = the latest frame
    result: DetectionArray | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Stats:
    """Counters and the last answer's timings, for diagnostics."""

    frames: int = 0
    frames_answered: int = 0
    commands: int = 0
    busy: int = 0
    errors: int = 0
    last_latency_s: float = 0.0
    last_inference_s: float = 0.0
    last_status: str = ""
    period_frames: int = 0
    period_start: float = field(default_factory=time.monotonic)
