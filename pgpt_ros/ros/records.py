"""The records the node keeps while it serves: the latest-frame slot, accepted commands, counters.

Plain Python (no rclpy): the command server and the diagnostics work on them without a node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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
    """One command, from the topic or a ``locate`` call, answered exactly once.

    ``finish`` keeps the first answer and drops any later one: a command answered STOPPING while
    the worker still computes it is not answered again when the worker returns.
    """

    command_id: int
    command: str
    accepted: float  # time.monotonic()
    image: Image | None = None  # from a Locate request; None = the latest frame
    result: DetectionArray | None = None
    on_finish: list[Callable[[DetectionArray], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def finish(self, result: DetectionArray) -> bool:
        """Answers the job with ``result`` (latency set) unless it was answered; True if this
        call answered it. The callbacks run outside the lock, once."""
        with self._lock:
            if self.result is not None:
                return False
            result.latency_s = float(time.monotonic() - self.accepted)
            self.result = result
        for callback in self.on_finish:
            callback(result)
        return True


@dataclass
class Stats:
    """Counters and the last answer's timings, for diagnostics."""

    frames: int = 0
    frames_used: int = 0  # frames at least one command was taken to the model with
    frames_unused: int = 0  # frames replaced by a newer one before any command used them
    commands: int = 0
    busy: int = 0
    errors: int = 0
    errors_in_a_row: int = 0  # INTERNAL_ERROR answers since the last other answer
    last_latency_s: float = 0.0
    last_inference_s: float = 0.0
    last_status: str = ""
    period_frames: int = 0
    period_start: float = field(default_factory=time.monotonic)
