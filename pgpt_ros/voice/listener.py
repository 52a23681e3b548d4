"""The voice pipeline without ROS: audio chunks -> utterances -> transcripts with a decision.

``Listener`` feeds chunks to the segmenter, recognises each utterance, normalises it and decides
whether it becomes a command. Every utterance yields exactly one ``Transcript`` (also the ones that
are not forwarded, with the reason), so a user can see what was heard. Activation:

- ``always``: every utterance may be a command;
- ``wake_word``: only utterances that begin with the wake word ("robot, find the red star");
- ``push_to_talk``: audio is heard only while ``set_talking(True)``; releasing ends the utterance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz

from pgpt_ros.voice.engine import Engine
from pgpt_ros.voice.normalise import Normaliser, words
from pgpt_ros.voice.segmenter import Segmenter, Utterance
from pgpt_ros.voice.vocabulary import PRONOUNS

ACTIVATIONS = ("always", "wake_word", "push_to_talk")
WAKE_WORD_SIMILARITY = 80.0  # rapidfuzz ratio: "robot" heard as "robots" or "roebot" still wakes

# Transcript statuses; the Transcript message defines the same names.
FORWARDED = "FORWARDED"
LOW_CONFIDENCE = "LOW_CONFIDENCE"
NOT_A_COMMAND = "NOT_A_COMMAND"
NO_WAKE_WORD = "NO_WAKE_WORD"
NOTHING_HEARD = "NOTHING_HEARD"


@dataclass(frozen=True)
class Transcript:
    """What was heard in one utterance and what became of it.

    ``text`` is the engine's best transcript; ``command`` the normalised command (what was, or
    would have been, forwarded); ``start_s``/``end_s`` the speech's wall-clock times;
    ``processing_s`` the recognition time after the utterance ended.
    """

    text: str
    command: str
    confidence: float
    alternatives: tuple[str, ...]
    start_s: float
    end_s: float
    status: str
    message: str
    processing_s: float

    @property
    def forwarded(self) -> bool:
        return self.status == FORWARDED


class Listener:
    """Arguments:
    engine (Engine): a loaded recogniser.
    segmenter (Segmenter): voice activity -> utterances.
    normaliser (Normaliser): transcript -> command, for the model's vocabulary.
    min_confidence (float): utterances below are published but not forwarded.
    activation (str): one of ``ACTIVATIONS``.
    wake_word (str): the word(s) that must start an utterance in ``wake_word`` mode.
    """

    def __init__(self, engine: Engine, segmenter: Segmenter, normaliser: Normaliser, *,
                 min_confidence: float = 0.3, activation: str = "always",
                 wake_word: str = "robot") -> None:  # fmt: skip
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if activation == "wake_word" and not words(wake_word):
            raise ValueError("activation wake_word needs a non-empty wake_word")
        self.engine, self.segmenter, self.normaliser = engine, segmenter, normaliser
        self.min_confidence = min_confidence
        self.activation = activation
        self._wake = words(wake_word)
        self.talking = activation != "push_to_talk"

    def feed(self, samples: np.ndarray, start_s: float) -> list[Transcript]:
        """One chunk of the stream; the transcripts of the utterances that ended in it."""
        if not self.talking:
            return []
        return [self.recognise(u) for u in self.segmenter.feed(samples, start_s)]

    def end_stream(self) -> list[Transcript]:
        """The stream stopped (a file ended): recognise the utterance still open, if any."""
        utterance = self.segmenter.flush()
        return [self.recognise(utterance)] if utterance is not None else []

    def set_talking(self, talking: bool) -> list[Transcript]:
        """Push-to-talk button: pressed starts listening, released ends the utterance."""
        was, self.talking = self.talking, talking or self.activation != "push_to_talk"
        return self.end_stream() if was and not self.talking else []

    def recognise(self, utterance: Utterance) -> Transcript:
        """One utterance -> its transcript and the decision."""
        started = time.perf_counter()
        heard = self.engine.transcribe(utterance.audio)
        status, message, command = self._decide(heard.text, heard.alternatives, heard.confidence)
        return Transcript(
            text=heard.text,
            command=command,
            confidence=heard.confidence,
            alternatives=heard.alternatives,
            start_s=utterance.start_s,
            end_s=utterance.end_s,
            status=status,
            message=message,
            processing_s=time.perf_counter() - started,
        )

    def to_command(self, text: str, alternatives: tuple[str, ...] = ()) -> str:
        """The command nearest any of the engine's hypotheses (the fewest edits; the better
        ranked on a tie); else the best hypothesis' cleaned words, which are no command.

        A command that names its object only as "one" ("show me the red one") is taken from a
        lower-ranked hypothesis only if the best one says its meaning words too: with nothing
        but a colour to go on, it is what Whisper's language model guesses for any "the ... one"
        ("show me the way home" had "Show me the red one." as its third beam).
        """
        said = set(self.normaliser.clean(text))
        content = self.normaliser.vocabulary.content_words
        snaps = [snap for rank, snap in enumerate(map(self.normaliser.snap, (text, *alternatives)))
                 if snap is not None and (rank == 0 or not _pronoun_only(snap.command, said, content))]  # fmt: skip
        if not snaps:
            return self.normaliser(text)
        return min(snaps, key=lambda snap: snap.cost).command

    def _decide(self, text: str, alternatives: tuple[str, ...],
                confidence: float) -> tuple[str, str, str]:  # fmt: skip
        if not text:
            return NOTHING_HEARD, "the recogniser heard no words", ""
        if self.activation == "wake_word":
            text, alternatives = self._strip_wake_word(text), ()
            if text is None:
                return (
                    NO_WAKE_WORD,
                    f"does not start with the wake word {' '.join(self._wake)!r}",
                    "",
                )
        command = self.to_command(text, alternatives)
        if not self.normaliser.is_command(command):
            return NOT_A_COMMAND, "is no command the model knows", command
        if confidence < self.min_confidence:
            return (LOW_CONFIDENCE,
                    f"confidence {confidence:.2f} is below min_confidence {self.min_confidence:.2f}",
                    command)  # fmt: skip
        return FORWARDED, "", command

    def _strip_wake_word(self, text: str) -> str | None:
        """The words after the wake word, or None when the utterance does not start with it."""
        heard = words(text)
        n = len(self._wake)
        said = " ".join(heard[:n])
        if len(heard) < n or fuzz.ratio(said, " ".join(self._wake)) < WAKE_WORD_SIMILARITY:
            return None
        return " ".join(heard[n:])


def _pronoun_only(command: str, said: set[str], content: frozenset[str]) -> bool:
    """Whether ``command`` names its object as "one"/"ones" with meaning words not in ``said``."""
    words = set(command.split())
    return bool(words & PRONOUNS) and not (words & content) <= said
