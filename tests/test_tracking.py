"""Track ids across answers: stable on moving objects, never reused, standing-command timing."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pytest

from pgpt_ros.tracking import StandingCommands, Tracker

WIDTH, HEIGHT = 320, 240


@dataclass
class Found:
    phrase: str
    box: np.ndarray
    mask: np.ndarray | None


def disc(cx: float, cy: float, r: float, with_mask: bool = True) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    mask = (xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2 <= r * r
    return np.array([cx - r, cy - r, cx + r, cy + r]), mask if with_mask else None


# (phrase, start x, start y, velocity x, velocity y, radius): two share a phrase.
OBJECTS = [
    ("red circle", 40, 50, 5.0, 1.0, 18),
    ("red circle", 260, 60, -4.0, 2.5, 20),
    ("blue circle", 60, 190, 4.5, -2.0, 16),
    ("green square", 200, 170, -2.0, -3.0, 24),
]


def moving_scene(frames: int, seed: int = 0, with_masks: bool = True):
    """Per frame, (truth index, detection) pairs in a random order, with the detector's jitter."""
    rng = np.random.default_rng(seed)
    for t in range(frames):
        found = []
        for index, (phrase, x, y, vx, vy, r) in enumerate(OBJECTS):
            cx = x + vx * t + 6 * math.sin(t / 4 + index) + rng.normal(0, 1.5)
            cy = y + vy * t + rng.normal(0, 1.5)
            box, mask = disc(cx, cy, r + rng.normal(0, 1.5), with_masks)
            found.append((index, Found(phrase, box, mask)))
        yield [found[i] for i in rng.permutation(len(found))]


def id_switches(frames, tracker: Tracker) -> tuple[int, int, dict[int, set[int]]]:
    """Runs the tracker; returns (id switches, object-frames, ids seen per truth object)."""
    last: dict[int, int] = {}
    seen: dict[int, set[int]] = {}
    switches = object_frames = 0
    for found in frames:
        ids = tracker.update([detection for _, detection in found])
        for (truth, _), track_id in zip(found, ids, strict=True):
            object_frames += 1
            switches += truth in last and last[truth] != track_id
            last[truth] = track_id
            seen.setdefault(truth, set()).add(track_id)
    return switches, object_frames, seen


@pytest.mark.parametrize("with_masks", [True, False], ids=["masks", "boxes"])
def test_ids_stay_stable_on_30_frames_of_moving_objects(with_masks):
    tracker = Tracker()
    switches, object_frames, seen = id_switches(moving_scene(30, with_masks=with_masks), tracker)
    assert object_frames == 120 and switches == 0
    assert sorted(next(iter(ids)) for ids in seen.values()) == [1, 2, 3, 4]  # one id each


def test_crossing_objects_keep_their_ids_by_phrase():
    # A red and a blue disc pass through each other: at the crossing their masks coincide and
    # only the phrase tells them apart.
    tracker = Tracker()
    ids = []
    for t in range(21):
        red = Found("red circle", *disc(60 + 10 * t, 120, 20))
        blue = Found("blue circle", *disc(260 - 10 * t, 120, 20))
        ids.append(tracker.update([blue, red] if t % 2 else [red, blue]))
    assert {tuple(i if t % 2 == 0 else i[::-1]) for t, i in enumerate(ids)} == {(1, 2)}


def test_a_phrase_that_flickers_keeps_its_id_while_the_overlap_holds():
    tracker = Tracker()
    ids = [tracker.update([Found(p, *disc(100 + 3 * t, 100, 20))])[0]
           for t, p in enumerate(["red mug", "mug", "red mug", "the red mug"])]  # fmt: skip
    assert ids == [1, 1, 1, 1]


def test_a_removed_object_ends_and_its_id_is_never_reused():
    tracker = Tracker(max_missed=3)
    a, b = Found("red circle", *disc(60, 60, 20)), Found("red circle", *disc(200, 150, 20))
    assert tracker.update([a, b]) == [1, 2]
    for _ in range(3):  # b is hidden for three answers: its track survives
        assert tracker.update([a]) == [1]
    assert tracker.update([a, b]) == [1, 2]
    for _ in range(4):  # b is gone for four answers: its track ends
        assert tracker.update([a]) == [1]
    assert [t.id for t in tracker.tracks] == [1]
    # An object of the same phrase at b's old place is a new object with a new id.
    assert tracker.update([a, b]) == [1, 3]
    assert tracker.update([]) == [] and [t.missed for t in tracker.tracks] == [1, 1]


def test_objects_that_jump_further_than_their_size_get_new_ids():
    tracker = Tracker()
    assert tracker.update([Found("red mug", *disc(50, 50, 10))]) == [1]
    assert tracker.update([Found("red mug", *disc(150, 50, 10))]) == [2]


def test_a_mask_and_a_box_only_detection_are_compared_by_box():
    tracker = Tracker()
    box, mask = disc(100, 100, 20)
    assert tracker.update([Found("mug", box, mask)]) == [1]
    assert tracker.update([Found("mug", box + 4, None)]) == [1]
    assert tracker.update([Found("mug", box, np.zeros((HEIGHT, WIDTH), bool))]) == [1]


def test_invalid_tracker_options_are_refused():
    with pytest.raises(ValueError, match="min_iou"):
        Tracker(min_iou=0.0)


# ---------------------------------------------------------------- standing commands


def test_a_standing_command_is_due_on_a_new_frame_at_most_at_its_rate():
    command = StandingCommands().replace("all circles", command_id=7)
    assert command.due(now_s=100.0, frame=1, rate_hz=10.0)  # never answered yet
    command.answered(100.0, 1, [])
    assert not command.due(100.5, 1, 10.0)  # no new frame
    assert not command.due(100.0625, 2, 10.0)  # new frame, but 0.0625 s < 1 / 10 Hz
    assert command.due(100.0625, 2, 16.0)  # the rate is read on every call
    assert command.due(100.125, 2, 10.0)


def test_replacing_a_standing_command_starts_new_tracks_with_fresh_ids():
    standing = StandingCommands(max_missed=2)
    first = standing.replace("all circles", command_id=1)
    found = [Found("red circle", *disc(60, 60, 20)), Found("blue circle", *disc(200, 60, 20))]
    assert first.answered(0.0, 1, found) == [1, 2]
    second = standing.replace("the red circle", command_id=2)
    assert second.tracker is not first.tracker and second.tracker.max_missed == 2
    assert second.answered(0.1, 2, found[:1]) == [3]  # same object, new command: new id
    assert standing.cancel() is second and standing.current is None
    third = standing.replace("all circles", command_id=3)
    assert third.answered(0.2, 3, found) == [4, 5]


def test_ids_from_a_shared_counter_never_collide():
    ids = itertools.count(1)
    one, two = Tracker(ids=ids), Tracker(ids=ids)
    found = [Found("mug", *disc(60, 60, 20))]
    assert (one.update(found), two.update(found), one.update(found)) == ([1], [2], [1])
