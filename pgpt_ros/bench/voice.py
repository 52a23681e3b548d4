"""``pgpt-bench voice``: speech recognition accuracy and speed on the synthesised commands.

    pgpt-bench voice                         # every engine and bias mode -> docs/bench/voice-cpu.json
    pgpt-bench voice --modes whisper/examples --conditions clean --out /tmp/bench

Two synthesised sets (tests/fixtures/voice, espeak-ng): ``bench``, 48 commands in 8 voice variants
and 4 speeds, and ``heldout``, 40 commands worded as ShapesRef words them in 6 other voice
variants and speeds, plus 8 sentences that are not commands; nothing was tuned on ``heldout``
but the snapping's two thresholds, set so its non-commands are not forwarded. Noise is added here
(white, seeded) at 20 and 10 dB SNR. Per engine, bias mode, set and condition: word error rate of
the raw transcript, and of what the node forwards (an utterance not forwarded counts as silence):
word error rate, content-word error rate (colours, shapes, relation and extreme words, "all"),
commands exactly right, non-commands forwarded; the real-time factor on one CPU thread
(recognition and snapping time / utterance length). Each clip goes through the node's own code:
0.1 s chunks -> silero VAD segmenter -> engine -> listener (snapping, confidence, decision).
The end of speech -> `detections` latency is measured on the real processes by
``pgpt-bench voice-latency``. Synthetic voices are not human speech: read the numbers as a floor
on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import jiwer
import numpy as np

from pgpt_ros.bench.common import write_result
from pgpt_ros.voice.audio import SAMPLE_RATE, add_noise, read_audio
from pgpt_ros.voice.engine import EngineConfig
from pgpt_ros.voice.listener import Listener
from pgpt_ros.voice.normalise import Normaliser, words
from pgpt_ros.voice.recognizers import load_engine
from pgpt_ros.voice.segmenter import Segmenter, SegmenterConfig, Utterance
from pgpt_ros.voice.sources import CHUNK_S
from pgpt_ros.voice.vad import SileroVad
from pgpt_ros.voice.vocabulary import Vocabulary


def fixtures() -> Path:
    """The synthesised clips (``tests/fixtures/voice``): beside the source tree, else under the
    working directory, since an installed package carries no tests."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "tests" / "fixtures" / "voice").is_dir():
            return root / "tests" / "fixtures" / "voice"
    return Path("tests") / "fixtures" / "voice"


SETS = ("bench", "heldout")
CONDITIONS = {"clean": None, "snr20": 20.0, "snr10": 10.0}
# engine/bias -> (engine, bias, Whisper prompt: None = the vocabulary's example commands)
MODES = {
    "whisper/examples": ("whisper", True, None),
    "whisper/words": ("whisper", True, "words"),  # the vocabulary's words in a row
    "whisper/none": ("whisper", False, None),
    "pocketsphinx/grammar": ("pocketsphinx", True, None),
    "pocketsphinx/none": ("pocketsphinx", False, None),
}


