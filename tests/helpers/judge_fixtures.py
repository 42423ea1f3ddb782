"""Pytest fixtures around ScriptedJudgeServer; re-exported by tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from helpers.judge_server import ScriptedJudgeServer


@pytest.fixture
def judge_server() -> Iterator[Callable[..., ScriptedJudgeServer]]:
    """Factory fixture: judge_server(**kwargs) starts a ScriptedJudgeServer; all are stopped at teardown."""
    servers: list[ScriptedJudgeServer] = []

    def start(**kwargs: Any) -> ScriptedJudgeServer:
        server = ScriptedJudgeServer(**kwargs).start()
        servers.append(server)
        return server

    yield start
    errors = []
    for server in servers:
        try:
            server.stop()
        except RuntimeError as exc:  # keep stopping the others, then report
            errors.append(exc)
    if errors:
        raise errors[0]
