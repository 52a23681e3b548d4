"""The command grammar, snapping transcripts onto it, and Whisper's prompt: no recogniser needed."""

from __future__ import annotations

import pytest

from pgpt_ros.data.shapesref import ShapesRef, commands_for
from pgpt_ros.voice.grammar import Alt, Grammar, Opt, Ref, Seq, Snapper
from pgpt_ros.voice.normalise import Normaliser, words
from pgpt_ros.voice.vocabulary import Vocabulary


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
        ("Find all the yellow stars.", "find all yellow stars"),  # "the" dropped, not "all the"
    ],
)  # fmt: skip
def test_one_wrong_word_snaps_to_the_valid_command(normaliser, heard, command):
    assert normaliser(heard) == command
    assert normaliser.is_command(command)


@pytest.mark.parametrize(
    "heard",
    ["stop", "Turn off the lights in the kitchen.", "Go to the charging dock.", "find the red",
     "Thank you very much.", "What a lovely day it is."],
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


def test_the_prompt_shows_every_word_in_example_commands(normaliser):
    vocabulary = Vocabulary.shapesref()
    prompt = vocabulary.prompt()
    assert set(vocabulary.words) <= set(words(prompt))
    for sentence in prompt.split(". "):
        assert normaliser.is_command(" ".join(words(sentence))), sentence
