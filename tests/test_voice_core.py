"""The voice core without a recogniser: audio, VAD segmentation, vocabulary, normaliser, decisions,
sources and parameters. Fixtures: tests/fixtures/voice (scripts/make_voice_fixtures.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from pgpt_ros.voice.audio import (
    SAMPLE_RATE,
    AudioError,
    StreamConverter,
    add_noise,
    read_audio,
    speech_power,
)
from pgpt_ros.voice.engine import Recognition
from pgpt_ros.voice.listener import Listener
from pgpt_ros.voice.normalise import Normaliser, drop_repeats
from pgpt_ros.voice.params import VoiceParams
from pgpt_ros.voice.segmenter import Segmenter, SegmenterConfig
from pgpt_ros.voice.sources import FileSource, MicrophoneSource
from pgpt_ros.voice.vad import SileroVad
from pgpt_ros.voice.vocabulary import Vocabulary

FIXTURES = Path(__file__).parent / "fixtures" / "voice"


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter(SileroVad(), SegmenterConfig())


@pytest.fixture(scope="module")
def normaliser() -> Normaliser:
    return Normaliser(Vocabulary.shapesref())


def utterances(segmenter: Segmenter, audio: np.ndarray, start_s: float = 0.0):
    found = segmenter.feed(audio, start_s)
    last = segmenter.flush()
    return found + ([last] if last else [])


@pytest.mark.parametrize(
    "heard, command",
    [
        ("Uh, find the, the red circel.", "find the red circle"),
        ("All purple shades.", "all purple shapes"),
        ("um show me the top most star", "show me the topmost star"),
        ("the circle left on the red square", "the circle left of the red square"),
        ("find the find the blue star", "find the blue star"),
        (
            "Can you find the square below the purple circle, please?",
            "can you find the square below the purple circle please",
        ),  # fmt: skip
        ("the circle that is red", "the circle that is red"),
        ("where are all the green triangles", "where are all the green triangles"),
    ],
)
def test_normaliser_cleans_without_changing_the_meaning(normaliser, heard, command):
    assert normaliser(heard) == command
    assert normaliser.is_command(command)


def test_normaliser_tells_commands_from_other_speech(normaliser):
    assert not normaliser.is_command(normaliser("what a lovely day it is"))
    assert not normaliser.is_command(normaliser("find the"))
    assert drop_repeats(["the", "the", "red", "red", "circle"]) == ["the", "red", "circle"]


def test_vocabulary_from_a_file_makes_its_own_grammar(tmp_path):
    path = tmp_path / "kitchen.yaml"
    path.write_text(
        "attributes: [red, white]\nnouns: [mug, glass]\nplurals: {glass: glasses}\n"
        "relations: [next to]\nextremes: [largest]\nsingular_templates: ['find the {}']\n"
        "plural_templates: ['all {}']\n"
    )
    vocabulary = Vocabulary.load(path)
    assert {"mug", "glasses", "white", "next", "largest", "all"} <= vocabulary.content_words
    grammar = vocabulary.jsgf()
    assert "(mug | glass)" in grammar and "(mugs | glasses)" in grammar and "next to" in grammar
    assert Normaliser(vocabulary)("find the read mug next to the glass") == (
        "find the red mug next to the glass"
    )
    path.write_text("nouns: [mug]\ncolors: [red]\n")
    with pytest.raises(ValueError, match="unknown vocabulary fields \\['colors'\\]"):
        Vocabulary.load(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Vocabulary.load(tmp_path / "missing.yaml")
    assert Vocabulary.load("") == Vocabulary.shapesref()


def test_audio_is_read_converted_and_noised_at_the_asked_snr(tmp_path):
    audio = read_audio(FIXTURES / "red_circle.wav")
    assert audio.dtype == np.float32 and 1.5 < len(audio) / SAMPLE_RATE < 4
    stereo_48k = np.repeat((np.sin(np.arange(48_000) / 10) * 8000).astype(np.int16), 2)
    converter = StreamConverter(48_000, 2)
    converted = np.concatenate([converter(part) for part in np.split(stereo_48k, 4)])
    assert abs(len(converted) - SAMPLE_RATE) < 400  # one second, less the resampler's delay
    noisy = add_noise(audio, 10.0, np.random.default_rng(0))
    snr = 10 * np.log10(speech_power(audio) / np.mean((noisy - audio).astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.3
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(AudioError, match="corrupt.wav: not a readable audio file"):
        read_audio(corrupt)
    with pytest.raises(AudioError, match="channels"):
        StreamConverter(16_000, 2)(np.zeros(3, np.int16))


def test_segmenter_finds_each_command_once_and_nothing_in_silence_or_noise(segmenter):
    for name in ("red_circle", "red_circle_snr20", "red_circle_snr10", "blue_star_left"):
        audio = read_audio(FIXTURES / f"{name}.wav")
        [utterance] = utterances(segmenter, audio, start_s=100.0)
        # The clips have 0.5 s of silence before the speech and 0.8 s after it.
        assert 100.3 < utterance.start_s < 100.8, name
        assert utterance.start_s + 0.8 < utterance.end_s < 100.0 + len(audio) / SAMPLE_RATE - 0.5
    for name in ("silence", "noise_burst"):
        assert utterances(segmenter, read_audio(FIXTURES / f"{name}.wav")) == [], name


class ScriptedEngine:
    """Answers each utterance with the next scripted Recognition."""

    name = "scripted"

    def __init__(self, *answers: Recognition) -> None:
        self.answers = list(answers)

    def transcribe(self, audio: np.ndarray) -> Recognition:
        return self.answers.pop(0)


def test_listener_decides_per_utterance_and_says_why(segmenter, normaliser):
    clip = read_audio(FIXTURES / "red_circle.wav")
    engine = ScriptedEngine(
        Recognition("Uh, find the red circle.", 0.9),
        Recognition("find the red circle", 0.1),
        Recognition("what a lovely day", 0.9),
        Recognition("mumble", 0.9, ("find the blue star",)),
        Recognition("", 0.0),
    )
    listener = Listener(engine, segmenter, normaliser, min_confidence=0.3)
    results = [(listener.feed(clip, 0.0) + listener.end_stream())[0] for _ in range(5)]
    assert [(t.status, t.command) for t in results] == [
        ("FORWARDED", "find the red circle"),
        ("LOW_CONFIDENCE", "find the red circle"),
        ("NOT_A_COMMAND", "what a lovely day"),  # cleaned words, no command
        ("FORWARDED", "find the blue star"),  # an alternative that is a command wins
        ("NOTHING_HEARD", ""),
    ]
    assert "below min_confidence 0.30" in results[1].message
    assert results[0].end_s > results[0].start_s > 0


def test_wake_word_and_push_to_talk_gate_commands(segmenter, normaliser):
    clip = read_audio(FIXTURES / "red_circle.wav")
    engine = ScriptedEngine(Recognition("Robot, find the red circle", 0.9),
                            Recognition("find the red circle", 0.9))  # fmt: skip
    listener = Listener(engine, segmenter, normaliser, activation="wake_word", wake_word="robot")
    first, second = ((listener.feed(clip, 0.0) + listener.end_stream())[0] for _ in range(2))
    assert (first.status, first.command) == ("FORWARDED", "find the red circle")
    assert second.status == "NO_WAKE_WORD" and not second.command

    engine = ScriptedEngine(Recognition("find the red circle", 0.9))
    listener = Listener(engine, segmenter, normaliser, activation="push_to_talk")
    assert listener.feed(clip, 0.0) == []  # button up: nothing is heard
    listener.set_talking(True)
    listener.feed(clip[: len(clip) // 2], 0.0)  # released in the middle of the speech
    [heard] = listener.set_talking(False)
    assert heard.status == "FORWARDED" and engine.answers == []


def test_file_source_reports_a_corrupt_file_and_goes_on(tmp_path):
    (tmp_path / "a_corrupt.wav").write_bytes(b"not audio at all")
    (tmp_path / "b_command.wav").write_bytes((FIXTURES / "red_circle.wav").read_bytes())
    errors: list[str] = []
    source = FileSource(tmp_path, realtime=False, on_error=errors.append)
    chunks = list(source.chunks(threading.Event()))
    assert len(errors) == 1 and "a_corrupt.wav" in errors[0]
    assert sum(c.end_of_stream for c in chunks) == 1
    assert sum(len(c.samples) for c in chunks) > len(read_audio(FIXTURES / "red_circle.wav"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .wav, .flac or .ogg files in"):
        FileSource(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FileSource(tmp_path / "missing.wav")


def test_missing_microphone_and_bad_parameters_are_one_clear_error():
    with pytest.raises(RuntimeError, match="^microphone .*(PortAudio|cannot record)"):
        MicrophoneSource("no-such-microphone-anywhere")
    assert VoiceParams().validated() == VoiceParams()
    problems = VoiceParams(source="file", engine="kaldi", min_confidence=2.0).problems()
    assert problems == [
        "source file needs file_path",
        "engine must be one of ('whisper', 'pocketsphinx'), got 'kaldi'",
        "min_confidence must be in [0, 1], got 2.0",
    ]
