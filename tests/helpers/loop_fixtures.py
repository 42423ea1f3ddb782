"""Session fixtures of the CPU training loop's tier (re-exported by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers.judge_server import ScriptedJudgeServer
from helpers.loop_judge import judge_reply
from helpers.loop_runs import LoopRuns


@pytest.fixture(scope="session")
def loop_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopRuns]:
    """Each launch config's rehearsal, run once per session on first use, behind one loopback judge."""
    work = tmp_path_factory.mktemp("rehearse")
    runs = LoopRuns(work, "", tmp_path_factory.mktemp("wandb"))
    with ScriptedJudgeServer(reply=judge_reply, model=str(runs.tiny_model)) as judge:
        runs.judge_url = judge.base_url
        yield runs
