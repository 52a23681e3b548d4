"""Start pgpt_ros: perception_node, and optionally demo_camera, voice_node and rviz2.

    ros2 launch pgpt_ros pgpt.launch.py image_topic:=/camera/color/image_raw
    ros2 launch pgpt_ros pgpt.launch.py use_demo_camera:=true use_rviz:=true
    ros2 launch pgpt_ros pgpt.launch.py use_voice:=true voice_engine:=pocketsphinx
    ros2 launch pgpt_ros pgpt.launch.py --show-args          # every argument, described

perception_node is required: when it exits (a bad model path, impossible parameters, its lifecycle
``shutdown``), the whole launch shuts down instead of leaving the other nodes running. rviz2
starts only where it is installed (else one line says so). An argument this file does not declare
is an error, so a typo never passes silently.

Large images between processes on one host need a bigger Fast DDS shared-memory segment than the
default 512 KB: config/fastdds_shm.xml (32 MB, every network interface kept) is used unless
FASTDDS_DEFAULT_PROFILES_FILE is already set. Where `ros2 launch` is not installed (a pip venv),
`pgpt-bringup` starts the same nodes from the same params file.
"""

import os
import shutil

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
)
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

SHARE = get_package_share_directory("pgpt_ros")

ARGUMENTS = {
    "image_topic": ("image", "camera topic the node subscribes (remaps `image`)"),
    "command_topic": ("command", "topic of text commands (remaps `command`)"),
    "params_file": (os.path.join(SHARE, "config", "pgpt.yaml"), "parameters of every node"),
    "model_path": ("", "model directory; empty keeps the params file's (the embedded default)"),
    "device": ("", "torch device (cpu, cuda, cuda:1); empty keeps the params file's"),
    "use_demo_camera": ("false", "also start demo_camera: ShapesRef scenes on image_topic"),
    "use_rviz": ("false", "also start rviz2 with config/pgpt.rviz, if rviz2 is installed"),
    "use_voice": ("false", "also start voice_node: speech -> command_topic, and `transcript`"),
    "voice_source": ("", "microphone, file (voice_file) or topic; empty keeps the params file's"),
    "voice_file": ("", "voice_source file: a WAV/FLAC file or folder"),
    "voice_engine": ("", "whisper or pocketsphinx; empty keeps the params file's"),
}


def given(context, names: dict[str, str]) -> dict[str, str]:
    """Parameter overrides for the launch arguments in ``names`` that were given (non-empty)."""
    values = {parameter: LaunchConfiguration(argument).perform(context)
              for argument, parameter in names.items()}  # fmt: skip
    return {parameter: value for parameter, value in values.items() if value}


def check_arguments(context, *args, **kwargs):
    """Fails the launch on an argument this file does not declare."""
    unknown = sorted(set(context.launch_configurations) - set(ARGUMENTS))
    if unknown:
        raise RuntimeError(
            f"unknown launch argument(s): {', '.join(unknown)}; `ros2 launch pgpt_ros "
            "pgpt.launch.py --show-args` lists the arguments"
        )
    return []


def perception_node(context, *args, **kwargs):
    """The node (its death ends the launch), with model_path/device given only when set."""
    node = Node(
        package="pgpt_ros",
        executable="perception_node",
        name="perception_node",
        output="screen",
        parameters=[LaunchConfiguration("params_file"),
                    given(context, {"model_path": "model_path", "device": "device"})],
        remappings=[("image", LaunchConfiguration("image_topic")),
                    ("command", LaunchConfiguration("command_topic"))],
    )  # fmt: skip
    stop_all = EmitEvent(event=Shutdown(reason="perception_node exited"))
    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=[stop_all]))]


def voice_node(context, *args, **kwargs):
    """voice_node, publishing on the same command topic; overrides only when given."""
    names = {"voice_source": "source", "voice_file": "file_path", "voice_engine": "engine"}
    return [
        Node(
            package="pgpt_ros",
            executable="voice_node",
            name="voice_node",
            output="screen",
            parameters=[LaunchConfiguration("params_file"), given(context, names)],
            remappings=[("command", LaunchConfiguration("command_topic"))],
            condition=IfCondition(LaunchConfiguration("use_voice")),
        )
    ]


def rviz(context, *args, **kwargs):
    """rviz2 with the package's config, or one line saying why not."""
    if LaunchConfiguration("use_rviz").perform(context).lower() not in ("true", "1"):
        return []
    if shutil.which("rviz2") is None:
        return [LogInfo(msg="use_rviz: rviz2 is not installed here (apt install "
                            "ros-$ROS_DISTRO-rviz2); starting without it")]  # fmt: skip
    config = os.path.join(SHARE, "config", "pgpt.rviz")
    return [Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", config])]


def generate_launch_description():
    profile = os.environ.get(
        "FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(SHARE, "config", "fastdds_shm.xml")
    )
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description) in ARGUMENTS.items()
            ),  # fmt: skip
            OpaqueFunction(function=check_arguments),
            SetEnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", profile),
            OpaqueFunction(function=perception_node),
            OpaqueFunction(function=voice_node),
            Node(
                package="pgpt_ros",
                executable="demo_camera",
                name="demo_camera",
                output="screen",
                parameters=[LaunchConfiguration("params_file")],
                remappings=[("image", LaunchConfiguration("image_topic"))],
                condition=IfCondition(LaunchConfiguration("use_demo_camera")),
            ),
            OpaqueFunction(function=rviz),
        ]
    )