def load_set(folder: Path) -> list[dict]:
    """The manifest's entries, each with its ``audio`` (16 kHz float32) added."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return [entry | {"audio": read_audio(folder / entry["file"])} for entry in manifest]


def noisy(clips: list[dict], snr_db: float | None) -> list[np.ndarray]:
    """The clips at ``snr_db`` (None = clean); clip i always gets the same noise."""
    if snr_db is None:
        return [clip["audio"] for clip in clips]
    return [add_noise(c["audio"], snr_db, np.random.default_rng([i, int(snr_db)])) for i, c in enumerate(clips)]  # fmt: skip


def utterance_of(segmenter: Segmenter, audio: np.ndarray) -> Utterance | None:
    """The clip streamed in 0.1 s chunks as the node does: its longest utterance."""
    step = int(CHUNK_S * SAMPLE_RATE)
    found = [u for i in range(0, len(audio), step)
             for u in segmenter.feed(audio[i : i + step], i / SAMPLE_RATE)]  # fmt: skip
    last = segmenter.flush()
    found += [last] if last is not None else []
    return max(found, key=lambda u: len(u.audio)) if found else None


def error_rate(references: list[list[str]], hypotheses: list[list[str]]) -> float:
    """Word error rate over the whole set (errors / reference words); empty lists allowed."""
    keep = [i for i, r in enumerate(references) if r]
    return float(jiwer.wer([" ".join(references[i]) for i in keep],
                           [" ".join(hypotheses[i]) for i in keep]))  # fmt: skip


def score(said: list[str], raw: list[str], forwarded: list[str], content: frozenset) -> dict:
    """Error rates of the raw transcripts and of the forwarded commands ("" = not forwarded)."""
    ref = [words(s) for s in said]
    only = [[w for w in ws if w in content] for ws in ref]
    return {
        "wer_raw": error_rate(ref, [words(t) for t in raw]),
        "wer": error_rate(ref, [c.split() for c in forwarded]),
        "content_wer": error_rate(
            only, [[w for w in c.split() if w in content] for c in forwarded]
        ),
        "correct": sum(" ".join(r) == c for r, c in zip(ref, forwarded, strict=True)),
        "commands": len(said),
    }


def run_mode(mode: str, clips: dict[str, list[dict]], conditions: list[str],
             vocabulary: Vocabulary, segmenter: Segmenter) -> dict:  # fmt: skip
    """Every set and condition through one engine configuration."""
    engine_name, bias, prompt = MODES[mode]
    prompt = " ".join(vocabulary.words) if prompt == "words" else prompt
    engine = load_engine(EngineConfig(engine=engine_name, bias=bias, vocabulary=vocabulary,
                                      prompt=prompt))  # fmt: skip
    listener = Listener(engine, segmenter, Normaliser(vocabulary))
    rows = {}
    for set_name, entries in clips.items():
        for condition in conditions:
            heard = []
            for audio in noisy(entries, CONDITIONS[condition]):
                utterance = utterance_of(segmenter, audio)
                heard.append(None if utterance is None else (listener.recognise(utterance), len(utterance.audio)))  # fmt: skip
            rows[f"{set_name}/{condition}"] = _row(entries, heard, vocabulary)
            row = rows[f"{set_name}/{condition}"]
            print(f"  {mode:<21} {set_name:<8} {condition:<6} WER {row['wer_raw']:.1%} -> "
                  f"{row['wer']:.1%}  content WER {row['content_wer']:.1%}  correct "
                  f"{row['correct']}/{row['commands']}  non-commands forwarded "
                  f"{row['false_commands']}/{row['non_commands']}  RTF {row['rtf']:.3f}", flush=True)  # fmt: skip
    return rows


def _row(entries: list[dict], heard: list, vocabulary: Vocabulary) -> dict:
    is_command = [entry.get("command", True) for entry in entries]
    said = [e["text"] for e, c in zip(entries, is_command, strict=True) if c]
    raw = [h[0].text if h else "" for h, c in zip(heard, is_command, strict=True) if c]
    forwarded = [h[0].command if h and h[0].forwarded else "" for h in heard]
    commands = [f for f, c in zip(forwarded, is_command, strict=True) if c]
    row = score(said, raw, commands, vocabulary.content_words)
    row["non_commands"] = is_command.count(False)
    row["false_commands"] = sum(
        bool(f) for f, c in zip(forwarded, is_command, strict=True) if not c
    )
    busy = sum(h[0].processing_s for h in heard if h)
    row["rtf"] = busy / max(sum(h[1] for h in heard if h) / SAMPLE_RATE, 1e-9)
    row["mistakes"] = [{"said": s, "heard": r, "forwarded": c}
                       for s, r, c in zip(said, raw, commands, strict=True) if " ".join(words(s)) != c]  # fmt: skip
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-bench voice", description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))  # fmt: skip
    parser.add_argument("--fixtures", type=Path, default=fixtures(),
                        help="folder of the clip sets (default: the repository's tests/fixtures/voice)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("docs/bench"), help="JSON goes here")
    args = parser.parse_args(argv)
    missing = [name for name in args.sets if not (args.fixtures / name / "manifest.json").is_file()]
    if missing:
        parser.error(f"no clip set {missing} under {args.fixtures}: run from the repository root "
                     "or pass --fixtures")  # fmt: skip
    vocabulary = Vocabulary.shapesref()
    segmenter = Segmenter(SileroVad(), SegmenterConfig())
    clips = {name: load_set(args.fixtures / name) for name in args.sets}
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "engine_threads": 1, "load_average_1m_start": os.getloadavg()[0]},
        "sets": {name: len(entries) for name, entries in clips.items()},
        "segmenter": vars(segmenter.config),
        "results": {},
    }  # fmt: skip
    for name, entries in clips.items():
        seconds = sum(len(e["audio"]) for e in entries) / SAMPLE_RATE
        print(f"[voice] {name}: {len(entries)} clips, {seconds:.0f} s of audio")
    for mode in args.modes:
        report["results"][mode] = run_mode(mode, clips, args.conditions, vocabulary, segmenter)
    report["machine"]["load_average_1m_end"] = os.getloadavg()[0]
    path = write_result(args.out, "voice-cpu.json", report)
    print(f"[voice] wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
