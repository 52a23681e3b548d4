"""voice_node's parameters: one declaration (default, meaning) and one validation, without ROS.

The node declares exactly these (read-only: the engine and source are built at configure), checks
them at start with every problem in one error, and ``pgpt-bringup --voice`` checks a params file
with the same code before it starts anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pgpt_ros.voice.engine import ENGINES
from pgpt_ros.voice.listener import ACTIVATIONS
from pgpt_ros.voice.segmenter import SegmenterConfig

SOURCES = ("microphone", "file", "topic")


def _param(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class VoiceParams:
    """Every parameter of ``voice_node`` with its default."""

    source: str = _param("microphone", "microphone, file (file_path) or topic (`audio`)")
    file_path: str = _param("", "source file: a WAV/FLAC/OGG file or a folder of them")
    realtime: bool = _param(True, "source file: pace the audio like a microphone")
    device: str = _param("", "source microphone: PortAudio device name or index; '' = default")
    sample_rate: int = _param(16000, "source microphone: recording rate in Hz")
    engine: str = _param("whisper", "whisper (faster-whisper) or pocketsphinx")
    model_path: str = _param("", "engine model directory; '' = the bundled model")
    bias: bool = _param(True, "favour the vocabulary (Whisper prompt / pocketsphinx grammar)")
    vocabulary_file: str = _param("", "YAML vocabulary of the perception model; '' = ShapesRef")
    threads: int = _param(1, "CPU threads for the engine")
    beam_size: int = _param(5, "Whisper beam width")
    min_confidence: float = _param(0.3, "utterances below are published on transcript only")
    activation: str = _param("always", "always, wake_word or push_to_talk (`push_to_talk` topic)")
    wake_word: str = _param("robot", "activation wake_word: what must start a command")
    vad_threshold: float = _param(0.5, "speech probability that starts an utterance")
    min_silence_s: float = _param(0.4, "a pause this long ends an utterance")
    autostart: bool = _param(True, "configure and activate at start (plain `ros2 run`)")

    def segmenter_config(self) -> SegmenterConfig:
        return SegmenterConfig(threshold=self.vad_threshold, min_silence_s=self.min_silence_s)

    def problems(self) -> list[str]:
        """Why these values cannot work, one line each (empty when they can)."""
        checks = [
            (self.source in SOURCES, f"source must be one of {SOURCES}, got {self.source!r}"),
            (self.source != "file" or bool(self.file_path), "source file needs file_path"),
            (self.engine in ENGINES, f"engine must be one of {ENGINES}, got {self.engine!r}"),
            (self.activation in ACTIVATIONS,
             f"activation must be one of {ACTIVATIONS}, got {self.activation!r}"),
            (8000 <= self.sample_rate <= 192_000,
             f"sample_rate must be in 8000..192000 Hz, got {self.sample_rate}"),
            (1 <= self.threads <= 64, f"threads must be in 1..64, got {self.threads}"),
            (1 <= self.beam_size <= 16, f"beam_size must be in 1..16, got {self.beam_size}"),
            (0.0 <= self.min_confidence <= 1.0,
             f"min_confidence must be in [0, 1], got {self.min_confidence}"),
        ]  # fmt: skip
        return [message for ok, message in checks if not ok] + self.segmenter_config().problems()

    def validated(self) -> VoiceParams:
        """Returns self, or raises ValueError naming every impossible value."""
        problems = self.problems()
        if problems:
            raise ValueError("invalid voice_node parameters: " + "; ".join(problems))
        return self


def describe() -> list[tuple[str, Any, str]]:
    """(name, default, help) for every parameter, in declaration order."""
    return [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(VoiceParams)]
