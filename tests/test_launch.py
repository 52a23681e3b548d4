"""The real `ros2 launch pgpt_ros pgpt.launch.py`: arguments described and checked, rviz optional,
the node's death ends the launch, one Ctrl-C ends every process.

Uses a system ROS 2 where one is installed, else the ROS tools scripts/setup.sh builds from a
ros-src kit into build/ros-tools; skips with the reason where neither exists. Every process runs in
a session of its own, so "no orphans" is checked on the whole session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pgpt_ros.msg import DetectionArray
from tests.ros_peers.ros_tools import ros2_environment

pytestmark = pytest.mark.ros
STARTUP_S = 90.0  # torch import and model load on a busy 2-core machine


@pytest.fixture
def ros2_env(ros_env):
    env, where = ros2_environment(ros_env)
    if env is None:
        pytest.skip(where)
    return env


def launch(env: dict[str, str], log: Path, *arguments: str) -> subprocess.Popen:
    argv = ["ros2", "launch", "pgpt_ros", "pgpt.launch.py", *arguments]
    return subprocess.Popen(argv, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip


def session_alive(process: subprocess.Popen) -> bool:
    """Whether any process of the launch's session (launch, nodes) still runs."""
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while session_alive(process) and time.monotonic() < deadline:
        time.sleep(0.1)
        process.poll()
    return not session_alive(process)


def kill_session(process: subprocess.Popen) -> None:
    if session_alive(process):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_show_args_describes_every_argument(ros2_env):
    out = subprocess.run(["ros2", "launch", "pgpt_ros", "pgpt.launch.py", "--show-args"],
                         env=ros2_env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "no description given" not in out.stdout
    for name in ("image_topic", "use_rviz", "use_voice", "model_path"):
        assert f"'{name}'" in out.stdout


def test_unknown_argument_is_an_error(ros2_env, tmp_path):
    log = tmp_path / "launch.log"
    process = launch(ros2_env, log, "use_demo_camra:=true")
    try:
        assert process.wait(timeout=60) != 0
        assert wait_gone(process, 10.0)
    finally:
        kill_session(process)
    assert "unknown launch argument(s): use_demo_camra" in log.read_text()


def test_node_death_ends_the_launch(ros2_env, tmp_path):
    """A bad model path: perception_node exits at configure; demo_camera must not stay behind."""
    log = tmp_path / "launch.log"
    process = launch(ros2_env, log, "use_demo_camera:=true", f"model_path:={tmp_path / 'none'}")
    try:
        process.wait(timeout=STARTUP_S)
        assert wait_gone(process, 10.0), log.read_text()
    finally:
        kill_session(process)
    text = log.read_text()
    assert "is not a directory" in text and "process has died" in text


def test_launch_serves_without_rviz_and_one_sigint_stops_everything(ros2_env, client, tmp_path):
    log = tmp_path / "launch.log"
    process = launch(ros2_env, log, "use_demo_camera:=true", "use_rviz:=true")
    try:
        ready = client.spin_until(
            lambda: process.poll() is not None
            or (client.locate_client.service_is_ready()
                and client.locate("the shapes").status == DetectionArray.OK),
            STARTUP_S,
        )  # fmt: skip
        assert ready and process.poll() is None, log.read_text()
        assert "rviz2 is not installed" in log.read_text()
        process.send_signal(signal.SIGINT)
        assert wait_gone(process, 15.0), log.read_text()
    finally:
        kill_session(process)
    assert "Traceback" not in log.read_text() and "RCLError" not in log.read_text()
