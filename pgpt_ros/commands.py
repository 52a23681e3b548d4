"""Command text: the one rule that turns what a user typed or said into what the model reads.

Training (the collator), evaluation and the node all call ``normalize_command``, so the model
only ever sees text in this form:

1. Unicode NFKC (full-width letters, ligatures and compatibility forms become plain ones).
2. Tabs, newlines and other whitespace become spaces. Any other control or format character
   (NUL, escape codes, zero-width characters, bidirectional marks) is an error: it would be
   invisible in logs and can truncate the text in C code downstream.
3. The model's reserved tokens (``<image>``, ``<vis>``, any case) are an error: they are not
   words, and ``<vis>`` in a prompt needs a box the caller supplies.
4. Lower case; runs of spaces collapse to one; leading and trailing spaces go.
5. Punctuation at the end (``?``, ``!``, ``.``, ``,``, ``;``, ``:``, repeated or spaced) goes, and
   a run of the same punctuation inside collapses to one: "find the red circle!!" and "find the red
   circle ?" read as "find the red circle".
6. Empty after all that: an error.

Errors are ``BadCommand`` with a reason a user can act on (the node answers BAD_COMMAND).
"""

from __future__ import annotations

import re
import unicodedata

RESERVED_TOKENS = ("<image>", "<vis>")
_TRAILING_PUNCTUATION = re.compile(r"[\s?!.,;:]+$")
_REPEATED_PUNCTUATION = re.compile(r"([?!.,;:])(\s*\1)+")
_SPACES = re.compile(r"\s+")


class BadCommand(ValueError):
    """The text cannot be a command; the message says why."""


def normalize_command(text: str) -> str:
    """``text`` in the form the model reads (see the module docstring); raises BadCommand."""
    if not isinstance(text, str):
        raise BadCommand(f"command must be text, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text)
    for index, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs") and not char.isspace():
            raise BadCommand(
                f"command contains the control character U+{ord(char):04X} at position {index}"
            )
    lowered = text.lower()
    for token in RESERVED_TOKENS:
        if token in lowered:
            raise BadCommand(f"command contains the reserved token {token}")
    command = _SPACES.sub(" ", lowered).strip()
    command = _REPEATED_PUNCTUATION.sub(r"\1", command)
    command = _TRAILING_PUNCTUATION.sub("", command)
    if not command:
        raise BadCommand("command is empty")
    return command
