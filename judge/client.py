"""Async client for the LLM judge (vLLM's OpenAI-compatible API): bounded, retried, deduplicated, cached.

One JudgeClient exists per (config, process, running event loop) — `get_judge_client(config)` returns it. httpx
connections and asyncio primitives belong to one loop, so a client is never shared across loops; clients of closed
loops are dropped from the registry on the next lookup.

Per call: LRU cache (prompt → parsed result) → in-flight dedup (identical requests share one HTTP call) → global
semaphore (max_concurrency across all endpoints) → endpoint with the fewest outstanding requests (ties:
round-robin) → one HTTP request bounded by timeout_s. Connection errors, timeouts, 429 and 5xx are retried up to
max_retries times with exponential backoff and jitter; other 4xx fail at once. A call that still fails returns
JudgeResult(failed=True); after max_consecutive_failures failed calls in a row JudgeUnavailableError is raised.
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
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import openai

from judge.parse import parse_error_months, parse_grade
from judge.prompts import build_grade_messages, build_term_error_messages, structured_output_spec

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

ENV_BASE_URL = "JUDGE_BASE_URL"
ENV_MODEL = "JUDGE_MODEL"
ENV_API_KEY = "JUDGE_API_KEY"

_FIX_HINT = (
    "Is the judge server up and reachable from this machine? Check judge_base_url / JUDGE_BASE_URL "
    "(or reward_router_address), judge_model / JUDGE_MODEL and judge_api_key / JUDGE_API_KEY."
)


_ROUTER_NOTICE: list[bool] = []


class JudgeUnavailableError(RuntimeError):
    """Raised after max_consecutive_failures judge calls failed in a row; names the endpoint and the last error."""


# ---------------------------------------------------------------------------------------------------- config


def _normalize_base_url(url: str) -> str:
    """Strip whitespace and one trailing '/'; the URL must be http(s)://host[:port]/.../v1."""
    u = str(url).strip().rstrip("/")
    if not (u.startswith("http://") or u.startswith("https://")) or not u.endswith("/v1") or u.count("/") < 3:
        raise ValueError(
            f"judge base URL {url!r} is not an OpenAI-compatible base URL: expected 'http(s)://HOST:PORT/v1' "
            f"(ending in /v1, e.g. http://127.0.0.1:8000/v1)"
        )
    return u


def _to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {value!r}")


def _split_urls(value: Any) -> list[str]:
    """A URL, a comma-separated string of URLs, or a list/tuple (incl. OmegaConf ListConfig) of them."""
    if value is None:
        return []
    if isinstance(value, str):
        return [u.strip() for u in value.split(",") if u.strip()]
    try:
        items = list(value)
    except TypeError as exc:
        raise ValueError(f"judge_base_url must be a string or a list of strings, got {value!r}") from exc
    out: list[str] = []
    for item in items:
        out.extend(_split_urls(str(item)))
    return out


def _router_url(address: Any) -> str:
    """verl's reward_router_address ("ip:port", maybe with a scheme) → http://ip:port/v1."""
    addr = str(address).strip().rstrip("/")
    if not addr.startswith(("http://", "https://")):
        addr = f"http://{addr}"
    if not addr.endswith("/v1"):
        addr = f"{addr}/v1"
    return addr


