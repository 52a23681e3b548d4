"""The ROS 2 packages that PyPI lacks (vision_msgs, ...), as scripts/setup.sh builds them into
build/ros-tools: where they are, why they are missing, and the environment of a process using them.

Their compiled type support is found through LD_LIBRARY_PATH, which a process reads when it starts:
this test process can import the Python message classes (enough to build messages), but only a
child started with ``environment()`` can serialise and publish them.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFIX = REPO / "build" / "ros-tools"
PYTHON = f"python{sys.version_info[0]}.{sys.version_info[1]}"
SITE_PACKAGES = PREFIX / "lib" / PYTHON / "site-packages"


def vision_msgs_missing() -> str | None:
    """None when vision_msgs is built in build/ros-tools; else why not, naming the fix."""
    if not (SITE_PACKAGES / "vision_msgs" / "msg").is_dir():
        return (
            f"vision_msgs is not built in {PREFIX.relative_to(REPO)}: run scripts/setup.sh with a "
            "ros-src kit (PGPT_ROS_SRC), or install ros-$ROS_DISTRO-vision-msgs"
        )
    return None


def environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus build/ros-tools: its Python packages first, its libraries APPENDED to
    LD_LIBRARY_PATH (the ROS wheels' bootstrapper adds its own to whatever is there)."""
    out = dict(env)

    def join(*parts: str | None) -> str:
        return os.pathsep.join(p for p in parts if p)

    out["PYTHONPATH"] = join(str(SITE_PACKAGES), env.get("PYTHONPATH"))
    out["LD_LIBRARY_PATH"] = join(env.get("LD_LIBRARY_PATH"), str(PREFIX / "lib"))
    out["AMENT_PREFIX_PATH"] = join(env.get("AMENT_PREFIX_PATH"), str(PREFIX))
    return out


def ros2_environment(env: dict[str, str]) -> tuple[dict[str, str] | None, str]:
    """An environment whose PATH has a ``ros2`` that can launch this package, and where it came
    from; (None, why not) when there is none. A system ROS install wins; else the kit's build in
    build/ros-tools (scripts/setup.sh builds it when a ros-src kit is available)."""
    system = shutil.which("ros2", path=env.get("PATH"))
    if system is not None:
        return dict(env), f"system {system}"
    kit = PREFIX / "bin" / "ros2"
    if not kit.is_file():
        return None, (
            f"no ros2 on PATH and none built in {PREFIX.relative_to(REPO)}: install ROS 2 "
            "(ros-$ROS_DISTRO-launch-ros), or run scripts/setup.sh with a ros-src kit"
        )
    out = environment(env)
    out["PATH"] = os.pathsep.join([str(PREFIX / "bin"), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])  # fmt: skip
    return out, f"the kit's {kit.relative_to(REPO)}"
