"""``pgpt-bench node``: perception_node (the embedded model) under floods, a soak, deactivation
and signals, as a separate process on loopback DDS, driven by this process's rclpy node.

    pgpt-bench node --out docs/bench                     # floods, 20 deactivations, 5 exits
    pgpt-bench node --out docs/bench --soak-min 10       # and a 10-minute soak

- flood: 200 commands back to back on ``command`` (commander QoS), and 200 ``locate`` calls
  spread over 2 s: sent, answered by status, lost (no answer within the timeout).
- soak: 30 Hz 640x480 frames and 2 commands/s for N minutes: RSS of the node every 30 s,
  latency (command sent -> answer received) p50/p95, lost.
- deactivate: per trial, 8 ``locate`` calls in flight, then lifecycle deactivate: callers left
  without an answer, node crashes; reactivated for the next trial.
- exit: 8 calls in flight, then one SIGINT: seconds until the process is gone, calls unanswered.
- standing: "all shapes" on ``track`` with 30 Hz frames for N seconds: standing answers per
  second (the node's ``track_rate_hz`` is raised to 30 so the model is the limit).

Prints a table and writes ``OUT/node-<cores>cpu.json``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from tqdm import tqdm

from pgpt_ros.bench.common import write_result
from pgpt_ros.data.shapesref import ShapesRef
from pgpt_ros.msg import DetectionArray
from pgpt_ros.ros.bringup import Processes, dds_env, node_command, package_file
from pgpt_ros.ros.images import from_array
from pgpt_ros.ros.messages import STATUS_NAMES
from pgpt_ros.ros.qos import COMMANDER_QOS, RESULT_READER_QOS
from pgpt_ros.srv import Locate

ANSWER_TIMEOUT_S = 30.0
STARTUP_TIMEOUT_S = 120.0
COMMANDS = ("find the red circle", "all shapes", "the largest shape", "the blue square")


class Driver:
    """This side of the bench: camera, commander, ``locate`` caller, answer collector."""

    def __init__(self) -> None:
        self.node: Node = rclpy.create_node("pgpt_bench_driver")
        self.image_pub = self.node.create_publisher(
            Image, "image", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        )
        self.command_pub = self.node.create_publisher(String, "command", COMMANDER_QOS)
        self.locate = self.node.create_client(Locate, "locate")
        self.change_state = self.node.create_client(ChangeState, "/perception_node/change_state")
        self.answers: dict[str, tuple[float, DetectionArray]] = {}
        self.node.create_subscription(
            DetectionArray, "detections", self._on_answer, RESULT_READER_QOS
        )
        scene = ShapesRef.scene(seed=7, width=640, height=480).image
        self.frame = from_array(np.ascontiguousarray(scene), Header(frame_id="camera"), "rgb8")

    def _on_answer(self, msg: DetectionArray) -> None:
        self.answers.setdefault(msg.command, (time.monotonic(), msg))

    def spin_until(self, condition, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.01)
        return bool(condition())

    def publish_frame(self) -> None:
        self.frame.header.stamp = self.node.get_clock().now().to_msg()
        self.image_pub.publish(self.frame)

    def transition(self, transition_id: int) -> bool:
        future = self.change_state.call_async(
            ChangeState.Request(transition=Transition(id=transition_id))
        )
        return self.spin_until(future.done, 30.0) and future.result().success

    def calls(self, count: int, tag: str) -> list:
        return [self.locate.call_async(Locate.Request(command=f"{COMMANDS[i % 4]} {tag} {i}"))
                for i in range(count)]  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(processes: Processes, name: str, params: list[str]):
    argv = node_command("pgpt_ros.ros.perception_node", package_file("config/pgpt.yaml"), params)
    return processes.start(name, argv)


def wait_ready(driver: Driver, process, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    def ready() -> bool:
        if process.poll() is not None or not driver.locate.service_is_ready():
            return process.poll() is not None
        future = driver.locate.call_async(Locate.Request(command="the shapes"))
        driver.spin_until(future.done, 10.0)
        return future.done() and future.result().result.status != DetectionArray.INACTIVE

    if not driver.spin_until(ready, timeout_s) or process.poll() is not None:
        raise RuntimeError("perception_node did not start; see the bench's log directory")


def flood(driver: Driver) -> dict:
    """200 commands back to back, then 200 calls in 2 s."""
    driver.publish_frame()
    driver.spin_until(lambda: False, 0.3)
    sent = [f"{COMMANDS[i % 4]} flood {i}" for i in range(200)]
    for text in sent:
        driver.command_pub.publish(String(data=text))
    driver.spin_until(lambda: all(t in driver.answers for t in sent), ANSWER_TIMEOUT_S)
    topic = Counter(STATUS_NAMES[driver.answers[t][1].status] for t in sent if t in driver.answers)
    futures = []
    for batch in range(10):
        driver.publish_frame()
        futures += driver.calls(20, f"burst {batch}")
        driver.spin_until(lambda: False, 0.2)
    driver.spin_until(lambda: all(f.done() for f in futures), ANSWER_TIMEOUT_S)
    calls = Counter(STATUS_NAMES[f.result().result.status] for f in futures if f.done())
    return {
        "topic": {"sent": 200, "answered": dict(topic), "lost": 200 - sum(topic.values())},
        "locate": {"sent": 200, "answered": dict(calls), "lost": 200 - sum(calls.values())},
    }


def percentiles(values: list[float]) -> dict[str, float]:
    """p50 and p95 of ``values`` (the p95 is a measured value, not interpolated)."""
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[int(0.95 * (len(ordered) - 1))]}


def soak(driver: Driver, pid: int, minutes: float) -> dict:
    """30 Hz frames and 2 commands/s; RSS every 30 s, latency of every command."""
    start_s, next_frame, next_command, next_rss = time.monotonic(), 0.0, 0.0, 0.0
    sent: dict[str, float] = {}
    rss = []
    end = start_s + 60 * minutes
    with tqdm(total=int(60 * minutes), desc="soak", unit="s") as bar:
        while (now := time.monotonic()) < end:
            if now >= next_frame:
                driver.publish_frame()
                next_frame = now + 1 / 30
            if now >= next_command:
                text = f"{COMMANDS[len(sent) % 4]} soak {len(sent)}"
                driver.command_pub.publish(String(data=text))
                sent[text] = now
                next_command = now + 0.5
            if now >= next_rss:
                rss.append((round(now - start_s), round(rss_mb(pid), 1)))
                next_rss = now + 30
            rclpy.spin_once(driver.node, timeout_sec=0.002)
            if int(now - start_s) > bar.n:
                bar.update(int(now - start_s) - bar.n)
    driver.spin_until(lambda: all(t in driver.answers for t in sent), ANSWER_TIMEOUT_S)
    latency = {t: 1000 * (driver.answers[t][0] - s) for t, s in sent.items() if t in driver.answers}
    # Per command: the answers' lengths differ ("all shapes" names up to eight objects), so the
    # spread of one command's latencies is what the node adds, the overall spread is also the model's.
    by_command = {c: percentiles([v for t, v in latency.items() if t.startswith(c + " soak")])
                  for c in COMMANDS}  # fmt: skip
    statuses = Counter(
        STATUS_NAMES[driver.answers[t][1].status] for t in sent if t in driver.answers
    )
    after_warmup = [mb for t, mb in rss if t >= 60] or [mb for _, mb in rss]
    return {
        "minutes": minutes,
        "commands": len(sent),
        "answered": dict(statuses),
        "lost": len(sent) - len(latency),
        "latency_ms": percentiles(list(latency.values())),
        "latency_ms_by_command": by_command,
        "rss_mb": rss,
        "rss_growth_after_first_minute": after_warmup[-1] / after_warmup[0] - 1,
    }


def standing_rate(driver: Driver, seconds: float) -> dict:
    """Standing answers per second while 30 Hz frames arrive."""
    track = driver.node.create_publisher(String, "track", COMMANDER_QOS)
    stamps: set[tuple[int, int]] = set()

    def on_answer(msg: DetectionArray) -> None:
        if msg.standing and msg.status == DetectionArray.OK:
            stamps.add((msg.header.stamp.sec, msg.header.stamp.nanosec))

    listener = driver.node.create_subscription(
        DetectionArray, "detections", on_answer, RESULT_READER_QOS
    )
    driver.spin_until(lambda: track.get_subscription_count() > 0, 10.0)
    track.publish(String(data="all shapes"))
    driver.spin_until(lambda: bool(stamps), 10.0)  # the first answer: the tracker is running
    first, begin, next_frame = len(stamps), time.monotonic(), 0.0
    while (now := time.monotonic()) - begin < seconds:
        if now >= next_frame:
            driver.publish_frame()
            next_frame = now + 1 / 30
        rclpy.spin_once(driver.node, timeout_sec=0.002)
    track.publish(String(data=""))
    driver.node.destroy_subscription(listener)
    return {"seconds": seconds, "answers": len(stamps) - first,
            "rate_hz": (len(stamps) - first) / seconds}  # fmt: skip


def deactivations(driver: Driver, process, trials: int) -> dict:
    unanswered = crashes = 0
    for trial in tqdm(range(trials), desc="deactivate"):
        driver.publish_frame()
        futures = driver.calls(8, f"deactivate {trial}")
        driver.spin_until(lambda: False, 0.02)
        driver.transition(Transition.TRANSITION_DEACTIVATE)
        driver.spin_until(lambda f=futures: all(x.done() for x in f), 10.0)
        unanswered += sum(not f.done() for f in futures)
        if process.poll() is not None:
            crashes += 1
            break
        driver.transition(Transition.TRANSITION_ACTIVATE)
    return {"trials": trials, "unanswered_calls": unanswered, "crashes": crashes}


def exit_time(driver: Driver, processes: Processes, params: list[str], trials: int) -> dict:
    seconds, unanswered = [], 0
    for trial in tqdm(range(trials), desc="exit"):
        process = start(processes, f"exit_{trial}", params)
        wait_ready(driver, process)
        driver.publish_frame()
        futures = driver.calls(8, f"exit {trial}")
        driver.spin_until(lambda: False, 0.05)
        began = time.monotonic()
        process.send_signal(signal.SIGINT)
        while process.poll() is None and time.monotonic() - began < 30:
            rclpy.spin_once(driver.node, timeout_sec=0.005)
        seconds.append(time.monotonic() - began)
        driver.spin_until(lambda f=futures: all(x.done() for x in f), 5.0)
        unanswered += sum(not f.done() for f in futures)
    return {"trials": trials, "exit_s": [round(s, 3) for s in seconds],
            "max_exit_s": max(seconds), "unanswered_calls": unanswered}  # fmt: skip


def table(result: dict) -> str:
    lines = ["| measurement | result |", "|---|---|"]
    for kind in ("topic", "locate"):
        f = result["flood"][kind]
        lines.append(f"| flood, {kind} | {f['sent']} sent, answered {f['answered']}, "
                     f"lost {f['lost']} |")  # fmt: skip
    if "standing" in result:
        r = result["standing"]
        lines.append(f"| standing command, 30 Hz frames | {r['rate_hz']:.1f} answers/s "
                     f"({r['answers']} in {r['seconds']:.0f} s) |")  # fmt: skip
    if "soak" in result:
        s = result["soak"]
        lines.append(f"| soak {s['minutes']} min | {s['commands']} commands, lost {s['lost']}, "
                     f"latency p50 {s['latency_ms']['p50']:.0f} ms p95 "
                     f"{s['latency_ms']['p95']:.0f} ms, RSS growth after the first minute "
                     f"{100 * s['rss_growth_after_first_minute']:+.1f} % |")  # fmt: skip
        for command, p in s["latency_ms_by_command"].items():
            lines.append(f"| soak, '{command}' | latency p50 {p['p50']:.0f} ms p95 "
                         f"{p['p95']:.0f} ms ({p['p95'] / p['p50']:.1f}x) |")  # fmt: skip
    d, e = result["deactivate"], result["exit"]
    lines.append(f"| deactivate x{d['trials']} | unanswered {d['unanswered_calls']}, "
                 f"crashes {d['crashes']} |")  # fmt: skip
    lines.append(f"| one SIGINT x{e['trials']} | max exit {e['max_exit_s']:.2f} s, "
                 f"unanswered {e['unanswered_calls']} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pgpt-bench node", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the JSON")
    parser.add_argument("--soak-min", type=float, default=0.0, help="soak minutes (0: none)")
    parser.add_argument("--standing-s", type=float, default=0.0, help="standing-rate seconds")
    parser.add_argument("--deactivate-trials", type=int, default=20)
    parser.add_argument("--exit-trials", type=int, default=5)
    parser.add_argument("--num-threads", type=int, default=1, help="the node's num_threads")
    parser.add_argument("--logs", type=Path, default=Path("out/bench-node"), help="node logs")
    args = parser.parse_args(argv)
    os.environ.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(180 + os.getpid() % 40),
        FASTDDS_DEFAULT_PROFILES_FILE=str(package_file("config/fastdds_localhost.xml")),
    )
    params = ["-p", f"num_threads:={args.num_threads}", "-p", "max_image_age_s:=5.0",
              "-p", "track_rate_hz:=30.0"]  # fmt: skip
    result: dict = {"num_threads": args.num_threads, "cpu_count": os.cpu_count(),
                    "load_average_1_5_15_min": os.getloadavg()}  # fmt: skip
    rclpy.init()
    try:
        driver = Driver()
        with Processes(dds_env(), log_dir=args.logs) as processes:
            node = start(processes, "perception_node", params)
            wait_ready(driver, node)
            result["flood"] = flood(driver)
            if args.standing_s > 0:
                result["standing"] = standing_rate(driver, args.standing_s)
            if args.soak_min > 0:
                result["soak"] = soak(driver, node.pid, args.soak_min)
            result["deactivate"] = deactivations(driver, node, args.deactivate_trials)
            node.send_signal(signal.SIGINT)
            node.wait(timeout=30)
            result["exit"] = exit_time(driver, processes, params, args.exit_trials)
    finally:
        rclpy.try_shutdown()
    out = write_result(args.out, f"node-{os.cpu_count()}cpu.json", result)
    print(table(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
