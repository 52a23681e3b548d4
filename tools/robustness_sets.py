"""The measurements behind the embedded model's bars, each through the served path.

Every function takes a ``Perceiver`` (what the node serves: head backend, answer grammar, score
threshold, de-duplication, pixel mapping) and returns a JSON-able dict. ``tools.robustness`` runs
them and prints the table. Scenes come from ShapesRef's test split with the ``varied`` preset:
the variation the default model trains for (loose typing included, which training leaves to
``pgpt_ros.commands``), never its training samples.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np

from pgpt_ros.data.sample import Sample
from pgpt_ros.data.shapesref import (
    COLOURS,
    SHAPES,
    UNKNOWN_THINGS,
    AspectSet,
    SceneConfig,
    ShapesRef,
    commands_for,
)
from pgpt_ros.evaluate import Prediction, evaluate
from pgpt_ros.metrics import RefMetrics
from pgpt_ros.model import tokens
from pgpt_ros.runtime import IncompleteAnswer, Perceiver

TEST_PRESET = "varied"
ASPECTS = ("1:1", "16:9", "3:4")
# scikit-image's real photographs (its synthetic images, the colour wheel, logo, checker board,
# blobs and phantom, are left out: some hold coloured shapes)
PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass",
          "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina",
          "rocket", "text")  # fmt: skip


def by_group(samples: list[Sample], predictions: list[Prediction], group) -> dict:
    """Acc@0.5 and friends per ``group(sample)`` label (None: left out)."""
    metrics = RefMetrics()
    for sample, pred in zip(samples, predictions, strict=True):
        label = group(sample)
        if label is not None:
            metrics.add(label, pred.boxes, sample.boxes)
    return {k: v["acc@0.5"] for k, v in metrics.summary()["per_kind"].items()}


def list_length(sample: Sample) -> str | None:
    """A multi-object command's list-length bucket."""
    if sample.kind != "multi":
        return None
    n = sample.num_targets
    return str(n) if n <= 4 else "5+"


def split(perceiver: Perceiver, num: int, long_side: int) -> tuple[dict, list, list]:
    """The test split drawn with the test preset: overall, per kind, multi by list length,
    lists of 3-6, absent commands about unknown things and photo-like frames."""
    data = ShapesRef("test", image_size=long_side, length=num,
                     config=SceneConfig.preset(TEST_PRESET))  # fmt: skip
    samples = [data[i] for i in range(num)]
    summary, predictions = evaluate(perceiver, samples, progress=False)
    lists = by_group(samples, predictions, list_length)
    long = by_group(samples, predictions,
                    lambda s: "3-6" if s.kind == "multi" and 3 <= s.num_targets <= 6 else None)  # fmt: skip
    absent = by_group(samples, predictions, lambda s: _absent_kind(s) if s.kind == "absent" else None)  # fmt: skip
    result = {
        "preset": TEST_PRESET,
        "long_side": long_side,
        "overall": summary["overall"],
        "per_kind": {k: v["acc@0.5"] for k, v in summary["per_kind"].items()},
        "multi_by_list_length": lists,
        "multi_3_to_6": long.get("3-6"),
        "absent_by_source": absent,
        "incomplete_answers": summary["incomplete_answers"],
        "seconds_per_command": summary["speed"]["seconds_per_command"],
    }
    return result, samples, predictions


def _absent_kind(sample: Sample) -> str:
    if sample.meta.get("frame") == "photo":
        return "photo-like frame"
    return "unknown thing" if sample.meta.get("absent") == "unknown" else "shape not there"


# Camera-like scenes without the rest of the variation: 480 px long side, four aspect ratios,
# shades, five backgrounds, blur, noise and JPEG, but upright shapes, at most six, no look-alikes
# and the template wording. What a model trained on plain scenes copes with best; seed 123 draws
# scenes of its own.
CAMERA_LIKE = SceneConfig(max_shapes=6, aspects=("1:1", "4:3", "3:4", "16:9"), shades=True,
                          backgrounds=("plain", "textured", "noisy", "gradient", "tiles"),
                          blur=0.3, sensor_noise=0.4, jpeg=0.4, long_lists=1.5)  # fmt: skip


