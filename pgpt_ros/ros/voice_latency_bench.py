"""``pgpt-bench voice-latency``: end of speech -> `detections` on the real processes, nothing stubbed.

Starts ``demo_camera`` (ShapesRef scene 7, 640x480, 10 Hz), ``perception_node`` (the embedded
model) and ``voice_node`` reading a folder of spoken commands paced like a microphone, each its own
process on loopback DDS (config/pgpt.yaml, as `make demo`). For every forwarded command, latency is
the wall-clock time `detections` arrives here minus the end of speech the transcript carries (all
processes share this machine's clock). Its parts:

- ``heard_s``: end of speech -> `transcript` received: the pause that ends an utterance
  (``min_silence_s``, plus up to one 0.1 s audio chunk) and recognition;
- ``recognition_s``: the engine, snapping included (the transcript's ``processing_s``);
- ``answer_s``: `transcript` received -> `detections` received: the command's hop and the
  perception model (``model_s``: the node's own ``latency_s``) answering on the latest frame.

    pgpt-bench voice-latency --out docs/bench          # -> docs/bench/voice-latency-cpu.json
    pgpt-bench voice-latency --voice-param min_silence_s:=0.3 --out /tmp/bench

The spoken commands are the first ``--clips`` of the benchmark set (tests/fixtures/voice/bench).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import QoSProfile

from pgpt_ros.bench.common import write_result
from pgpt_ros.bench.voice import fixtures
from pgpt_ros.msg import DetectionArray, Transcript
from pgpt_ros.ros.bringup import Processes, dds_env, node_command, package_file
from pgpt_ros.voice.audio import audio_files

STARTUP_TIMEOUT_S = 120.0  # first start on a busy 2-core machine: torch import and model load
SCENE = ["-p", "seed:=7", "-p", "width:=640", "-p", "height:=480", "-p", "scene_period_s:=0.0",
         "-p", "source:=shapes"]  # fmt: skip


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def summary(values: list[float]) -> dict[str, float]:
    """Median and 95th percentile (numpy's linear interpolation) of ``values``."""
    return {"median": statistics.median(values), "p95": float(np.percentile(values, 95))}


def measure(clips: list[Path], log_dir: Path, voice_args: tuple[str, ...] = ()) -> dict:
    """Runs the three nodes on ``clips`` and returns the latency summary (and per-command rows).

    Arguments:
        clips (list[Path]): audio files, spoken in this order with 0.5 s between them.
        log_dir (Path): the nodes' logs.
        voice_args (tuple[str, ...]): extra ``-p name:=value`` arguments for voice_node.
    Returns:
        (dict): ``parts`` -> {median, p95} per part, ``commands`` rows, ``forwarded`` count.
    """
    os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                      ROS_DOMAIN_ID=str(100 + os.getpid() % 50))  # fmt: skip
    params_file = package_file("config/pgpt.yaml")
    with tempfile.TemporaryDirectory() as folder:
        for index, clip in enumerate(clips):  # the file source reads a folder in name order
            shutil.copy(clip, Path(folder) / f"{index:03d}{clip.suffix}")
        rclpy.init()
        try:
            with Processes(dds_env(), log_dir=log_dir) as processes:
                return _run(processes, params_file, Path(folder), list(voice_args))
        finally:
            rclpy.try_shutdown()


