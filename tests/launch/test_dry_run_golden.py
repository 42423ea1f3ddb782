"""The commands `train_grpo.sh --dry-run` prints for a GPU node stay byte-identical: the CPU training path changes
nothing a GPU run does.

tests/golden/dry_run_commands.json holds, per launchable config, the command lines of the dry run as recorded before
the CPU path existed (commit 1704f42; the repo root written as <REPO>). The one deliberate change since: the
multi-node submission runs with RAY_AUTH_MODE=token (issue 24 item 12, token auth on the Ray head).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from recipes.launch.commands import launchable_configs

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((REPO_ROOT / "tests" / "golden" / "dry_run_commands.json").read_text(encoding="utf-8"))
HEADER = "the commands a real run would execute:"


def dry_run_commands(config: str) -> list[str]:
    """The command lines `bash scripts/train_grpo.sh --dry-run --config CONFIG` prints (RUN_NAME fixed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUDGE_", "RAY_", "NNODES", "CUDA_VISIBLE"))}
    env.update(RUN_NAME="golden", LEGAL_SHARED_DIR=str(REPO_ROOT / "outputs" / "golden-shared"))
    out = subprocess.run(["bash", "scripts/train_grpo.sh", "--dry-run", "--config", config], cwd=REPO_ROOT,
                         env=env, capture_output=True, text=True, timeout=600).stdout  # fmt: skip
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if HEADER in line)
    commands = []
    for line in lines[start + 1 :]:
        if line.startswith("[train_grpo]"):
            break
        commands.append(line.replace(str(REPO_ROOT), "<REPO>"))
    return commands


def test_every_launchable_config_has_a_golden_entry() -> None:
    """A new launch config gets its recorded commands too."""
    assert sorted(GOLDEN) == sorted(launchable_configs())


@pytest.mark.timeout(900)
@pytest.mark.parametrize("config", sorted(GOLDEN))
def test_dry_run_prints_the_recorded_gpu_commands(config: str) -> None:
    """The dry run of each config prints exactly the recorded command lines."""
    assert dry_run_commands(config) == GOLDEN[config]
