"""Fault matrix: compute_score over a batch against a sick judge, in judge and hybrid mode (issue 11).

Faults: down, dies mid-batch, hangs, slow, 5xx, 429 with Retry-After, malformed 200s, unreadable replies, null
content, comes back. For each: every response is scored or the run stopped with its reason (JudgeUnavailableError,
nothing else), every fallback is counted in the response's keys and matches the client's counters, no call ran
past its time budget, and no request was started after the stop. Times are generous bounds for a loaded box.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers.judge_fixtures import close_judge_connections, no_judge_env  # noqa: F401 - autouse fixtures
from helpers.judge_server import ScriptedJudgeServer
from helpers.legal_cases import GOLD

from judge.client import JudgeUnavailableError, get_judge_client
from rewards.legal import RESULT_KEYS, compute_score, get_options

logger = logging.getLogger(__name__)

# Distinct answers (no cache or dedup hits); the charge ones name no known label, so hybrid asks the judge too.
ANSWERS = {
    "charge": "被告人的行为构成某种财产犯罪，第{i}种说法",
    "article": "第67条、第264条，第{i}种说法",
    "term": "有期徒刑三年六个月，第{i}种说法",
    "verdict": "被告人张某犯盗窃罪，判处有期徒刑一年六个月，第{i}种说法",
}
PER_TASK = 12
SETTINGS = {
    "timeout_s": 0.5,
    "max_retries": 1,
    "backoff_s": 0.01,
    "backoff_max_s": 0.02,
    "max_concurrency": 8,
    "max_consecutive_failures": 4,
    "probe_after_s": 0.3,
    "retry_after_max_s": 2.0,
    "on_judge_error": "rules",
}


RETRY_AFTER_S = 0.4  # the Retry-After the 429 fault sends


@dataclass
class Fault:
    """How the loopback judge misbehaves, and whether the run must stop."""

    server: dict[str, Any] = field(default_factory=dict)
    down_at_start: bool = False
    action: Callable[[ScriptedJudgeServer, Callable[..., ScriptedJudgeServer]], Any] | None = None
    stops: bool = False


async def _dies(srv: ScriptedJudgeServer, start: Callable[..., ScriptedJudgeServer]) -> None:
    # Dies once the first wave of calls has reached it (not after a fixed time: on an idle machine the whole hybrid
    # batch can finish before any fixed moment, and then nothing is left to fail).
    deadline = time.monotonic() + 10.0
    while len(srv.requests) < SETTINGS["max_concurrency"] and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    await asyncio.to_thread(srv.stop)


async def _comes_back(srv: ScriptedJudgeServer, start: Callable[..., ScriptedJudgeServer]) -> None:
    await asyncio.sleep(0.2)
    start(port=srv.port)


FAULTS = {
    "down": Fault(down_at_start=True, stops=True),
    "dies_mid_batch": Fault(server={"latency_s": 0.1}, action=_dies, stops=True),
    "hangs": Fault(server={"latency_s": 60.0}, stops=True),
    "slow": Fault(server={"latency_s": 0.3}),
    "5xx": Fault(server={"fail": 0.25, "fail_status": 503}),
    "429_retry_after": Fault(server={"fail": 6, "fail_status": 429, "retry_after": str(RETRY_AFTER_S)}),
    "malformed": Fault(server={"malformed": True}, stops=True),
    "unreadable": Fault(server={"reply": "这个问题我需要更多信息。"}, stops=True),
    "null_content": Fault(server={"reply": None}, stops=True),
    "comes_back": Fault(down_at_start=True, action=_comes_back),
}


def _batch() -> list[tuple[str, str]]:
    return [
        (task, f"先分析案情。</think>\n<answer>{ANSWERS[task].format(i=i)}</answer>")
        for i in range(PER_TASK)
        for task in GOLD
    ]


@pytest.mark.parametrize("mode", ["judge", "hybrid"])
@pytest.mark.parametrize("fault_name", list(FAULTS))
async def test_fault_matrix(judge_server, mode, fault_name):
    """Scored or stopped with its reason; fallbacks counted; budgets kept; nothing sent after the stop."""
    fault = FAULTS[fault_name]
    srv = judge_server(**fault.server)
    if fault.down_at_start:
        srv.stop()
    kwargs = {"mode": mode, "judge_base_url": srv.base_url, "judge_model": srv.model, **SETTINGS}
    client = get_judge_client(get_options(kwargs).judge)
    budget = client.config.call_budget_s

    async def one(task: str, response: str) -> dict[str, float]:
        ground_truth, extra_info = GOLD[task]
        return await compute_score(f"legal/{task}", response, ground_truth, dict(extra_info), **kwargs)

    batch = _batch()
    t0 = time.monotonic()
    side = [asyncio.ensure_future(fault.action(srv, judge_server))] if fault.action else []
    outcomes = await asyncio.gather(*(one(t, r) for t, r in batch), return_exceptions=True)
    await asyncio.gather(*side)
    elapsed = time.monotonic() - t0
    stats = client.stats()
    servers = [srv, *(s for s in _started_after(judge_server, srv))]
    requests = [r for s in servers for r in s.requests]
    logger.info(
        "fault=%s mode=%s elapsed=%.2fs longest_call=%.2fs budget=%.2fs stopped=%s requests=%d",
        fault_name, mode, elapsed, stats["longest_call_s"], budget, stats["stopped"], len(requests),
    )  # fmt: skip

    # every response scored, or the run stopped with its reason — nothing else escapes
    scored = [o for o in outcomes if isinstance(o, dict)]
    stopped = [o for o in outcomes if isinstance(o, JudgeUnavailableError)]
    assert len(scored) + len(stopped) == len(batch), [o for o in outcomes if isinstance(o, BaseException)][:3]
    assert all(tuple(o) == RESULT_KEYS for o in scored)
    assert bool(stopped) == fault.stops == stats["stopped"]
    if stopped:
        message = str(stopped[0])
        assert srv.base_url in message and "judge unavailable" in message and "\n" not in message

    # every fallback counted: a failed call is flagged and scored by the rules; unreadable replies are flagged
    judged = [o for o in scored if o["judge_called"] == 1.0]
    assert all(o["rules_used"] == 1.0 for o in judged if o["judge_failed"] == 1.0)
    assert (
        sum(o["judge_failed"] for o in scored)
        <= stats["failures"]
        <= sum(o["judge_failed"] for o in scored) + len(stopped)
    )
    assert sum(o["judge_unreadable"] for o in scored) <= stats["unreadable"]
    if fault_name in ("unreadable", "null_content"):
        assert judged and all(o["judge_unreadable"] == 1.0 and o["judge_failed"] == 0.0 for o in judged)
    if fault_name == "429_retry_after":
        assert sum(o["judge_rate_limited"] for o in scored) == stats["rate_limited"] == 6
        # Retry-After honoured: each call that got a 429 sends its retry no sooner than the 0.4 s Retry-After after
        # that 429 (a lower bound: load only lengthens the wait), and within seconds (the pause ends; the slack is
        # event-loop lag on a loaded box). No arrival window is timed here: a request already on its way when the
        # 429 left can arrive late under load. That no other call sends to the paused endpoint is pinned, by cause
        # instead of a window, by test_judge_hardening.py::test_retry_after_pauses_calls_started_during_the_pause.
        limited = [r for r in requests if r.status == 429]
        for r in limited:
            later = [q for q in requests if q.index > r.index and q.json == r.json]
            assert later, f"the call of request #{r.index} (429) was never retried"
            retry = min(later, key=lambda q: q.t_start)
            wait = retry.t_start - r.t_end
            assert RETRY_AFTER_S <= wait < RETRY_AFTER_S + 5.0, f"#{r.index} → #{retry.index} after {wait:.3f}s"
        first_429 = min(r.t_end for r in limited)
        assert max(r.t_start for r in requests) >= first_429 + 0.35
    if fault_name in ("slow", "comes_back", "429_retry_after"):
        assert judged and not any(o["judge_failed"] for o in judged[-4:])  # the tail of the batch is judged again
    if mode == "hybrid":
        assert all(o["judge_called"] == 0.0 for o, (task, _) in zip(outcomes, batch, strict=True) if task == "term")

    # no call past its time budget; the whole batch within one wave, the re-probe and slack
    assert stats["longest_call_s"] <= budget + 2.0  # slack: event-loop lag on a loaded 2-core box
    assert elapsed < 2 * budget + SETTINGS["probe_after_s"] + SETTINGS["timeout_s"] + 8.0
    # no request started after the stop (arrival may trail the send by a few loop turns)
    if stats["stopped"]:
        assert max((r.t_start for r in requests), default=0.0) <= stats["stopped_at"] + 0.1


def _started_after(factory: Callable[..., ScriptedJudgeServer], first: ScriptedJudgeServer) -> list:
    """Servers the fault started later on the same port (the fixture keeps them for teardown)."""
    cells = [c.cell_contents for c in (factory.__closure__ or ()) if isinstance(c.cell_contents, list)]
    return [s for cell in cells for s in cell if s is not first and s.port == first.port]
