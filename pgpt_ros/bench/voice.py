"""``pgpt-bench voice``: speech recognition accuracy, speed and end-of-speech latency.

    pgpt-bench voice                         # every engine and bias mode -> docs/bench/voice-cpu.json
    pgpt-bench voice --engines whisper --conditions clean --out /tmp/bench

On the synthesised command set (tests/fixtures/voice/bench: espeak-ng voices and speeds; noise is
added here with the fixture script's function, seeded) per engine, bias mode and condition (clean,
20 dB, 10 dB SNR): word error rate of the raw transcript, and after normalisation word error rate,
content-word error rate (colours, shapes, relation and extreme words, "all") and the share of
commands exactly right; real-time factor on one CPU thread (recognition time / utterance length).
Each clip goes through the node's own path: 0.1 s chunks -> silero VAD segmenter -> engine ->
normaliser. Latency from the end of speech to the answer, for the default engine on clean audio:
the segmenter's decision delay (measured in the stream) + recognition + the embedded perception
model answering the command on the demo scene, all in this process (the ROS hop adds
milliseconds). Synthetic voices are not human speech: read the numbers as a floor on errors.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jiwer
import numpy as np

from pgpt_ros.voice.audio import SAMPLE_RATE, add_noise, read_audio
from pgpt_ros.voice.engine import EngineConfig
from pgpt_ros.voice.listener import Listener
from pgpt_ros.voice.normalise import Normaliser, words
from pgpt_ros.voice.recognizers import load_engine
from pgpt_ros.voice.segmenter import Segmenter, SegmenterConfig, Utterance
from pgpt_ros.voice.sources import CHUNK_S
from pgpt_ros.voice.vad import SileroVad
from pgpt_ros.voice.vocabulary import Vocabulary

BENCH_SET = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "voice" / "bench"
CONDITIONS = {"clean": None, "snr20": 20.0, "snr10": 10.0}
MODES = {"whisper": (False, True), "pocketsphinx": (False, True)}
LATENCY_CLIPS = 16
DEMO_SEED, DEMO_SIZE = 7, (640, 480)


def load_set(folder: Path) -> list[tuple[str, np.ndarray]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return [(m["text"], read_audio(folder / m["file"])) for m in manifest]


def noisy(clips: list[tuple[str, np.ndarray]], snr_db: float | None) -> list[np.ndarray]:
    """The clips at ``snr_db`` (None = clean); clip i always gets the same noise."""
    if snr_db is None:
        return [audio for _, audio in clips]
    return [add_noise(a, snr_db, np.random.default_rng([i, int(snr_db)])) for i, (_, a) in enumerate(clips)]  # fmt: skip


def utterance_of(segmenter: Segmenter, audio: np.ndarray) -> tuple[Utterance | None, float]:
    """The clip streamed in 0.1 s chunks as the node does: its (longest) utterance and the
    decision delay (seconds from the end of speech to the end of the chunk that closed it)."""
    found: list[tuple[Utterance, float]] = []
    step = int(CHUNK_S * SAMPLE_RATE)
    for offset in range(0, len(audio), step):
        start = offset / SAMPLE_RATE
        for u in segmenter.feed(audio[offset : offset + step], start):
            found.append((u, start + CHUNK_S - u.end_s))
    last = segmenter.flush()
    if last is not None:
        found.append((last, len(audio) / SAMPLE_RATE - last.end_s))
    if not found:
        return None, 0.0
    return max(found, key=lambda item: len(item[0].audio))


def error_rate(references: list[list[str]], hypotheses: list[list[str]]) -> float:
    """Word error rate over the whole set (errors / reference words); empty lists allowed."""
    refs = [" ".join(r) for r in references]
    hyps = [" ".join(h) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r]
    return float(jiwer.wer([refs[i] for i in keep], [hyps[i] for i in keep]))


def score(references: list[str], raw: list[str], commands: list[str], content: frozenset) -> dict:
    ref_words = [words(r) for r in references]
    only = [[w for w in ws if w in content] for ws in ref_words]
    return {
        "wer_raw": error_rate(ref_words, [words(t) for t in raw]),
        "wer": error_rate(ref_words, [c.split() for c in commands]),
        "content_wer_raw": error_rate(only, [[w for w in words(t) if w in content] for t in raw]),
        "content_wer": error_rate(only, [[w for w in c.split() if w in content] for c in commands]),
        "correct_raw": sum(
            " ".join(w) == " ".join(words(t)) for w, t in zip(ref_words, raw, strict=True)
        ),  # fmt: skip
        "correct": sum(" ".join(w) == c for w, c in zip(ref_words, commands, strict=True)),
        "commands": len(references),
    }


def run_engine(engine_name: str, bias: bool, clips, conditions, vocabulary, segmenter) -> dict:
    engine = load_engine(EngineConfig(engine=engine_name, bias=bias, vocabulary=vocabulary))
    listener = Listener(engine, segmenter, Normaliser(vocabulary))
    references = [text for text, _ in clips]
    rows = {}
    for condition in conditions:
        raw, commands, busy, speech = [], [], 0.0, 0.0
        for audio in noisy(clips, CONDITIONS[condition]):
            utterance, _ = utterance_of(segmenter, audio)
            if utterance is None:
                raw.append(""), commands.append("")
                continue
            start = time.perf_counter()
            heard = engine.transcribe(utterance.audio)
            busy += time.perf_counter() - start
            speech += len(utterance.audio) / SAMPLE_RATE
            raw.append(heard.text)
            commands.append(listener.to_command(heard.text, heard.alternatives))
        row = score(references, raw, commands, vocabulary.content_words)
        row["rtf"] = busy / max(speech, 1e-9)
        row["examples"] = [{"said": r, "heard": h, "command": c}
                           for r, h, c in zip(references[:6], raw, commands, strict=False)]  # fmt: skip
        rows[condition] = row
        print(f"  {engine_name:<12} bias={bias!s:<5} {condition:<5} WER {row['wer_raw']:.1%} -> "
              f"{row['wer']:.1%}  content WER {row['content_wer']:.1%}  correct "
              f"{row['correct']}/{row['commands']}  RTF {row['rtf']:.3f}", flush=True)  # fmt: skip
    return rows


def latency(clips, vocabulary, segmenter) -> dict:
    """End of speech -> answer for the default engine, clean audio, the first LATENCY_CLIPS."""
    from pgpt_ros.data.shapesref import ShapesRef
    from pgpt_ros.runtime import Perceiver

    engine = load_engine(EngineConfig(vocabulary=vocabulary))
    normaliser = Normaliser(vocabulary)
    listener = Listener(engine, segmenter, normaliser)
    perceiver = Perceiver.load()
    perceiver.warmup()
    image = ShapesRef.scene(DEMO_SEED, *DEMO_SIZE).image
    parts: dict[str, list[float]] = {"decision_s": [], "recognition_s": [], "answer_s": [],
                                     "total_s": []}  # fmt: skip
    for _, audio in clips[:LATENCY_CLIPS]:
        utterance, decision = utterance_of(segmenter, audio)
        if utterance is None:
            continue
        heard = listener.recognise(utterance)
        start = time.perf_counter()
        perceiver.locate(image, heard.command or "the shape", image_id=DEMO_SEED)
        answer = time.perf_counter() - start
        for key, value in (("decision_s", decision), ("recognition_s", heard.processing_s),
                           ("answer_s", answer),
                           ("total_s", decision + heard.processing_s + answer)):  # fmt: skip
            parts[key].append(value)
    perceiver.close()
    return {key: statistics.median(values) for key, values in parts.items()} | {
        "clips": len(parts["total_s"])
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-bench voice", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=BENCH_SET, help="folder with manifest.json")
    parser.add_argument("--engines", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))  # fmt: skip
    parser.add_argument("--no-latency", action="store_true", help="skip the perception model")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"), help="JSON goes here")
    args = parser.parse_args(argv)
    vocabulary = Vocabulary.shapesref()
    segmenter = Segmenter(SileroVad(), SegmenterConfig())
    clips = load_set(args.set)
    print(f"[voice] {len(clips)} commands, {sum(len(a) for _, a in clips) / SAMPLE_RATE:.0f} s of audio")  # fmt: skip
    results = {
        f"{name}/{'biased' if bias else 'plain'}": run_engine(
            name, bias, clips, args.conditions, vocabulary, segmenter
        )
        for name in args.engines
        for bias in MODES[name]
    }
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": 1},
        "commands": len(clips),
        "segmenter": vars(segmenter.config),
        "results": results,
    }
    if not args.no_latency:
        report["latency_whisper_biased_clean"] = latency(clips, vocabulary, segmenter)
        print(f"  end of speech -> answer (median): {report['latency_whisper_biased_clean']}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "voice-cpu.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(f"[voice] wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
