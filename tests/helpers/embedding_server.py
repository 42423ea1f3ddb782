"""Loopback HTTP server speaking OpenAI's ``POST /v1/embeddings``, with scripted vectors and failures.

    with EmbeddingServer(vector=lambda text: [1.0, 0.0]) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="EMPTY")

Knobs (plain attributes, changeable while it runs): ``vector`` (text -> list of floats; default: counts of a few
characters, so equal texts give equal vectors), ``fail`` (None, or an int k: the first k requests fail with
``fail_status``), ``fail_status`` (default 503), ``latency_s``. ``requests`` records every input list received.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web


def char_vector(text: str) -> list[float]:
    """A deterministic vector: counts of a few frequent characters (equal texts → cosine 1)."""
    return [float(text.count(c)) for c in "的是不有文本内容风险合规，。"] + [1.0]


class EmbeddingServer:
    """aiohttp on its own loop in a daemon thread, bound to 127.0.0.1 on a free port."""

    def __init__(self, vector: Callable[[str], list[float]] = char_vector, model: str = "embed-model") -> None:
        """Configure; start() binds and serves."""
        self.vector = vector
        self.model = model
        self.fail: int | None = None
        self.fail_status = 503
        self.latency_s = 0.0
        self.requests: list[list[str]] = []
        self._seen = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    @property
    def base_url(self) -> str:
        """OpenAI base URL of this server."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def _embeddings(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        self.requests.append(texts)
        index = self._seen
        self._seen += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.fail is not None and index < self.fail:
            return web.json_response({"error": {"message": "scripted failure"}}, status=self.fail_status)
        if body.get("model") != self.model:
            return web.json_response({"error": {"message": f"model {body.get('model')!r} not found"}}, status=404)
        data = [{"object": "embedding", "index": i, "embedding": self.vector(t)} for i, t in enumerate(texts)]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return web.json_response({"object": "list", "data": data, "model": self.model, "usage": usage})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> EmbeddingServer:
        """Bind and serve in the background thread."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving and end the thread."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> EmbeddingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
