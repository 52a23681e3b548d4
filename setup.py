"""pip install of the Python library and its tools, for machines without ROS (e.g. a training server).

On a robot, build with colcon instead (CMakeLists.txt): it also generates the message and service
interfaces, which this file cannot. Do not pip install this into an environment where the package
was built with CMake/colcon: pip would replace the directory that holds the generated pgpt_ros.msg.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements() -> list[str]:
    lines = (HERE / "requirements" / "ml.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def console_scripts() -> list[str]:
    """Every executable in executables.txt, the list CMakeLists.txt installs too."""
    lines = (HERE / "executables.txt").read_text().splitlines()
    rows = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return [f"{name} = {module}:main" for _kind, name, module in rows]


setup(
    name="pgpt_ros",
    version="0.1.0",
    description="PerceptionGPT for robots: find things from a sentence (boxes and masks).",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["pgpt_ros", "pgpt_ros.*"]),
    include_package_data=True,
    package_data={"pgpt_ros": ["default_model/*"]},
    install_requires=requirements(),
    entry_points={"console_scripts": console_scripts()},
)
