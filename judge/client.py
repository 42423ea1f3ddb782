"""Async client for the LLM judge (vLLM's OpenAI-compatible API): bounded, retried, deduplicated, cached, stoppable.

One JudgeClient exists per (config, process, running event loop) — `get_judge_client(config)` returns it. Its
asyncio primitives (cache, dedup, semaphore, breaker, stop) belong to the caller's loop, so a client is never shared
across loops; clients of closed loops are dropped from the registry (and their connections closed) on the next lookup.

The HTTP requests themselves (the endpoints' AsyncOpenAI clients and their aiohttp sessions) run on the process's
transport loop: one daemon thread with its own event loop, started at first use (again in a forked child). A reward
worker's loop is busy with verl's per-response work when a step's responses arrive; a request needs several trips
through the loop before aiohttp has its body on the socket, so on the caller's loop the judge's time came on top of
that work (benchmarks/README.md). The caller hands the request over in one step and waits for its outcome; its
timeout still bounds the call, and cancelling the caller cancels the request on the transport loop. The exceptions
(openai's, aiohttp's, timeouts) reach the error classification unchanged. A reply body is read, decoded, up to
max_reply_bytes (judge/reply.py); a longer one is a retried failure, like a 200 that is not a chat.completion (a
body nested too deep for the JSON parser included).

Per call: LRU cache (prompt → parsed result) → in-flight dedup (identical requests share one HTTP call) → global
semaphore (max_concurrency across all endpoints, waited for at most queue_timeout_s; a wait that runs out is a failed
call like any other) → attempts, each on the healthiest endpoint (judge/breaker.py: fewest outstanding requests,
open endpoints skipped, ties round-robin). Once it holds a slot a call's attempts never run past ``call_budget_s``
(every attempt's timeout plus every nominal backoff). From the caller's side a call never runs past its deadline,
``JudgeConfig.worst_case_s`` = queue_timeout_s + call_budget_s + the stop's re-probe (probe_after_s + timeout_s):
every wait inside it (a re-probe in progress, the slot, the attempts, the verdict of the re-probe it triggered) ends
by then, and a call still running at the deadline is cut and returned as failed (counted, ``deadline_cuts``).
Connection errors, timeouts, 5xx and malformed 200s are retried with backoff (judge/retry.py); a 429 pauses its
endpoint for the server's Retry-After (capped at retry_after_max_s), counted in ``rate_limited``; other 4xx fail at
once. A 200 whose text gives no grade (or null content) is ``unreadable``: counted, never cached. A reply outside
the requested structured-output choice set / regex is counted as ``off_choice`` (warned once per endpoint).

Stop: after max_consecutive_failures failed *or unreadable* calls in a row, new requests wait while every endpoint
gets one half-open probe (a fixed question, after probe_after_s, all endpoints at once within timeout_s; the probe is
the client's own task, so a caller that gives up waiting for its verdict does not abort it). A readable answer
resumes; otherwise the client stops for good: every waiting, queued and later call raises JudgeUnavailableError with
one line naming the endpoints, the failures and what to check, and no request is sent after that.
``reset_failures()`` re-arms it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import logging
import os
import random
import re
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import cachetools
import openai

from judge.breaker import EndpointHealth
from judge.config import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL, JudgeConfig
from judge.parse import MAX_REPLY_CHARS, is_declined, parse_error_months, parse_grade
from judge.prompts import build_grade_messages, build_term_error_messages, load_prompts, structured_output_spec
from judge.reply import ACCEPT_ENCODING, ReplyBodyError, limit_reply_bodies
from judge.retry import Deadline, backoff_s, retry_after_s

__all__ = [
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "JudgeClient",
    "JudgeConfig",
    "JudgeResult",
    "JudgeUnavailableError",
    "close_judge_clients",
    "get_judge_client",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_FIX_HINT = (
    "Check that the judge server is up, reachable from this machine and serving the configured model with its chat "
    "template: judge_base_url / JUDGE_BASE_URL (or reward_router_address), judge_model / JUDGE_MODEL, "
    "judge_api_key / JUDGE_API_KEY."
)

# The half-open probe: a question any working judge answers with a readable grade.
_PROBE_QUESTION = ("罪名", "盗窃罪", "盗窃罪")
# Slack kept past max_pred_chars before the prompt builder cuts (it still sees that the answer was longer).
_PRED_SLACK = 64


class JudgeUnavailableError(RuntimeError):
    """Raised once the judge is stopped: too many failed or unreadable calls in a row and a failed re-probe."""


@dataclass
class JudgeResult:
    """Outcome of one judge question; value is None when the text was unreadable or the call failed."""

    value: int | None
    text: str
    latency_ms: float
    cache_hit: bool
    failed: bool
    error: str = ""
    deduped: bool = False  # shared another caller's identical in-flight call
    endpoint: str = ""  # base URL that answered (or last tried)
    unreadable: bool = False  # a 200 whose text gives no value (null content included); not a deliberate decline
    off_choice: bool = False  # structured output was asked for and the reply is outside the choice set / regex
    rate_limited: int = 0  # 429 answers this call met


# ---------------------------------------------------------------------------------------------------- client


_REQUEST_IDS = itertools.count()
# vLLM's 400 for a prompt longer than max_model_len ("This model's maximum context length is N tokens. ...").
_CONTEXT_TOO_LONG = "maximum context length"

if sys.version_info >= (3, 11):

    async def _bounded(awaitable: Awaitable[_T], seconds: float) -> _T:
        """`await awaitable` cut after `seconds` (asyncio.TimeoutError), in the calling task.

        asyncio.wait_for before Python 3.12 runs the awaitable in a new task: one more trip to the back of the
        event loop's ready queue, behind the other responses a reward worker is scoring, before the request is sent.
        """
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def _bounded(awaitable: Awaitable[_T], seconds: float) -> _T:
        """`await awaitable` cut after `seconds` (asyncio.TimeoutError)."""
        return await asyncio.wait_for(awaitable, timeout=seconds)


# ---------------------------------------------------------------------------------------------------- transport

_TRANSPORT: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, loop) of this process's HTTP thread
_TRANSPORT_LOCK = threading.Lock()
# A parent's transport loop copied by a fork: its thread does not exist here, and it cannot be closed (it reads as
# running). Kept referenced so that it is never collected with a warning.
_INHERITED_LOOPS: list[asyncio.AbstractEventLoop] = []


def _transport_loop() -> asyncio.AbstractEventLoop:
    """This process's judge HTTP loop, running forever in a daemon thread started at first use."""
    global _TRANSPORT
    pid = os.getpid()
    with _TRANSPORT_LOCK:
        if _TRANSPORT is not None and _TRANSPORT[0] == pid:
            return _TRANSPORT[1]
        if _TRANSPORT is not None:
            _INHERITED_LOOPS.append(_TRANSPORT[1])
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="judge-http", daemon=True).start()
        _TRANSPORT = (pid, loop)
        return loop


