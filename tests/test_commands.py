"""The one command normalisation rule (pgpt_ros.commands), case by case."""

import pytest

from pgpt_ros.commands import BadCommand, normalize_command


@pytest.mark.parametrize(
    "text, expected",
    [
        ("find the red circle", "find the red circle"),
        ("THE RED CIRCLE", "the red circle"),
        ("  the   red \t circle  ", "the red circle"),
        ("the red circle!!", "the red circle"),
        ("the red circle ?", "the red circle"),
        ("where is the red circle?!.", "where is the red circle"),
        ("can you find the red circle, please?", "can you find the red circle, please"),
        ("the red,, circle", "the red, circle"),
        ("ｔｈｅ　ｒｅｄ　ｃｉｒｃｌｅ", "the red circle"),  # full-width letters and space
        ("the red\ncircle", "the red circle"),
        ("赤い丸", "赤い丸"),
    ],
)
def test_normalised_form(text, expected):
    assert normalize_command(text) == expected
    assert normalize_command(expected) == expected  # normalising twice changes nothing


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty"),
        (" ?! ", "empty"),
        ("find\x00 the circle", "U\\+0000 at position 4"),
        ("find\x1b[31m it", "U\\+001B"),
        ("the\u200bcircle", "U\\+200B"),
        ("what is at <VIS>", "reserved token <vis>"),
        ("<image> red", "reserved token <image>"),
        (None, "must be text"),
    ],
)
def test_what_cannot_be_a_command(text, reason):
    with pytest.raises(BadCommand, match=reason):
        normalize_command(text)
