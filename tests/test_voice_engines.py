"""Both speech engines on the committed fixtures, and their load-time errors. One load each."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgpt_ros.voice import whisper
from pgpt_ros.voice.audio import read_audio
from pgpt_ros.voice.engine import EngineConfig
from pgpt_ros.voice.listener import Listener
from pgpt_ros.voice.normalise import Normaliser
from pgpt_ros.voice.recognizers import load_engine
from pgpt_ros.voice.segmenter import Segmenter, SegmenterConfig
from pgpt_ros.voice.sphinx import pronunciation
from pgpt_ros.voice.vad import SileroVad
from pgpt_ros.voice.vocabulary import Vocabulary

FIXTURES = Path(__file__).parent / "fixtures" / "voice"
# faster-whisper keeps the first max_length // 2 - 1 = 223 tokens of the prompt text and drops the
# rest, mid-sentence (WhisperModel.get_prompt, max_length 448).
PROMPT_TOKENS = 223
# What each engine gets right (the benchmark has the error rates): pocketsphinx's grammar holds
# up in noise but hears the British relation command as "all the green squares".
COMMANDS = {
    "whisper": {"red_circle.wav": "find the red circle",
                "blue_star_left.wav": "the blue star left of the green square"},
    "pocketsphinx": {"red_circle.wav": "find the red circle",
                     "red_circle_snr10.wav": "find the red circle"},
}  # fmt: skip


@pytest.fixture(scope="module", params=["whisper", "pocketsphinx"])
def listener(request) -> Listener:
    vocabulary = Vocabulary.shapesref()
    engine = load_engine(EngineConfig(engine=request.param, vocabulary=vocabulary))
    return Listener(engine, Segmenter(SileroVad(), SegmenterConfig()), Normaliser(vocabulary))


def hear(listener: Listener, name: str):
    return listener.feed(read_audio(FIXTURES / name), 0.0) + listener.end_stream()


def test_each_engine_transcribes_the_fixture_commands(listener):
    for name, command in COMMANDS[listener.engine.name].items():
        [heard] = hear(listener, name)
        assert (heard.status, heard.command) == ("FORWARDED", command), (name, heard)
        assert 0.3 <= heard.confidence <= 1.0
    if listener.engine.name == "whisper":
        assert heard.alternatives  # the beam's other hypotheses


def test_each_engine_forwards_nothing_for_non_commands(listener):
    """pocketsphinx's grammar search ends in the command nearest whatever was said (with the
    spoken forms, "what a lovely day it is" -> "where are all the green ones"): its forwarded
    non-commands are counted by the benchmark, not tested here."""
    [heard] = hear(listener, "not_a_command.wav")
    if listener.engine.name == "whisper":
        assert heard.status == "NOT_A_COMMAND"
    assert hear(listener, "silence.wav") == [] and hear(listener, "noise_burst.wav") == []


def test_whisper_model_directory_and_weights_are_checked(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="Whisper model directory .* does not exist"):
        load_engine(EngineConfig(model_path=str(tmp_path / "missing")))
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="missing config.json, tokenizer.json"):
        load_engine(EngineConfig(model_path=str(tmp_path)))
    monkeypatch.setattr(whisper, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="not the Whisper tiny.en weights"):
        load_engine(EngineConfig())


def test_pocketsphinx_spells_compound_words_and_refuses_unknown_ones(tmp_path):
    dictionary = {"left": "L EH F T", "most": "M OW S T"}
    assert pronunciation("leftmost", dictionary.get) == "L EH F T M OW S T"
    assert pronunciation("xyzzy", dictionary.get) is None
    path = tmp_path / "vocabulary.yaml"
    path.write_text("nouns: [qwxzt]\nsingular_templates: ['find the {}']\n")
    with pytest.raises(ValueError, match="no pronunciation for qwxzt"):
        load_engine(EngineConfig(engine="pocketsphinx", vocabulary=Vocabulary.load(path)))
    with pytest.raises(FileNotFoundError, match="not a pocketsphinx acoustic model"):
        load_engine(EngineConfig(engine="pocketsphinx", model_path=str(tmp_path)))


def test_the_example_prompt_fits_whispers_prompt_whole():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(whisper.bundled_model_dir() / "tokenizer.json"))
    prompt = Vocabulary.shapesref().prompt()
    assert len(tokenizer.encode(" " + prompt).ids) < PROMPT_TOKENS
