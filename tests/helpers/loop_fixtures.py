"""Session fixtures of the CPU training loop's tier (re-exported by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from helpers.judge_server import ScriptedJudgeServer
from helpers.loop_judge import judge_reply
from helpers.loop_runs import LoopRuns


@pytest.fixture(scope="session")
def loop_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopRuns]:
    """Each launch config's rehearsal, run once per session behind one loopback judge: every config the session's
    selected tests name in `@pytest.mark.loop_runs(...)` runs (several at a time) when the first of them starts."""
    work = tmp_path_factory.mktemp("rehearse")
    runs = LoopRuns(work, "", tmp_path_factory.mktemp("wandb"))
    with ScriptedJudgeServer(reply=judge_reply, model=str(runs.tiny_model)) as judge:
        runs.judge_url = judge.base_url
        try:
            runs.run_all(wanted_configs(request.session.items))
            yield runs
        finally:
            runs.close()


def wanted_configs(items: Iterable[pytest.Item]) -> list[str]:
    """The configs named by the `loop_runs` markers of the items that use the fixture, in test order."""
    configs: list[str] = []
    for item in items:
        if "loop_runs" in getattr(item, "fixturenames", ()):
            for marker in item.iter_markers("loop_runs"):
                configs.extend(marker.args)
    return list(dict.fromkeys(configs))
