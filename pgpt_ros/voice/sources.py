"""Where the audio comes from: a file or folder, a microphone, or pushed messages (a topic).

Every source yields ``Chunk``s of mono float32 at 16 kHz, each stamped with the wall-clock time of
its first sample (seconds since the epoch), until ``stop`` is set. A file is paced like a live
microphone when ``realtime`` is set (demos, latency measurements) and read at full speed otherwise
(tests). The end of each file is marked so the open utterance is closed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgpt_ros.voice.audio import SAMPLE_RATE, AudioError, StreamConverter, audio_files, read_audio

CHUNK_S = 0.1  # audio per chunk: the granularity of pacing and of end-of-speech detection
POLL_S = 0.1  # how often a waiting source checks ``stop``


@dataclass(frozen=True)
class Chunk:
    samples: np.ndarray  # (N,) float32 at 16 kHz
    start_s: float  # wall-clock time of the first sample
    end_of_stream: bool = False  # a file ended: close the open utterance


class FileSource:
    """The audio files of a file or folder, one after another, each once.

    Arguments:
        path (str | Path): a WAV/FLAC/OGG file or a folder of them (sorted by name).
        realtime (bool): pace chunks at the audio's own speed, like a microphone.
        on_error (Callable[[str], None]): told about each unreadable file, which is skipped.
        gap_s (float): silence fed after each file, so each file's last words end an utterance.
    """

    def __init__(self, path: str | Path, *, realtime: bool = False,
                 on_error: Callable[[str], None] = print, gap_s: float = 0.5) -> None:  # fmt: skip
        self.files = audio_files(path)
        if not self.files:
            raise FileNotFoundError(f"no .wav, .flac or .ogg files in {path}")
        self.realtime, self.on_error, self.gap_s = realtime, on_error, gap_s

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        step = int(CHUNK_S * SAMPLE_RATE)
        for path in self.files:
            try:
                audio = read_audio(path)
            except AudioError as error:
                self.on_error(str(error))
                continue
            audio = np.concatenate([audio, np.zeros(int(self.gap_s * SAMPLE_RATE), np.float32)])
            start = time.time()
            for offset in range(0, len(audio), step):
                t = start + offset / SAMPLE_RATE
                if self.realtime and (wait := t - time.time()) > 0 and stop.wait(wait):
                    return
                if stop.is_set():
                    return
                yield Chunk(audio[offset : offset + step], t)
            yield Chunk(np.zeros(0, np.float32), start + len(audio) / SAMPLE_RATE, True)

    def close(self) -> None:
        """Nothing to release (files are read whole)."""


class PushSource:
    """Audio pushed by someone else (an audio topic's callback); ``chunks`` drains it.

    Each pushed message carries its own rate and channel count; a change starts a new converter.
    """

    def __init__(self, max_queued: int = 500) -> None:
        self._queue: queue.Queue[Chunk] = queue.Queue(maxsize=max_queued)
        self._converter: StreamConverter | None = None
        self.dropped = 0  # chunks lost because the consumer fell behind

    def push(self, samples: np.ndarray, rate: int, channels: int, start_s: float) -> None:
        """Interleaved int16 or float samples; AudioError for an impossible layout."""
        converter = self._converter
        if converter is None or (converter.rate, converter.channels) != (rate, channels):
            converter = self._converter = StreamConverter(rate, channels)
        chunk = Chunk(converter(samples), start_s)
        try:
            self._queue.put_nowait(chunk)
        except queue.Full:
            self.dropped += 1

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        while not stop.is_set():
            try:
                yield self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def close(self) -> None:
        """Nothing to release."""


class MicrophoneSource(PushSource):
    """A PortAudio input device (sounddevice), recorded at ``rate`` and converted to 16 kHz.

    Opening fails with one clear line when PortAudio (Debian: libportaudio2) or the device is
    missing, so a node without a microphone fails configure instead of hearing nothing.
    """

    def __init__(self, device: str = "", rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        try:
            import sounddevice
        except OSError as error:  # the Python package loads libportaudio at import
            raise RuntimeError(
                f"microphone unavailable: PortAudio is not installed ({error}); "
                "apt-get install libportaudio2, or use source:=file or source:=topic"
            ) from error
        chosen = int(device) if device.isdigit() else (device or None)
        try:
            sounddevice.check_input_settings(device=chosen, channels=1, samplerate=rate)
            self._stream = sounddevice.InputStream(
                device=chosen, channels=1, samplerate=rate, dtype="int16",
                blocksize=int(rate * CHUNK_S), callback=self._on_block,
            )  # fmt: skip
        except (ValueError, sounddevice.PortAudioError) as error:
            raise RuntimeError(
                f"microphone {device or '(default)'} cannot record at {rate} Hz: {error}"
            ) from error
        self._rate = rate
        self._stream.start()

    def _on_block(self, block: np.ndarray, frames: int, timing, status) -> None:
        self.push(block[:, 0], self._rate, 1, time.time() - frames / self._rate)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
