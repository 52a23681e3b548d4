"""The package's shape: files small enough to read, no import cycles between files, and a core
that never needs ROS. Checked on the source (AST), so a violation names its file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pgpt_ros"
MAX_LINES = 400
# Everything but the ROS adapter (and the generated interfaces it uses) must import without ROS.
ROS_MODULES = ("rclpy", "pgpt_ros.ros", "pgpt_ros.msg", "pgpt_ros.srv", "launch", "launch_ros")


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``path`` imports anywhere (functions included), except imports only
    for type checkers; ``from pkg import name`` counts as ``pkg.name`` when that is a module."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and _type_checking_only(node) for n in ast.walk(node)}  # fmt: skip
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(path, known) for name, path in known.items()}


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_file_is_longer_than_the_limit(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{modules()[name]} has {lines} lines (limit {MAX_LINES})"


def test_no_import_cycle_between_files():
    edges = {m: {d for d in deps if d in graph_nodes} for m, deps in graph().items()
             for graph_nodes in [set(modules())]}  # fmt: skip
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_the_core_never_imports_ros():
    for name, deps in graph().items():
        if name.startswith("pgpt_ros.ros") or name == "pgpt_ros":
            continue
        ros = sorted(d for d in deps if d.startswith(ROS_MODULES))
        assert not ros, f"{name} imports {ros}: the core must run without ROS"