@dataclass(frozen=True, repr=False)
class JudgeConfig:
    """Where and how to call the judge. Hashable: it keys the per-loop client registry."""

    base_urls: tuple[str, ...]
    model: str  # "" → the first id from GET /v1/models of each endpoint (looked up once per process)
    api_key: str | None = None
    timeout_s: float = 60.0  # bound on one HTTP request (connect + generation)
    max_concurrency: int = 64  # requests in flight at once, over all endpoints
    max_retries: int = 3  # extra attempts after connection errors, timeouts, 429 and 5xx
    structured_output: bool = True  # send vLLM structured_outputs (choice / regex); auto-off on a 400
    max_consecutive_failures: int = 32  # failed calls in a row before JudgeUnavailableError
    cache_size: int = 65536  # LRU entries of (prompt → parsed result); 0 disables the cache
    max_pred_chars: int = 1000  # cap on the prediction shown to the judge
    max_tokens: int = 32  # judge answers are one short line
    backoff_s: float = 0.5  # first retry delay; doubles per attempt, with jitter
    backoff_max_s: float = 8.0  # cap on one retry delay
    queue_timeout_s: float = 600.0  # bound on waiting for a concurrency slot

    def __post_init__(self) -> None:
        """Normalise URLs and check ranges; errors name the bad field."""
        urls = (self.base_urls,) if isinstance(self.base_urls, str) else tuple(self.base_urls)
        if not urls:
            raise ValueError("JudgeConfig.base_urls is empty: give at least one URL like http://127.0.0.1:8000/v1")
        normalized = tuple(dict.fromkeys(_normalize_base_url(u) for u in urls))
        object.__setattr__(self, "base_urls", normalized)
        object.__setattr__(self, "model", str(self.model or "").strip())
        object.__setattr__(self, "api_key", (str(self.api_key).strip() or None) if self.api_key else None)
        checks = {
            "timeout_s": self.timeout_s > 0,
            "max_concurrency": self.max_concurrency >= 1,
            "max_retries": self.max_retries >= 0,
            "max_consecutive_failures": self.max_consecutive_failures >= 1,
            "cache_size": self.cache_size >= 0,
            "max_pred_chars": self.max_pred_chars >= 1,
            "max_tokens": self.max_tokens >= 1,
            "backoff_s": self.backoff_s >= 0,
            "backoff_max_s": self.backoff_max_s >= 0,
            "queue_timeout_s": self.queue_timeout_s > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"JudgeConfig.{name} is out of range: {getattr(self, name)!r}")

    def __repr__(self) -> str:
        """Like the dataclass repr, with the API key redacted."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key" and value:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return f"JudgeConfig({', '.join(parts)})"

    __str__ = __repr__

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> JudgeConfig | None:
        """Config from reward kwargs, falling back to env JUDGE_BASE_URL / JUDGE_MODEL / JUDGE_API_KEY; None if no URL.

        `reward_router_address` ("ip:port", passed by verl when it serves the judge) wins over judge_base_url.
        """
        kw = {k: v for k, v in dict(kwargs or {}).items() if v is not None}
        env = os.environ if env is None else env
        if kw.get("reward_router_address"):
            urls = [_router_url(kw["reward_router_address"])]
            if kw.get("judge_base_url") and not _ROUTER_NOTICE:
                _ROUTER_NOTICE.append(True)  # once per process: from_kwargs runs for every scored response
                logger.info("judge: reward_router_address is set; using it instead of judge_base_url")
        else:
            urls = _split_urls(kw.get("judge_base_url")) or _split_urls(env.get(ENV_BASE_URL))
        if not urls:
            return None
        model = str(kw.get("judge_model") or env.get(ENV_MODEL) or "")
        api_key = kw.get("judge_api_key") or env.get(ENV_API_KEY) or None
        extra: dict[str, Any] = {}
        converters: dict[str, Callable[[Any], Any]] = {
            "timeout_s": float,
            "max_concurrency": int,
            "max_retries": int,
            "max_consecutive_failures": int,
            "cache_size": int,
            "max_pred_chars": int,
            "max_tokens": int,
            "backoff_s": float,
            "backoff_max_s": float,
            "queue_timeout_s": float,
        }
        for name, conv in converters.items():
            key = name if name in kw else f"judge_{name}"
            if key in kw:
                try:
                    extra[name] = conv(kw[key])
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"reward kwarg {key}={kw[key]!r} is not a valid {conv.__name__}") from exc
        for key in ("structured_output", "judge_structured_output"):
            if key in kw:
                extra["structured_output"] = _to_bool(kw[key], key)
                break
        return cls(base_urls=tuple(urls), model=model, api_key=str(api_key) if api_key else None, **extra)


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


@functools.lru_cache(maxsize=65536)
def _question(
    kind: str, label: str, gold: str, pred: str, max_pred_chars: int, model: str, max_tokens: int
) -> tuple[bytes, list[dict[str, str]]]:
    """Cache key and chat messages of one judge question (memoized: a GRPO batch repeats most answers).

    The key hashes what is sent (kind, model, max_tokens and the built messages), so answers that differ only in
    what the prompt drops (surrounding whitespace, text beyond max_pred_chars) share one judge call. The messages
    are shared between callers and must not be changed.
    """
    if kind == "grade":
        messages = build_grade_messages(label, gold, pred, max_pred_chars=max_pred_chars)
    else:
        messages = build_term_error_messages(gold, pred, max_pred_chars=max_pred_chars)
    key = hashlib.sha256(
        json.dumps([kind, model, max_tokens, messages], ensure_ascii=False, sort_keys=True).encode("utf-8")
    ).digest()
    return key, messages


class _CallAbandonedError(Exception):
    """The caller making a shared judge call was cancelled; callers waiting for the same question ask again."""


class _CallError(Exception):
    """A failed HTTP attempt, classified."""

    def __init__(self, message: str, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.endpoint: _Endpoint | None = None  # set by _attempt


@dataclass
class _Endpoint:
    url: str
    client: openai.AsyncOpenAI
    outstanding: int = 0
    requests: int = 0
    failures: int = 0
    structured_output: bool = True
    warned_structured: bool = False


@dataclass
class _Stats:
    calls: int = 0  # judge questions that needed the network
    requests: int = 0  # HTTP attempts sent
    cache_hits: int = 0
    dedup_hits: int = 0
    failures: int = 0  # calls that failed after retries
    retries: int = 0
    structured_fallbacks: int = 0


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
                    http_client=openai.DefaultAioHttpClient(timeout=config.timeout_s + 5.0),
                ),
                structured_output=config.structured_output,
            )
            for url in config.base_urls
        ]
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._cache: OrderedDict[bytes, tuple[str, int | None]] = OrderedDict()
        # key → the shared call: (result, whether this call's failure reached max_consecutive_failures)
        self._inflight: dict[bytes, asyncio.Future[tuple[JudgeResult, bool]]] = {}
        self._rr = 0
        self._consecutive_failures = 0
        self._last_failure: tuple[str, str] = ("", "")
        self._stats = _Stats()
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def __repr__(self) -> str:
        """Endpoints and model only (the config repr redacts the key)."""
        return f"JudgeClient(base_urls={list(self.config.base_urls)!r}, model={self.config.model!r})"

    # ------------------------------------------------------------------ public API
    async def grade(self, label: str, gold: str, pred: str) -> JudgeResult:
        """Ask whether pred matches gold for `label` (罪名 / 法条 / 判决结果): value 2, 1, 0 or None."""
        cfg = self.config
        key, messages = _question("grade", label, gold, pred, cfg.max_pred_chars, cfg.model, cfg.max_tokens)
        return await self._ask("grade", key, messages, parse_grade)

    async def term_error(self, gold: str, pred: str) -> JudgeResult:
        """Ask for the prison-term error between pred and gold: value in months or None."""
        cfg = self.config
        key, messages = _question("term_error", "", gold, pred, cfg.max_pred_chars, cfg.model, cfg.max_tokens)
        return await self._ask("term_error", key, messages, parse_error_months)

    def stats(self) -> dict[str, Any]:
        """Counters: calls, requests, cache_hits, dedup_hits, failures, retries, per-endpoint counts."""
        s = self._stats
        return {
            "calls": s.calls,
            "requests": s.requests,
            "cache_hits": s.cache_hits,
            "dedup_hits": s.dedup_hits,
            "failures": s.failures,
            "retries": s.retries,
            "structured_fallbacks": s.structured_fallbacks,
            "consecutive_failures": self._consecutive_failures,
            "cache_size": len(self._cache),
            "in_flight": len(self._inflight),
            "endpoints": {
                ep.url: {
                    "requests": ep.requests,
                    "failures": ep.failures,
                    "outstanding": ep.outstanding,
                    "structured_output": ep.structured_output,
                }
                for ep in self._endpoints
            },
        }

    def reset_failures(self) -> None:
        """Forget the consecutive-failure count (e.g. after the operator restarted the judge)."""
        self._consecutive_failures = 0

    async def aclose(self) -> None:
        """Close the HTTP connections of every endpoint."""
        self._closed = True
        for ep in self._endpoints:
            try:
                await asyncio.wait_for(ep.client.close(), timeout=5.0)
            except (asyncio.TimeoutError, RuntimeError, OSError) as exc:
                logger.debug("judge: closing client for %s failed: %s", ep.url, type(exc).__name__)

    # ------------------------------------------------------------------ internals
    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "JudgeClient used from a different event loop than the one it was created on; "
                "use get_judge_client(config) inside each loop"
            )
        if self._closed:
            raise RuntimeError("JudgeClient is closed")

    def _unavailable(self) -> JudgeUnavailableError:
        url, err = self._last_failure
        return JudgeUnavailableError(
            f"judge unavailable: {self._consecutive_failures} judge calls failed in a row "
            f"(max_consecutive_failures={self.config.max_consecutive_failures}); last failure at {url}: {err}. "
            f"{_FIX_HINT}"
        )

    async def _ask(
        self, kind: str, key: bytes, messages: list[dict[str, str]], parse: Callable[[str], int | None]
    ) -> JudgeResult:
        self._check_loop()
        if self._consecutive_failures >= self.config.max_consecutive_failures:
            raise self._unavailable()
        t0 = time.perf_counter()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self._stats.cache_hits += 1
            text, value = cached
            return JudgeResult(value, text, (time.perf_counter() - t0) * 1000, cache_hit=True, failed=False)
        shared = self._inflight.get(key)
        if shared is not None:
            self._stats.dedup_hits += 1
            try:
                # shield: a cancelled waiter must not cancel the call others wait for. The call itself is bounded.
                res, tripped = await asyncio.shield(shared)
            except _CallAbandonedError:  # the caller making the call was cancelled first: ask again
                self._stats.dedup_hits -= 1
                return await self._ask(kind, key, messages, parse)
            res = JudgeResult(
                res.value, res.text, (time.perf_counter() - t0) * 1000, False, res.failed, res.error, True, res.endpoint
            )
        else:
            res, tripped = await self._own_call(kind, key, messages, parse)
            res.latency_ms = (time.perf_counter() - t0) * 1000
        if tripped:
            raise self._unavailable()
        return res

    async def _own_call(
        self, kind: str, key: bytes, messages: list[dict[str, str]], parse: Callable[[str], int | None]
    ) -> tuple[JudgeResult, bool]:
        """Make the call in the calling task; identical questions asked meanwhile wait for its outcome.

        No separate task: a new task would first wait behind everything else ready on the event loop (in a reward
        worker, the other responses of the batch), so the request would leave only after their CPU work.
        """
        shared: asyncio.Future[tuple[JudgeResult, bool]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = shared
        try:
            outcome = await self._call(kind, messages, parse, key)
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

    async def _call(
        self, kind: str, messages: list[dict[str, str]], parse: Callable[[str], int | None], key: bytes
    ) -> tuple[JudgeResult, bool]:
        """One judge question over the network, with retries; updates cache and failure counters.

        Returns the result and whether this failure made the consecutive-failure count reach the limit.
        """
        self._stats.calls += 1
        attempt = 0
        last: _CallError | None = None
        endpoint = ""
        avoid: _Endpoint | None = None
        while True:
            try:
                text, endpoint = await self._attempt(kind, messages, avoid)
            except _CallError as err:
                last = err
                avoid = err.endpoint
                endpoint = err.endpoint.url if err.endpoint else endpoint
                if err.retryable and attempt < self.config.max_retries:
                    attempt += 1
                    self._stats.retries += 1
                    delay = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (attempt - 1))
                    delay *= 0.5 + self._rng.random() / 2  # jitter: 50–100 % of the nominal delay
                    logger.debug("judge: retry %d/%d in %.2fs after %s", attempt, self.config.max_retries, delay, err)
                    await asyncio.sleep(delay)
                    continue
                break
            value = parse(text)
            self._consecutive_failures = 0
            if self.config.cache_size > 0:
                self._cache[key] = (text, value)
                self._cache.move_to_end(key)
                while len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)
            return JudgeResult(value, text, 0.0, cache_hit=False, failed=False, endpoint=endpoint), False
        self._stats.failures += 1
        self._consecutive_failures += 1
        error = str(last) if last else "unknown error"
        self._last_failure = (endpoint, error)
        logger.warning("judge call failed after %d attempt(s) at %s: %s", attempt + 1, endpoint, error)
        tripped = self._consecutive_failures >= self.config.max_consecutive_failures
        return JudgeResult(None, "", 0.0, cache_hit=False, failed=True, error=error, endpoint=endpoint), tripped

    def _pick(self, avoid: _Endpoint | None) -> _Endpoint:
        """Endpoint with the fewest outstanding requests; ties go round-robin, avoiding the one that just failed."""
        n = len(self._endpoints)
        start = self._rr % n
        self._rr += 1
        order = [self._endpoints[(start + i) % n] for i in range(n)]
        return min(order, key=lambda ep: (ep.outstanding, ep is avoid and n > 1))

    async def _attempt(self, kind: str, messages: list[dict[str, str]], avoid: _Endpoint | None) -> tuple[str, str]:
        """One slot, one endpoint, one request (plus one retry without structured outputs after a 400)."""
        if self._semaphore.locked():
            try:
                await _bounded(self._semaphore.acquire(), self.config.queue_timeout_s)
            except asyncio.TimeoutError as exc:
                raise _CallError(
                    f"no judge slot free within queue_timeout_s={self.config.queue_timeout_s}s", retryable=False
                ) from exc
        else:
            await self._semaphore.acquire()  # a free slot: returns at once
        ep = self._pick(avoid)
        ep.outstanding += 1
        try:
            model = await self._model_for(ep)
            use_so = ep.structured_output
            try:
                return await self._request(ep, model, kind, messages, use_so), ep.url
            except _CallError as err:
                if not (use_so and err.status == 400) or _CONTEXT_TOO_LONG in str(err).lower():
                    raise  # a prompt past max_model_len fails the same without structured outputs: don't resend
                # The server rejected structured outputs (older vLLM, other server): retry once without.
                try:
                    text = await self._request(ep, model, kind, messages, False)
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
                return text, ep.url
        except _CallError as err:
            err.endpoint = ep
            ep.failures += 1
            raise
        finally:
            ep.outstanding -= 1
            self._semaphore.release()

    async def _model_for(self, ep: _Endpoint) -> str:
        """The configured model, else the first id served at this endpoint (looked up once per process)."""
        if self.config.model:
            return self.config.model
        with _DISCOVERED_LOCK:
            known = _DISCOVERED_MODELS.get(ep.url)
        if known:
            return known
        try:
            page = await asyncio.wait_for(ep.client.models.list(), timeout=self.config.timeout_s)
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised as _CallError
            raise self._classify(exc, "GET /v1/models") from exc
        ids = [m.id for m in getattr(page, "data", [])]
        if not ids:
            raise _CallError(f"GET {ep.url}/models listed no model; set judge_model", retryable=False)
        with _DISCOVERED_LOCK:
            _DISCOVERED_MODELS[ep.url] = ids[0]
        logger.info("judge: using model %r served at %s", ids[0], ep.url)
        return ids[0]

    async def _request(
        self, ep: _Endpoint, model: str, kind: str, messages: list[dict[str, str]], structured: bool
    ) -> str:
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": self.config.max_tokens,
        }
        if structured:
            spec = structured_output_spec(kind)
            if spec:
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
            raw = await _bounded(
                ep.client.post(
                    "/chat/completions",
                    body=body,
                    cast_to=bytes,
                    options={"idempotency_key": f"legal-judge-{next(_REQUEST_IDS)}"},
                ),
                self.config.timeout_s,
            )
        except Exception as exc:  # noqa: BLE001 - classified below, re-raised as _CallError
            err = self._classify(exc, "POST /v1/chat/completions")
            if err.status == 404 and not self.config.model:
                with _DISCOVERED_LOCK:  # the server may have been restarted with another model: look it up again
                    _DISCOVERED_MODELS.pop(ep.url, None)
            raise err from exc
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
            if content is not None and not isinstance(content, str):
                raise TypeError(f"content is {type(content).__name__}")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _CallError(f"malformed chat.completion response ({type(exc).__name__})", retryable=False) from exc
        return content or ""

    def _classify(self, exc: BaseException, what: str) -> _CallError:
        """Map an exception to a retryable/non-retryable _CallError with a short message (never the API key)."""
        refused = _connection_failure(exc)
        if refused is not None:  # the aiohttp transport reports a refused connect as a connect *timeout*
            return _CallError(f"{what}: connection error ({type(refused).__name__})", retryable=True)
        if isinstance(exc, asyncio.TimeoutError | openai.APITimeoutError):
            return _CallError(f"{what}: timeout after {self.config.timeout_s}s", retryable=True)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status == 429 or status >= 500
            detail = _short_error_message(exc)
            return _CallError(f"{what}: HTTP {status} {detail}".rstrip(), retryable=retryable, status=status)
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


def _purge_locked() -> None:
    """Drop clients whose loop is gone or closed, and entries inherited from a parent process."""
    pid = os.getpid()
    for key, (loop_ref, _client) in list(_REGISTRY.items()):
        loop = loop_ref()
        if key[1] != pid or loop is None or loop.is_closed():
            del _REGISTRY[key]


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
