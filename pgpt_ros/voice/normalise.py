"""Transcript -> the clean lower-case command the perception model understands, or none.

"Uh, find the, the red circel." -> "find the red circle". First the transcript is cleaned: lower
case and words only, fillers dropped, words the recogniser split joined when the join is a
vocabulary word ("top most" -> "topmost"), repeated words and phrases (stutters, restarts) said
once. Then it is snapped onto the command grammar (``grammar.Snapper``): near-miss words repaired
("circel" -> "circle", "left on the" -> "left of the"), words outside the grammar dropped, missing
"the"/"of" added. Only a transcript that reaches a command within ``MAX_COST_PER_WORD`` edits a
word is one: "stop", "turn off the lights" or "find the red" (no shape) are not, because a snap
never invents a colour, shape, relation or extreme, and a command the grammar does not hold would
be a sentence the model was never trained on.
"""

from __future__ import annotations

import re

from pgpt_ros.voice.grammar import Snap, Snapper
from pgpt_ros.voice.vocabulary import PRONOUNS, Vocabulary

FILLERS = frozenset({"uh", "uhm", "um", "umm", "er", "erm", "ah", "eh", "hmm", "hm", "mm", "mhm"})
MAX_REPEAT = 3  # longest phrase (words) whose immediate repetition counts as a stutter
# Mean edit cost per heard word that still counts as a command: "find the red circel" costs 0.08
# a word, "go to the charging dock" -> "point to the triangle" would cost 0.42.
MAX_COST_PER_WORD = 0.35


def words(text: str) -> list[str]:
    """Lower-case words: letters and inner apostrophes; hyphens and punctuation split."""
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def drop_repeats(tokens: list[str], longest: int = MAX_REPEAT) -> list[str]:
    """Removes immediate repetitions of 1..``longest`` word phrases ("the the", "find the find
    the")."""
    out: list[str] = []
    for token in tokens:
        out.append(token)
        for n in range(1, longest + 1):
            if len(out) >= 2 * n and out[-n:] == out[-2 * n : -n]:
                del out[-n:]
                break
    return out


class Normaliser:
    """Maps transcripts onto one vocabulary's command grammar.

    Arguments:
        vocabulary (Vocabulary): the words and templates of the perception model's commands.
        max_cost_per_word (float): the most edits a heard word a command may need.
    """

    def __init__(self, vocabulary: Vocabulary,
                 max_cost_per_word: float = MAX_COST_PER_WORD) -> None:  # fmt: skip
        self.vocabulary = vocabulary
        self.snapper = Snapper(vocabulary.grammar(), vocabulary.content_words, PRONOUNS)
        self._known = self.snapper.known
        self.max_cost_per_word = max_cost_per_word

    def clean(self, text: str) -> list[str]:
        """The heard words without fillers, split words joined, stutters said once."""
        tokens: list[str] = []
        for token in (t for t in words(text) if t not in FILLERS):
            joined = tokens[-1] + token if tokens else ""
            if joined in self._known and token not in self._known - {"most"}:
                tokens[-1] = joined
            else:
                tokens.append(token)
        return drop_repeats(tokens)

    def snap(self, text: str) -> Snap | None:
        """The command nearest ``text``, or None when none is near enough."""
        heard = self.clean(text)
        snap = self.snapper(heard)
        if snap is None or snap.cost > self.max_cost_per_word * max(len(heard), 1):
            return None
        return snap

    def __call__(self, text: str) -> str:
        """The command ``text`` means, or its cleaned words when it is no command."""
        snap = self.snap(text)
        return snap.command if snap is not None else " ".join(self.clean(text))

    def is_command(self, command: str) -> bool:
        """Whether ``command`` is, word for word, a command of the grammar."""
        snap = self.snapper(command.split())
        return snap is not None and snap.cost == 0.0
