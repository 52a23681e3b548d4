"""One interface for the speech recognisers (``load_engine`` in ``recognizers`` picks one by name).

An engine turns one utterance (mono float32 at 16 kHz, a few seconds) into a ``Recognition``:
its best text, a confidence in [0, 1] and the other hypotheses it considered. Engines are loaded
once (configure) and called from one thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pgpt_ros.voice.vocabulary import Vocabulary

ENGINES = ("whisper", "pocketsphinx")


@dataclass(frozen=True)
class Recognition:
    """What an engine heard. ``text`` is empty when it found nothing it could say."""

    text: str
    confidence: float
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineConfig:
    """How to build an engine.

    Arguments:
        engine (str): "whisper" (faster-whisper / CTranslate2) or "pocketsphinx".
        model_path (str): Whisper: a CTranslate2 Whisper directory ("" = the bundled tiny.en);
            pocketsphinx: an acoustic model directory ("" = its bundled en-us).
        bias (bool): favour the vocabulary (Whisper prompt / pocketsphinx grammar).
        vocabulary (Vocabulary): the command words.
        threads (int): CPU threads for the engine.
        beam_size (int): Whisper beam width; every finished beam is kept as an alternative.
        prompt (str | None): Whisper's prompt when ``bias`` is set; None = the vocabulary's
            example commands (``Vocabulary.prompt``).
    """

    engine: str = "whisper"
    model_path: str = ""
    bias: bool = True
    vocabulary: Vocabulary = field(default_factory=Vocabulary.shapesref)
    threads: int = 1
    beam_size: int = 5
    prompt: str | None = None


class Engine(Protocol):
    """A loaded speech recogniser."""

    name: str

    def transcribe(self, audio: np.ndarray) -> Recognition:
        """One utterance, (N,) float32 mono at 16 kHz -> what was said."""
        ...
