"""Transcript -> the clean lower-case command the perception model understands.

"Uh, find the, the red circel." -> "find the red circle". Steps, in order: lower case and words
only; fillers dropped; words split by the recogniser joined when the join is a vocabulary word
("top most" -> "topmost"); near-miss words snapped to the closest vocabulary word (rapidfuzz,
character similarity); the second word of a relation repaired ("left on the" -> "left of the");
words outside the vocabulary dropped (the model was never trained on them); repeated words and
phrases (stutters, restarts) said once. The meaning words are never reordered or invented.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz, process

from pgpt_ros.voice.vocabulary import Vocabulary

FILLERS = frozenset({"uh", "uhm", "um", "umm", "er", "erm", "ah", "eh", "hmm", "hm", "mm", "mhm"})
SNAP_CUTOFF = 75.0  # rapidfuzz ratio (0-100): "shades" -> "shapes" is 83, "on" -> "of" 50
MAX_REPEAT = 3  # longest phrase (words) whose immediate repetition counts as a stutter


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
    """Maps transcripts onto one vocabulary; ``is_command`` says whether one names anything."""

    def __init__(self, vocabulary: Vocabulary, snap_cutoff: float = SNAP_CUTOFF) -> None:
        self.vocabulary = vocabulary
        self._known = frozenset(vocabulary.words)
        self._choices = list(vocabulary.words)
        self._cutoff = snap_cutoff
        self._relations = [r.split() for r in vocabulary.relations if len(r.split()) == 2]
        self._targets = frozenset(
            {*vocabulary.attributes, *vocabulary.nouns, *map(vocabulary.plural, vocabulary.nouns)}
        )

    def __call__(self, text: str) -> str:
        tokens = [t for t in words(text) if t not in FILLERS]
        tokens = self._join_split_words(tokens)
        tokens = [self._snap(t) for t in tokens]
        tokens = self._repair_relations(tokens)
        tokens = [t for t in tokens if t in self._known]
        return " ".join(drop_repeats(tokens))

    def is_command(self, command: str) -> bool:
        """Whether ``command`` names an object (an attribute or a noun): "find the" does not."""
        return any(word in self._targets for word in command.split())

    def _join_split_words(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        for token in tokens:
            if out and out[-1] + token in self._known and token not in self._known - {"most"}:
                out[-1] += token
            else:
                out.append(token)
        return out

    def _snap(self, token: str) -> str:
        if token in self._known:
            return token
        best = process.extractOne(
            token, self._choices, scorer=fuzz.ratio, score_cutoff=self._cutoff
        )
        return best[0] if best else token

    def _repair_relations(self, tokens: list[str]) -> list[str]:
        """ "left on the" / "left the" -> "left of the": the grammar allows only the relation."""
        out = list(tokens)
        for first, second in self._relations:
            for i in range(len(out) - 1, -1, -1):
                if out[i] != first or (i + 1 < len(out) and out[i + 1] == second):
                    continue
                if i + 1 < len(out) and out[i + 1] not in self._known:
                    out[i + 1] = second
                elif i + 1 < len(out) and out[i + 1] == "the":
                    out.insert(i + 1, second)
        return out
