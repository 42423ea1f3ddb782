"""Loopback HTTP server speaking vLLM's OpenAI API, with scripted replies, for judge tests and benchmarks.

The server runs aiohttp on its own event loop in a daemon thread, bound to 127.0.0.1 on a free port:

    with ScriptedJudgeServer(reply=lambda req: "2", latency_s=0.05, max_concurrency=8) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="EMPTY")
        ...
        assert len(srv.requests) == 1

Endpoints: ``POST /v1/chat/completions`` (OpenAI ``chat.completion`` JSON), ``GET /v1/models``, ``GET /health``.

Scripting (all knobs are plain attributes and may be changed while the server runs):
- ``reply``: a string, or a function ``request_json -> str`` (sync or async) giving the assistant text; ``None``
  (or a function returning None) answers with ``"content": null``.
- ``latency_s``: seconds to wait before answering (a float, or a function ``(request_json, index) -> float``).
  A latency longer than the client's timeout simulates a hung judge; ``stop()`` wakes every sleeper at once.
- ``fail``: ``None``; an ``int`` k (the first k chat requests fail); a ``float`` p (each chat request fails with
  probability p, drawn from ``random.Random(seed)``); or a function ``(request_json, index) -> int | None``
  returning an HTTP status to fail with (``None`` = answer normally). Failures use ``fail_status`` (default 503)
  unless the function returns its own status. Failures happen after the latency, inside the concurrency slot.
- ``retry_after``: value of the ``Retry-After`` header sent with scripted 429 failures (None: no header).
- ``malformed``: ``True`` or a function ``index -> bool``: answer that chat request 200 with a body that is not
  JSON (a proxy's error page, a cut connection).
- ``body_fault``: a hostile reply body for every chat request (or a function ``index -> str | None``), sent with
  status ``body_fault_status`` (default 200): ``"endless"`` (a chunked body that never ends: 64 KiB chunks until the
  client goes away, bytes sent in ``RecordedRequest.extra["bytes_sent"]``), ``"gzip_bomb"`` (a chat.completion
  answering "2", padded to ``gzip_bomb_bytes`` once decoded, sent gzip-encoded: about a thousandth of that on the
  wire) or ``"deep_json"`` (a chat.completion answering "2" with a field nested ``deep_json_depth`` levels deep).
- ``port``: bind this port instead of a free one (a server "coming back" on the address its clients know).
- ``max_concurrency``: at most C chat requests are served at once; the rest wait in a queue (like a vLLM server
  of limited capacity). ``max_concurrent_seen`` counts requests in flight including queued ones,
  ``max_active_seen`` those being served.
- ``api_key``: when set, every ``/v1/*`` request must carry ``Authorization: Bearer <api_key>`` (else 401, as vLLM's
  ``--api-key`` does); ``/health`` stays open.
- ``model``: the served model id; a chat request naming another model gets vLLM's 404.

Records: ``requests`` lists every chat-completions request received (also rejected ones) as
``RecordedRequest`` (json body, headers, status, index, timing); ``all_requests`` lists every HTTP request.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import random
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

ReplyFn = Callable[[dict[str, Any]], "str | Awaitable[str]"]
LatencyFn = Callable[[dict[str, Any], int], float]
FailFn = Callable[[dict[str, Any], int], "int | None"]


@dataclass
class RecordedRequest:
    """One HTTP request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    index: int = -1  # position among chat-completion requests (-1 for other paths)
    status: int = 0  # HTTP status answered (0 while still in flight)
    reply: str | None = None  # assistant text sent back (chat requests answered 200)
    t_start: float = 0.0
    t_end: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages of the request body ([] when absent)."""
        return list((self.json or {}).get("messages") or [])

    @property
    def user_text(self) -> str:
        """Concatenated content of all user messages."""
        return "\n".join(str(m.get("content", "")) for m in self.messages if m.get("role") == "user")


@functools.lru_cache(maxsize=4)
def gzip_bomb(decoded_bytes: int) -> bytes:
    """A gzip body that decodes to a chat.completion answering "2", padded with spaces to decoded_bytes."""
    head = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"2"}}],"pad":"'
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [packer.compress(head)]
    left = decoded_bytes - len(head) - 2
    block = b" " * 2**20
    while left > 0:
        out.append(packer.compress(block[: min(left, len(block))]))
        left -= len(block)
    out.append(packer.compress(b'"}'))
    out.append(packer.flush())
    return b"".join(out)


class ScriptedJudgeServer:
    """An OpenAI-compatible (vLLM-like) chat server on 127.0.0.1 whose answers are scripted per test."""

    def __init__(
        self,
        reply: str | ReplyFn = "2",
        latency_s: float | LatencyFn = 0.0,
        max_concurrency: int | None = None,
        api_key: str | None = None,
        fail: int | float | FailFn | None = None,
        fail_status: int = 503,
        seed: int = 0,
        model: str = "judge-model",
        backlog: int = 1024,
        retry_after: str | None = None,
        malformed: bool | Callable[[int], bool] = False,
        port: int | None = None,
        body_fault: str | Callable[[int], str | None] | None = None,
        body_fault_status: int = 200,
        gzip_bomb_bytes: int = 64 * 2**20,
        deep_json_depth: int = 100_000,
    ) -> None:
        """Configure the server; nothing listens until start()."""
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1 or None, got {max_concurrency}")
        self.reply = reply
        self.latency_s = latency_s
        self.max_concurrency = max_concurrency
        self.api_key = api_key
        self.fail = fail
        self.fail_status = fail_status
        self.model = model
        self.backlog = backlog
        self.retry_after = retry_after
        self.malformed = malformed
        self.body_fault = body_fault
        self.body_fault_status = body_fault_status
        self.gzip_bomb_bytes = gzip_bomb_bytes
        self.deep_json_depth = deep_json_depth
        self._bind_port = port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._all: list[RecordedRequest] = []
        self._chat_index = 0
        self._in_flight = 0
        self._active = 0
        self.max_concurrent_seen = 0
        self.max_active_seen = 0
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:PORT."""
        if self.port is None:
            raise RuntimeError("ScriptedJudgeServer is not started; call start() first")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
        return f"{self.url}/v1"

    @property
    def address(self) -> str:
        """'127.0.0.1:PORT', the form verl passes as reward_router_address."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> ScriptedJudgeServer:
        """Start serving in a background thread; returns self once the socket listens."""
        if self._thread is not None:
            raise RuntimeError("ScriptedJudgeServer already started")
        self._thread = threading.Thread(target=self._run, name="scripted-judge-server", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=10):
            raise RuntimeError("ScriptedJudgeServer did not start within 10 s")
        if self._start_error is not None:
            raise RuntimeError(f"ScriptedJudgeServer failed to start: {self._start_error!r}") from self._start_error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, wake sleeping handlers, close the socket and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running() and self._stopping is not None:
            loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=timeout)
        if thread.is_alive():
            raise RuntimeError(f"ScriptedJudgeServer thread did not stop within {timeout} s")
        self._thread = None

    def __enter__(self) -> ScriptedJudgeServer:
        """Start on entering a with-block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving a with-block."""
        self.stop()

    def __repr__(self) -> str:
        """Short description (never shows the API key)."""
        where = self.base_url if self.port is not None else "not started"
        return f"ScriptedJudgeServer({where}, model={self.model!r}, max_concurrency={self.max_concurrency})"

    # ---------------------------------------------------------------- records
    @property
    def requests(self) -> list[RecordedRequest]:
        """Chat-completion requests received so far (a copy), in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def all_requests(self) -> list[RecordedRequest]:
        """Every HTTP request received so far (a copy), in arrival order."""
        with self._lock:
            return list(self._all)

    @property
    def ok_requests(self) -> list[RecordedRequest]:
        """Chat-completion requests answered with 200."""
        return [r for r in self.requests if r.status == 200]

    @property
    def in_flight(self) -> int:
        """Chat requests currently received but not answered."""
        with self._lock:
            return self._in_flight

    def reset(self) -> None:
        """Forget recorded requests and concurrency maxima (the chat index restarts at 0)."""
        with self._lock:
            self._requests.clear()
            self._all.clear()
            self._chat_index = 0
            self.max_concurrent_seen = 0
            self.max_active_seen = 0

    # ---------------------------------------------------------------- server thread
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not self._started.is_set():
                self._start_error = exc
                self._started.set()
            else:
                logger.exception("ScriptedJudgeServer crashed")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        # handler_cancellation: a client that disconnects (e.g. its timeout fired) aborts its handler, as vLLM
        # aborts the generation; the slot is freed.
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        self._runner = runner
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._bind_port or 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(runner, sock, backlog=self.backlog)
        await site.start()
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    async def _sleep(self, seconds: float) -> None:
        """Sleep that ends early when the server stops."""
        if seconds <= 0:
            return
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    # ---------------------------------------------------------------- handlers
    def _record(self, request: web.Request, body: dict[str, Any] | None, chat: bool) -> RecordedRequest:
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k: v for k, v in request.headers.items()},
            json=body,
            t_start=time.monotonic(),
        )
        with self._lock:
            self._all.append(rec)
            if chat:
                rec.index = self._chat_index
                self._chat_index += 1
                self._requests.append(rec)
        return rec

    def _authorized(self, request: web.Request) -> bool:
        if not self.api_key:
            return True
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    @staticmethod
    def _error(
        status: int, message: str, rec: RecordedRequest | None = None, headers: dict[str, str] | None = None
    ) -> web.Response:
        """vLLM-style error body."""
        if rec is not None:
            rec.status = status
            rec.t_end = time.monotonic()
        kind = {400: "BadRequestError", 401: "Unauthorized", 404: "NotFoundError", 429: "RateLimitError"}.get(
            status, "InternalServerError" if status >= 500 else "Error"
        )
        body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
        return web.json_response(body, status=status, headers=headers)

    async def _health(self, request: web.Request) -> web.Response:
        self._record(request, None, chat=False).status = 200
        return web.Response(status=200)

    async def _models(self, request: web.Request) -> web.Response:
        rec = self._record(request, None, chat=False)
        if not self._authorized(request):
            return self._error(401, "Unauthorized", rec)
        rec.status = 200
        created = int(time.time())
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model,
                        "object": "model",
                        "created": created,
                        "owned_by": "vllm",
                        "root": self.model,
                        "parent": None,
                        "max_model_len": 32768,
                    }
                ],
            }
        )

    def _should_fail(self, body: dict[str, Any], index: int) -> int | None:
        fail = self.fail
        if fail is None or fail is False:
            return None
        if callable(fail):
            return fail(body, index)
        if isinstance(fail, bool):
            return self.fail_status if fail else None
        if isinstance(fail, int):
            return self.fail_status if index < fail else None
        if isinstance(fail, float):
            with self._lock:
                draw = self._rng.random()
            return self.fail_status if draw < fail else None
        raise TypeError(f"fail must be None, int, float or callable, got {type(fail).__name__}")

    def _latency(self, body: dict[str, Any], index: int) -> float:
        lat = self.latency_s
        return float(lat(body, index)) if callable(lat) else float(lat)

    async def _reply_text(self, body: dict[str, Any]) -> str | None:
        reply = self.reply
        if callable(reply):
            out = reply(body)
            if inspect.isawaitable(out):
                out = await out
            return None if out is None else str(out)
        return None if reply is None else str(reply)

    async def _fault_body(self, request: web.Request, fault: str, rec: RecordedRequest) -> web.StreamResponse:
        """One of the hostile bodies of ``body_fault``."""
        rec.status = self.body_fault_status
        if fault == "gzip_bomb":
            rec.t_end = time.monotonic()
            headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
            return web.Response(status=rec.status, body=gzip_bomb(self.gzip_bomb_bytes), headers=headers)
        if fault == "deep_json":
            rec.t_end = time.monotonic()
            depth = self.deep_json_depth
            text = '{"choices":[{"index":0,"message":{"role":"assistant","content":"2"}}],"deep":'
            return web.Response(
                status=rec.status, text=text + "[" * depth + "]" * depth + "}", content_type="application/json"
            )
        if fault != "endless":
            raise ValueError(f"unknown body_fault {fault!r}; expected endless, gzip_bomb or deep_json")
        response = web.StreamResponse(status=rec.status, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b'{"choices":[{"message":{"content":"2"}}],"pad":"' + b" " * 65536
        rec.extra["bytes_sent"] = 0
        assert self._stopping is not None
        try:
            while not self._stopping.is_set():
                await response.write(chunk)
                rec.extra["bytes_sent"] += len(chunk)
                chunk = b" " * 65536
                await asyncio.sleep(0.002)  # paced (about 30 MB/s): a client that reads it all grows slowly
        except (ConnectionError, RuntimeError):  # the client went away
            pass
        finally:
            rec.t_end = time.monotonic()
        return response

    def _is_malformed(self, index: int) -> bool:
        malformed = self.malformed
        return bool(malformed(index)) if callable(malformed) else bool(malformed)

    async def _chat(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            rec = self._record(request, None, chat=True)
            return self._error(400, f"invalid JSON body: {exc}", rec)
        if not isinstance(body, dict):
            rec = self._record(request, None, chat=True)
            return self._error(400, "request body must be a JSON object", rec)
        rec = self._record(request, body, chat=True)
        if not self._authorized(request):
            return self._error(401, "Unauthorized", rec)
        if body.get("model") != self.model:
            return self._error(404, f"The model `{body.get('model')}` does not exist.", rec)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "messages must be a non-empty list", rec)
        if body.get("stream"):
            return self._error(400, "streaming is not supported by ScriptedJudgeServer", rec)
        with self._lock:
            self._in_flight += 1
            self.max_concurrent_seen = max(self.max_concurrent_seen, self._in_flight)
        try:
            if self._slots is not None:
                async with self._slots:
                    return await self._serve_chat(request, body, rec)
            return await self._serve_chat(request, body, rec)
        finally:
            with self._lock:
                self._in_flight -= 1
            if rec.status == 0:  # cancelled (client went away) or crashed
                rec.status = 499
                rec.t_end = time.monotonic()

    async def _serve_chat(self, request: web.Request, body: dict[str, Any], rec: RecordedRequest) -> web.StreamResponse:
        with self._lock:
            self._active += 1
            self.max_active_seen = max(self.max_active_seen, self._active)
        try:
            await self._sleep(self._latency(body, rec.index))
            status = self._should_fail(body, rec.index)
            if status is not None:
                headers = {"Retry-After": self.retry_after} if status == 429 and self.retry_after else None
                return self._error(status, f"scripted failure {status} for request #{rec.index}", rec, headers)
            fault = self.body_fault(rec.index) if callable(self.body_fault) else self.body_fault
            if fault:
                return await self._fault_body(request, fault, rec)
            if self._is_malformed(rec.index):
                rec.status = 200
                rec.t_end = time.monotonic()
                return web.Response(status=200, text="<html>502 Bad Gateway</html>", content_type="application/json")
            text = await self._reply_text(body)
        finally:
            with self._lock:
                self._active -= 1
        rec.reply = text
        rec.status = 200
        rec.t_end = time.monotonic()
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict))
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "tool_calls": []},
                        "logprobs": None,
                        "finish_reason": "stop",
                        "stop_reason": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_chars,
                    "completion_tokens": len(text or ""),
                    "total_tokens": prompt_chars + len(text or ""),
                },
            }
        )
