"""voice_node in its own process: a WAV file -> `transcript` and `command` -> perception_node (the
embedded model, another process) -> `detections`; and its configure errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from builtin_interfaces.msg import Time
from rclpy.qos import QoSProfile
from std_msgs.msg import String

from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.msg import DetectionArray, Transcript
from pgpt_ros.ros.voice_latency_bench import pair_answers
from tests.ros_peers.harness import rgb_image, start_node, stop

pytestmark = pytest.mark.ros

FIXTURES = Path(__file__).parent / "fixtures" / "voice"


def start_voice(env, log: Path, *params: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "pgpt_ros.ros.voice_node", "--ros-args"]
    for param in params:
        argv += ["-p", param]
    return subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_a_spoken_command_reaches_the_model_and_traces_back_to_its_utterance(
    ros_env, client, tmp_path
):
    transcripts: list[Transcript] = []
    client.node.create_subscription(Transcript, "transcript", transcripts.append, QoSProfile(depth=50))  # fmt: skip
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "1_corrupt.wav").write_bytes(b"RIFF....WAVEfmt not really")
    shutil.copy(FIXTURES / "red_circle.wav", audio / "2_command.wav")
    shutil.copy(FIXTURES / "silence.wav", audio / "3_silence.wav")
    shutil.copy(FIXTURES / "red_circle.wav", audio / "4_command_again.wav")

    perception_log, voice_log = tmp_path / "perception.log", tmp_path / "voice.log"
    perception = start_node(ros_env, perception_log, "-p", "image_reliability:=reliable",
                            "-p", "max_image_age_s:=60.0", kind="real", slow_s=0.0)  # fmt: skip
    voice = None
    try:
        client.wait_for_node(perception, perception_log)
        image = rgb_image(ShapesRef.scene(7, 320, 240).image, stamp_sec=42, frame_id="cam")
        client.publish_image(image)
        voice = start_voice(ros_env, voice_log, f"file_path:={audio}", "source:=file",
                            "realtime:=false")  # fmt: skip
        assert client.spin_until(lambda: len(transcripts) >= 3 or voice.poll() is not None), (
            voice_log.read_text()
        )
        assert client.spin_until(lambda: len(client.detections) >= 2, 30.0), voice_log.read_text()
    finally:
        if voice is not None:
            assert stop(voice) == 0, voice_log.read_text()
        assert stop(perception) == 0, perception_log.read_text()
    bad, *heard = transcripts
    assert bad.status == Transcript.BAD_AUDIO and "1_corrupt.wav" in bad.status_message
    assert [t.status for t in heard] == [Transcript.FORWARDED] * 2  # silence: no utterance
    for transcript, answer in zip(heard, client.detections, strict=True):
        assert transcript.command == "find the red circle" == answer.command
        assert transcript.engine == "whisper" and transcript.text
        assert (answer.status, answer.header.stamp.sec, answer.header.frame_id) == (
            DetectionArray.OK, 42, "cam")  # fmt: skip
        start = transcript.start.sec + transcript.start.nanosec * 1e-9
        end = transcript.end.sec + transcript.end.nanosec * 1e-9
        assert 0.8 < end - start < 2.0  # "find the red circle" as espeak-ng says it
        assert transcript.header.stamp == transcript.end
    assert sum("BAD_AUDIO" in line for line in voice_log.read_text().splitlines()) == 1


def test_low_confidence_is_published_but_not_forwarded(ros_env, client, tmp_path):
    transcripts: list[Transcript] = []
    client.node.create_subscription(Transcript, "transcript", transcripts.append, QoSProfile(depth=10))  # fmt: skip
    commands: list[String] = []
    client.node.create_subscription(String, "command", commands.append, QoSProfile(depth=10))
    log = tmp_path / "voice.log"
    voice = start_voice(ros_env, log, f"file_path:={FIXTURES / 'red_circle.wav'}",
                        "source:=file", "realtime:=false", "min_confidence:=0.99")  # fmt: skip
    try:
        assert client.spin_until(lambda: transcripts or voice.poll() is not None), log.read_text()
    finally:
        assert stop(voice) == 0, log.read_text()
    [transcript] = transcripts
    assert transcript.status == Transcript.LOW_CONFIDENCE and transcript.command
    assert "min_confidence 0.99" in transcript.status_message and commands == []


@pytest.mark.parametrize(
    "params, error",
    [
        (["source:=microphone", "device:=no-such-microphone"], "cannot configure: microphone"),
        (["source:=file", "file_path:=/nonexistent/x.wav"], "cannot configure: audio file"),
        (["source:=topic", "model_path:=/nonexistent/whisper"],
         "cannot configure: Whisper model directory /nonexistent/whisper does not exist"),
    ],
)  # fmt: skip
def test_configure_fails_with_one_clear_line(ros_env, tmp_path, params, error):
    log = tmp_path / "voice.log"
    voice = start_voice(ros_env, log, *params)
    assert voice.wait(timeout=60) == 1
    lines = log.read_text().splitlines()
    assert sum(error in line for line in lines) == 1, lines
    assert sum("cannot configure" in line for line in lines) == 1


def test_latency_bench_pairs_each_forwarded_command_with_its_answer():
    def heard(command: str, status: int, end: float) -> Transcript:
        return Transcript(command=command, status=status, processing_s=0.2,
                          end=Time(sec=int(end), nanosec=int(end % 1 * 1e9)))  # fmt: skip

    transcripts = [(heard("find the red circle", Transcript.FORWARDED, 10.0), 10.5),
                   (heard("stop", Transcript.NOT_A_COMMAND, 12.0), 12.4),
                   (heard("all stars", Transcript.FORWARDED, 20.0), 20.6)]  # fmt: skip
    answers = [(DetectionArray(command="all stars", latency_s=0.1), 20.8),
               (DetectionArray(command="find the red circle", latency_s=0.1), 10.7)]  # fmt: skip
    report = pair_answers(transcripts, answers)
    assert (report["forwarded"], report["utterances"]) == (2, 3)
    assert [round(row["total_s"], 3) for row in report["commands"]] == [0.7, 0.8]
    assert [round(row["answer_s"], 3) for row in report["commands"]] == [0.2, 0.2]
    assert round(report["parts"]["total_s"]["median"], 3) == 0.75
