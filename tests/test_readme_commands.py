"""Every `python -m` command of ours that README shows answers --help (exit 0) under the name README gives it.

The commands are read from README.md itself, so a command that moves or breaks fails here by its README name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("judge", "rewards", "data", "recipes")
COMMAND = re.compile(r"\bpython3? -m ([A-Za-z_][\w.]*)")


def readme_commands(text: str) -> list[str]:
    """The modules of ours that README runs with `python -m` / `python3 -m`, once each, in order of appearance."""
    found = [m.rstrip(".") for m in COMMAND.findall(text)]
    return list(dict.fromkeys(m for m in found if m.split(".")[0] in OURS))


COMMANDS = readme_commands((REPO / "README.md").read_text(encoding="utf-8"))


def test_readme_commands_are_found() -> None:
    """The parse finds README's commands (a README without them would make the test below vacuous)."""
    assert readme_commands("run `python -m recipes.evaluate --help`, then python3 -m recipes.main_ppo x") == [
        "recipes.evaluate",
        "recipes.main_ppo",
    ]
    assert {"data.prepare", "recipes.evaluate", "recipes.legal.evaluate", "recipes.commands"} <= set(COMMANDS)
    assert len(COMMANDS) >= 10, COMMANDS


@pytest.mark.parametrize("module", COMMANDS)
def test_readme_command_answers_help(module: str) -> None:
    """`python -m MODULE --help` exits 0 and prints a usage or help text."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"python -m {module} --help: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip(), f"python -m {module} --help printed nothing"
