"""Audio as the recogniser wants it: mono float32 in [-1, 1] at 16 kHz.

Every source (file, microphone, audio topic) converts to this one form here, so voice activity
detection and the engines never see another rate or channel layout. Files are read with soundfile
(libsndfile: WAV, FLAC, OGG) and resampled with soxr.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16_000  # what Whisper, pocketsphinx's en-us model and silero VAD expect
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioError(ValueError):
    """A file or message that cannot be read as audio; the message names the file and why."""


def to_mono(samples: np.ndarray, channels: int) -> np.ndarray:
    """Interleaved or (N, C) samples -> (N,) float32 mean of the channels.

    Arguments:
        samples (np.ndarray): int16 (full scale 32768) or float samples, interleaved (N * C,)
            or shaped (N, C).
        channels (int): number of interleaved channels, >= 1.
    Returns:
        (np.ndarray): (N,) float32 in [-1, 1].
    """
    if channels < 1:
        raise AudioError(f"audio must have at least one channel, got {channels}")
    if samples.size % channels:
        raise AudioError(f"{samples.size} samples do not split into {channels} channels")
    scale = 32768.0 if samples.dtype == np.int16 else 1.0
    frames = samples.reshape(-1, channels).astype(np.float32) / scale
    return frames.mean(axis=1) if channels > 1 else frames[:, 0]


def resample(audio: np.ndarray, rate: int) -> np.ndarray:
    """(N,) float32 at ``rate`` Hz -> float32 at 16 kHz (a copy only when the rate differs)."""
    if rate == SAMPLE_RATE:
        return audio.astype(np.float32, copy=False)
    return soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32, copy=False)


class StreamConverter:
    """Chunks of one stream (any rate, any channel count) -> mono 16 kHz chunks.

    A stream resampler keeps its filter state across chunks, so a microphone or topic stream is
    converted without clicks at chunk borders. A change of rate or channel count mid-stream is
    an AudioError: the caller starts a new converter.
    """

    def __init__(self, rate: int, channels: int) -> None:
        if rate < 8000 or rate > 192_000:
            raise AudioError(f"sample rate must be 8000..192000 Hz, got {rate}")
        self.rate, self.channels = rate, channels
        self._stream = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """One chunk, (N * C,) or (N, C), int16 or float -> (M,) float32 at 16 kHz."""
        mono = to_mono(samples, self.channels)
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono).astype(np.float32, copy=False)


def read_audio(path: str | Path) -> np.ndarray:
    """A whole audio file as (N,) float32 mono at 16 kHz; AudioError if it cannot be decoded."""
    path = Path(path)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioError(f"{path}: not a readable audio file ({error})") from error
    if data.shape[0] == 0:
        raise AudioError(f"{path}: no audio samples")
    return resample(data.mean(axis=1), rate)


def audio_files(path: str | Path) -> list[Path]:
    """``path`` itself if it is a file, else the audio files in the folder, sorted by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    raise FileNotFoundError(f"audio file or folder {path} does not exist")


def write_audio(path: str | Path, audio: np.ndarray) -> None:
    """(N,) float32 at 16 kHz -> 16-bit PCM WAV or FLAC, or Ogg Vorbis (by suffix: a third of
    FLAC's size for speech, which keeps the committed benchmark sets small); clipped to [-1, 1]."""
    subtype = "VORBIS" if Path(path).suffix.lower() == ".ogg" else "PCM_16"
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype=subtype)


def speech_power(audio: np.ndarray, frame: int = 320) -> float:
    """Mean power of the frames within 30 dB of the loudest 20 ms frame: the speech, not the
    pauses around it (a noise level set against the whole clip would depend on its padding)."""
    usable = audio[: len(audio) // frame * frame].reshape(-1, frame)
    power = (usable.astype(np.float64) ** 2).mean(axis=1)
    return float(power[power >= power.max() * 1e-3].mean())


def add_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus white Gaussian noise at ``snr_db`` dB below its speech power."""
    noise_power = speech_power(audio) / 10 ** (snr_db / 10)
    noise = rng.normal(0.0, np.sqrt(noise_power), size=audio.shape)
    return (audio + noise).astype(np.float32)
