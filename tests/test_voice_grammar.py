"""The command grammar, snapping transcripts onto it, and Whisper's prompt: no recogniser needed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from pgpt_ros.data.shapesref import SceneConfig, ShapesRef, commands_for
from pgpt_ros.data.shapesref.expressions import expressions
from pgpt_ros.data.shapesref.phrasing import SPOKEN_PLURAL, SPOKEN_SINGULAR, phrase, reorderings
from pgpt_ros.voice.engine import Recognition
from pgpt_ros.voice.grammar import Alt, Grammar, Opt, Ref, Seq, Snapper
from pgpt_ros.voice.listener import Listener
from pgpt_ros.voice.normalise import Normaliser, words
from pgpt_ros.voice.segmenter import Utterance
from pgpt_ros.voice.vocabulary import Vocabulary

SPOKEN = SceneConfig(phrasing={"spoken": 1.0, "reordered": 1.0})


@pytest.fixture(scope="module")
def normaliser() -> Normaliser:
    return Normaliser(Vocabulary.shapesref())


@pytest.mark.parametrize(
    "heard, command",
    [
        ("Find the triangle right on the purple square.", "find the triangle right of the purple square"),
        ("Show me the blu square.", "show me the blue square"),
        ("Locate the bottom most green triangle.", "locate the bottommost green triangle"),
        ("Can you find the orange circle, please?", "can you find the orange circle please"),
        ("the red star", "the red star"),
        ("Find all the yellow stars?", "find all the yellow stars"),
        ("Could you find the red one?", "could you find the red one"),
        ("Help me find the red circel.", "help me find the red circle"),
        ("The star to the left on the blue square.", "the star to the left of the blue square"),
        ("The largest of the red circus.", "the largest of the red circles"),
    ],
)  # fmt: skip
def test_one_wrong_word_snaps_to_the_valid_command(normaliser, heard, command):
    assert normaliser(heard) == command
    assert normaliser.is_command(command)


@pytest.mark.parametrize(
    "heard",
    ["stop", "Turn off the lights in the kitchen.", "Go to the charging dock.", "find the red",
     "Thank you very much.", "What a lovely day it is.", "Could you find the red?", "the red",
     "I'm looking for my keys.", "Help me find the one.", "Do you see it?", "All the ones.",
     "Where's the largest of the?", "I'm done."],
)  # fmt: skip
def test_a_non_command_stays_unforwarded(normaliser, heard):
    """No colour, shape, relation or extreme is invented ("stop" is not "star"; "find the red"
    names no shape) and a far-fetched match is refused."""
    assert normaliser.snap(heard) is None
    assert not normaliser.is_command(normaliser(heard))


def test_a_heard_vocabulary_word_is_never_swapped_for_another():
    vocabulary = Vocabulary.shapesref()
    snapper = Snapper(vocabulary.grammar(), vocabulary.content_words)
    # "red" is no noun; swapping it for "circle" would be one cheap edit, but a heard
    # vocabulary word is kept or dropped.
    assert snapper(["find", "the", "red"]) is None
    snap = snapper(["find", "the", "red", "cirkle", "please"])
    # "please" belongs to "can you find the {} please": adding two words costs less than dropping it
    assert snap.command == "can you find the red circle please"
    assert snap.cost > 0


def test_the_grammar_accepts_every_shapesref_command_and_its_spoken_forms(normaliser):
    scene = ShapesRef.scene(7, 640, 480)
    for expression in commands_for(scene):
        assert normaliser.is_command(expression.command), expression.command
        description = expression.command.split(" ", 1)[1]
        spoken = "show me all the {}" if expression.plural else "can you find the {} please"
        assert normaliser.is_command(spoken.format(description))
    assert not normaliser.is_command("the red")
    assert not normaliser.is_command("find the circle left of")


def test_a_small_grammar_as_jsgf_and_as_a_word_graph():
    grammar = Grammar({
        "command": Seq(("find the", Opt(Alt(("red", "blue"))), Ref("noun"))),
        "noun": Alt(("mug", "glass")),
    })  # fmt: skip
    assert grammar.jsgf().splitlines()[2:] == [
        "public <command> = find the [(red | blue)] <noun>;",
        "<noun> = (mug | glass);",
    ]
    snapper = Snapper(grammar, frozenset({"red", "blue", "mug", "glass"}))
    assert snapper(["find", "the", "blue", "mug"]).cost == 0.0
    assert snapper(["find", "glass"]).command == "find the glass"  # "the" added
    assert snapper(["find", "the", "green", "mug"]).command == "find the mug"  # "green" dropped
    assert snapper(["find", "the", "blue", "mag"]).command == "find the blue mug"  # repaired
    exact = Snapper(grammar, snapper.content_words, exact=frozenset({"mug"}))
    assert exact(["find", "the", "blue", "mag"]) is None  # "mug" only as heard


def test_one_is_never_made_out_of_another_word(normaliser):
    """Whisper heard "Help me find the values on the shapes." for "help me find the largest of
    the shapes": "values" is a spelling away from "blue", "on" from "one", but no "one" was said."""
    assert normaliser.snap("Help me find the values on the shapes.") is None
    assert normaliser("the circle left on the red square") == "the circle left of the red square"


def test_the_prompt_shows_every_meaning_and_template_word_in_example_commands(normaliser):
    vocabulary = Vocabulary.shapesref()
    prompt = vocabulary.prompt()
    template_words = {w for t in vocabulary.templates for w in t.replace("{}", " ").split()}
    assert vocabulary.content_words | template_words <= set(words(prompt))
    for sentence in prompt.split(". "):
        assert normaliser.is_command(" ".join(words(sentence))), sentence


