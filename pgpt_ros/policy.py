"""How an answer is decoded and filtered: one set of defaults for the node, evaluation and demo,
and the error an answer cut by its token limit raises.

Plain Python (no torch), so the node's parameter declarations read their defaults from here
before the model stack is imported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnswerPolicy:
    """How an answer is decoded and filtered; the node's parameters of the same names.

    Attributes:
        max_new_tokens (int): answer length limit (tokens).
        max_objects (int): decoding stops after this many ``<vis>`` objects.
        score_threshold (float): detections scoring below are dropped.
        with_masks (bool): compute pixel masks (False skips the per-pixel work).
        duplicate_iou (float): two boxes of one answer overlapping more than this are one object
            named twice (two different ShapesRef targets keep 70 % of their area visible, so
            their boxes overlap far less).
    """

    max_new_tokens: int = 32
    max_objects: int = 8
    score_threshold: float = 0.25
    with_masks: bool = True
    duplicate_iou: float = 0.7


class IncompleteAnswer(RuntimeError):
    """The answer ended before it was whole (``max_new_tokens`` cut it), so none of its
    detections is served; the message says why and names the fix.

    Attributes:
        text (str): the partial answer, ``<vis>`` shown.
        reason (str): why it is incomplete.
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{reason} (partial answer: {text!r})")
        self.text = text
        self.reason = reason
