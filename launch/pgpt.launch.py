"""Start pgpt_ros: perception_node, and optionally demo_camera, voice_node and rviz2.

    ros2 launch pgpt_ros pgpt.launch.py image_topic:=/camera/color/image_raw
    ros2 launch pgpt_ros pgpt.launch.py use_demo_camera:=true use_rviz:=true
    ros2 launch pgpt_ros pgpt.launch.py use_voice:=true voice_engine:=pocketsphinx

Arguments:
    image_topic      camera topic the node subscribes (remaps `image`); default: image
    command_topic    topic of text commands (remaps `command`); default: command
    params_file      node parameters; default: the package's config/pgpt.yaml
    model_path       model directory; empty keeps the params file's value (embedded default)
    device           torch device (cpu, cuda, ...); empty keeps the params file's value
    use_demo_camera  also start demo_camera publishing ShapesRef scenes on image_topic
    use_rviz         also start rviz2 with config/pgpt.rviz (overlay and masks)
    use_voice        also start voice_node: speech -> `command_topic`, and `transcript`
    voice_source     microphone, file (voice_file) or topic (pgpt_ros/AudioData on `audio`);
                     empty keeps the params file's value (microphone)
    voice_file       source file: a WAV/FLAC file or folder; empty keeps the params file's value
    voice_engine     whisper or pocketsphinx; empty keeps the params file's value (whisper)

Where `ros2 launch` is not installed (a pip venv), `pgpt-bringup` starts the same nodes from the same
params file. Large images between processes need the Fast DDS profile below (32 MB shared memory);
it is set unless FASTDDS_DEFAULT_PROFILES_FILE is already set.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

SHARE = get_package_share_directory("pgpt_ros")


def perception_node(context, *args, **kwargs):
    """The node, with model_path/device overrides only when given (else the params file wins)."""
    overrides = {
        name: LaunchConfiguration(name).perform(context)
        for name in ("model_path", "device")
        if LaunchConfiguration(name).perform(context)
    }
    return [
        Node(
            package="pgpt_ros",
            executable="perception_node",
            name="perception_node",
            output="screen",
            parameters=[LaunchConfiguration("params_file"), overrides],
            remappings=[
                ("image", LaunchConfiguration("image_topic")),
                ("command", LaunchConfiguration("command_topic")),
            ],
        )
    ]


def voice_node(context, *args, **kwargs):
    """voice_node, publishing on the same command topic; overrides only when given."""
    names = {"voice_source": "source", "voice_file": "file_path", "voice_engine": "engine"}
    overrides = {
        parameter: LaunchConfiguration(argument).perform(context)
        for argument, parameter in names.items()
        if LaunchConfiguration(argument).perform(context)
    }
    return [
        Node(
            package="pgpt_ros",
            executable="voice_node",
            name="voice_node",
            output="screen",
            parameters=[LaunchConfiguration("params_file"), overrides],
            remappings=[("command", LaunchConfiguration("command_topic"))],
            condition=IfCondition(LaunchConfiguration("use_voice")),
        )
    ]


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument("image_topic", default_value="image"),
        DeclareLaunchArgument("command_topic", default_value="command"),
        DeclareLaunchArgument(
            "params_file", default_value=os.path.join(SHARE, "config", "pgpt.yaml")
        ),
        DeclareLaunchArgument("model_path", default_value=""),
        DeclareLaunchArgument("device", default_value=""),
        DeclareLaunchArgument("use_demo_camera", default_value="false"),
        DeclareLaunchArgument("use_rviz", default_value="false"),
        DeclareLaunchArgument("use_voice", default_value="false"),
        DeclareLaunchArgument("voice_source", default_value=""),
        DeclareLaunchArgument("voice_file", default_value=""),
        DeclareLaunchArgument("voice_engine", default_value=""),
    ]
    profile = os.environ.get(
        "FASTDDS_DEFAULT_PROFILES_FILE", os.path.join(SHARE, "config", "fastdds_localhost.xml")
    )
    return LaunchDescription(
        [
            *arguments,
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
            Node(
                package="rviz2",
                executable="rviz2",
                name="rviz2",
                arguments=["-d", os.path.join(SHARE, "config", "pgpt.rviz")],
                condition=IfCondition(LaunchConfiguration("use_rviz")),
            ),
        ]
    )
