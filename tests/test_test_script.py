"""scripts/test.sh's switch for the real-vLLM tier: --no-vllm / LEGAL_NO_VLLM and a CPU without AVX-512."""

from __future__ import annotations

import os
import re
import subprocess
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
