"""The requirement files keep torch separable: a workstation installs torch.txt (a CUDA build from
PyPI), a Jetson keeps JetPack's torch and installs the rest with a constraint on it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements"
TORCH_FAMILY = re.compile(r"^(torch|torchvision|torchaudio|nvidia-[\w-]+|triton)\b", re.I)


def requirement_names(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0] for line in lines if line]


def test_only_torch_txt_names_torch_and_it_pins_one_version():
    named = {p.name: requirement_names(p) for p in REQUIREMENTS.glob("*.txt")}
    assert named["torch.txt"] == ["torch"]
    assert re.search(r"^torch==\d+\.\d+\.\d+$", (REQUIREMENTS / "torch.txt").read_text(), re.M)
    for name, packages in named.items():
        if name != "torch.txt":
            assert not [p for p in packages if TORCH_FAMILY.match(p)], name


def test_setup_installs_torch_in_the_same_pip_command_as_the_ml_stack():
    """Separately, pip could resolve peft's and accelerate's torch requirement to another
    build; in one command the pin holds."""
    commands = [line for line in (REPO / "scripts" / "setup.sh").read_text().splitlines()
                if "pip install" in line]  # fmt: skip
    assert len(commands) == 1
    assert "-r requirements/torch.txt" in commands[0] and "-r requirements/ml.txt" in commands[0]


def test_readme_installs_a_jetson_without_replacing_its_torch():
    readme = (REPO / "README.md").read_text()
    jetson = readme[readme.index("### Jetson") :]
    assert "-r requirements/ml.txt" in jetson and "-c " in jetson
    assert "requirements/torch.txt" not in jetson.split("```")[1]