def listener_hearing(*heard: str | tuple[str, ...]) -> Listener:
    """A listener whose engine hears ``heard`` in turn: a text, or the best hypothesis and its
    alternatives."""

    class Heard:
        name = "scripted"

        def __init__(self) -> None:
            self.heard = iter(heard)

        def transcribe(self, audio: np.ndarray) -> Recognition:
            said = next(self.heard)
            best, *others = said if isinstance(said, tuple) else (said,)
            return Recognition(best, 0.9, tuple(others))

    return Listener(Heard(), None, Normaliser(Vocabulary.shapesref()))


def hear(listener: Listener):
    transcript = listener.recognise(Utterance(np.zeros(16000), 0.0, 1.0))
    return transcript.status, transcript.command


@pytest.mark.parametrize(
    "heard",
    ["Could you find the red one?", "the red one", "I'm looking for all the stars.",
     "Help me find the red circle.", "the star to the left of the blue square",
     "The largest of the red circles.", "The circle that is red!", "All the red ones.",
     "Where's the circle that is orange?", "Find a yellow triangle.", "Highlight all stars.",
     "Do you see the star that is below the orange triangle?", "I am looking for an orange star.",
     "Point at the largest square that is blue.", "all circles that are green"],
)  # fmt: skip
def test_spoken_and_reordered_wordings_are_forwarded_as_said(heard):
    assert hear(listener_hearing(heard)) == ("FORWARDED", " ".join(words(heard)))


def test_a_lower_beam_names_an_object_as_one_only_with_the_best_beams_words():
    """Whisper's beams for "show me the way home" and "highlight all the blue ones"."""
    listener = listener_hearing(
        ("Show me that way home.", "Show me the white home.", "Show me the red one."),
        ("I like all of the blue ones.", "Find all the blue ones."),
        ("Mumble.", "Find the blue star."),  # a named shape needs no such support
    )
    assert hear(listener) == ("NOT_A_COMMAND", "show me that way home")
    assert hear(listener) == ("FORWARDED", "find all the blue ones")
    assert hear(listener) == ("FORWARDED", "find the blue star")


def test_every_wording_the_model_is_trained_on_is_a_command(normaliser):
    """Each spoken wrapper around each form of noun phrase, and ShapesRef's own draws."""
    rng = np.random.default_rng(0)
    for seed in range(6):
        scene = ShapesRef.scene(seed, 640, 480)
        for kind in ("attribute", "relation", "extreme", "multi", "absent"):
            for e in expressions(scene, kind, SPOKEN)[:20]:
                said = [phrase(rng, e, SPOKEN).command, *reorderings(e)]
                for wrapper in SPOKEN_PLURAL if e.plural else SPOKEN_SINGULAR:
                    said += [wrapper.format(p) for p in reorderings(e)[:1]]
                for command in said:
                    assert normaliser.is_command(" ".join(words(command))), command


def content(vocabulary: Vocabulary, said: list[str]) -> Counter:
    return Counter(w for w in said if w in vocabulary.content_words)


def test_a_snap_of_a_garbled_spoken_command_never_invents_or_swaps_meaning(normaliser):
    """A word dropped, a junk word added or a carrier word misheard: whatever the snap makes of
    it names no colour, shape, relation, extreme, "one" or "all" that was not heard."""
    vocabulary, rng = normaliser.vocabulary, np.random.default_rng(3)
    junk = ["okay", "robot", "there", "thing", "now", "uh"]
    checked = 0
    for seed in range(4):
        scene = ShapesRef.scene(seed, 640, 480)
        for kind in ("attribute", "relation", "extreme", "multi"):
            for e in expressions(scene, kind, SPOKEN)[:15]:
                heard = words(phrase(rng, e, SPOKEN).command)
                at = int(rng.integers(len(heard)))
                if rng.random() < 0.5:
                    del heard[at]
                elif heard[at] in vocabulary.content_words:
                    heard.insert(at, junk[int(rng.integers(len(junk)))])
                else:
                    heard[at] = junk[int(rng.integers(len(junk)))]
                snap = normaliser.snap(" ".join(heard))
                if snap is not None:
                    checked += 1
                    assert content(vocabulary, snap.command.split()) <= content(vocabulary, heard)
    assert checked > 100


def test_a_vocabulary_file_may_add_spoken_wrappers_and_sides(tmp_path):
    path = tmp_path / "kitchen.yaml"
    plain = "attributes: [red]\nnouns: [mug]\nrelations: [left of]\nsingular_templates: ['find the {}']\n"
    path.write_text(plain)
    assert not Normaliser(Vocabulary.load(path)).is_command("could you find the red one")
    assert "one" not in Vocabulary.load(path).words  # no noun phrases without wrappers
    path.write_text(plain + "spoken_singular: ['Could you find {}?']\nsides: {left of: left}\n")
    vocabulary = Vocabulary.load(path)
    normaliser = Normaliser(vocabulary)
    for said in ("could you find the red one", "could you find a mug",
                 "could you find the mug to the left of the red mug"):  # fmt: skip
        assert normaliser.is_command(said), said
    assert not normaliser.is_command("could you find the red")
    path.write_text(plain + "sides: {next to: beside}\n")
    with pytest.raises(ValueError, match="sides \\['next to'\\] are no relations"):
        Vocabulary.load(path)
    path.write_text(plain + "spoken_plural: ['show me']\n")
    with pytest.raises(ValueError, match="'show me' must contain exactly one"):
        Vocabulary.load(path)
