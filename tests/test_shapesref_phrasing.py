"""ShapesRef's wording and out-of-domain negatives: other words, the same meaning and targets;
commands about things it never draws, and photo-like frames, refer to nothing."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pgpt_ros.data.shapesref import (
    COLOURS,
    EVALUATION_VARIANTS,
    EXTREMES,
    KINDS,
    SHAPES,
    UNKNOWN_THINGS,
    Expression,
    SceneConfig,
    ShapesRef,
    commands_for,
    evaluation_variants,
)
from pgpt_ros.data.shapesref.expressions import (
    bare_text,
    expressions,
    plain_command,
    restate_absent,
)
from pgpt_ros.data.shapesref.phrasing import (
    SPOKEN_PLURAL,
    SPOKEN_SINGULAR,
    TRAILING,
    command_words,
    phrase,
)
from pgpt_ros.data.shapesref.vocabulary import MUTED_CHROMA, RELATIONS

SIDES = ("left", "right", "above", "below")
THINGS = {**{t: t for t in UNKNOWN_THINGS}, **{p: t for t, p in UNKNOWN_THINGS.items()}}


def _content(words: list[str]) -> Counter:
    """The words that carry meaning, singular: colours, shapes ("shape" for shape/one), things,
    extremes and "all"; articles, verbs, "please", "that is" and the like carry none."""
    found = Counter()
    for word in words:
        if word in COLOURS or word in EXTREMES or word == "all":
            found[word] += 1
        elif word in ("shape", "shapes", "one", "ones"):
            found["shape"] += 1
        elif word.removesuffix("s") in SHAPES:
            found[word.removesuffix("s")] += 1
        elif word in THINGS:
            found[THINGS[word]] += 1
    return found


def meaning(command: str) -> tuple:
    """What a command says, however worded: its content words before and after a relation."""
    words = command.lower().replace("?", " ").replace("!", " ").replace(".", " ").split()
    side = next((w for w in words if w in SIDES), None)
    if side is None:
        return (_content(words),)
    at = words.index(side)
    return _content(words[:at]), side, _content(words[at + 1 :])


@pytest.fixture(scope="module")
def expression_pool():
    """Expressions of every kind (unknown things included) about varied scenes."""
    config = SceneConfig.preset("varied")
    found = []
    for seed in range(25):
        scene = ShapesRef.scene(seed, 128, 96, SceneConfig.preset("camera"))
        for kind in KINDS:
            found += expressions(scene, kind, config)[:12]
    assert {e.kind for e in found} == set(KINDS)
    return found


STYLES = {
    "template": SceneConfig(),
    "spoken": SceneConfig(phrasing={"spoken": 1.0}),
    "reordered": SceneConfig(phrasing={"reordered": 1.0}),
    "loose": SceneConfig.preset("spoken", case=1.0, spaces=1.0, punctuation=1.0),
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_wording_means_what_the_plain_command_means(style, expression_pool):
    config = STYLES[style]
    rng = np.random.default_rng(0)
    for e in expression_pool:
        worded = phrase(rng, e, config)
        assert worded.targets == e.targets and worded.kind == e.kind
        assert meaning(worded.command) == meaning(plain_command(e)), (worded.command, plain_command(e))  # fmt: skip
        if style != "loose":
            assert worded.command == worded.command.strip() and "  " not in worded.command
        if style == "spoken":
            wrappers = SPOKEN_PLURAL if e.plural else SPOKEN_SINGULAR
            assert any(worded.command.startswith(w.split("{}")[0]) for w in wrappers)
        if style == "loose":
            assert worded.command.rstrip().endswith(TRAILING)
            assert worded.command != worded.command.lower()


def test_reordered_wording_moves_the_colour_where_it_can(expression_pool):
    config, rng = STYLES["reordered"], np.random.default_rng(1)
    moved = [phrase(rng, e, config).command for e in expression_pool
             if e.kind == "attribute" and e.subject.colour and e.subject.shape]  # fmt: skip
    assert moved and all("that is" in c for c in moved)


def test_loose_typing_has_stray_spaces():
    config = SceneConfig(spaces=1.0)
    rng = np.random.default_rng(2)
    scene = ShapesRef.scene(4, 96, 96)
    for e in expressions(scene, "attribute", config):
        command = phrase(rng, e, config).command
        assert "  " in command or command != command.strip()


def test_evaluation_variants_say_the_same_with_the_same_targets(expression_pool):
    for e in expression_pool:
        variants = evaluation_variants(e)
        has_colour = (e.reference if e.kind == "relation" else e.subject).colour is not None
        expected = [v for v in EVALUATION_VARIANTS if v != "reordered" or has_colour]
        assert list(variants) == expected
        plain = variants["plain"].command
        assert plain == plain_command(e)
        for name, variant in variants.items():
            assert variant.targets == e.targets and variant.kind == e.kind
            assert meaning(variant.command) == meaning(plain), (name, variant.command)
        assert variants["upper"].command == plain.upper()
        assert variants["spaces"].command.split() == plain.split() and "  " in variants["spaces"].command  # fmt: skip
        assert variants["polite"].command == f"can you find {plain} please"
        assert variants["exclaim"].command == plain + "!!"
        assert variants["question"].command == plain + " ?"
        if "reordered" in variants:
            assert "that is" in variants["reordered"].command or "that are" in variants["reordered"].command  # fmt: skip


def _named(objects: list[dict], words: list[str]) -> list[int]:
    colour = next((w for w in words if w in COLOURS), None)
    shape = next((w.removesuffix("s") for w in words if w.removesuffix("s") in SHAPES), None)
    return [i for i, o in enumerate(objects)
            if (colour is None or o["colour"] == colour) and (shape is None or o["shape"] == shape)]  # fmt: skip


def test_varied_samples_name_exactly_their_targets():
    config = SceneConfig.preset("varied", restated_absent=0.3)
    dataset = ShapesRef("val", 64, 300, config=config)
    for i in range(300):
        s = dataset[i]
        words = s.command.lower().replace("?", " ").replace("!", " ").replace(".", " ").split()
        objects = s.meta["objects"]
        if s.kind in ("attribute", "multi"):
            assert _named(objects, words) == sorted(s.meta["targets"]), s.command
            assert (s.num_targets >= 2) == (s.kind == "multi")
        if s.kind == "absent":
            assert s.num_targets == 0 and s.boxes.shape == (0, 4)
            if s.meta.get("worded") == "relation":  # the subject or the reference is not there
                side = next(i for i, w in enumerate(words) if w in SIDES)
                halves = words[:side], words[side + 1 :]
                assert any(
                    _named(objects, half) == [] or set(half) & set(THINGS) for half in halves
                )
            else:
                assert s.meta.get("absent") == "unknown" or _named(objects, words) == []


def test_unknown_things_are_absent_and_take_their_share():
    config = SceneConfig(unknown_absent=0.3)
    dataset = ShapesRef("train", 64, 400, kinds={"absent": 1.0}, config=config)
    samples = [dataset[i] for i in range(400)]
    unknown = [s for s in samples if s.meta.get("absent") == "unknown"]
    assert 0.2 < len(unknown) / len(samples) < 0.4
    for s in unknown:
        words = s.command.replace("?", "").split()
        assert s.num_targets == 0 and any(w in THINGS for w in words)
        assert not any(w.removesuffix("s") in SHAPES or w in ("shape", "shapes") for w in words)
    default = ShapesRef("train", 64, 200, kinds={"absent": 1.0})
    assert not any(default[i].meta.get("absent") for i in range(200))
    plain = [e.command for e in commands_for(ShapesRef.scene(1, 64, 64), config, ["absent"])]
    assert "the cat" in plain and "the red car" in plain and "all people" in plain


def test_photo_frames_hold_no_shape_and_every_command_is_absent():
    config = SceneConfig(photo_absent=1.0, unknown_absent=0.3)
    dataset = ShapesRef("val", 96, 60, kinds={"absent": 1.0}, config=config)
    for i in range(60):
        group = dataset.commands(i, 4)
        assert len(group) == 4
        for s in group:
            assert s.meta["frame"] == "photo" and s.meta["objects"] == []
            assert s.kind == "absent" and s.num_targets == 0
            assert not s.class_map.any() and not s.instance_map.any()
        chroma = np.ptp(group[0].image.astype(int), axis=-1)
        assert chroma.max() <= MUTED_CHROMA + 1  # nothing in it has a colour name
        assert group[0].image.std() > 3  # not a flat frame


def test_photo_frames_take_their_share_of_absent_commands():
    config = SceneConfig.preset("negatives")
    dataset = ShapesRef("train", 64, 600, kinds={"attribute": 1.0, "absent": 1.0}, config=config)
    samples = [dataset[i] for i in range(600)]
    absent = [s for s in samples if s.kind == "absent"]
    photos = [s for s in absent if s.meta.get("frame") == "photo"]
    assert 0.2 < len(photos) / len(absent) < 0.4
    assert all(s.meta.get("frame") is None for s in samples if s.kind != "absent")


def test_an_expression_without_parts_cannot_be_reworded():
    with pytest.raises(ValueError, match="commands_for"):
        evaluation_variants(Expression("the red circle", "attribute", (0,)))


def test_dataset_variants_are_the_sample_reworded():
    dataset = ShapesRef("test", 64, 40, config=SceneConfig.preset("varied", restated_absent=0.5))
    names = set()
    for i in range(40):
        sample, variants = dataset[i], dataset.variants(i)
        assert meaning(sample.command) == meaning(variants["plain"].command)  # the same expression
        names |= set(variants)
        for variant in variants.values():
            np.testing.assert_array_equal(variant.image, sample.image)
            assert variant.phrases == sample.phrases and variant.kind == sample.kind
            np.testing.assert_array_equal(variant.boxes, sample.boxes)
            assert meaning(variant.command) == meaning(variants["plain"].command)
    assert names == set(EVALUATION_VARIANTS)


def test_every_word_of_a_command_is_listed_for_the_tokenizer():
    words = set(command_words())
    dataset = ShapesRef("val", 64, 300, config=SceneConfig.preset("varied"))
    for i in range(100):
        for sample in [*dataset.commands(i, 4), *dataset.variants(i).values()]:
            text = sample.command.lower()
            for mark in "?!.":
                text = text.replace(mark, " ")
            assert set(text.split()) <= words, sample.command


def test_restated_absent_commands_are_relations_or_extremes_about_what_is_not_there():
    config = SceneConfig.preset("varied", restated_absent=1.0, unknown_absent=0.3)
    rng = np.random.default_rng(0)
    forms = Counter()
    for seed in range(40):
        scene = ShapesRef.scene(seed, 96, 72, config)
        for e in [e for e in expressions(scene, "absent", config) if not e.plural][:10]:
            restated = restate_absent(rng, e, scene.objects, config)
            forms[restated.meta["worded"]] += 1
            assert restated.kind == "absent" and restated.targets == ()
            assert restated.word in (*RELATIONS, *EXTREMES) and restated.word in bare_text(restated)
            named = [restated.subject, restated.reference or restated.subject]
            assert any(not any(d.fits(o) for o in scene.objects) for d in named), bare_text(
                restated
            )
            worded = phrase(rng, restated, config)
            assert meaning(worded.command) == meaning(plain_command(restated)), worded.command
    assert forms["relation"] > forms["extreme"] > 50
    plural = next(e for e in expressions(scene, "absent", config) if e.plural)
    with pytest.raises(ValueError, match="singular absent"):
        restate_absent(rng, plural, scene.objects, config)


def test_restated_absent_takes_its_share_and_zero_changes_nothing():
    kinds = {"attribute": 1.0, "absent": 1.0}
    restated = ShapesRef("train", 64, 300, kinds, SceneConfig(restated_absent=0.5))
    samples = [restated[i] for i in range(300)]
    singular = [s for s in samples if s.kind == "absent" and "all" not in s.command.split()]
    share = sum("worded" in s.meta for s in singular) / len(singular)
    assert 0.35 < share < 0.65 and all(s.num_targets == 0 for s in singular)
    plain, zero = ShapesRef("val", 64, 50, kinds), ShapesRef("val", 64, 50, kinds, SceneConfig())
    assert [plain[i].command for i in range(50)] == [zero[i].command for i in range(50)]
