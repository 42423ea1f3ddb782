"""The python -m entry points outside the project's environment: one line naming the package and the set-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# (entry point args, a third-party package it needs before doing anything: the legal evaluation imports its domain
# knowledge, and so cn2an, first)
ENTRY_POINTS = [
    (["data.prepare", "--help"], "numpy"),
    (["recipes.legal.evaluate", "--data", "x.parquet", "--predictions", "p.jsonl", "--out", "o"], "cn2an"),
    (["recipes.commands", "trainer", "--config", "legal_grpo"], None),
    (["recipes.preflight", "--dry-run"], None),
]


@pytest.mark.parametrize(("args", "package"), ENTRY_POINTS)
def test_missing_package_is_one_line(args, package):
    """`python -S` (no site-packages: as a fresh interpreter without the venv) → one line, no traceback."""
    proc = subprocess.run([sys.executable, "-S", "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith(f"python -m {args[0]}: missing Python package ")
    if package is not None:
        assert repr(package) in lines[0]
    assert "bash scripts/test.sh" in lines[0] or "source .venv/bin/activate" in lines[0]


def test_own_missing_module_keeps_its_traceback():
    """A missing module of ours is a bug or a wrong directory, not a missing install: the traceback stays."""
    code = "import data.setup_hint, sys; import recipes.no_such_module"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "recipes.no_such_module" in proc.stderr


def test_message_names_setup_or_activation(monkeypatch):
    """Outside .venv (when one exists) the line says to activate it; inside, to run the set-up command."""
    import data.setup_hint as H

    monkeypatch.setattr(H, "_in_project_venv", lambda: False)
    monkeypatch.setattr(H, "VENV", REPO / "tests")  # a folder without bin/python: nothing set up yet
    assert "set up with `bash scripts/test.sh`" in H.missing_dependency_message("numpy")
    monkeypatch.setattr(H, "VENV", Path(sys.executable).parent.parent)
    assert "source .venv/bin/activate" in H.missing_dependency_message("numpy")
    assert "set up" not in H.missing_dependency_message("numpy")
