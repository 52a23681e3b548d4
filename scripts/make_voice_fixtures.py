"""Synthesise the voice fixtures with espeak-ng: the test clips, the benchmark set, the demo clip.

    apt-get install -y espeak-ng
    PYTHONPATH=. .venv/bin/python scripts/make_voice_fixtures.py

Writes (16 kHz mono, 16-bit WAV or Ogg Vorbis, 0.5 s of silence before the speech and 0.8 s
after, so voice activity detection sees a start and an end):

- ``tests/fixtures/voice/*.wav``: a command clean and at 20 dB and 10 dB SNR (white noise), a
  second command in another voice, a sentence that is not a command, near-silence and a burst of
  noise;
- ``tests/fixtures/voice/bench/*.ogg`` and ``manifest.json``: 48 commands of every ShapesRef kind
  and the phrasings the model is trained on, across 8 espeak-ng voices and 4 speeds (the benchmark
  adds noise itself, with the same seeded function, so only clean audio is committed);
- ``tests/fixtures/voice/heldout/*.ogg`` and ``manifest.json``: a second set that nothing was
  tuned on: 40 commands as ShapesRef itself words them (drawn from random scenes, so also colour
  on both objects of a relation and bare "the star"), put in the spoken templates, in 6 other
  voice variants at 120-200 words per minute, plus 8 sentences that are not commands; then 10
  commands in the spoken and reordered wordings the model is also trained on ("could you find the
  red one", "the largest of the blue circles"), drawn by ShapesRef's own phrasing, and 2 more
  sentences that are not commands, one a command cut short ("could you find the red");
- ``pgpt_ros/voice/assets/find_the_green_star.wav``: the spoken command of ``make demo``.

The clips are a pure function of this script, the espeak-ng version and the seed; espeak-ng is
needed only here (tests and benchmarks read the committed files). Synthetic voices are not human
speech: they are clean, steady and free of accents, so real users will see more errors.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pgpt_ros.data.shapesref import (
    COLOURS,
    EXTREMES,
    KINDS,
    RELATIONS,
    SHAPES,
    SceneConfig,
    ShapesRef,
    commands_for,
)
from pgpt_ros.data.shapesref.expressions import expressions
from pgpt_ros.data.shapesref.phrasing import phrase
from pgpt_ros.voice.audio import SAMPLE_RATE, add_noise, read_audio, write_audio

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "voice"
DEMO_CLIP = ROOT / "pgpt_ros" / "voice" / "assets" / "find_the_green_star.wav"
SEED = 18
LEAD_S, TAIL_S = 0.5, 0.8

# espeak-ng voice + variant: American, British, Scottish, RP, Caribbean, Lancaster, West
# Midlands English, male and female variants.
VOICES = ("en-us", "en-gb+m3", "en-gb-scotland", "en-gb-x-rp+f2", "en-us+f4", "en-029+m7",
          "en-gb-x-gbclan+f3", "en-gb-x-gbcwmd+m5")  # fmt: skip
SPEEDS = (130, 150, 170, 190)  # words per minute; espeak-ng's default is 175
HELDOUT_SEED = 19
HELDOUT_VOICES = ("en-us+m2", "en-gb+f1", "en-gb-x-rp+m4", "en-us+klatt", "en-029+f5",
                  "en-gb-scotland+Andy")  # fmt: skip
HELDOUT_SPEEDS = (120, 145, 175, 200)
NOT_COMMANDS = ("what a lovely day it is", "turn off the lights in the kitchen",
                "how are you today", "stop", "thank you very much", "go to the charging dock",
                "find my keys please", "the weather is nice outside")  # fmt: skip
SPOKEN_SEED = 20
SPOKEN = SceneConfig(phrasing={"spoken": 1.0, "reordered": 1.0})
SPOKEN_NOT_COMMANDS = ("could you find the red", "help me find my glasses")
# The wordings the spoken clips must hold between them: "the red one" / "all the red ones", "to
# the left of", "the largest of the circles", "that is red", "a red circle", and requests.
SPOKEN_FORMS = (r"\bones?\b", r"\bto the \w+ of\b", r"\bmost of the|est of the", r"\bthat (is|are)\b",
                r"\ban? \w", r"^(could|help|I'm|I am|do you|can you|please)")  # fmt: skip

# Phrasings of the perception model's training data (ShapesRef templates) and the polite forms
# users say; "{}" is a description such as "red circle" or "largest blue shape".
SINGULAR = ("find the {}", "the {}", "where is the {}", "show me the {}", "locate the {}",
            "point to the {}", "can you find the {} please")  # fmt: skip
PLURAL = ("all {}", "find all {}", "show me all the {}", "where are all the {}")


def bench_commands(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` commands cycling through the kinds attribute, relation, extreme, multi."""
    colours, shapes = list(COLOURS), list(SHAPES)

    def pick(options):
        return options[int(rng.integers(len(options)))]

    commands = []
    for index in range(count):
        kind = index % 4
        colour, shape = pick(colours), pick(shapes)
        if kind == 0:
            command = pick(SINGULAR).format(f"{colour} {shape}")
            if index % 16 == 0:
                command = f"the {shape} that is {colour}"
        elif kind == 1:
            other = f"{pick(colours)} {pick([*shapes, 'shape'])}"
            command = pick(SINGULAR).format(f"{shape} {pick(RELATIONS)} the {other}")
        elif kind == 2:
            command = pick(SINGULAR).format(f"{pick(EXTREMES)} {pick([colour, ''])} {shape}")
        else:
            command = pick(PLURAL).format(
                pick([f"{colour} shapes", f"{shape}s", f"{colour} {shape}s"])
            )
        commands.append(" ".join(command.split()))
    return commands


