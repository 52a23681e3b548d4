"""Standing commands: one command answered again on every new camera frame, up to a rate.

A robot following "the red mug" sends the command once on ``track``; the node then answers it on
each new frame, at most ``rate_hz`` times a second, and the objects keep their track ids across
those answers. A new ``track`` command replaces the standing one (its tracker continues the same id
counter, so ids stay unique); an empty one cancels it. One-shot commands are served first: a
standing command only takes frames the queue leaves free.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pgpt_ros.tracking.tracker import Trackable, Tracker


@dataclass
class StandingCommand:
    """The standing command, its tracker and when it was last answered.

    Attributes:
        command (str): the command text, already validated.
        command_id (int): the id its answers carry (the node's id for the ``track`` message).
        tracker (Tracker): its objects' ids.
        last_answer_s (float): monotonic time of the last answer (-inf before the first).
        last_frame (int): sequence number of the last frame answered (-1 before the first).
    """

    command: str
    command_id: int
    tracker: Tracker
    last_answer_s: float = -math.inf
    last_frame: int = -1

    def due(self, now_s: float, frame: int, rate_hz: float) -> bool:
        """Whether to answer now: ``frame`` is newer than the last one answered and at least
        1 / ``rate_hz`` seconds have passed since the last answer."""
        return frame > self.last_frame and now_s - self.last_answer_s >= 1.0 / rate_hz

    def answered(self, now_s: float, frame: int, detections: Sequence[Trackable]) -> list[int]:
        """Records an answer about ``frame`` begun at ``now_s`` (the start, so that the rate counts
        start to start); returns its detections' track ids, in order."""
        self.last_answer_s, self.last_frame = now_s, frame
        return self.tracker.update(detections)


class StandingCommands:
    """Holds at most one standing command; replacing or cancelling it ends its tracks.

    Not thread-safe: call it from one thread (the node's worker, which takes ``track`` messages
    from the command queue in order with one-shot commands).

    Arguments:
        tracker_options: keyword arguments for each new ``Tracker`` (min_iou, max_missed, ...).
    """

    def __init__(self, **tracker_options: float) -> None:
        self.tracker_options = tracker_options
        self.current: StandingCommand | None = None
        self._ids = itertools.count(1)  # shared by every tracker: an id is never used twice

    def replace(self, command: str, command_id: int) -> StandingCommand:
        """Makes ``command`` the standing command, with a fresh tracker on the shared id counter."""
        tracker = Tracker(ids=self._ids, **self.tracker_options)
        self.current = StandingCommand(command, command_id, tracker)
        return self.current

    def cancel(self) -> StandingCommand | None:
        """Ends the standing command, if any; returns it."""
        ended, self.current = self.current, None
        return ended
