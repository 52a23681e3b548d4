"""The `make demo` job: the whole ROS pipeline on one machine, scored against ground truth.

Starts ``demo_camera`` (a ShapesRef scene, ground truth on ``ground_truth``) and ``perception_node``
(config/pgpt.yaml, the embedded default model) as separate processes talking over loopback DDS only,
asks one command of every ShapesRef kind through the ``locate`` service, then starts ``voice_node``
on a committed recording ("find the green star", synthesised) whose command reaches the model
over the `command` topic, and prints per command the objects found, the box IoU against the
ground truth of the exact frame answered, and the latency (for the spoken one: from the end of
speech, with what was heard). Writes each answer's overlay to ``out/demo/NN_kind.png`` and the
node logs next to them. Every process it started is stopped, also on errors. Exit 0 when every
command got an OK answer and an overlay.

    python -m pgpt_ros.ros.demo [--seed 7] [--out out/demo]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from PIL import Image as PILImage
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import String

from pgpt_ros.data.shapesref import KINDS, ShapesRef, commands_for
from pgpt_ros.metrics import box_iou, match
from pgpt_ros.msg import Detection, DetectionArray, Transcript
from pgpt_ros.ros.bringup import Processes, dds_env, node_command, package_file
from pgpt_ros.ros.images import to_array
from pgpt_ros.ros.messages import STATUS_NAMES
from pgpt_ros.ros.say import format_table
from pgpt_ros.srv import Locate

WIDTH, HEIGHT = 640, 480
# The spoken command: the recording, and the ShapesRef expression it says (for the ground truth).
VOICE_CLIP = "pgpt_ros/voice/assets/find_the_green_star.wav"
VOICE_EXPRESSION = "the green star"
STARTUP_TIMEOUT_S = 90.0  # first start: torch import and model load on a busy 2-core machine
ANSWER_TIMEOUT_S = 60.0


def targets_of(seed: int, command: str) -> tuple[int, ...] | None:
    """The ground-truth targets of ShapesRef expression ``command`` in the scene, if it has one."""
    scene = ShapesRef.scene(seed, WIDTH, HEIGHT)
    return next((e.targets for e in commands_for(scene) if e.command == command), None)


def pick_commands(seed: int) -> list[tuple[str, str, tuple[int, ...]]]:
    """(kind, command, target indices) for one command of every kind the scene supports."""
    scene = ShapesRef.scene(seed, WIDTH, HEIGHT)
    chosen = {}
    for expression in commands_for(scene):
        chosen.setdefault(
            expression.kind, (expression.kind, expression.command, expression.targets)
        )
    return [chosen[kind] for kind in KINDS if kind in chosen]


def first_seed_with_every_kind(start: int) -> int:
    """The first scene seed from ``start`` on that supports a command of every kind."""
    seed = start
    while len(pick_commands(seed)) < len(KINDS):
        seed += 1
    return seed


def pairs(result: DetectionArray, truth: dict, targets: tuple[int, ...]) -> list[tuple]:
    """(detection, ground-truth object, box IoU) for each target paired with a detection."""
    predicted = np.array(
        [
            [
                d.center_x - d.size_x / 2,
                d.center_y - d.size_y / 2,
                d.center_x + d.size_x / 2,
                d.center_y + d.size_y / 2,
            ]
            for d in result.detections
        ]  # fmt: skip
    ).reshape(-1, 4)
    expected = np.array([truth["objects"][i]["box"] for i in targets]).reshape(-1, 4)
    iou = box_iou(predicted, expected)
    return [(result.detections[i], truth["objects"][targets[j]], iou[i, j])
            for i, j in match(iou, threshold=0.0)]  # fmt: skip


def box_score(result: DetectionArray, truth: dict, targets: tuple[int, ...]) -> str:
    """Mean IoU of the targets' ground-truth boxes with the detections paired to them."""
    if not targets:
        return "1.00 (none expected)" if not result.detections else "0.00 (none expected)"
    return f"{sum(iou for *_, iou in pairs(result, truth, targets)) / len(targets):.2f}"


