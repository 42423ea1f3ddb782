"""Pytest fixtures around the judge: ScriptedJudgeServer (re-exported by tests/conftest.py) and per-test clean-up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
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


@pytest.fixture(autouse=True)
async def close_judge_connections() -> AsyncIterator[None]:
    """Autouse where imported: each test has its own event loop, so close its judge connections before it ends."""
    from judge.client import close_judge_clients

    yield
    await close_judge_clients()


@pytest.fixture(autouse=True)
def no_judge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Autouse where imported: no JUDGE_* variable from the outer environment leaks into a test."""
    for name in ("JUDGE_BASE_URL", "JUDGE_MODEL", "JUDGE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
async def fresh_judge_clients() -> AsyncIterator[None]:
    """Autouse where imported: no model discovered by an earlier test, and this test's clients closed at its end."""
    import judge.client as jc

    jc._DISCOVERED_MODELS.clear()
    yield
    await jc.close_judge_clients()


def judge_client_for(servers: Sequence[ScriptedJudgeServer], options: Mapping[str, Any]) -> Any:
    """A judge client (from the registry) for the given servers; ``model`` in options overrides the first server's."""
    from judge.client import JudgeConfig, get_judge_client

    options = dict(options)
    model = options.pop("model", servers[0].model)
    return get_judge_client(JudgeConfig(base_urls=tuple(s.base_url for s in servers), model=model, **options))
