"""The QoS of every topic and service of the perception node, defined once.

Commands and answers are reliable with deep queues: a burst of commands must reach the node's own
bounded queue, where each one is answered (overflow as BUSY), instead of being overwritten in a
DDS history that is shallower than the burst. A commander (``pgpt-say --topic``, voice_node, your
own node) should publish with ``COMMANDER_QOS`` and read ``detections`` with
``RESULT_READER_QOS``:

    from pgpt_ros.ros.qos import COMMANDER_QOS
    node.create_publisher(String, "command", COMMANDER_QOS)

Images are the opposite: only the newest frame matters, so depth 1 (best effort by default).
"""

from __future__ import annotations

from rclpy.qos import (
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

# Readers: enough for any burst a commander sends faster than the node can say BUSY to it (a
# reader's history is freed as its samples are taken, so depth costs nothing while it keeps up).
COMMAND_DEPTH = 1000
# The node's answer publisher: a writer keeps its last `depth` samples (masks included) whether or
# not they were delivered, so its depth is what the answers may cost in memory. Answers leave as
# they are written (reliable, over shared memory or loopback), so a burst's BUSY answers never
# wait in it; 100 keeps it at a few MB.
RESULT_DEPTH = 100

COMMAND_QOS = QoSProfile(
    depth=COMMAND_DEPTH, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
)
COMMANDER_QOS = COMMAND_QOS
RESULT_READER_QOS = COMMAND_QOS
RESULT_QOS = QoSProfile(
    depth=RESULT_DEPTH, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE
)
SERVICE_QOS = COMMAND_QOS
IMAGE_OUT_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
DIAGNOSTICS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def image_qos(reliability: str) -> QoSProfile:
    """The camera subscription: the newest frame only (depth 1), best effort or reliable."""
    policy = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
    return QoSProfile(depth=1, reliability=policy[reliability])
