"""A stream of audio -> utterances: stretches of speech between pauses.

Speech starts at the first frame whose voice probability reaches ``threshold`` and ends when it
stays below ``threshold - 0.15`` for ``min_silence_s`` (hysteresis: one quiet frame inside a word
does not cut it). An utterance keeps ``padding_s`` of audio on both sides (recognisers need the
onset), is dropped if it holds less than ``min_speech_s`` of speech (a click, a cough) and is cut
at ``max_utterance_s``. Times are the stream's clock in seconds (the source stamps each chunk);
``end_s`` is where the speech stopped, the reference for end-of-speech latency.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pgpt_ros.voice.audio import SAMPLE_RATE
from pgpt_ros.voice.vad import FRAME

FRAME_S = FRAME / SAMPLE_RATE
HYSTERESIS = 0.15


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech: (N,) float32 at 16 kHz with padding, speech start and end times."""

    audio: np.ndarray
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SegmenterConfig:
    threshold: float = 0.5
    min_silence_s: float = 0.4
    min_speech_s: float = 0.2
    padding_s: float = 0.2
    max_utterance_s: float = 15.0

    def problems(self) -> list[str]:
        checks = [
            (HYSTERESIS < self.threshold < 1.0, f"vad_threshold must be in (0.15, 1), got {self.threshold}"),
            (0.05 <= self.min_silence_s <= 5.0, f"min_silence_s must be in [0.05, 5], got {self.min_silence_s}"),
            (0.0 <= self.min_speech_s <= 5.0, f"min_speech_s must be in [0, 5], got {self.min_speech_s}"),
            (1.0 <= self.max_utterance_s <= 30.0, f"max_utterance_s must be in [1, 30] (Whisper hears 30 s), got {self.max_utterance_s}"),
        ]  # fmt: skip
        return [message for ok, message in checks if not ok]


class Segmenter:
    """Feeds on chunks of any length; returns the utterances that ended in them."""

    def __init__(self, vad: Callable[[np.ndarray], float], config: SegmenterConfig) -> None:
        self.vad = vad
        self.config = config
        self._pad_frames = round(config.padding_s / FRAME_S)
        self._silence_frames = max(1, round(config.min_silence_s / FRAME_S))
        self.reset()

    def reset(self) -> None:
        """Forgets the stream (a new file, a gap): no open utterance, fresh VAD state."""
        if hasattr(self.vad, "reset"):
            self.vad.reset()
        self._pending = np.zeros(0, np.float32)
        self._clock: float | None = None  # stream time of the first pending sample
        self._before: deque[np.ndarray] = deque(maxlen=self._pad_frames)
        self._frames: list[np.ndarray] = []  # the open utterance, from its first speech frame
        self._start_s = 0.0
        self._speech_frames = 0
        self._last_speech = 0  # index into _frames after the last speech frame
        self._quiet = 0

    @property
    def in_speech(self) -> bool:
        return bool(self._frames)

    def feed(self, samples: np.ndarray, start_s: float) -> list[Utterance]:
        """The next chunk of the stream, (N,) float32 at 16 kHz, its first sample at ``start_s``."""
        if self._clock is None:
            self._clock = start_s - len(self._pending) / SAMPLE_RATE
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        done = []
        while len(self._pending) >= FRAME:
            frame, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            utterance = self._step(frame, self._clock)
            self._clock += FRAME_S
            if utterance is not None:
                done.append(utterance)
        return done

    def flush(self) -> Utterance | None:
        """Ends the stream: the open utterance (if long enough), then a reset."""
        utterance = self._close() if self._frames else None
        self.reset()
        return utterance

    def _step(self, frame: np.ndarray, time_s: float) -> Utterance | None:
        config = self.config
        probability = self.vad(frame)
        if not self._frames:
            if probability < config.threshold:
                self._before.append(frame)
                return None
            self._start_s = time_s
        self._frames.append(frame)
        if probability >= config.threshold - HYSTERESIS:
            self._speech_frames += 1
            self._last_speech = len(self._frames)
            self._quiet = 0
        else:
            self._quiet += 1
        if self._quiet >= self._silence_frames:
            return self._close()
        if len(self._frames) * FRAME_S >= config.max_utterance_s:
            return self._close()
        return None

    def _close(self) -> Utterance | None:
        speech = self._frames[: self._last_speech]
        after = self._frames[self._last_speech : self._last_speech + self._pad_frames]
        enough = self._speech_frames * FRAME_S >= self.config.min_speech_s
        utterance = None
        if enough and speech:
            audio = np.concatenate([*self._before, *speech, *after])
            end_s = self._start_s + len(speech) * FRAME_S
            utterance = Utterance(audio, self._start_s, end_s)
        self._before.clear()
        self._frames, self._speech_frames, self._last_speech, self._quiet = [], 0, 0, 0
        return utterance
