"""perception_node with a test perceiver, as a separate ROS process.

    python perception_node_peer.py {fake|real} SLOW_S [--ros-args ...]

``fake``: tests/ros_peers/fake_perceiver.FakePerceiver (predictable answers, starts in a second);
``real``: the production Perceiver.load wrapped with the same slow/explode hooks. Everything else
is the production node and its process (parameters, lifecycle, autostart, signals).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pgpt_ros.ros import process  # noqa: E402
from pgpt_ros.ros.perception_node import PerceptionNode, load_perceiver  # noqa: E402
from tests.ros_peers.fake_perceiver import FakePerceiver, HookedPerceiver  # noqa: E402


def main() -> int:
    kind, slow_s = sys.argv[1], float(sys.argv[2])
    if kind == "fake":
        factory = lambda params: FakePerceiver(slow_s)  # noqa: E731
    else:
        factory = lambda params: HookedPerceiver(load_perceiver(params), slow_s)  # noqa: E731
    process.init([sys.argv[0], *sys.argv[3:]])
    node = PerceptionNode(factory)
    process.exit_now(process.serve(node, autostart=node.params.autostart))


if __name__ == "__main__":
    sys.exit(main())
