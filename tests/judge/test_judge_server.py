"""The loopback judge server fixture: real HTTP, vLLM's OpenAI API, scripted replies, failures, limits."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import openai
import pytest
from helpers.judge_server import ScriptedJudgeServer

_OPEN: list[openai.OpenAI] = []


def _sync_client(**kwargs) -> openai.OpenAI:
    """An openai.OpenAI client closed at the end of the test."""
    client = openai.OpenAI(**kwargs)
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients():
    """Close the sync clients a test opened."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def _get(url: str, key: str | None = None) -> tuple[int, bytes]:
    """Plain GET with urllib; returns (status, body)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_openai_client_round_trip(judge_server):
    """A request made with the openai client gets the scripted reply and is recorded with body and headers."""
    srv = judge_server(reply=lambda req: "结果：" + str(len(req["messages"])), model="qwen-judge")
    client = _sync_client(base_url=srv.base_url, api_key="EMPTY", max_retries=0)
    out = client.chat.completions.create(
        model="qwen-judge",
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "你好"}],
        temperature=0,
        max_tokens=8,
        extra_body={"structured_outputs": {"choice": ["0", "1", "2"]}},
    )
    assert out.object == "chat.completion"
    assert out.model == "qwen-judge"
    assert out.choices[0].message.content == "结果：2"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None and out.usage.completion_tokens == 4
    (rec,) = srv.requests
    assert rec.status == 200 and rec.index == 0 and rec.reply == "结果：2"
    assert rec.json["structured_outputs"] == {"choice": ["0", "1", "2"]}
    assert rec.json["temperature"] == 0 and rec.json["max_tokens"] == 8
    assert rec.user_text == "你好"
    assert rec.headers["Authorization"] == "Bearer EMPTY"


def test_constant_reply_and_async_reply(judge_server):
    """reply may be a constant string or an async function."""

    async def areply(req: dict) -> str:
        await asyncio.sleep(0)
        return req["messages"][-1]["content"].upper()

    a = judge_server(reply="1")
    b = judge_server(reply=areply)
    for srv, expected in ((a, "1"), (b, "ABC")):
        client = _sync_client(base_url=srv.base_url, api_key="k", max_retries=0)
        out = client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "abc"}])
        assert out.choices[0].message.content == expected


def test_health_and_models(judge_server):
    """GET /health answers 200; GET /v1/models lists the served model, also through the openai client."""
    srv = judge_server(model="m-1")
    assert _get(srv.url + "/health")[0] == 200
    status, body = _get(srv.base_url + "/models")
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == ["m-1"]
    client = _sync_client(base_url=srv.base_url, api_key="EMPTY", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["m-1"]
    assert [r.path for r in srv.all_requests] == ["/health", "/v1/models", "/v1/models"]
    assert srv.requests == []  # only chat completions count as requests


@pytest.mark.parametrize(
    ("client_key", "expected"),
    [("sekrit", 200), ("wrong", 401), ("", 401)],
)
def test_bearer_key(judge_server, client_key, expected):
    """With api_key set, /v1/* needs the exact Bearer key (401 otherwise); /health stays open."""
    srv = judge_server(api_key="sekrit")
    assert _get(srv.url + "/health")[0] == 200
    assert _get(srv.base_url + "/models", client_key or None)[0] == expected
    client = _sync_client(base_url=srv.base_url, api_key=client_key or "x", max_retries=0)
    if expected == 200:
        client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "q"}])
    else:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "q"}])
    assert srv.requests[-1].status == expected


def test_unknown_model_is_404(judge_server):
    """Naming a model the server does not serve gets vLLM's 404."""
    srv = judge_server(model="right")
    client = _sync_client(base_url=srv.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="wrong", messages=[{"role": "user", "content": "q"}])


@pytest.mark.parametrize(
    ("fail", "n", "expected_statuses"),
    [
        (2, 4, [503, 503, 200, 200]),
        (lambda req, i: 429 if i % 2 else None, 4, [200, 429, 200, 429]),
        (lambda req, i: 400 if "structured_outputs" in req else None, 1, [400]),
        (0.0, 3, [200, 200, 200]),
        (1.0, 2, [503, 503]),
    ],
)
def test_scripted_failures(judge_server, fail, n, expected_statuses):
    """fail: first k requests, a function of (request, index), or a probability."""
    srv = judge_server(fail=fail)
    client = _sync_client(base_url=srv.base_url, api_key="x", max_retries=0)
    for _ in range(n):
        try:
            client.chat.completions.create(
                model=srv.model,
                messages=[{"role": "user", "content": "q"}],
                extra_body={"structured_outputs": {"choice": ["0"]}},
            )
        except openai.APIStatusError:
            pass
    assert [r.status for r in srv.requests] == expected_statuses


def test_seeded_failure_probability_is_reproducible():
    """The same seed fails the same requests."""
    runs = []
    for _ in range(2):
        with ScriptedJudgeServer(fail=0.5, seed=7) as srv:
            client = _sync_client(base_url=srv.base_url, api_key="x", max_retries=0)
            for _ in range(12):
                try:
                    client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "q"}])
                except openai.InternalServerError:
                    pass
            runs.append([r.status for r in srv.requests])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_latency_and_timeout(judge_server):
    """latency_s delays the answer; a latency longer than the client timeout makes the client time out."""
    srv = judge_server(latency_s=lambda req, i: 0.2 if i == 0 else 30.0)
    client = _sync_client(base_url=srv.base_url, api_key="x", max_retries=0, timeout=1.0)
    t0 = time.monotonic()
    client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "q"}])
    assert time.monotonic() - t0 >= 0.2
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "q"}])
    assert time.monotonic() - t0 < 10


def test_stop_wakes_sleeping_handlers():
    """stop() returns promptly even while a handler sleeps far longer."""
    srv = ScriptedJudgeServer(latency_s=60.0).start()

    async def hang() -> None:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": "q"}])
        await client.close()

    asyncio.run(hang())
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 5
    srv.stop()  # idempotent


@pytest.mark.parametrize(("cap", "n"), [(1, 4), (3, 12), (None, 12)])
async def test_concurrency_cap(judge_server, cap, n):
    """At most `cap` requests are served at once; the others queue; maxima are tracked."""
    srv = judge_server(latency_s=0.2, max_concurrency=cap)
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=30)
    await asyncio.gather(
        *(
            client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": str(i)}])
            for i in range(n)
        )
    )
    await client.close()
    assert srv.max_active_seen == (cap or n)
    assert srv.max_concurrent_seen == n
    assert len(srv.ok_requests) == n
    assert srv.in_flight == 0


async def test_many_concurrent_connections(judge_server):
    """150 simultaneous connections are all answered."""
    srv = judge_server(latency_s=0.1, reply=lambda req: req["messages"][0]["content"])
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0, timeout=30)
    outs = await asyncio.gather(
        *(
            client.chat.completions.create(model=srv.model, messages=[{"role": "user", "content": str(i)}])
            for i in range(150)
        )
    )
    await client.close()
    assert [o.choices[0].message.content for o in outs] == [str(i) for i in range(150)]
    assert srv.max_concurrent_seen > 50


def test_reset_and_repr(judge_server):
    """reset() clears records; repr shows the URL but never the key."""
    srv = judge_server(api_key="top-secret-key")
    _get(srv.url + "/health")
    srv.reset()
    assert srv.all_requests == [] and srv.max_concurrent_seen == 0
    assert srv.base_url in repr(srv) and "top-secret-key" not in repr(srv)
    assert srv.address == f"127.0.0.1:{srv.port}"


def _raw_post(srv: ScriptedJudgeServer, read: int) -> tuple[int, dict[str, str], bytes]:
    """A chat request over a plain socket-level client: (status, headers, the first `read` raw body bytes)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    body = json.dumps({"model": srv.model, "messages": [{"role": "user", "content": "x"}]})
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read(read)
    headers = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, headers, data


@pytest.mark.parametrize("status", [200, 503])
def test_hostile_bodies(judge_server, status):
    """body_fault: an endless chunked body (still sending after 1 MB), a gzip bomb (a thousandth of its decoded size
    on the wire, a chat.completion once decoded) and JSON nested too deep for json.loads, with the given status."""
    import gzip

    endless = judge_server(body_fault="endless", body_fault_status=status)
    code, headers, data = _raw_post(endless, 2**20)
    assert (code, headers.get("transfer-encoding"), len(data)) == (status, "chunked", 2**20)
    bomb = judge_server(body_fault="gzip_bomb", body_fault_status=status, gzip_bomb_bytes=8 * 2**20)
    code, headers, data = _raw_post(bomb, 2**20)
    assert (code, headers["content-encoding"], len(data) < 16 * 2**10) == (status, "gzip", True)
    decoded = gzip.decompress(data)
    assert len(decoded) == 8 * 2**20 and json.loads(decoded)["choices"][0]["message"]["content"] == "2"
    deep = judge_server(body_fault="deep_json", body_fault_status=status, deep_json_depth=5000)
    code, _, data = _raw_post(deep, 2**20)
    assert code == status and data.count(b"[") == 5000 + 1  # and the "choices" list
    with pytest.raises(RecursionError):
        json.loads(data)
