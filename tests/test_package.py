"""The repository builds as a ROS 2 package with colcon, the way a robot's workspace builds it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


def executables() -> list[tuple[str, str, str]]:
    lines = (REPO / "executables.txt").read_text().splitlines()
    return [tuple(line.split()) for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.slow
def test_colcon_build_installs_interfaces_executables_and_config(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "pgpt_ros").symlink_to(REPO)
    # What sourcing a ROS distro's setup.bash provides on a robot; here the venv is the "distro".
    env = dict(
        os.environ,
        AMENT_PREFIX_PATH=str(VENV),
        CMAKE_PREFIX_PATH=str(VENV),
        PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    build = subprocess.run(
        [
            str(VENV / "bin" / "colcon"),
            "build",
            "--cmake-args",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DBUILD_TESTING=OFF",
        ],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    install = workspace / "install" / "pgpt_ros"
    site = (
        install
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / "site-packages"
    )
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "pgpt_ros").exists()
    assert (install / "share" / "pgpt_ros" / "config" / "fastdds_localhost.xml").exists()
    for kind, name, module in executables():
        path = install / ("lib/pgpt_ros" if kind == "node" else "bin") / name
        assert os.access(path, os.X_OK), f"{path} missing or not executable"
        text = path.read_text()
        assert text.startswith(f"#!{sys.executable}\n") and f"from {module} import main" in text

    # The generated interfaces import from the workspace's install, not from the venv's copy.
    probe = subprocess.run(
        [sys.executable, "-c", "import pgpt_ros.msg as m; print(m.__file__); m.DetectionArray()"],
        cwd=tmp_path,
        env=dict(env, PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(site))
