"""Judge client against a sick judge: unreadable and off-choice replies, Retry-After, time budgets, the stop.

Every case runs the real client against the loopback server; times are asserted as generous bounds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from helpers.judge_fixtures import fresh_judge_clients, judge_client_for  # noqa: F401 - autouse fixture
from helpers.judge_server import ScriptedJudgeServer

from judge.client import JudgeUnavailableError
from judge.retry import backoff_s, retry_after_s

FAST = {"backoff_s": 0.01, "backoff_max_s": 0.02, "timeout_s": 5.0, "probe_after_s": 0.05}


def client_for(*servers, **overrides):
    """A judge client (from the registry) for the given servers."""
    return judge_client_for(servers, {**FAST, **overrides})


# ------------------------------------------------------------------------------------------------ unreadable replies


@pytest.mark.parametrize("reply", ["无法判断", None, "", "评分：1或2", "I cannot grade this."])
async def test_unreadable_grade_is_counted_and_not_cached(judge_server, reply):
    """A 200 without a readable grade (null content included) is flagged unreadable, counted, asked again later."""
    srv = judge_server(reply=reply)
    client = client_for(srv, structured_output=False)
    first = await client.grade("罪名", "盗窃罪", "盗窃罪")
    second = await client.grade("罪名", "盗窃罪", "盗窃罪")
    assert (first.value, first.unreadable, first.failed) == (None, True, False)
    assert second.unreadable and not second.cache_hit
    assert client.stats()["unreadable"] == 2 and client.stats()["consecutive_failures"] == 2
    assert len(srv.requests) == 2


async def test_a_run_of_unreadable_replies_stops_the_judge(judge_server):
    """A judge that never grades (wrong model, wrong template) trips the stop like failures do."""
    srv = judge_server(reply="好的，我来分析一下这个案件。")
    client = client_for(srv, structured_output=False, max_consecutive_failures=3)
    for i in range(2):
        assert (await client.grade("罪名", "a", str(i))).unreadable
    with pytest.raises(JudgeUnavailableError, match="no readable answer"):
        await client.grade("罪名", "a", "2")
    with pytest.raises(JudgeUnavailableError):
        await client.grade("罪名", "a", "3")
    assert len(srv.requests) == 4  # three calls and the probe


async def test_declined_term_is_an_answer_not_a_fault(judge_server):
    """'误差：无法判断' is what the term prompt asks for when a prediction names no term: not unreadable."""
    srv = judge_server(reply="误差：无法判断")
    client = client_for(srv, max_consecutive_failures=2)
    results = [await client.term_error("三年", f"没有刑期{i}") for i in range(5)]
    assert all(r.value is None and not r.unreadable and not r.failed for r in results)
    assert client.stats()["unreadable"] == 0 and not client.stopped


async def test_a_readable_answer_resets_the_unreadable_run(judge_server):
    """Unreadable, unreadable, readable, unreadable, unreadable: never three in a row, never stopped."""
    replies = iter(["？", "？", "2", "？", "？"])
    srv = judge_server(reply=lambda req: next(replies))
    client = client_for(srv, structured_output=False, max_consecutive_failures=3)
    values = [(await client.grade("罪名", "a", str(i))).value for i in range(5)]
    assert values == [None, None, 2, None, None] and not client.stopped


# ------------------------------------------------------------------------------------------------ off-choice replies


@pytest.mark.parametrize(
    ("method", "args", "reply", "value", "off"),
    [
        ("grade", ("罪名", "a", "b"), "2", 2, False),
        ("grade", ("罪名", "a", "b"), "评分：2", 2, True),
        ("grade", ("罪名", "a", "b"), "3", None, True),
        ("term_error", ("三年", "两年"), "误差：12个月", 12, False),
        ("term_error", ("三年", "两年"), "误差：无法判断", None, False),
        ("term_error", ("三年", "两年"), "相差一年", 12, True),
    ],
)
async def test_reply_outside_the_structured_choice_is_counted(judge_server, caplog, method, args, reply, value, off):
    """A server that ignores structured_outputs (200 anyway) is noticed: counted, warned once, parsed as text."""
    srv = judge_server(reply=reply)
    client = client_for(srv, cache_size=0)
    with caplog.at_level(logging.WARNING, logger="judge.client"):
        results = [await getattr(client, method)(*args) for _ in range(3)]
    assert [(r.value, r.off_choice) for r in results] == [(value, off)] * 3
    assert client.stats()["off_choice"] == (3 if off else 0)
    assert caplog.text.count("outside the requested structured_outputs") == (1 if off else 0)


async def test_no_off_choice_without_structured_outputs(judge_server):
    """With structured_output off nothing was requested, so nothing is outside it."""
    srv = judge_server(reply="评分：2")
    res = await client_for(srv, structured_output=False).grade("罪名", "a", "b")
    assert (res.value, res.off_choice) == (2, False)


# ------------------------------------------------------------------------------------------------ 429 and Retry-After


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "10"}, 10.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_parsing(headers, expected):
    """Seconds or an HTTP date; nonsense is ignored (then the normal backoff applies)."""
    assert retry_after_s(headers, now=2_000_000_000.0) == expected


def test_backoff_doubles_with_jitter_and_cap():
    """Delays double from backoff_s, stay within 50–100 % of nominal, never above backoff_max_s."""
    import random

    rng = random.Random(1)
    for attempt, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delay = backoff_s(attempt, 0.5, 4.0, rng)
        assert nominal / 2 <= delay <= nominal


async def test_retry_after_is_honoured_and_counted(judge_server):
    """After a 429 with Retry-After: 0.6 the retry waits at least that long; the call reports the 429."""
    srv = judge_server(fail=1, fail_status=429, retry_after="0.6")
    client = client_for(srv, max_retries=2)
    res = await client.grade("罪名", "a", "b")
    assert (res.value, res.rate_limited, res.failed) == (2, 1, False)
    first, second = srv.requests
    assert second.t_start - first.t_end >= 0.55
    assert client.stats()["rate_limited"] == 1


async def test_retry_after_is_capped(judge_server):
    """A Retry-After of an hour is capped at retry_after_max_s."""
    srv = judge_server(fail=1, fail_status=429, retry_after="3600")
    client = client_for(srv, max_retries=1, retry_after_max_s=0.3)
    t0 = time.monotonic()
    res = await client.grade("罪名", "a", "b")
    assert not res.failed and 0.25 <= time.monotonic() - t0 < 3.0


async def test_retry_after_pauses_the_endpoint_for_every_call(judge_server):
    """While an endpoint is paused by Retry-After no call sends to it: 20 calls after one 429 send nothing early."""
    srv = judge_server(fail=1, fail_status=429, retry_after="0.5")
    client = client_for(srv, max_retries=2)
    first = await client.grade("罪名", "a", "first")
    assert first.rate_limited == 1
    t_429 = srv.requests[0].t_end
    results = await asyncio.gather(*(client.grade("罪名", "a", str(i)) for i in range(20)))
    assert not any(r.failed for r in results)
    assert all(r.t_start - t_429 >= 0.45 for r in srv.requests[1:])


async def test_retry_after_beyond_the_budget_gives_up_at_once(judge_server):
    """A wait the call cannot afford fails the call now (counted), instead of sleeping past its budget."""
    srv = judge_server(fail=lambda req, i: 429, retry_after="60")
    client = client_for(srv, timeout_s=0.5, max_retries=3, retry_after_max_s=60)
    t0 = time.monotonic()
    res = await client.grade("罪名", "a", "b")
    assert res.failed and res.rate_limited == 1 and "paused" in res.error
    assert time.monotonic() - t0 < 1.0 and len(srv.requests) == 1


# ------------------------------------------------------------------------------------------------ time budgets


async def test_hanging_judge_calls_keep_their_budget_and_the_queue_fails_fast(judge_server):
    """Issue 11 item 4: 200 calls through 8 slots into a hanging judge stop within a bound; nothing sent after."""
    srv = judge_server(latency_s=60.0)
    client = client_for(srv, timeout_s=0.3, max_retries=2, max_concurrency=8, max_consecutive_failures=8)
    budget = client.config.call_budget_s
    t0 = time.monotonic()
    results = await asyncio.gather(*(client.grade("罪名", "a", str(i)) for i in range(200)), return_exceptions=True)
    elapsed = time.monotonic() - t0
    assert all(isinstance(r, JudgeUnavailableError) or r.failed for r in results)
    assert sum(isinstance(r, JudgeUnavailableError) for r in results) >= 190
    stats = client.stats()
    assert stats["longest_call_s"] <= budget + 2.0  # slack: event-loop lag on a loaded 2-core box
    # one wave of failing calls, the probe wait and one probe timeout; generous for a loaded 2-core box
    assert elapsed < budget + 0.05 + 0.3 + 5.0
    # nothing is started after the stop (arrival at the server may trail the send by a few loop turns)
    assert max(r.t_start for r in srv.requests) <= stats["stopped_at"] + 0.1
    # at most two waves of 8 calls × 3 attempts (the slots freed while the count climbs) and one probe: the
    # other ~180 queued calls sent nothing (before the fix all 600 attempts went out)
    assert len(srv.requests) <= 2 * 8 * 3 + 1


async def test_slow_but_healthy_judge_is_not_stopped(judge_server):
    """Latency under the timeout: every call answers, nothing is counted as a failure."""
    srv = judge_server(latency_s=0.3)
    client = client_for(srv, timeout_s=1.0, max_concurrency=4, max_consecutive_failures=2)
    results = await asyncio.gather(*(client.grade("罪名", "a", str(i)) for i in range(12)))
    assert [r.value for r in results] == [2] * 12 and client.stats()["failures"] == 0


async def test_malformed_200_is_a_retried_failure(judge_server):
    """A 200 whose body is not JSON is retried and, when it persists, a counted failure."""
    srv = judge_server(malformed=True)
    client = client_for(srv, max_retries=1)
    res = await client.grade("罪名", "a", "b")
    assert res.failed and "malformed" in res.error and len(srv.requests) == 2


# ------------------------------------------------------------------------------------------------ half-open, routing


async def test_judge_that_comes_back_is_probed_and_used(judge_server):
    """Down long enough to trip, back before the re-probe: the probe answers and the run goes on."""
    srv = judge_server()
    port = srv.port
    srv.stop()
    client = client_for(srv, max_retries=0, max_consecutive_failures=2, probe_after_s=1.0)
    first = await client.grade("罪名", "a", "1")
    assert first.failed

    async def restart() -> ScriptedJudgeServer:
        await asyncio.sleep(0.3)
        return judge_server(port=port)

    back, second = await asyncio.gather(restart(), client.grade("罪名", "a", "2"))
    assert second.failed and not client.stopped  # the tripping call is counted; the probe found the judge back
    assert (await client.grade("罪名", "a", "3")).value == 2
    assert [r.path for r in back.requests].count("/v1/chat/completions") == 2  # the probe, then the call


async def test_sick_endpoint_is_routed_around(judge_server):
    """With two endpoints, one failing: every call answers and the sick one gets only a few requests."""
    sick, good = judge_server(fail=lambda req, i: 503), judge_server()
    client = client_for(sick, good, max_retries=2, max_concurrency=4, probe_after_s=30.0)
    results = await asyncio.gather(*(client.grade("罪名", "a", str(i)) for i in range(40)))
    assert not any(r.failed for r in results)
    assert len(sick.requests) <= 4 and len(good.requests) >= 40
    assert client.stats()["endpoints"][sick.base_url]["opened"] >= 1


async def test_reset_failures_rearms_a_stopped_client(judge_server):
    """After the operator restarts the judge, reset_failures() lets calls through again."""
    srv = judge_server(fail=lambda req, i: 503 if i < 3 else None)
    client = client_for(srv, max_retries=0, max_consecutive_failures=2)
    assert (await client.grade("罪名", "a", "1")).failed
    with pytest.raises(JudgeUnavailableError):
        await client.grade("罪名", "a", "2")
    client.reset_failures()
    assert (await client.grade("罪名", "a", "3")).value == 2


# ------------------------------------------------------------------------------------------------ hostile predictions


@pytest.mark.parametrize(
    "pred",
    ["盗窃罪\ud800", "\udfff" * 100, "盗窃\ud83d罪", "<" * 100_000 + "预测结束", "＜" * 1_000_000, "x" * 5_000_000],
)
async def test_hostile_predictions_are_sent_quickly_and_encodable(judge_server, pred):
    """Lone surrogates and megabyte bracket runs: no exception, a small valid UTF-8 request, in well under 1 s."""
    srv = judge_server()
    client = client_for(srv)
    t0 = time.monotonic()
    res = await client.grade("罪名", "盗窃罪", pred)
    assert time.monotonic() - t0 < 1.0
    assert res.value == 2
    (req,) = srv.requests
    body = json.dumps(req.json, ensure_ascii=False).encode("utf-8")
    assert len(body) < 8000
