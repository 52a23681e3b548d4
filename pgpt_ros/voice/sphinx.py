"""pocketsphinx (CMU Sphinx) with its bundled en-us model: the engine for small CPUs.

Biased, it decodes against a JSGF grammar generated from the vocabulary, so it can only hear
commands (fast: about a tenth of real time); unbiased, it uses the bundled general English
language model. Words the pronouncing dictionary lacks ("leftmost") are spelled from known parts
("left" + "most"); a word that cannot be is a clear error at load.

Confidence: with a grammar, pocketsphinx's lattice posterior is unusable (its best-path pass
returns partial hypotheses for some grammars, so it is switched off): a hypothesis that reaches
the end of the grammar gets 1.0, none gets 0.0. With the language model the lattice posterior is
the confidence and the N-best list gives the alternatives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pgpt_ros.voice.engine import EngineConfig, Recognition

ALTERNATIVES = 3
# A microphone never records exact zeros, but files (synthesised speech, padded recordings) do, and
# pocketsphinx's front end (log energies, cepstral mean normalisation) goes wrong on digital
# silence: 7 of 16 clean benchmark commands right without this floor, 14 with it (its ``dither``
# option: 9). Seeded, so the same audio always gives the same transcript.
NOISE_FLOOR = 1e-4  # -80 dBFS white noise


def pronunciation(word: str, lookup) -> str | None:
    """Phones of ``word``: from the dictionary, or joined from two dictionary words."""
    phones = lookup(word)
    if phones:
        return phones
    for cut in range(2, len(word) - 1):
        head, tail = lookup(word[:cut]), lookup(word[cut:])
        if head and tail:
            return f"{head} {tail}"
    return None


class SphinxEngine:
    """pocketsphinx Decoder, one utterance at a time."""

    name = "pocketsphinx"

    def __init__(self, config: EngineConfig) -> None:
        from pocketsphinx import Decoder

        options = {"samprate": 16000, "loglevel": "FATAL", "bestpath": not config.bias}
        if config.model_path:
            path = Path(config.model_path)
            if not (path / "mdef").is_file():
                raise FileNotFoundError(
                    f"{path} is not a pocketsphinx acoustic model directory (no mdef file)"
                )
            options["hmm"] = str(path)
        self._decoder = Decoder(**options)
        self._grammar = config.bias
        if self._grammar:
            self._add_words(config.vocabulary.words)
            self._decoder.add_jsgf_string("command", config.vocabulary.jsgf())
            self._decoder.activate_search("command")

    def _add_words(self, words) -> None:
        unknown = []
        for word in words:
            if self._decoder.lookup_word(word):
                continue
            phones = pronunciation(word, self._decoder.lookup_word)
            if phones is None:
                unknown.append(word)
            else:
                self._decoder.add_word(word, phones, False)
        if unknown:
            raise ValueError(
                f"pocketsphinx's dictionary has no pronunciation for {', '.join(unknown)}; "
                "use other words in the vocabulary file or the whisper engine"
            )

    def transcribe(self, audio: np.ndarray) -> Recognition:
        floor = np.random.default_rng(0).normal(0.0, NOISE_FLOOR, size=audio.shape)
        pcm = (np.clip(audio + floor, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        decoder = self._decoder
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is None or not hypothesis.hypstr:
            return Recognition("", 0.0)
        if self._grammar:
            return Recognition(hypothesis.hypstr, 1.0)
        others = []
        for best, _ in zip(decoder.nbest(), range(ALTERNATIVES + 1), strict=False):
            if best is not None and best.hypstr not in ("", hypothesis.hypstr, *others):
                others.append(best.hypstr)
        return Recognition(hypothesis.hypstr, float(decoder.get_prob()), tuple(others))
