"""pgpt-say: ask the running perception node something and print what it found as a table.

    pgpt-say "find the red circle"            # calls the `locate` service (latest camera frame)
    pgpt-say --topic "all blue shapes"         # publishes on `command`, prints the next answer
    pgpt-say --wav command.wav                 # a recording through voice_node (source topic)

Exit status: 0 when the node answered OK (found or not), 1 for any other status (or a recording
that was not forwarded as a command), 2 when no node answered within --timeout.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.utilities import remove_ros_args
from std_msgs.msg import String

from pgpt_ros.commands import BadCommand, normalize_command
from pgpt_ros.msg import DetectionArray, Transcript
from pgpt_ros.ros.messages import STATUS_NAMES
from pgpt_ros.ros.qos import COMMANDER_QOS, RESULT_READER_QOS
from pgpt_ros.srv import Locate


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        bool(rows) and all(_is_number(row[i]) for row in cells[1:]) for i in range(len(headers))
    ]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def describe(result: DetectionArray) -> str:
    """The answer as text: one summary line, then a table of the detections."""
    stamp = f"{result.header.stamp.sec}.{result.header.stamp.nanosec:09d}"
    summary = (
        f"command {result.command_id} {result.command!r}: {STATUS_NAMES.get(result.status, result.status)}"
        + (f" ({result.status_message})" if result.status_message else "")
        + f"; frame {result.header.frame_id or '-'} @ {stamp}, {result.image_width}x{result.image_height}"
        + f"; latency {result.latency_s:.3f} s\nanswer: {result.answer!r}"
    )
    rows = [
        (d.id, d.phrase, f"{d.score:.2f}", f"{d.center_x:.1f}", f"{d.center_y:.1f}",
         f"{d.size_x:.1f}", f"{d.size_y:.1f}",
         f"{d.mask_roi.width}x{d.mask_roi.height}+{d.mask_roi.x_offset}+{d.mask_roi.y_offset}")
        for d in result.detections
    ]  # fmt: skip
    if not rows:
        return summary + "\nno objects found"
    headers = ("id", "phrase", "score", "center_x", "center_y", "width", "height", "mask roi")
    return summary + "\n" + format_table(headers, rows)


def call_locate(node: Node, command: str, timeout_s: float) -> DetectionArray | None:
    """The `locate` service's answer, or None if no service answered within ``timeout_s``."""
    client = node.create_client(Locate, "locate")
    if not client.wait_for_service(timeout_sec=timeout_s):
        return None
    future = client.call_async(Locate.Request(command=command))
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
    return future.result().result if future.done() else None


def publish_command(node: Node, command: str, timeout_s: float) -> DetectionArray | None:
    """Publishes on `command` with the commander QoS and returns the first `detections` message
    for that command (the node answers with the normalised text, or the raw one if it refused it)."""
    answers: list[DetectionArray] = []
    try:
        expected = {command, normalize_command(command)}
    except BadCommand:
        expected = {command}
    node.create_subscription(
        DetectionArray,
        "detections",
        lambda msg: answers.append(msg) if msg.command in expected else None,
        RESULT_READER_QOS,
    )
    publisher = node.create_publisher(String, "command", COMMANDER_QOS)
    deadline = time.monotonic() + timeout_s
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if publisher.get_subscription_count() == 0:
        return None
    publisher.publish(String(data=command))
    while not answers and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    return answers[0] if answers else None


def send_recording(
    node: Node, path: str, timeout_s: float
) -> tuple[Transcript | None, DetectionArray | None]:
    """Publishes a recording on `audio` for voice_node (source topic), as a microphone would, and
    returns its transcript and, if it was forwarded, the perception node's answer."""
    from pgpt_ros.ros.voice_audio import publish_recording

    transcripts: list[Transcript] = []
    answers: list[DetectionArray] = []
    node.create_subscription(Transcript, "transcript", transcripts.append, QoSProfile(depth=10))
    node.create_subscription(DetectionArray, "detections", answers.append, RESULT_READER_QOS)
    if not publish_recording(node, path, timeout_s):
        return None, None
    deadline = time.monotonic() + timeout_s
    while not transcripts and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if not transcripts or transcripts[0].status != Transcript.FORWARDED:
        return (transcripts or [None])[0], None
    command = transcripts[0].command
    while not any(a.command == command for a in answers) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    return transcripts[0], next((a for a in answers if a.command == command), None)


def describe_transcript(transcript: Transcript) -> str:
    """One line: what was heard, the command, confidence and status."""
    status = {getattr(Transcript, n): n for n in ("FORWARDED", "LOW_CONFIDENCE", "NOT_A_COMMAND",
              "NO_WAKE_WORD", "NOTHING_HEARD", "BAD_AUDIO")}[transcript.status]  # fmt: skip
    return (f"heard {transcript.text!r} -> {transcript.command!r} (confidence "
            f"{transcript.confidence:.2f}, {transcript.engine}): {status}"
            + (f" ({transcript.status_message})" if transcript.status_message else ""))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``pgpt-say [--topic] [--timeout S] COMMAND [--ros-args ...]``."""
    argv = sys.argv[1:] if argv is None else argv
    cli_args = remove_ros_args(["pgpt-say", *argv])[1:]
    parser = argparse.ArgumentParser(prog="pgpt-say", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", help='what to find, e.g. "the red circle"')
    parser.add_argument("--wav", help="a recording (WAV/FLAC) to send through voice_node instead")
    parser.add_argument("--topic", action="store_true", help="publish on `command` instead")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    args = parser.parse_args(cli_args)
    if (args.command is None) == (args.wav is None):
        parser.error("give a COMMAND or --wav FILE")
    if any("\x00" in arg for arg in argv):  # checked before rclpy's C code cuts it there
        parser.error("the command contains a NUL character: a ROS string ends there")
    rclpy.init(args=["pgpt-say", *argv])
    try:
        node = rclpy.create_node("pgpt_say")
        if args.wav:
            transcript, result = send_recording(node, args.wav, args.timeout)
        else:
            ask = publish_command if args.topic else call_locate
            transcript, result = None, ask(node, args.command, args.timeout)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    if transcript is not None:
        print(describe_transcript(transcript))
        if transcript.status != Transcript.FORWARDED:
            return 1
    elif args.wav:
        print(f"pgpt-say: no voice_node (source topic) heard {args.wav} within {args.timeout} s",
              file=sys.stderr)  # fmt: skip
        return 2
    if result is None:
        print(f"pgpt-say: no perception node answered within {args.timeout} s", file=sys.stderr)
        return 2
    print(describe(result))
    return 0 if result.status == DetectionArray.OK else 1


if __name__ == "__main__":
    raise SystemExit(main())
