"""Point the ROS 2 wheels' exported CMake files at this interpreter's include directories.

The wheels were built in a manylinux container, and their ``*__rosidl_generator_pyExport.cmake``
files hard-code that container's Python and NumPy include paths. CMake then refuses to configure
any package that generates interfaces ("includes non-existent path"). Rewriting the two paths in
place is idempotent: files already pointing here are left untouched.

Usage: python scripts/fix_ros_wheel_cmake.py <venv prefix>
"""

import re
import sys
import sysconfig
from pathlib import Path

import numpy

# The builder's paths: /opt/python/cp311-cp311/include/python3.11 and
# /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
BUILDER_PYTHON_INCLUDE = re.compile(r"/opt/python/[^/;\"]+/include/python3\.\d+")
BUILDER_NUMPY_INCLUDE = re.compile(r"/opt/python/[^;\"]+/site-packages/numpy/_core/include")


def fix(prefix: Path) -> int:
    """Rewrite the builder's include paths under ``prefix/share``; return the files changed."""
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = 0
    for path in sorted(prefix.glob("share/*/cmake/*.cmake")):
        text = path.read_text()
        fixed = BUILDER_NUMPY_INCLUDE.sub(numpy_include, text)
        fixed = BUILDER_PYTHON_INCLUDE.sub(python_include, fixed)
        if fixed != text:
            path.write_text(fixed)
            changed += 1
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"fixed include paths in {fix(Path(sys.argv[1]))} CMake files")