async def _on_transport(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run coro on the transport loop and wait for its outcome; cancelling the caller cancels it there.

    Cancelling the wrapped future cancels the concurrent future, whose callback cancels the task on the transport
    loop (asyncio's _chain_future). The coroutine is handed over before the first await here: the request leaves
    without another trip through the caller's loop.
    """
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, _transport_loop()))


async def _list_models(client: openai.AsyncOpenAI) -> Any:
    """GET /v1/models as a coroutine (the client returns an awaitable paginator)."""
    return await client.models.list()


async def _close_clients(clients: list[openai.AsyncOpenAI]) -> None:
    """Close HTTP clients on the loop their connections belong to, each within 5 s."""
    for client in clients:
        try:
            await asyncio.wait_for(client.close(), timeout=5.0)
        except (asyncio.TimeoutError, RuntimeError, OSError) as exc:
            logger.debug("judge: closing client for %s failed: %s", client.base_url, type(exc).__name__)


@functools.lru_cache(maxsize=65536)
def _question(
    kind: str, label: str, gold: str, pred: str, max_pred_chars: int, model: str, max_tokens: int, prompts: str = ""
) -> tuple[bytes, list[dict[str, str]]]:
    """Cache key and chat messages of one judge question (memoized: a GRPO batch repeats most answers).

    The key hashes what is sent (kind, model, max_tokens and the built messages), so answers that differ only in
    what the prompt drops (surrounding whitespace, text beyond max_pred_chars) share one judge call. The messages
    are shared between callers and must not be changed. Callers cut `pred` near max_pred_chars first, so neither
    the work nor the memo grows with the length of an answer. `prompts` is JudgeConfig.prompts_path (another
    file's wording gives other messages, so another key).
    """
    p = load_prompts(prompts or None)
    if kind == "grade":
        messages = build_grade_messages(label, gold, pred, max_pred_chars=max_pred_chars, prompts=p)
    else:
        messages = build_term_error_messages(gold, pred, max_pred_chars=max_pred_chars, prompts=p)
    key = hashlib.sha256(
        json.dumps([kind, model, max_tokens, messages], ensure_ascii=False, sort_keys=True).encode(
            "utf-8", "surrogatepass"
        )
    ).digest()
    return key, messages


def _cut_pred(pred: Any, max_pred_chars: int) -> str:
    """The prediction trimmed to what the prompt can show (plus slack, so the prompt still marks a cut)."""
    text = pred if isinstance(pred, str) else str(pred or "")
    if len(text) <= max_pred_chars + _PRED_SLACK:
        return text
    return text.lstrip()[: max_pred_chars + _PRED_SLACK]


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """A structured-output regex compiled with Python's re (None when it does not compile here)."""
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _holds_slot(acquire: asyncio.Future[Any]) -> bool:
    """Whether a semaphore acquire finished with the slot taken."""
    return acquire.done() and not acquire.cancelled() and acquire.exception() is None


def _reply_content(raw: bytes) -> str:
    """The assistant text of a chat.completion body, cut to MAX_REPLY_CHARS; a body that is none is a retried fault.

    RecursionError is the JSON parser's answer to a body nested too deep (100k levels fit in a 256 KiB reply).
    """
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
        if content is not None and not isinstance(content, str):
            raise TypeError(f"content is {type(content).__name__}")
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        # A 200 that is not a chat.completion (a proxy's error page, a cut body): a server fault, retried.
        raise _CallError(f"malformed chat.completion response ({type(exc).__name__})", retryable=True) from exc
    return (content or "")[:MAX_REPLY_CHARS]


def _outside_spec(spec: dict[str, Any], text: str) -> bool:
    """Whether a reply breaks the structured-output constraint it was asked for (choice set or regex)."""
    if "choice" in spec:
        return text.strip() not in {str(c) for c in spec["choice"]}
    if "regex" in spec:
        pattern = _compiled(str(spec["regex"]))
        return pattern is not None and pattern.fullmatch(text.strip()) is None
    return False


class _CallAbandonedError(Exception):
    """The caller making a shared judge call was cancelled; callers waiting for the same question ask again."""


class _CallError(Exception):
    """A failed HTTP attempt, classified."""

    def __init__(
        self, message: str, retryable: bool, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after  # seconds from a 429's Retry-After header
        self.endpoint: _Endpoint | None = None  # set by _attempt


def _time_left(deadline: Deadline) -> float:
    """Seconds left for one request; a spent budget fails the attempt (not retried: nothing is left to retry in)."""
    left = deadline.left()
    if left <= 0:
        raise _CallError("the call's time budget is spent", retryable=False)
    return left


@dataclass
class _Endpoint:
    url: str
    client: openai.AsyncOpenAI
    outstanding: int = 0
    requests: int = 0
    failures: int = 0
    structured_output: bool = True
    warned_structured: bool = False
    warned_off_choice: bool = False
    health: EndpointHealth = field(default_factory=EndpointHealth)


@dataclass
class _Stats:
    calls: int = 0  # judge questions that needed the network
    requests: int = 0  # HTTP attempts sent (probes included)
    cache_hits: int = 0
    dedup_hits: int = 0
    failures: int = 0  # calls that failed after retries
    retries: int = 0
    structured_fallbacks: int = 0
    unreadable: int = 0  # calls answered 200 without a readable value
    off_choice: int = 0  # replies outside the requested choice set / regex
    rate_limited: int = 0  # 429 answers
    probes: int = 0  # half-open probe requests
    fast_failed: int = 0  # calls refused without a request because the judge was stopped
    queue_timeouts: int = 0  # calls that found no slot within queue_timeout_s (counted in failures too)
    deadline_cuts: int = 0  # calls cut at their deadline, worst_case_s (counted in failures too)
    longest_call_s: float = 0.0  # longest time one call spent in its attempts (bounded by call_budget_s)


_DISCOVERED_MODELS: dict[str, str] = {}
_DISCOVERED_LOCK = threading.Lock()


class JudgeClient:
    """Judge calls for one config on one event loop (use get_judge_client to share it)."""

    def __init__(self, config: JudgeConfig) -> None:
        """Create the per-endpoint OpenAI clients; nothing connects until the first call."""
        self.config = config
        self._endpoints = [
            _Endpoint(
                url=url,
                client=openai.AsyncOpenAI(
                    base_url=url,
                    api_key=config.api_key or "EMPTY",
                    # Our own loop retries (with backoff and endpoint choice); the hard bound is _bounded().
                    max_retries=0,
                    timeout=config.timeout_s + 5.0,
                    # aiohttp transport: about half the client CPU per request of the default httpx pool
                    # (benchmarks/README.md); the reward workers share their cores with verl's own work.
                    # Every reply body is read through a decoder capped at max_reply_bytes (judge/reply.py).
                    http_client=openai.DefaultAioHttpClient(
                        timeout=config.timeout_s + 5.0,
                        headers={"Accept-Encoding": ACCEPT_ENCODING},
                        event_hooks={"response": [limit_reply_bodies(config.max_reply_bytes)]},
                    ),
                ),
                structured_output=config.structured_output,
            )
            for url in config.base_urls
        ]
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._cache: cachetools.LRUCache[bytes, tuple[str, int | None]] | None = (
            cachetools.LRUCache(maxsize=config.cache_size) if config.cache_size > 0 else None
        )
        # key → the shared call's result (a failure that stops the judge is set as JudgeUnavailableError)
        self._inflight: dict[bytes, asyncio.Future[JudgeResult]] = {}
        self._rr = 0
        self._consecutive_failures = 0
        self._last_failure: tuple[str, str] = ("", "")
        self._stats = _Stats()
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._stop_reason = ""  # set once the judge is stopped: the JudgeUnavailableError message
        self._stopped_at = 0.0  # time.monotonic() of the stop
        self._stopped: asyncio.Event | None = None  # created on the loop at first use
        self._probe: asyncio.Task[None] | None = None  # the half-open re-probe in progress (the client's own task)
        self._changed: asyncio.Event | None = None  # endpoint health changed (wakes calls waiting for one)

    def __repr__(self) -> str:
        """Endpoints and model only (the config repr redacts the key)."""
        return f"JudgeClient(base_urls={list(self.config.base_urls)!r}, model={self.config.model!r})"

    # ------------------------------------------------------------------ public API
    async def grade(self, label: str, gold: str, pred: str) -> JudgeResult:
        """Ask whether pred matches gold for `label` (罪名 / 法条 / 判决结果): value 2, 1, 0 or None."""
        cfg = self.config
        pred = _cut_pred(pred, cfg.max_pred_chars)
        key, messages = _question(
            "grade", label, gold, pred, cfg.max_pred_chars, cfg.model, cfg.max_tokens, cfg.prompts_path
        )
        return await self._ask("grade", key, messages, parse_grade)

    async def term_error(self, gold: str, pred: str) -> JudgeResult:
        """Ask for the prison-term error between pred and gold: value in months or None."""
        cfg = self.config
        pred = _cut_pred(pred, cfg.max_pred_chars)
        key, messages = _question(
            "term_error", "", gold, pred, cfg.max_pred_chars, cfg.model, cfg.max_tokens, cfg.prompts_path
        )
        return await self._ask("term_error", key, messages, parse_error_months)

    @property
    def stopped(self) -> bool:
        """Whether the judge is stopped (every call raises JudgeUnavailableError until reset_failures())."""
        return bool(self._stop_reason)

    def stats(self) -> dict[str, Any]:
        """Counters: calls, requests, cache_hits, dedup_hits, failures, retries, unreadable, off_choice, ..."""
        s = self._stats
        return {
            "calls": s.calls,
            "requests": s.requests,
            "cache_hits": s.cache_hits,
            "dedup_hits": s.dedup_hits,
            "failures": s.failures,
            "retries": s.retries,
            "structured_fallbacks": s.structured_fallbacks,
            "unreadable": s.unreadable,
            "off_choice": s.off_choice,
            "rate_limited": s.rate_limited,
            "probes": s.probes,
            "fast_failed": s.fast_failed,
            "queue_timeouts": s.queue_timeouts,
            "deadline_cuts": s.deadline_cuts,
            "longest_call_s": s.longest_call_s,
            "stopped": self.stopped,
            "stopped_at": self._stopped_at,
            "consecutive_failures": self._consecutive_failures,
            "cache_size": len(self._cache) if self._cache is not None else 0,
            "in_flight": len(self._inflight),
            "endpoints": {
                ep.url: {
                    "requests": ep.requests,
                    "failures": ep.failures,
                    "outstanding": ep.outstanding,
                    "structured_output": ep.structured_output,
                    "opened": ep.health.opened,
                }
                for ep in self._endpoints
            },
        }

    def reset_failures(self) -> None:
        """Forget the failure count and a stop (e.g. after the operator restarted the judge)."""
        self._consecutive_failures = 0
        self._stop_reason = ""
        if self._stopped is not None and self._stopped.is_set():
            self._stopped = asyncio.Event()
        for ep in self._endpoints:
            ep.health.on_success()

    async def aclose(self) -> None:
        """Close the HTTP connections of every endpoint (on the transport loop, where they live)."""
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
        await _on_transport(_close_clients([ep.client for ep in self._endpoints]))

    def _close_soon(self) -> None:
        """Close the connections without waiting (the client's own loop is gone): scheduled on the transport loop."""
        if not self._closed:
            self._closed = True
            asyncio.run_coroutine_threadsafe(_close_clients([ep.client for ep in self._endpoints]), _transport_loop())

    # ------------------------------------------------------------------ internals
    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._stopped = asyncio.Event()
            self._changed = asyncio.Event()
        elif self._loop is not loop:
            raise RuntimeError(
                "JudgeClient used from a different event loop than the one it was created on; "
                "use get_judge_client(config) inside each loop"
            )
        if self._closed:
            raise RuntimeError("JudgeClient is closed")

    def _refuse(self) -> JudgeUnavailableError:
        """The stop error for a call that sends nothing (counted)."""
        self._stats.fast_failed += 1
        return JudgeUnavailableError(self._stop_reason)

    def _stop(self, probe_error: str) -> None:
        """Stop the judge for good (until reset_failures): one line saying where, what failed and what to check."""
        url, err = self._last_failure
        urls = ", ".join(ep.url for ep in self._endpoints)
        self._stop_reason = (
            f"judge unavailable: {self._consecutive_failures} judge calls in a row failed or gave no readable "
            f"answer (max_consecutive_failures={self.config.max_consecutive_failures}); last failure at {url}: "
            f"{err}; re-probe of {urls} after {self.config.probe_after_s:g}s: {probe_error}. {_FIX_HINT}"
        )
        self._stopped_at = time.monotonic()
        logger.error("%s", self._stop_reason)
        assert self._stopped is not None
        self._stopped.set()
        self._notify()

    def _notify(self) -> None:
        """Wake the calls waiting for an endpoint to become usable."""
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def _wait_event(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait up to `seconds` for event; whether it is set."""
        if event.is_set():
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            return False
        return True

    async def _hold_for_probe(self, deadline: Deadline) -> None:
        """While the judge is being re-probed, wait for the verdict (until the deadline); raise when it stopped."""
        while self._probe is not None and not self._stop_reason and deadline.left() > 0:
            await asyncio.wait({self._probe}, timeout=deadline.left())  # never cancels the probe itself
        if self._stop_reason:
            raise self._refuse()

    def _failed(self, error: str, endpoint: str = "") -> JudgeResult:
        """A failed result for a call that got no answer (counted in failures)."""
        self._stats.failures += 1
        return JudgeResult(None, "", 0.0, cache_hit=False, failed=True, error=error, endpoint=endpoint)

    async def _ask(
        self,
        kind: str,
        key: bytes,
        messages: list[dict[str, str]],
        parse: Callable[[str], int | None],
        deadline: Deadline | None = None,
    ) -> JudgeResult:
        self._check_loop()
        if self._stop_reason:
            raise self._refuse()
        t0 = time.perf_counter()
        deadline = deadline or Deadline.after(self.config.worst_case_s)
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is not None:
            self._stats.cache_hits += 1
            text, value = cached
            return JudgeResult(value, text, (time.perf_counter() - t0) * 1000, cache_hit=True, failed=False)
        shared = self._inflight.get(key)
        if shared is not None:
            self._stats.dedup_hits += 1
            try:
                # shield: a cancelled waiter must not cancel the call others wait for. The call started earlier, so
                # its deadline comes before this caller's.
                res = await asyncio.shield(shared)
            except _CallAbandonedError:  # the caller making the call was cancelled first: ask again
                self._stats.dedup_hits -= 1
                return await self._ask(kind, key, messages, parse, deadline)
            return replace(res, latency_ms=(time.perf_counter() - t0) * 1000, cache_hit=False, deduped=True)
        res = await self._own_call(kind, key, messages, parse, deadline)
        res.latency_ms = (time.perf_counter() - t0) * 1000
        return res

    async def _own_call(
        self,
        kind: str,
        key: bytes,
        messages: list[dict[str, str]],
        parse: Callable[[str], int | None],
        deadline: Deadline,
    ) -> JudgeResult:
        """Make the call in the calling task; identical questions asked meanwhile wait for its outcome.

        No separate task: a new task would first wait behind everything else ready on the event loop (in a reward
        worker, the other responses of the batch), so the request would leave only after their CPU work.
        """
        shared: asyncio.Future[JudgeResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = shared
        try:
            outcome = await self._call(kind, messages, parse, key, deadline)
        except BaseException as exc:
            # Waiters must not inherit this caller's cancellation: they get _CallAbandonedError and ask again.
            shared.set_exception(_CallAbandonedError() if isinstance(exc, asyncio.CancelledError) else exc)
            shared.exception()  # mark it retrieved: no "never retrieved" log when nobody was waiting
            raise
        else:
            shared.set_result(outcome)
            return outcome
        finally:
            if self._inflight.get(key) is shared:
                del self._inflight[key]

    async def _acquire_slot(self, deadline: Deadline) -> str:
        """A concurrency slot within queue_timeout_s and the call's deadline: "" once held, else why there is none.

        A stop ends the wait at once (JudgeUnavailableError, no request). A caller cancelled while it waits holds no
        slot afterwards, even when the slot was handed to it in the same moment.
        """
        wait = min(self.config.queue_timeout_s, deadline.left())
        if wait <= 0:
            return "the call's deadline passed before a judge slot was free"
        if not self._semaphore.locked():
            await self._semaphore.acquire()  # a free slot: returns at once
            return ""
        assert self._stopped is not None
        acquire = asyncio.ensure_future(self._semaphore.acquire())
        stop = asyncio.ensure_future(self._stopped.wait())
        got = False
        try:
            await asyncio.wait({acquire, stop}, timeout=wait, return_when="FIRST_COMPLETED")
            got = _holds_slot(acquire)
        finally:
            stop.cancel()
            if not acquire.done():
                acquire.cancel()  # Semaphore.acquire gives back a slot it was handed before the cancel arrived
            elif not got and _holds_slot(acquire):
                self._semaphore.release()  # this caller was cancelled just as the slot was handed to it
        if self._stop_reason:
            if got:
                self._semaphore.release()
            raise self._refuse()
        if not got:
            self._stats.queue_timeouts += 1
            return f"no judge slot free within {wait:.3g}s (queue_timeout_s={self.config.queue_timeout_s:g})"
        return ""

    async def _call(
        self,
        kind: str,
        messages: list[dict[str, str]],
        parse: Callable[[str], int | None],
        key: bytes,
        deadline: Deadline,
    ) -> JudgeResult:
        """One judge question over the network, with retries, ended by the deadline; updates cache and counters.

        Everything up to the end of the attempts runs under the deadline (cut there: a failed result, counted);
        counting a failure may then wait for the re-probe's verdict, outside the slot and until the deadline too.
        """
        try:
            res, failure = await _bounded(self._queued_attempts(kind, messages, parse, key, deadline), deadline.left())
        except asyncio.TimeoutError:
            self._stats.deadline_cuts += 1
            failure = f"the call ran into its deadline (worst_case_s={self.config.worst_case_s:g}s)"
            res = self._failed(failure)
        if failure:
            await self._count_failure(res.endpoint, failure, deadline)
        return res

    async def _queued_attempts(
        self,
        kind: str,
        messages: list[dict[str, str]],
        parse: Callable[[str], int | None],
        key: bytes,
        deadline: Deadline,
    ) -> tuple[JudgeResult, str]:
        """Wait out a re-probe, take a slot, make the attempts; the slot is held for the attempts only."""
        while True:  # a call queued for a slot while the judge is being re-probed holds again: nothing is sent
            await self._hold_for_probe(deadline)
            why = await self._acquire_slot(deadline)
            if why:
                return self._failed(why), why
            if self._probe is None:
                break
            self._semaphore.release()
        start = time.monotonic()
        try:
            return await self._attempts(kind, messages, parse, key, deadline.sooner(self.config.call_budget_s))
        finally:
            self._semaphore.release()
            self._stats.longest_call_s = max(self._stats.longest_call_s, time.monotonic() - start)

    async def _attempts(
        self,
        kind: str,
        messages: list[dict[str, str]],
        parse: Callable[[str], int | None],
        key: bytes,
        deadline: Deadline,
    ) -> tuple[JudgeResult, str]:
        """The attempts of one call within its deadline: the result and, for a failed or unreadable call, why."""
        cfg = self.config
        self._stats.calls += 1
        attempt = 0
        rate_limited = 0
        last: _CallError | None = None
        endpoint = ""
        avoid: _Endpoint | None = None
        while True:
            try:
                text, endpoint, off_choice = await self._attempt(kind, messages, avoid, deadline)
            except _CallError as err:
                last = err
                avoid = err.endpoint
                endpoint = err.endpoint.url if err.endpoint else endpoint
                if err.status == 429:
                    rate_limited += 1
                    self._stats.rate_limited += 1
                if err.retryable and attempt < cfg.max_retries and deadline.left() > 0:
                    attempt += 1
                    self._stats.retries += 1
                    delay = backoff_s(attempt, cfg.backoff_s, cfg.backoff_max_s, self._rng)
                    if err.status == 429:
                        delay = 0.0  # the 429 paused its endpoint for Retry-After: the endpoint choice waits for it
                    if delay < deadline.left():
                        logger.debug("judge: retry %d/%d in %.2fs after %s", attempt, cfg.max_retries, delay, err)
                        assert self._stopped is not None
                        if await self._wait_event(self._stopped, delay):
                            raise self._refuse() from None
                        continue
                break
            value = parse(text)
            unreadable = value is None and not is_declined(kind, text)
            res = JudgeResult(
                value,
                text,
                0.0,
                cache_hit=False,
                failed=False,
                endpoint=endpoint,
                unreadable=unreadable,
                off_choice=off_choice,
                rate_limited=rate_limited,
            )
            if unreadable:
                self._stats.unreadable += 1
                return res, f"a 200 answer without a readable {kind} value: {text[:80]!r}"
            self._consecutive_failures = 0
            if self._cache is not None:
                self._cache[key] = (text, value)
            return res, ""
        error = str(last) if last else "unknown error"
        logger.warning("judge call failed after %d attempt(s) at %s: %s", attempt + 1, endpoint, error)
        res = self._failed(error, endpoint)
        res.rate_limited = rate_limited
        return res, error

    async def _count_failure(self, endpoint: str, error: str, deadline: Deadline) -> None:
        """One more failed (or unreadable) call in a row; at the limit, start the re-probe; wait for its verdict.

        The wait ends at the call's deadline (the probe goes on without this caller); a stop raises.
        """
        self._consecutive_failures += 1
        self._last_failure = (endpoint, error)
        if self._consecutive_failures < self.config.max_consecutive_failures:
            return
        if self._probe is None and not self._stop_reason:
            self._probe = asyncio.get_running_loop().create_task(self._run_probe(self._consecutive_failures))
        await self._hold_for_probe(deadline)

    async def _run_probe(self, count: int) -> None:
        """The half-open re-probe as the client's own task: resume, or stop the judge for good."""
        try:
            healthy, probe_error = await self._reprobe()
            if healthy:
                logger.warning("judge: %d calls failed in a row; the re-probe answered: going on", count)
                self._consecutive_failures = 0
            else:
                self._stop(probe_error)
        except Exception:  # noqa: BLE001 - a fault in the probe itself gives no verdict; the next failure re-probes
            logger.exception("judge: the re-probe failed unexpectedly")
        finally:
            self._probe = None
            self._notify()

    async def _reprobe(self) -> tuple[bool, str]:
        """Half-open: after probe_after_s, one fixed question to all endpoints at once; whether one answers."""
        cfg = self.config
        count = self._consecutive_failures
        deadline = time.monotonic() + cfg.probe_after_s
        while time.monotonic() < deadline:  # a call still in flight may succeed meanwhile: then no probe is needed
            if self._consecutive_failures < count:
                return True, ""
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        if self._consecutive_failures < count:
            return True, ""
        _key, messages = _question("grade", *_PROBE_QUESTION, cfg.max_pred_chars, cfg.model, cfg.max_tokens)
        probes = {asyncio.ensure_future(self._probe_endpoint(ep, messages)): ep.url for ep in self._endpoints}
        errors: dict[str, str] = {}
        try:
            for done in asyncio.as_completed(probes):
                url, error = await done
                if not error:
                    return True, ""
                errors[url] = error
        finally:
            for task in probes:
                task.cancel()
        return False, "; ".join(f"{ep.url}: {errors[ep.url]}" for ep in self._endpoints if ep.url in errors)

    async def _probe_endpoint(self, ep: _Endpoint, messages: list[dict[str, str]]) -> tuple[str, str]:
        """One probe question to one endpoint within timeout_s: (url, "" for a readable grade, else why not)."""
        self._stats.probes += 1
        deadline = Deadline.after(self.config.timeout_s)
        try:
            model = await self._model_for(ep, deadline)
            text, _so = await self._request_structured(ep, model, "grade", messages, deadline)
        except _CallError as err:
            return ep.url, str(err)
        if parse_grade(text) is None:
            return ep.url, f"no readable grade in {text[:80]!r}"
        ep.health.on_success()
        self._notify()
        return ep.url, ""

    def _ready_endpoint(self, avoid: _Endpoint | None, now: float) -> _Endpoint | None:
        """Usable endpoint with the fewest outstanding requests; ties round-robin, avoiding the one that just failed."""
        n = len(self._endpoints)
        start = self._rr % n
        self._rr += 1
        order = [self._endpoints[(start + i) % n] for i in range(n)]
        ready = [ep for ep in order if ep.health.can_take(now)]
        if not ready:
            return None
        return min(ready, key=lambda ep: (ep.outstanding, ep is avoid and n > 1))

    async def _pick(self, avoid: _Endpoint | None, deadline: Deadline) -> _Endpoint:
        """An endpoint to send to, waiting (within the deadline) while every endpoint is paused or probing."""
        while True:
            if self._stop_reason:
                raise self._refuse()
            now = time.monotonic()
            ep = self._ready_endpoint(avoid, now)
            if ep is not None:
                ep.health.on_send(now)
                return ep
            wakes = [t for t in (e.health.wake_at(now) for e in self._endpoints) if t is not None]
            wake = min(wakes) if wakes else None
            left = deadline.left()
            if wake is not None and wake - now >= left:
                raise _CallError(
                    f"every judge endpoint is paused (Retry-After or cooling down) for {wake - now:.1f}s, "
                    f"beyond this call's budget",
                    retryable=False,
                )
            if left <= 0:
                raise _CallError("no judge endpoint became usable within the call's budget", retryable=False)
            assert self._changed is not None
            await self._wait_event(self._changed, left if wake is None else wake - now)

    async def _attempt(
        self, kind: str, messages: list[dict[str, str]], avoid: _Endpoint | None, deadline: Deadline
    ) -> tuple[str, str, bool]:
        """One endpoint, one request (plus one retry without structured outputs after a 400), within timeout_s."""
        ep = await self._pick(avoid, deadline)
        ep.outstanding += 1
        try:
            within = deadline.sooner(self.config.timeout_s)  # the model lookup and the request(s) of this attempt
            model = await self._model_for(ep, within)
            text, off_choice = await self._request_structured(ep, model, kind, messages, within)
        except _CallError as err:
            err.endpoint = ep
            ep.failures += 1
            now = time.monotonic()
            if err.status == 429:
                wait = err.retry_after if err.retry_after is not None else self.config.backoff_s
                ep.health.on_rate_limited(now, min(wait, self.config.retry_after_max_s))
            elif err.retryable:
                ep.health.on_failure(now, self.config.probe_after_s, may_open=len(self._endpoints) > 1)
            else:
                ep.health.release_probe()
            self._notify()
            raise
        except BaseException:
            ep.health.release_probe()
            self._notify()
            raise
        finally:
            ep.outstanding -= 1
        if ep.health.paused_until or ep.health.failures_in_row:
            ep.health.on_success()
            self._notify()
        return text, ep.url, off_choice

    async def _request_structured(
        self, ep: _Endpoint, model: str, kind: str, messages: list[dict[str, str]], deadline: Deadline
    ) -> tuple[str, bool]:
        """The request with this endpoint's structured-output setting; (text, whether it broke the constraint)."""
        use_so = ep.structured_output
        spec = structured_output_spec(kind, load_prompts(self.config.prompts_path or None)) if use_so else None
        try:
            text = await self._request(ep, model, messages, spec, deadline)
        except _CallError as err:
            if not (spec and err.status == 400) or _CONTEXT_TOO_LONG in str(err).lower():
                raise  # a prompt past max_model_len fails the same without structured outputs: don't resend
            # The server rejected structured outputs (older vLLM, other server): retry once without.
            try:
                text = await self._request(ep, model, messages, None, deadline)
            except _CallError:
                raise err from None  # the 400 was not about structured outputs: report the original
            if ep.structured_output:
                ep.structured_output = False
                self._stats.structured_fallbacks += 1
                if not ep.warned_structured:
                    ep.warned_structured = True
                    logger.warning(
                        "judge: %s rejected structured_outputs (%s); continuing without them for this endpoint",
                        ep.url,
                        err,
                    )
            return text, False
        off_choice = bool(spec) and _outside_spec(spec, text)
        if off_choice:
            self._stats.off_choice += 1
            if not ep.warned_off_choice:
                ep.warned_off_choice = True
                logger.warning(
                    "judge: %s answered %r outside the requested structured_outputs %s: the server is not applying "
                    "the constraint (a vLLM that ignores the field answers 200 anyway); replies are parsed as free "
                    "text and counted as judge_off_choice",
                    ep.url,
                    text[:80],
                    spec,
                )
        return text, off_choice

    async def _model_for(self, ep: _Endpoint, deadline: Deadline) -> str:
        """The configured model, else the first id served at this endpoint (looked up once per process)."""
        if self.config.model:
            return self.config.model
        with _DISCOVERED_LOCK:
            known = _DISCOVERED_MODELS.get(ep.url)
        if known:
            return known
        timeout = _time_left(deadline)
        try:
            page = await _bounded(_on_transport(_list_models(ep.client)), timeout)
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised as _CallError
            raise self._classify(exc, "GET /v1/models", timeout) from exc
        ids = [m.id for m in getattr(page, "data", [])]
        if not ids:
            raise _CallError(f"GET {ep.url}/models listed no model; set judge_model", retryable=False)
        with _DISCOVERED_LOCK:
            _DISCOVERED_MODELS[ep.url] = ids[0]
        logger.info("judge: using model %r served at %s", ids[0], ep.url)
        return ids[0]

    async def _request(
        self,
        ep: _Endpoint,
        model: str,
        messages: list[dict[str, str]],
        spec: dict[str, Any] | None,
        deadline: Deadline,
    ) -> str:
        timeout = _time_left(deadline)
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": self.config.max_tokens,
        }
        if spec:
            # vLLM >= 0.12 (0.24.0 on the GPU nodes, 0.32 in the CPU tests): top-level structured_outputs with one
            # constraint; the removed guided_choice / guided_regex are ignored with a 200 there.
            body["structured_outputs"] = spec
        ep.requests += 1
        self._stats.requests += 1
        try:
            # The same POST /chat/completions that chat.completions.create sends (same JSON body, headers, error
            # mapping to openai.APIStatusError / APIConnectionError / APITimeoutError), through the client's
            # generic post(): create() also runs openai's TypedDict transform over the messages and builds a
            # pydantic ChatCompletion from the answer, which cost about as much CPU as the HTTP request itself
            # (benchmarks/README.md). The body is plain JSON, so the transform would return it unchanged.
            # A ready idempotency key skips a uuid4() per request (the client sends no idempotency header).
            # On the transport loop (see the module docstring); the timeout runs here, on the caller's loop.
            raw = await _bounded(
                _on_transport(
                    ep.client.post(
                        "/chat/completions",
                        body=body,
                        cast_to=bytes,
                        options={"idempotency_key": f"legal-judge-{next(_REQUEST_IDS)}"},
                    )
                ),
                timeout,
            )
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised as _CallError
            err = self._classify(exc, "POST /v1/chat/completions", timeout)
            if err.status == 404 and not self.config.model:
                with _DISCOVERED_LOCK:  # the server may have been restarted with another model: look it up again
                    _DISCOVERED_MODELS.pop(ep.url, None)
            raise err from exc
        return _reply_content(raw)

    def _classify(self, exc: BaseException, what: str, timeout: float) -> _CallError:
        """Map an exception to a retryable/non-retryable _CallError with a short message (never the API key)."""
        if isinstance(exc, ReplyBodyError):  # a server fault, like a malformed 200: retried
            return _CallError(f"{what}: {exc}", retryable=True)
        refused = _connection_failure(exc)
        if refused is not None:  # the aiohttp transport reports a refused connect as a connect *timeout*
            return _CallError(f"{what}: connection error ({type(refused).__name__})", retryable=True)
        if isinstance(exc, asyncio.TimeoutError | openai.APITimeoutError):
            return _CallError(f"{what}: timeout after {timeout:.3g}s", retryable=True)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status == 429 or status >= 500
            detail = _short_error_message(exc)
            wait = retry_after_s(getattr(exc.response, "headers", None)) if status == 429 else None
            return _CallError(
                f"{what}: HTTP {status} {detail}".rstrip(), retryable=retryable, status=status, retry_after=wait
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return _CallError(f"{what}: connection error ({type(cause).__name__})", retryable=True)
        return _CallError(f"{what}: {type(exc).__name__}: {exc}", retryable=False)


def _connection_failure(exc: BaseException) -> OSError | None:
    """The OSError (refused, unreachable, reset) behind a client exception, if any; timeouts are not one."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and not isinstance(cur, TimeoutError):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _short_error_message(exc: Any) -> str:
    """The server's error message, one line, at most 200 characters."""
    body = getattr(exc, "body", None)
    msg = ""
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = str(err.get("message", "")) if isinstance(err, dict) else str(err)
    msg = " ".join(msg.split())
    return f"({msg[:200]})" if msg else ""


# ---------------------------------------------------------------------------------------------------- registry

_REGISTRY: dict[tuple[JudgeConfig, int, int], tuple[weakref.ref[asyncio.AbstractEventLoop], JudgeClient]] = {}
_REGISTRY_LOCK = threading.Lock()
# Clients a forked child inherited from its parent: never used, never closed and never collected here. Their
# connections' sockets are registered in the epoll instance the child shares with the parent (the parent's transport
# loop, copied by the fork); closing them here — which aiohttp's connector does when it is collected — would remove
# the parent's keep-alive sockets from that epoll, and the parent's next requests on them would hang.
_INHERITED_CLIENTS: list[JudgeClient] = []


def _purge_locked() -> None:
    """Drop clients whose loop is gone or closed (closing their connections), and set aside those of a parent."""
    pid = os.getpid()
    for key, (loop_ref, client) in list(_REGISTRY.items()):
        loop = loop_ref()
        if key[1] != pid:
            del _REGISTRY[key]
            _INHERITED_CLIENTS.append(client)
        elif loop is None or loop.is_closed():
            del _REGISTRY[key]
            client._close_soon()


def get_judge_client(config: JudgeConfig) -> JudgeClient:
    """The JudgeClient for this config in this process and the running event loop (created on first use)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError as exc:
        raise RuntimeError("get_judge_client() must be called from a coroutine (inside a running event loop)") from exc
    key = (config, os.getpid(), id(loop))
    with _REGISTRY_LOCK:
        entry = _REGISTRY.get(key)
        if entry is not None and entry[0]() is loop and not entry[1]._closed:
            return entry[1]
        _purge_locked()
        client = JudgeClient(config)
        _REGISTRY[key] = (weakref.ref(loop), client)
        return client


async def close_judge_clients() -> None:
    """Close and forget the judge clients bound to the running event loop."""
    loop = asyncio.get_running_loop()
    with _REGISTRY_LOCK:
        mine = [(k, c) for k, (ref, c) in _REGISTRY.items() if ref() is loop]
        for k, _c in mine:
            del _REGISTRY[k]
    for _k, client in mine:
        await client.aclose()
