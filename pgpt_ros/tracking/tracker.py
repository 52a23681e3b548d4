"""Stable object ids across the answers of a standing command.

Each new answer's detections are paired with the live tracks by overlap and phrase:

- overlap is the mask IoU when both have masks (computed over the two masks' joint extent only),
  else the box IoU; pairs under ``min_iou`` never match;
- a pair whose phrase equals the track's latest phrase gains ``phrase_weight``, so when objects
  overlap, "red mug" stays with "red mug" (the phrase is a preference, not a gate: a phrase that
  flickers between answers, "mug" then "red mug", keeps its id while the overlap holds);
- pairing is greedy, best affinity first (``pgpt_ros.metrics.match``): with the handful of objects
  one command names, that equals the optimal assignment except in contrived ties.

A detection left unpaired starts a new track; a track unseen for more than ``max_missed`` answers
ends. Ids come from one counter that only counts up (shared by the trackers of successive standing
commands), so an id never names two objects. There is no motion model: an object must overlap its
previous answer's mask, i.e. move less than about its own size between answers (at 10 Hz, a 10 cm
object may move up to ~1 m/s).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pgpt_ros.masks import mask_extent
from pgpt_ros.metrics import box_iou, match


class Trackable(Protocol):
    """What the tracker reads of a detection (``runtime.PixelDetection`` fits)."""

    phrase: str
    box: np.ndarray  # (4,) xyxy in source pixels
    mask: np.ndarray | None  # (H, W) bool over the source image


@dataclass
class Track:
    """One object followed across answers: its id and its latest phrase, box and mask."""

    id: int
    phrase: str
    box: np.ndarray
    mask: np.ndarray | None
    extent: tuple[int, int, int, int] | None  # the mask's (x0, y0, x1, y1), exclusive ends
    area: int  # mask pixels
    missed: int = 0  # answers in a row without it


def _mask_iou(a: Track, b: Track) -> float:
    """IoU of two tracks' masks, counted inside the union of their extents only."""
    if a.extent is None or b.extent is None:
        return 0.0
    x0, y0 = min(a.extent[0], b.extent[0]), min(a.extent[1], b.extent[1])
    x1, y1 = max(a.extent[2], b.extent[2]), max(a.extent[3], b.extent[3])
    inter = int(np.count_nonzero(a.mask[y0:y1, x0:x1] & b.mask[y0:y1, x0:x1]))
    return inter / (a.area + b.area - inter)


class Tracker:
    """Gives each detection of successive answers a track id.

    Arguments:
        min_iou (float): smallest overlap that can continue a track.
        phrase_weight (float): affinity added when the phrase is the track's.
        max_missed (int): answers a track may go unseen before it ends.
        ids (Iterator[int] | None): where new ids come from; pass one counter to every tracker
            whose ids must never collide (default: a fresh count from 1).
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.1,
        phrase_weight: float = 0.5,
        max_missed: int = 5,
        ids: Iterator[int] | None = None,
    ) -> None:
        if not 0.0 < min_iou <= 1.0 or phrase_weight < 0.0 or max_missed < 0:
            raise ValueError(
                f"need 0 < min_iou <= 1, phrase_weight >= 0, max_missed >= 0; got {min_iou}, "
                f"{phrase_weight}, {max_missed}"
            )
        self.min_iou, self.phrase_weight, self.max_missed = min_iou, phrase_weight, max_missed
        self._ids = ids if ids is not None else itertools.count(1)
        self.tracks: list[Track] = []

    @staticmethod
    def _observation(detection: Trackable) -> Track:
        mask = detection.mask
        extent = None if mask is None else mask_extent(mask)
        area = 0 if extent is None else int(np.count_nonzero(mask))
        box = np.asarray(detection.box, np.float64)
        return Track(0, detection.phrase, box, mask, extent, area)

    def _overlap(self, found: Track, track: Track) -> float:
        masks = found.mask is not None and track.mask is not None
        if masks and found.mask.shape == track.mask.shape:
            return _mask_iou(found, track)
        return float(box_iou(found.box, track.box)[0, 0])

    def affinity(self, found: Sequence[Track]) -> np.ndarray:
        """(detections, tracks): overlap plus the phrase bonus; 0 where the overlap is too small."""
        scores = np.zeros((len(found), len(self.tracks)))
        for i, observation in enumerate(found):
            for j, track in enumerate(self.tracks):
                overlap = self._overlap(observation, track)
                if overlap >= self.min_iou:
                    same = observation.phrase == track.phrase
                    scores[i, j] = overlap + self.phrase_weight * same
        return scores

    def update(self, detections: Sequence[Trackable]) -> list[int]:
        """Pairs one answer's detections with the tracks; returns their ids, in detection order."""
        found = [self._observation(d) for d in detections]
        pairs = dict(match(self.affinity(found), threshold=self.min_iou))
        ids = []
        for i, observation in enumerate(found):
            if i in pairs:
                track = self.tracks[pairs[i]]
                observation.id = track.id
                self.tracks[pairs[i]] = observation
            else:
                observation.id = next(self._ids)
                self.tracks.append(observation)
            ids.append(observation.id)
        seen = set(ids)
        for track in self.tracks:
            track.missed = 0 if track.id in seen else track.missed + 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return ids
