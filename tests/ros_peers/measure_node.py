"""The measurements in docs/ros.md: the node's added latency, commands per second, 30 Hz input.

    .venv/bin/python tests/ros_peers/measure_node.py [--quick]

Runs every process on loopback DDS in a domain of its own (like the tests) and prints Markdown.

- Added latency: ``locate`` calls carrying a 640x480 or 1920x1080 image; the round trip minus the
  model's own time (``last_inference_s`` from the node's diagnostics, read after each call). With
  the embedded model (few or no detections) and with the fake perceiver of the tests (one detection
  whose mask covers the whole frame: the most mask and overlay work per answer).
- Commands per second: back-to-back ``locate`` calls on the latest frame of a 10 Hz demo camera.
- 30 Hz input: demo_camera at 30 Hz while commands run back to back; frames the node received and
  answered, and the CPU use of both processes (from /proc).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rclpy

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pgpt_ros.data.shapesref import ShapesRef  # noqa: E402
from pgpt_ros.msg import DetectionArray  # noqa: E402
from tests.conftest import ros_environment  # noqa: E402
from tests.ros_peers.harness import Client, rgb_image, start_node, stop  # noqa: E402

SIZES = ((640, 480), (1920, 1080))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def diagnostics_when(client: Client, ready=lambda values: True) -> dict[str, str]:
    """The values of the first diagnostics received from now on that satisfy ``ready``."""
    client.diagnostics.clear()
    found: list[dict[str, str]] = []

    def check() -> bool:
        while client.diagnostics and not found:
            values = {kv.key: kv.value for kv in client.diagnostics.pop(0).status[0].values}
            if ready(values):
                found.append(values)
        return bool(found)

    assert client.spin_until(check, 10.0), "no diagnostics"
    return found[0]


def added_latency(client: Client, width: int, height: int, calls: int) -> list[float]:
    image = rgb_image(ShapesRef.scene(11, width, height).image, stamp_sec=1)
    added = []
    for _ in range(calls + 1):  # the first call warms up
        start = time.monotonic()
        result = client.locate("find the red circle", image)
        round_trip = time.monotonic() - start
        assert result.status == DetectionArray.OK, result.status_message
        values = diagnostics_when(client, lambda v, n=result.command_id: int(v["commands"]) >= n)
        model_s = float(values["last_inference_s"])
        added.append(round_trip - model_s)
    return added[1:]


def start_camera(env: dict[str, str], rate_hz: float, width: int, height: int) -> subprocess.Popen:
    argv = [sys.executable, "-m", "pgpt_ros.ros.demo_camera", "--ros-args", "-p", f"rate_hz:={rate_hz}",
            "-p", f"width:={width}", "-p", f"height:={height}", "-p", "seed:=11"]  # fmt: skip
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def back_to_back(client: Client, seconds: float) -> tuple[int, float]:
    """(OK answers, elapsed seconds) of sequential `locate` calls on the latest frame."""
    answered, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        answered += client.locate("find the red circle").status == DetectionArray.OK
    return answered, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter windows")
    args = parser.parse_args()
    calls, window = (3, 5.0) if args.quick else (10, 15.0)
    env = ros_environment(190 + os.getpid() % 40)
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID",
                                            "FASTDDS_DEFAULT_PROFILES_FILE", "AMENT_PREFIX_PATH")})  # fmt: skip
    logs = Path(tempfile.mkdtemp(prefix="pgpt-measure-"))
    rclpy.init()
    client = Client()
    print(f"nproc {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; logs in {logs}\n")
    print(
        "| perceiver | image | added latency min (ms) | median (ms) | p90 (ms) |\n|---|---|---|---|---|"
    )
    for kind in ("real", "fake"):
        log = logs / f"{kind}.log"
        node = start_node(env, log, "-p", "max_image_age_s:=30.0", kind=kind, slow_s=0.0)
        try:
            client.wait_for_node(node, log)
            for width, height in SIZES:
                added = sorted(added_latency(client, width, height, calls))
                p90 = added[min(len(added) - 1, int(0.9 * len(added)))]
                print(f"| {kind} | {width}x{height} | {1000 * added[0]:.1f} "
                      f"| {1000 * statistics.median(added):.1f} "
                      f"| {1000 * p90:.1f} |")  # fmt: skip
        finally:
            stop(node)

    log = logs / "throughput.log"
    node = start_node(env, log, kind="real", slow_s=0.0)
    print("\n| camera | commands/s | node frames received/s | frames answered | "
          "node CPU % | camera CPU % |\n|---|---|---|---|---|---|")  # fmt: skip
    try:
        client.wait_for_node(node, log)
        for rate, (width, height), commands in [(10.0, SIZES[0], True), (30.0, SIZES[0], False),
                                                (30.0, SIZES[0], True), (30.0, SIZES[1], True)]:  # fmt: skip
            camera = start_camera(env, rate, width, height)
            try:
                client.spin_until(lambda: False, 3.0)  # camera up, node receiving
                before = diagnostics_when(client)
                cpu_node, cpu_camera = cpu_seconds(node.pid), cpu_seconds(camera.pid)
                start = time.monotonic()
                if commands:
                    answered, _ = back_to_back(client, window)
                else:
                    answered = 0
                    client.spin_until(lambda: False, window)
                after = diagnostics_when(client)
                elapsed = time.monotonic() - start
                frames = int(after["frames_received"]) - int(before["frames_received"])
                used = int(after["frames_answered"]) - int(before["frames_answered"])
                node_cpu = 100 * (cpu_seconds(node.pid) - cpu_node) / elapsed
                camera_cpu = 100 * (cpu_seconds(camera.pid) - cpu_camera) / elapsed
                print(f"| {rate:.0f} Hz {width}x{height} | "
                      f"{answered / elapsed:.1f} | {frames / elapsed:.1f} | {used} of {frames} | "
                      f"{node_cpu:.0f} | {camera_cpu:.0f} |")  # fmt: skip
            finally:
                stop(camera)
    finally:
        stop(node)
        client.close()
        rclpy.shutdown()
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