def position_error(result: DetectionArray, truth: dict, targets: tuple[int, ...]) -> str:
    """Per paired target, the distance (mm) from the detection's 3D position to the ground truth
    centre, or the position status when there is none."""
    found = []
    for detection, target, _ in pairs(result, truth, targets):
        if detection.position_status != Detection.POSITION_OK or target.get("centre_m") is None:
            found.append(detection.position_message.split(";")[0] or "no 3D")
            continue
        p = detection.position
        error = np.linalg.norm(np.subtract([p.x, p.y, p.z], target["centre_m"]))
        found.append(f"{1000 * error:.1f}")
    return ", ".join(found) or "-"


class DemoClient(Node):
    """Keeps the ground truth per frame stamp, the overlays and whether the node has a frame."""

    def __init__(self) -> None:
        super().__init__("pgpt_demo")
        self.truth: dict[tuple[int, int], dict] = {}
        self.overlays: list[Image] = []
        self.create_subscription(String, "ground_truth", self._on_truth, QoSProfile(depth=50))
        self.create_subscription(Image, "overlay", self.overlays.append, QoSProfile(depth=5))
        self.frames_received = 0  # by the node, from its diagnostics
        self.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, QoSProfile(depth=10)
        )
        self.locate = self.create_client(Locate, "locate")
        self.transcripts: list[tuple[Transcript, float]] = []
        self.answers: list[tuple[DetectionArray, float]] = []  # `detections`, with arrival times
        self.create_subscription(
            Transcript,
            "transcript",
            lambda m: self.transcripts.append((m, time.time())),
            QoSProfile(depth=10),
        )
        self.create_subscription(DetectionArray, "detections",
                                 lambda m: self.answers.append((m, time.time())), QoSProfile(depth=10))  # fmt: skip

    def _on_truth(self, msg: String) -> None:
        truth = json.loads(msg.data)
        self.truth[(truth["stamp"]["sec"], truth["stamp"]["nanosec"])] = truth
        if len(self.truth) > 1000:
            self.truth.pop(next(iter(self.truth)))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            for kv in status.values:
                if kv.key == "frames_received":
                    self.frames_received = int(kv.value)

    def spin_until(self, condition, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.05)
        return condition()

    def ask(self, command: str) -> tuple[DetectionArray, float]:
        """The node's answer to ``command`` about its latest frame, and the round-trip seconds."""
        start = time.monotonic()
        future = self.locate.call_async(Locate.Request(command=command))
        if not self.spin_until(future.done, ANSWER_TIMEOUT_S):
            raise TimeoutError(f"no answer to {command!r} within {ANSWER_TIMEOUT_S} s")
        return future.result().result, time.monotonic() - start

    def hear(self) -> tuple[Transcript, DetectionArray | None, float]:
        """The first transcript, the answer to its command (None if it was not forwarded) and
        the seconds from the end of speech to that answer."""
        if not self.spin_until(lambda: self.transcripts, ANSWER_TIMEOUT_S):
            raise TimeoutError(f"voice_node heard nothing within {ANSWER_TIMEOUT_S} s")
        transcript = self.transcripts[0][0]
        if transcript.status != Transcript.FORWARDED:
            return transcript, None, 0.0

        def answer() -> tuple[DetectionArray, float] | None:
            return next(((a, t) for a, t in self.answers if a.command == transcript.command), None)

        if not self.spin_until(lambda: answer() is not None, ANSWER_TIMEOUT_S):
            raise TimeoutError(f"no answer to the spoken {transcript.command!r}")
        result, arrived = answer()
        end = transcript.end.sec + transcript.end.nanosec * 1e-9
        return transcript, result, arrived - end

    def overlay_for(self, result: DetectionArray) -> Image | None:
        """The overlay published with ``result`` (same frame), waiting briefly for it."""
        stamp = result.header.stamp

        def find() -> Image | None:
            for image in reversed(self.overlays):
                if (image.header.stamp.sec, image.header.stamp.nanosec) == (
                    stamp.sec,
                    stamp.nanosec,
                ):
                    return image
            return None

        self.spin_until(lambda: find() is not None, 5.0)
        return find()