def heldout_commands(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` commands as ShapesRef words them for random scenes (every kind in turn), each
    put in a random singular or plural template."""
    by_kind: dict[str, list[str]] = {}
    for seed in rng.integers(10_000, 20_000, size=40):
        for expression in commands_for(ShapesRef.scene(int(seed), 640, 480)):
            by_kind.setdefault(expression.kind, []).append(expression.command)
    kinds = sorted(by_kind)
    commands = []
    for index in range(count):
        options = by_kind[kinds[index % len(kinds)]]
        said = options[int(rng.integers(len(options)))]
        plural = said.startswith("all ")
        description = said.split(" ", 1)[1]
        templates = PLURAL if plural else SINGULAR
        commands.append(templates[int(rng.integers(len(templates)))].format(description))
    return commands


def spoken_commands(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` commands in the spoken and reordered wordings, as ShapesRef's phrasing draws
    them for random scenes (every kind in turn; things ShapesRef never draws left out). A draw
    is kept only if it says one of ``SPOKEN_FORMS`` no earlier one does, until all are said, so
    that ten clips hold every form."""
    commands: list[str] = []
    missing = list(SPOKEN_FORMS)
    draws = itertools.count()
    while len(commands) < count:
        scene = ShapesRef.scene(int(rng.integers(20_000, 30_000)), 640, 480)
        found = [e for e in expressions(scene, KINDS[next(draws) % len(KINDS)], SPOKEN)
                 if "absent" not in e.meta]  # fmt: skip
        if not found:
            continue
        command = phrase(rng, found[int(rng.integers(len(found)))], SPOKEN).command
        said = [form for form in missing if re.search(form, command)]
        if said or not missing:
            commands.append(command)
            missing = [form for form in missing if form not in said]
    return commands


def speak(text: str, voice: str, speed: int) -> np.ndarray:
    """espeak-ng's rendering of ``text`` at 16 kHz with the silences around it."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
                       check=True)  # fmt: skip
        speech = read_audio(wav)
    lead, tail = np.zeros(int(LEAD_S * SAMPLE_RATE)), np.zeros(int(TAIL_S * SAMPLE_RATE))
    return np.concatenate([lead, speech, tail]).astype(np.float32)


def make_test_clips(rng: np.random.Generator) -> None:
    command = speak("find the red circle", "en-us", 150)
    write_audio(FIXTURES / "red_circle.wav", command)
    for snr in (20, 10):
        write_audio(FIXTURES / f"red_circle_snr{snr}.wav", add_noise(command, snr, rng))
    write_audio(FIXTURES / "blue_star_left.wav",
                speak("the blue star left of the green square", "en-gb+m3", 170))  # fmt: skip
    write_audio(FIXTURES / "not_a_command.wav", speak("what a lovely day it is", "en-us+f4", 160))
    quiet = rng.normal(0.0, 10 ** (-70 / 20), size=2 * SAMPLE_RATE)  # -70 dBFS hiss
    write_audio(FIXTURES / "silence.wav", quiet.astype(np.float32))
    burst = np.zeros(2 * SAMPLE_RATE, np.float32)
    burst[SAMPLE_RATE // 2 : SAMPLE_RATE] = rng.normal(0.0, 0.1, size=SAMPLE_RATE // 2)
    write_audio(FIXTURES / "noise_burst.wav", burst)


def make_bench_set(rng: np.random.Generator, count: int = 48) -> None:
    folder = FIXTURES / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for index, text in enumerate(bench_commands(count, rng)):
        voice, speed = VOICES[index % len(VOICES)], SPEEDS[(index // 2) % len(SPEEDS)]
        name = f"{index:02d}.ogg"
        write_audio(folder / name, speak(text, voice, speed))
        manifest.append({"file": name, "text": text, "voice": voice, "speed_wpm": speed})
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def make_heldout_set(rng: np.random.Generator, count: int = 40) -> None:
    folder = FIXTURES / "heldout"
    folder.mkdir(parents=True, exist_ok=True)
    said = [(text, True) for text in heldout_commands(count, rng)]
    said += [(text, False) for text in NOT_COMMANDS]
    said += [(text, True) for text in spoken_commands(10, np.random.default_rng(SPOKEN_SEED))]
    said += [(text, False) for text in SPOKEN_NOT_COMMANDS]
    manifest = []
    for index, (text, command) in enumerate(said):
        voice = HELDOUT_VOICES[index % len(HELDOUT_VOICES)]
        speed = HELDOUT_SPEEDS[(index // 3) % len(HELDOUT_SPEEDS)]
        name = f"{index:02d}.ogg"
        write_audio(folder / name, speak(text, voice, speed))
        manifest.append({"file": name, "text": text, "voice": voice, "speed_wpm": speed,
                         "command": command})  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def main() -> None:
    rng = np.random.default_rng(SEED)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    DEMO_CLIP.parent.mkdir(parents=True, exist_ok=True)
    make_test_clips(rng)
    make_bench_set(rng)
    write_audio(DEMO_CLIP, speak("find the green star", "en-us", 150))
    make_heldout_set(np.random.default_rng(HELDOUT_SEED))
    files = [*FIXTURES.rglob("*.*"), DEMO_CLIP]
    total = sum(f.stat().st_size for f in files)
    print(f"wrote {len(files)} files, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
