"""pgpt-bringup: start the same nodes as launch/pgpt.launch.py where ROS launch is not installed.

A pip venv with ROS 2 wheels has rclpy but no ``ros2 launch``. This starts ``perception_node`` (and
``demo_camera`` when asked) as child processes with ``--ros-args --params-file`` and the same
remappings and overrides the launch file applies, checks the params file first (one clear error,
exit 2, before any model loads), and stops every child when one exits or on Ctrl-C / SIGTERM.

    pgpt-bringup --demo-camera
    pgpt-bringup --demo-camera --voice topic      # + voice_node fed by `pgpt-say --wav FILE`
    pgpt-bringup --params-file my.yaml --image-topic /camera/color/image_raw --device cuda
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from pgpt_ros.ros.params import NodeParams, read_params_file
from pgpt_ros.voice.params import VoiceParams

# The source tree's root when running from it; site-packages when installed.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 10.0


def package_file(relative: str) -> Path:
    """A file of the package: the source tree's when running from it, else the installed share
    (found through the ament index, or in this venv's share/ when no workspace is sourced)."""
    source = PACKAGE_PARENT / relative
    if source.exists():
        return source
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory("pgpt_ros")) / relative
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset (a plain venv)
        return Path(sys.prefix) / "share" / "pgpt_ros" / relative


def dds_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this environment) plus the Fast DDS profile for large images, unless set."""
    env = dict(os.environ if base is None else base)
    env.setdefault(
        "FASTDDS_DEFAULT_PROFILES_FILE", str(package_file("config/fastdds_localhost.xml"))
    )
    env["PYTHONUNBUFFERED"] = "1"
    # Children import this package from the same place this process did (source tree or install).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    return env


def check_params_file(path: Path) -> None:
    """Raises ValueError / FileNotFoundError if the node would refuse this params file."""
    values = read_params_file(path, "perception_node")
    unknown = sorted(set(values) - set(NodeParams.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{path}: unknown perception_node parameters: {', '.join(unknown)}")
    NodeParams(**values).validated()
    voice = read_params_file(path, "voice_node")
    unknown = sorted(set(voice) - set(VoiceParams.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{path}: unknown voice_node parameters: {', '.join(unknown)}")
    VoiceParams(**voice).validated()


def node_command(module: str, params_file: Path, ros_args: Sequence[str] = ()) -> list[str]:
    """The argv that starts ``module``'s main as a ROS node, as ``ros2 run`` would."""
    return [
        sys.executable,
        "-m",
        module,
        "--ros-args",
        "--params-file",
        str(params_file),
        *ros_args,
    ]


class Processes:
    """Child processes started together and stopped together (SIGINT, then SIGKILL)."""

    def __init__(self, env: dict[str, str], log_dir: Path | None = None) -> None:
        self.env = env
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        """Starts ``argv``; its output goes to ``log_dir/name.log`` if set, else to ours."""
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 (closed in stop)
        process = subprocess.Popen(argv, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        self.children[name] = process
        return process

    def exited(self) -> tuple[str, int] | None:
        """(name, exit status) of a child that has exited, if any."""
        for name, process in self.children.items():
            if process.poll() is not None:
                return name, process.returncode
        return None

    def stop(self) -> None:
        """Asks every child to stop, waits, and kills what is left."""
        for process in self.children.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.children.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="pgpt-bringup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params-file", type=Path, default=None, help="default: config/pgpt.yaml")
    parser.add_argument("--image-topic", default="image", help="camera topic (remaps `image`)")
    parser.add_argument("--command-topic", default="command", help="remaps `command`")
    parser.add_argument("--model-path", default=None, help="overrides the params file")
    parser.add_argument("--device", default=None, help="overrides the params file")
    parser.add_argument("--demo-camera", action="store_true", help="also start demo_camera")
    parser.add_argument("--voice", nargs="?", const="", default=None, metavar="SOURCE",
                        help="also start voice_node; SOURCE microphone, file or topic overrides "
                             "the params file")  # fmt: skip
    return parser.parse_args(argv)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status of the child that stopped first (0 on Ctrl-C)."""
    args = parse_args(argv)
    params_file = args.params_file or package_file("config/pgpt.yaml")
    try:
        check_params_file(params_file)
    except (ValueError, FileNotFoundError, TypeError) as error:
        print(f"pgpt-bringup: {error}", file=sys.stderr)
        return 2
    node_args = ["-r", f"image:={args.image_topic}", "-r", f"command:={args.command_topic}"]
    for name in ("model_path", "device"):
        if getattr(args, name) is not None:
            node_args += ["-p", f"{name}:={getattr(args, name)}"]
    camera_args = ["-r", f"image:={args.image_topic}"]
    # Ctrl-C and SIGTERM both stop everything. Setting SIGINT explicitly also matters when this
    # runs in the background of a script (`&`), where SIGINT starts ignored and children inherit it.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with Processes(dds_env()) as processes:
        processes.start(
            "perception_node",
            node_command("pgpt_ros.ros.perception_node", params_file, node_args),
        )
        if args.demo_camera:
            processes.start(
                "demo_camera", node_command("pgpt_ros.ros.demo_camera", params_file, camera_args)
            )
        if args.voice is not None:
            voice_args = ["-r", f"command:={args.command_topic}"]
            voice_args += ["-p", f"source:={args.voice}"] if args.voice else []
            processes.start(
                "voice_node", node_command("pgpt_ros.ros.voice_node", params_file, voice_args)
            )
        try:
            while (stopped := processes.exited()) is None:
                time.sleep(0.2)
        except KeyboardInterrupt:
            return 0
        name, status = stopped
        print(f"pgpt-bringup: {name} exited with status {status}; stopping", file=sys.stderr)
        return status


if __name__ == "__main__":
    raise SystemExit(main())