def score_row(client: DemoClient, out: Path, index: int, kind: str, command: str,
              targets: tuple[int, ...], result: DetectionArray, seconds: float) -> tuple[tuple, bool]:  # fmt: skip
    """One table row for an answer (its overlay saved), and whether it is a success."""
    truth = client.truth.get((result.header.stamp.sec, result.header.stamp.nanosec))
    status = STATUS_NAMES[result.status]
    overlay = client.overlay_for(result) if result.status == DetectionArray.OK else None
    if overlay is not None:
        path = out / f"{index:02d}_{kind}.png"
        PILImage.fromarray(np.ascontiguousarray(to_array(overlay, 8192))).save(path)
    ok = result.status == DetectionArray.OK and overlay is not None and truth is not None
    found = ", ".join(d.phrase or "?" for d in result.detections) or "-"
    iou = box_score(result, truth, targets) if truth else "no ground truth"
    error_3d = position_error(result, truth, targets) if truth else "-"
    answer = result.answer if len(result.answer) <= 40 else result.answer[:37] + "..."
    row = (kind, command, status, repr(answer), len(result.detections), found, iou, error_3d,
           f"{seconds:.2f}", f"{result.latency_s:.2f}")  # fmt: skip
    return row, ok


def run(seed: int, out: Path, processes: Processes) -> int:
    """Starts the nodes, asks the commands, writes the overlays; returns the exit status."""
    params_file = package_file("config/pgpt.yaml")
    camera_args = ["-p", f"seed:={seed}", "-p", f"width:={WIDTH}", "-p", f"height:={HEIGHT}",
                   "-p", "scene_period_s:=0.0", "-p", "source:=shapes"]  # fmt: skip
    processes.start(
        "demo_camera", node_command("pgpt_ros.ros.demo_camera", params_file, camera_args)
    )
    processes.start("perception_node", node_command("pgpt_ros.ros.perception_node", params_file))
    client = DemoClient()
    print(f"[demo] waiting for perception_node (model load; logs in {out})", flush=True)
    ready = client.spin_until(
        lambda: (
            processes.exited()
            or (client.locate.service_is_ready() and client.truth and client.frames_received > 0)
        ),
        STARTUP_TIMEOUT_S,
    )
    if not ready or processes.exited():
        print(f"[demo] nodes did not start: {processes.exited()}; see {out}/*.log", file=sys.stderr)
        return 1
    rows, failures = [], 0
    for index, (kind, command, targets) in enumerate(pick_commands(seed)):
        result, seconds = client.ask(command)
        row, ok = score_row(client, out, index, kind, command, targets, result, seconds)
        rows.append(row)
        failures += not ok
    voice_args = ["-p", "source:=file", "-p", f"file_path:={package_file(VOICE_CLIP)}",
                  "-p", "realtime:=true"]  # fmt: skip
    processes.start("voice_node", node_command("pgpt_ros.ros.voice_node", params_file, voice_args))
    transcript, result, seconds = client.hear()
    said = f"heard {transcript.text!r} -> {transcript.command or '-'}"
    if result is None:
        rows.append(("spoken", said, f"not forwarded: {transcript.status_message}", "", 0, "-",
                     "-", "-", "-", "-"))  # fmt: skip
        failures += 1
    else:
        targets = targets_of(seed, VOICE_EXPRESSION)
        row, ok = score_row(client, out, len(rows), "spoken", said, targets or (), result, seconds)
        rows.append(row)
        failures += not ok or targets is None
    headers = ("kind", "command", "status", "answer", "found", "phrases", "box IoU",
               "3D error mm", "round trip s", "node latency s")  # fmt: skip
    print(format_table(headers, rows))
    print(f"[demo] overlays: {out}/*.png")
    return 0 if failures == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make demo`."""
    parser = argparse.ArgumentParser(prog="pgpt_ros.ros.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="first ShapesRef scene seed to try")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.png"):
        old.unlink()
    # Loopback only, in a DDS domain of its own, for this process and the nodes it starts.
    os.environ.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(150 + os.getpid() % 80),
        FASTDDS_DEFAULT_PROFILES_FILE=str(package_file("config/fastdds_localhost.xml")),
    )
    seed = first_seed_with_every_kind(args.seed)
    start = time.monotonic()
    rclpy.init()
    try:
        with Processes(dds_env(), log_dir=args.out) as processes:
            status = run(seed, args.out, processes)
    finally:
        rclpy.try_shutdown()
    print(f"[demo] {'done' if status == 0 else 'FAILED'} in {time.monotonic() - start:.0f} s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
