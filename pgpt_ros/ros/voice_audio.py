"""Recordings as pgpt_ros/AudioData messages: what a remote microphone would publish on `audio`.

Used by ``pgpt-say --wav`` (and the demo) to send a recording through voice_node's topic source,
the same path a microphone on another computer takes.
"""

from __future__ import annotations

import time

import numpy as np
import rclpy
import soundfile
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_msgs.msg import Header

from pgpt_ros.msg import AudioData
from pgpt_ros.ros.voice_node import stamp

CHUNK_S = 0.1
TRAILING_SILENCE_S = 1.0  # so voice_node sees the speech end


def audio_messages(path: str, frame_id: str = "pgpt_say") -> list[AudioData]:
    """The recording at its own rate and channel count in 0.1 s messages, then silence,
    stamped as if it were being recorded now."""
    data, rate = soundfile.read(path, dtype="int16", always_2d=True)
    silence = np.zeros((int(TRAILING_SILENCE_S * rate), data.shape[1]), np.int16)
    data = np.concatenate([data, silence])
    step, start = int(CHUNK_S * rate), time.time()
    return [
        AudioData(
            header=Header(stamp=stamp(start + offset / rate), frame_id=frame_id),
            sample_rate=rate,
            channels=data.shape[1],
            samples=data[offset : offset + step].reshape(-1).tolist(),
        )
        for offset in range(0, len(data), step)
    ]


def publish_recording(node: Node, path: str, timeout_s: float) -> bool:
    """Waits for a subscriber of `audio` and publishes the recording at real-time pace; False
    when no voice_node listened within ``timeout_s``."""
    publisher = node.create_publisher(AudioData, "audio", QoSProfile(depth=100))
    deadline = time.monotonic() + timeout_s
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if publisher.get_subscription_count() == 0:
        return False
    for message in audio_messages(path):
        publisher.publish(message)
        rclpy.spin_once(node, timeout_sec=CHUNK_S)
    return True
