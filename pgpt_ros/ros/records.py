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


class FrameSlot:
    """The latest camera frame (callbacks replace it, the worker takes it) and the frame counters:
    received, used (taken to the model at least once), unused (replaced before any command)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.frame: Frame | None = None
        self.received = self.used = self.unused = self.period = 0
        self.period_start = time.monotonic()

    def put(self, msg: Image | CompressedImage) -> None:
        with self._lock:
            if self.frame is not None and not self.frame.used:
                self.unused += 1
            self.frame = Frame(msg, time.monotonic(), self.received)
            self.received += 1
            self.period += 1

    def take(self) -> Frame | None:
        """The latest frame, now counted as used."""
        with self._lock:
            frame = self.frame
            if frame is not None and not frame.used:
                frame.used = True
                self.used += 1
            return frame

    def rate_hz(self) -> float:
        """Frames per second since the last call."""
        with self._lock:
            now = time.monotonic()
            rate = self.period / max(now - self.period_start, 1e-6)
            self.period, self.period_start = 0, now
            return rate

    def clear(self) -> None:
        with self._lock:
            self.frame = None


@dataclass
class Job:
    """One command, from the topic, a ``locate`` call or the standing command, answered exactly
    once.

    ``finish`` keeps the first answer and drops any later one: a command answered STOPPING while
    the worker still computes it is not answered again when the worker returns.

    ``kind``: "command" (one-shot), "track" (becomes the standing command, answered as its first
    answer), "cancel" (ends the standing command; no answer) or "standing" (one answer of it).
    """

    command_id: int
    command: str
    accepted: float  # time.monotonic()
    image: Image | None = None  # from a Locate request; None = the latest frame
    kind: str = "command"
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
    """Command counters and the last answer's timings, for diagnostics."""

    commands: int = 0
    busy: int = 0
    errors: int = 0
    errors_in_a_row: int = 0  # INTERNAL_ERROR answers since the last other answer
    last_latency_s: float = 0.0
    last_inference_s: float = 0.0
    last_status: str = ""
