"""A stand-in for the Perceiver whose answers tests can predict, with hooks to slow it or break it.

It "finds" the non-black pixels of the image: one detection whose mask is those pixels and whose
box is their extent (exclusive ends, in source pixels), with the phrase ``rgb R G B`` (their mean
colour), so a test sees at once whether the node converted the encoding, honoured ``step`` and kept
the source size. Commands containing ``slow`` take ``slow_s`` seconds; ``explode`` raises halfway.
"""

from __future__ import annotations

import time

import numpy as np

from pgpt_ros.policy import AnswerPolicy
from pgpt_ros.runtime import Perception, PixelDetection


class FakePerceiver:
    backend = "fake"
    engine_dir = None

    def __init__(self, slow_s: float = 3.0) -> None:
        self.slow_s = slow_s

    def locate(self, image, command, *, image_id=None, policy: AnswerPolicy | None = None):
        policy = policy or AnswerPolicy()
        start = time.perf_counter()
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        if "slow" in command:
            time.sleep(self.slow_s)
        mask = image.any(axis=2)
        if "explode" in command:
            raise RuntimeError("boom: the model broke mid-answer")
        if not mask.any():
            return Perception("nothing", [], 1, time.perf_counter() - start)
        ys, xs = np.nonzero(mask)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
        r, g, b = (int(round(v)) for v in image[mask].mean(axis=0))
        found = PixelDetection(f"rgb {r} {g} {b}", 0.9, box, mask if policy.with_masks else None)
        kept = [found] if found.score >= policy.score_threshold else []  # as the Perceiver does
        return Perception(f"rgb {r} {g} {b} <vis>", kept, 4, time.perf_counter() - start)

    def close(self) -> None:
        print("perceiver closed", flush=True)


class HookedPerceiver:
    """The real Perceiver with the same ``slow`` / ``explode`` hooks, for end-to-end tests."""

    def __init__(self, perceiver, slow_s: float = 3.0) -> None:
        self.perceiver = perceiver
        self.backend = perceiver.backend
        self.engine_dir = perceiver.engine_dir
        self.slow_s = slow_s

    def locate(self, image, command, **kwargs):
        if "slow" in command:
            time.sleep(self.slow_s)
        result = self.perceiver.locate(image, command, **kwargs)
        if "explode" in command:
            raise RuntimeError("boom: the model broke mid-answer")
        return result

    def close(self) -> None:
        self.perceiver.close()
        print("perceiver closed", flush=True)
