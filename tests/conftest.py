"""Test-wide setup: ROS traffic stays on this machine, in a DDS domain of its own.

Every ROS test (in-process rclpy and the node processes it starts) uses ``ros_env``: loopback-only
discovery, the project's Fast DDS profile (32 MB shared memory, UDP on 127.0.0.1 only) and a
``ROS_DOMAIN_ID`` no other test in this run shares. Domains start at an offset derived from the
process id so that two test runs on one machine rarely meet.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FASTDDS_PROFILE = REPO / "config" / "fastdds_localhost.xml"

# Fast DDS maps domain ids to UDP ports; 1..100 stays clear of the ephemeral port range on Linux.
_domain_ids = itertools.cycle(range(1, 101))
for _ in range(os.getpid() % 100):
    next(_domain_ids)


def ros_environment(domain_id: int) -> dict[str, str]:
    """The environment of one isolated ROS test run in DDS domain ``domain_id``; exported heads
    are cached under build/ (never the user's cache)."""
    env = dict(os.environ)
    env.update(
        PGPT_ROS_CACHE=str(REPO / "build" / "test-engine-cache"),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(domain_id),
        FASTDDS_DEFAULT_PROFILES_FILE=str(FASTDDS_PROFILE),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        AMENT_PREFIX_PATH=sys.prefix,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def ros_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for ROS processes of one test; also applied to this process for in-process rclpy.

    rclpy reads these variables at ``rclpy.init``, so tests that start a context in this process
    must init after requesting the fixture (and shut it down before the test ends).
    """
    env = ros_environment(next(_domain_ids))
    for key in (
        "PGPT_ROS_CACHE",
        "ROS_AUTOMATIC_DISCOVERY_RANGE",
        "ROS_DOMAIN_ID",
        "FASTDDS_DEFAULT_PROFILES_FILE",
        "RMW_IMPLEMENTATION",
        "AMENT_PREFIX_PATH",
    ):
        monkeypatch.setenv(key, env[key])
    return env


@pytest.fixture
def client(ros_env):
    """An in-process ROS test client (``tests/ros_peers/harness.py``) in this test's DDS domain."""
    import rclpy

    from tests.ros_peers.harness import Client

    rclpy.init()
    ros_client = Client()
    yield ros_client
    ros_client.close()
    rclpy.shutdown()
