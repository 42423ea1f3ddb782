"""scripts/test.sh's switch for the real-vLLM tier: --no-vllm / LEGAL_NO_VLLM and a CPU without AVX-512."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# One ordinary test module and one of the tier, collected only (nothing runs, no vLLM venv is needed).
ARGS = ["--collect-only", "-q", "tests/evaluation/test_generation.py", "tests/evaluation/test_vllm_evaluate.py"]


def _test_sh(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEGAL_")}
    return subprocess.run(
        ["bash", "scripts/test.sh", *args], cwd=REPO_ROOT, env={**base, **env}, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        pytest.param(["--no-vllm"], {}, "[test.sh] real-vLLM tier skipped (--no-vllm / LEGAL_NO_VLLM=1)", id="flag"),
        pytest.param([], {"LEGAL_NO_VLLM": "1"}, "[test.sh] real-vLLM tier skipped", id="env"),
        pytest.param(
            [], {"LEGAL_CPUINFO": "cpuinfo"},
            "[test.sh] real-vLLM tier not run: this CPU lacks AVX-512 (avx512f), which vLLM's CPU build needs",
            id="no-avx512",
        ),
    ],
)  # fmt: skip
def test_tier_left_out_with_one_line(tmp_path: Path, args: list[str], env: dict, line: str) -> None:
    """The tier's tests are deselected, the rest is collected, and one line says why."""
    if "LEGAL_CPUINFO" in env:
        fake = tmp_path / "cpuinfo"
        fake.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n")
        env = {"LEGAL_CPUINFO": str(fake)}
    result = _test_sh(*args, *ARGS, **env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert line in out
    assert "test_generation.py::test_write_samples_one_line_per_completion" in out
    assert not [ln for ln in out.splitlines() if ln.startswith("tests/evaluation/test_vllm_evaluate.py::")]
    (deselected,) = re.findall(r"\((\d+) deselected\)", out)
    assert f"real-vLLM tier: {deselected} test(s) not run" in out  # every test of the tier, counted


def test_plain_pytest_leaves_the_tier_out_on_a_cpu_without_avx512(tmp_path: Path) -> None:
    """A plain pytest (no test.sh) with a vLLM venv present but a CPU without AVX-512 leaves the tier out with its
    line, instead of running tests whose server cannot start."""
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n")
    venv_python = tmp_path / "venv-vllm" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(Path(sys.executable))
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEGAL_")}
    env = {**base, "LEGAL_CPUINFO": str(fake), "LEGAL_VLLM_PYTHON": str(venv_python)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *ARGS], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "this CPU lacks AVX-512 (avx512f)" in out
    assert not [ln for ln in out.splitlines() if ln.startswith("tests/evaluation/test_vllm_evaluate.py::")]