def camera_like(perceiver: Perceiver, num: int, long_side: int = 480) -> dict:
    """Acc@0.5 overall and per kind on ``num`` test commands of ``CAMERA_LIKE`` scenes."""
    data = ShapesRef("test", image_size=long_side, length=num, config=CAMERA_LIKE, seed=123)
    summary, _ = evaluate(perceiver, [data[i] for i in range(num)], progress=False)
    return {"long_side": long_side, "acc@0.5": summary["overall"]["acc@0.5"],
            "per_kind": {k: v["acc@0.5"] for k, v in summary["per_kind"].items()}}  # fmt: skip


def aspect(perceiver: Perceiver, num: int, long_side: int) -> dict:
    """Acc@0.5 of the same scenes and commands at each aspect of ``ASPECTS``, and the gap of
    each to the first (1:1)."""
    groups = AspectSet("test", long_side=long_side, aspects=ASPECTS, length=num,
                       config=SceneConfig.preset(TEST_PRESET))  # fmt: skip
    drawn = [groups[i] for i in range(num)]
    acc = {}
    for name in ASPECTS:
        summary, _ = evaluate(perceiver, [g[name] for g in drawn], progress=False)
        acc[name] = summary["overall"]["acc@0.5"]
    return {"long_side": long_side, "acc@0.5": acc,
            "gap_to_1:1": {a: acc[a] - acc[ASPECTS[0]] for a in ASPECTS[1:]}}  # fmt: skip


def phrasing(perceiver: Perceiver, num: int, long_side: int) -> dict:
    """Acc@0.5 of each evaluation wording on the same test samples, and its gap to plain;
    also on the absent commands alone (a trailing "!!" must not turn "not found" into a box)."""
    data = ShapesRef("test", image_size=long_side, length=num,
                     config=SceneConfig.preset(TEST_PRESET))  # fmt: skip
    by_variant: dict[str, list[Sample]] = {}
    for i in range(num):
        for name, sample in data.variants(i).items():
            by_variant.setdefault(name, []).append(sample)
    result: dict = {"acc@0.5": {}, "absent_acc": {}, "count": {}}
    plain_predictions: list[Prediction] = []
    for name, samples in by_variant.items():
        summary, predictions = evaluate(perceiver, samples, progress=False)
        result["acc@0.5"][name] = summary["overall"]["acc@0.5"]
        result["absent_acc"][name] = summary["per_kind"].get("absent", {}).get("acc@0.5")
        result["count"][name] = len(samples)
        if name == "plain":
            plain_predictions = predictions
    # "reordered" exists only where a colour can move: compare it with plain on those samples
    moved = {s.meta["seed"][2] for s in by_variant.get("reordered", [])}
    where = by_group(by_variant["plain"], plain_predictions,
                     lambda s: "moved" if s.meta["seed"][2] in moved else None)  # fmt: skip
    result["plain_where_reordered"] = where.get("moved")
    result["gap_to_plain"] = {
        name: acc
        - (
            result["plain_where_reordered"] if name == "reordered" else result["acc@0.5"]["plain"]
        )  # fmt: skip
        for name, acc in result["acc@0.5"].items()
        if name != "plain"
    }
    return result


def negatives(perceiver: Perceiver, num: int, long_side: int) -> dict:
    """Share answered "not found" of ``num`` absent test commands, every singular one worded as
    a relation or an extreme about what is not there ("the purple star left of the red
    circle", "the largest purple star"; ``SceneConfig.restated_absent``), by wording. In real
    photographs such commands drew most of the wrong detections while every training relation
    had a target."""
    config = SceneConfig.preset(TEST_PRESET, restated_absent=1.0)
    data = ShapesRef("test", image_size=long_side, length=num, kinds={"absent": 1.0},
                     config=config)  # fmt: skip
    samples = [data[i] for i in range(num)]
    summary, predictions = evaluate(perceiver, samples, progress=False)

    def wording(sample: Sample) -> str:  # restated ones carry it; what is left is plural
        return sample.meta.get("worded", "plural")

    count = Counter(wording(s) for s in samples)
    return {"not_found": summary["overall"]["acc@0.5"], "count": dict(count),
            "by_wording": by_group(samples, predictions, wording)}  # fmt: skip