def _run(processes: Processes, params_file: Path, folder: Path, voice_args: list[str]) -> dict:
    node = rclpy.create_node("pgpt_voice_latency")
    heard: list[tuple[Transcript, float]] = []
    answers: list[tuple[DetectionArray, float]] = []
    node.create_subscription(
        Transcript, "transcript", lambda m: heard.append((m, time.time())), QoSProfile(depth=100)
    )
    node.create_subscription(DetectionArray, "detections",
                             lambda m: answers.append((m, time.time())), QoSProfile(depth=100))  # fmt: skip
    processes.start("demo_camera", node_command("pgpt_ros.ros.demo_camera", params_file, SCENE))
    processes.start("perception_node", node_command("pgpt_ros.ros.perception_node", params_file))
    # The voice node starts once perception_node listens on `command`, so no command is lost.
    if not _spin_until(node, lambda: node.count_subscribers("command") > 0
                       and processes.exited() is None, STARTUP_TIMEOUT_S):  # fmt: skip
        raise RuntimeError(f"perception_node did not start: {processes.exited()}")
    voice = ["-p", "source:=file", "-p", f"file_path:={folder}", "-p", "realtime:=true"]
    processes.start("voice_node",
                    node_command("pgpt_ros.ros.voice_node", params_file, voice + voice_args))  # fmt: skip
    expected = len(list(folder.iterdir()))
    done = _spin_until(
        node,
        lambda: (
            processes.exited() is not None
            or (len(heard) >= expected and len(answers) >= _forwarded(heard))
        ),
        STARTUP_TIMEOUT_S + 10.0 * expected,
    )
    if not done or processes.exited() is not None:
        raise RuntimeError(f"the nodes stopped or hung: {processes.exited()}; heard {len(heard)}")
    node.destroy_node()
    return pair_answers(heard, answers)


def _forwarded(heard: list[tuple[Transcript, float]]) -> int:
    return sum(t.status == Transcript.FORWARDED for t, _ in heard)


def _spin_until(node, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return bool(condition())


def pair_answers(heard: list[tuple[Transcript, float]],
          answers: list[tuple[DetectionArray, float]]) -> dict:  # fmt: skip
    """Each forwarded transcript with the next answer to its command."""
    rows, pending = [], list(answers)
    for transcript, heard_at in heard:
        if transcript.status != Transcript.FORWARDED:
            continue
        index = next(i for i, (a, _) in enumerate(pending) if a.command == transcript.command)
        answer, answered_at = pending.pop(index)
        end = seconds(transcript.end)
        rows.append({
            "command": transcript.command,
            "status": int(answer.status),
            "total_s": answered_at - end,
            "heard_s": heard_at - end,
            "recognition_s": transcript.processing_s,
            "answer_s": answered_at - heard_at,
            "model_s": answer.latency_s,
        })  # fmt: skip
    parts = {key: summary([row[key] for row in rows]) for key in
             ("total_s", "heard_s", "recognition_s", "answer_s", "model_s")}  # fmt: skip
    return {"forwarded": len(rows), "utterances": len(heard), "parts": parts, "commands": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-bench voice-latency",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--clips", type=int, default=16, help="commands spoken, in order")
    parser.add_argument("--voice-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="a voice_node parameter (repeatable)")  # fmt: skip
    parser.add_argument("--clips-dir", type=Path, default=fixtures() / "bench",
                        help="the spoken commands (default: the repository's benchmark set)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("docs/bench"), help="JSON goes here")
    args = parser.parse_args(argv)
    clips = audio_files(args.clips_dir)[: args.clips] if args.clips_dir.is_dir() else []
    if not clips:
        parser.error(
            f"no audio clips in {args.clips_dir}: run from the repository root or pass --clips-dir"
        )
    load_start = os.getloadavg()[0]
    voice_args = tuple(a for p in args.voice_param for a in ("-p", p))
    report = measure(clips, Path("out/voice-latency"), voice_args)
    report = {"machine": {"cores": os.cpu_count(), "load_average_1m_start": load_start,
                          "load_average_1m_end": os.getloadavg()[0]},
              "engine": "whisper (config/pgpt.yaml voice_node)", "voice_params": args.voice_param,
              **report}  # fmt: skip
    for part, values in report["parts"].items():
        print(f"  {part:<14} median {values['median']:.3f} s  p95 {values['p95']:.3f} s")
    path = write_result(args.out, "voice-latency-cpu.json", report)
    print(f"[voice-latency] {report['forwarded']}/{len(clips)} forwarded; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
