"""The loop tier runs the configs its selected tests name, and no others (tests/helpers/loop_fixtures.py).

A small pytest session (a subprocess, collect-only) of three tests: two name configs with `@pytest.mark.loop_runs`
and use the `loop_runs` fixture, one names a config but does not use it. What `wanted_configs` returns for the
session's items is what the fixture would start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import pytest
from helpers.loop_fixtures import wanted_configs

@pytest.fixture
def loop_runs():
    return None

def pytest_collection_finish(session):
    print("WANTED", ",".join(wanted_configs(session.items)))
"""

MODULE = """
import pytest

pytestmark = pytest.mark.loop_runs("cfg_module")

@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.loop_runs(n)) for n in ("cfg_a", "cfg_b")])
def test_param(name, loop_runs):
    pass

@pytest.mark.loop_runs("cfg_unused")
def test_without_the_fixture():
    pass
"""


def _wanted(tmp_path: Path, *args: str) -> list[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(MODULE)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
         "--rootdir", str(tmp_path), str(tmp_path), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("WANTED")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [c for c in lines[-1].removeprefix("WANTED").strip().split(",") if c]


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ((), ["cfg_module", "cfg_a", "cfg_b"]),
        (("-k", "cfg_b"), ["cfg_module", "cfg_b"]),
        (("-k", "without"), []),
    ],
)
def test_only_selected_tests_that_use_the_fixture_start_runs(
    tmp_path: Path, args: tuple[str, ...], want: list[str]
) -> None:
    """The configs in the markers of the selected tests that use `loop_runs`, each once; a deselected or fixture-less
    test starts nothing."""
    got = _wanted(tmp_path, *args)
    assert sorted(got) == sorted(want) and len(got) == len(set(got)), got