def photo_commands(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Shape commands (every one names a colour: scikit-image's photos hold no flat coloured
    shape, but coins are round) and plain-object commands for one photograph."""
    colours, shapes = list(COLOURS), list(SHAPES)

    def shape() -> str:
        return f"{rng.choice(colours)} {rng.choice(shapes)}"

    shape_commands = [
        f"the {shape()}", f"find the {shape()}", f"where is the {shape()}?",
        f"can you find the {shape()} please", f"all {shape()}s", f"all {rng.choice(colours)} shapes",
        f"the largest {shape()}", f"the leftmost {shape()}", f"the {shape()} left of the {shape()}",
        f"the {shape()} above the {shape()}", f"the {rng.choice(shapes)} that is {rng.choice(colours)}",
        f"show me all the {shape()}s",
    ]  # fmt: skip
    things = list(UNKNOWN_THINGS.items())
    object_commands = []
    for singular, plural in (things[int(i)] for i in rng.permutation(len(things))[:8]):
        object_commands += [f"the {singular}", rng.choice([f"all {plural}", f"where is the {singular}?"])]  # fmt: skip
    return shape_commands, object_commands


def well_formed(text: str, phrases: list[str]) -> bool:
    """Whether ``text`` is "not found" or ``phrase <vis>`` items (phrases from the list, when the
    model has one)."""
    words = "|".join(re.escape(p) for p in phrases) if phrases else r"[^,<>]*\S[^,<>]*"
    item = f"(?:{words}) {re.escape(tokens.VIS_TOKEN)}"
    return re.fullmatch(f"{re.escape(tokens.NOT_FOUND)}|{item}(?:, {item})*", text) is not None


def photos(perceiver: Perceiver, seed: int = 0) -> dict:
    """scikit-image's photographs: share of shape commands and of plain-object commands served
    with no detection, and every answer checked for form (empty, malformed, cut short)."""
    import skimage.data

    rng = np.random.default_rng(seed)
    phrases = perceiver.model.config.answer_phrases
    tally = {kind: {"commands": 0, "nothing_served": 0, "said_not_found": 0}
             for kind in ("shape", "object")}  # fmt: skip
    bad: list[dict] = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        for kind, commands in zip(("shape", "object"), photo_commands(rng), strict=True):
            for command in commands:
                why = None
                try:
                    found = perceiver.locate(image, command, image_id=name)
                    text, served = found.answer, len(found.detections)
                    if not well_formed(text, phrases):
                        why = "empty" if not text.strip() else "malformed"
                except IncompleteAnswer as error:  # served as a status, not as a detection
                    text, served, why = error.text, 0, "cut by max_new_tokens"
                tally[kind]["commands"] += 1
                tally[kind]["nothing_served"] += served == 0
                tally[kind]["said_not_found"] += text == tokens.NOT_FOUND
                if why:
                    bad.append({"photo": name, "command": command, "answer": text, "why": why})
    for counts in tally.values():
        counts["not_found_share"] = counts["nothing_served"] / max(counts["commands"], 1)
    return {"photos": list(PHOTOS), **tally, "bad_answers": bad, "bad_count": len(bad)}


def speed(perceiver: Perceiver, commands: int = 200, repeats: int = 3) -> dict:
    """Commands per second through ``Perceiver.predict`` on one 640x480 frame set once (the
    cached-frame case), the fastest of ``repeats`` passes, by wall time and by CPU time."""
    import torch

    torch.set_num_threads(1)
    config = SceneConfig.preset(TEST_PRESET)
    scene = ShapesRef.scene(seed=0, width=640, height=480, config=config)
    texts = [e.command for e in commands_for(scene, config)]
    texts = [texts[i % len(texts)] for i in range(commands)]
    perceiver.set_image(scene.image, image_id="speed")
    perceiver.predict(texts[0])  # warm
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for text in texts:
            perceiver.predict(text)
        wall.append(commands / (time.perf_counter() - start))
        cpu.append(commands / (time.process_time() - start_cpu))
    # On one thread, CPU time is the time the answers take on a core of their own; on a machine
    # other jobs share, wall time also counts the waits for a core.
    return {"frame": [640, 480], "threads": 1, "commands": commands,
            "commands_per_s": max(wall), "commands_per_cpu_s": max(cpu),
            "passes_wall": wall, "passes_cpu": cpu}  # fmt: skip
