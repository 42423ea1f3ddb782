"""--help of the tools documents every option (no bare `--repeat REPEAT` lines)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_profile_reward_help_documents_every_option():
    """benchmarks/profile_reward.py --help: each option is followed by its description and default."""
    proc = subprocess.run(
        [sys.executable, "benchmarks/profile_reward.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    text = re.sub(r"\s+", " ", proc.stdout)
    for option, words in {
        "--prompts PROMPTS": "prompts in the batch",
        "--n N": "responses per prompt",
        "--seed SEED": "seed of the batch",
        "--mode {hybrid,judge,rules}": "reward mode",
        "--repeat REPEAT": "timed repeats",
        "--cprofile CPROFILE": "cProfile the first repeat",
    }.items():
        assert f"{option} {words}" in text, option
    assert "(default: 128)" in text
