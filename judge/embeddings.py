"""Async client for an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM serves embedding models): cached, bounded.

Per text: LRU cache → in-flight dedup (a GRPO group asks for the same gold text at once: one request) → one request
through openai's AsyncOpenAI, which retries connection errors, 429 and 5xx with backoff (``max_retries``); the whole
call is cut after ``timeout_s × (max_retries + 1) + 10`` seconds. A failed call raises EmbeddingCallError; after
``max_consecutive_failures`` failures in a row every call raises EmbeddingUnavailableError (the run must stop).
One client per (config, process, event loop), as for the judge client.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import openai

__all__ = [
    "ENV_EMBEDDING_BASE_URL",
    "ENV_EMBEDDING_MODEL",
    "EmbeddingCallError",
    "EmbeddingClient",
    "EmbeddingConfig",
    "EmbeddingUnavailableError",
    "close_embedding_clients",
    "cosine",
    "get_embedding_client",
]

ENV_EMBEDDING_BASE_URL = "EMBEDDING_BASE_URL"
ENV_EMBEDDING_MODEL = "EMBEDDING_MODEL"
ENV_EMBEDDING_API_KEY = "EMBEDDING_API_KEY"


class EmbeddingCallError(RuntimeError):
    """One embedding call failed after openai's retries."""


class EmbeddingUnavailableError(RuntimeError):
    """max_consecutive_failures embedding calls failed in a row: the endpoint is gone."""


@dataclass(frozen=True, repr=False)
class EmbeddingConfig:
    """Where and how to call the embedding endpoint (hashable: keys the per-loop client registry)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 3
    max_chars: int = 2000  # texts are cut here before sending
    cache_size: int = 4096
    max_consecutive_failures: int = 32

    def __post_init__(self) -> None:
        """Check ranges; errors name the field."""
        if not self.base_url.strip() or not self.model.strip():
            raise ValueError("EmbeddingConfig needs base_url (e.g. http://127.0.0.1:8001/v1) and model")
        for name, ok in {
            "timeout_s": self.timeout_s > 0,
            "max_retries": self.max_retries >= 0,
            "max_chars": self.max_chars >= 1,
            "cache_size": self.cache_size >= 0,
            "max_consecutive_failures": self.max_consecutive_failures >= 1,
        }.items():
            if not ok:
                raise ValueError(f"EmbeddingConfig.{name} is out of range: {getattr(self, name)!r}")

    def __repr__(self) -> str:
        """Base URL and model (never the key)."""
        return f"EmbeddingConfig(base_url={self.base_url!r}, model={self.model!r}, timeout_s={self.timeout_s})"

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], env: Mapping[str, str] | None = None) -> EmbeddingConfig | None:
        """Config from reward kwargs embedding_{base_url,model,api_key,timeout_s,max_retries}; None without a URL.

        Environment variables EMBEDDING_BASE_URL / EMBEDDING_MODEL / EMBEDDING_API_KEY fill the first three.
        """
        env = os.environ if env is None else env
        url = str(kwargs.get("embedding_base_url") or env.get(ENV_EMBEDDING_BASE_URL) or "").strip()
        if not url:
            return None
        model = str(kwargs.get("embedding_model") or env.get(ENV_EMBEDDING_MODEL) or "").strip()
        key = kwargs.get("embedding_api_key") or env.get(ENV_EMBEDDING_API_KEY) or None
        extra: dict[str, Any] = {}
        for name, conv in (("timeout_s", float), ("max_retries", int)):
            if kwargs.get(f"embedding_{name}") is not None:
                try:
                    extra[name] = conv(kwargs[f"embedding_{name}"])
                except (TypeError, ValueError) as exc:
                    raise ValueError(
                        f"reward kwarg embedding_{name}={kwargs[f'embedding_{name}']!r} is invalid"
                    ) from exc
        return cls(base_url=url.rstrip("/"), model=model, api_key=str(key) if key else None, **extra)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors; 0.0 for a zero or non-finite vector or mismatched lengths."""
    if len(a) != len(b) or not a:
        return 0.0
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if not math.isfinite(dot) or not math.isfinite(norm) or norm == 0.0:
        return 0.0
    return max(-1.0, min(1.0, dot / norm))


class EmbeddingClient:
    """Embeddings for one config on one event loop (use get_embedding_client)."""

    def __init__(self, config: EmbeddingConfig) -> None:
        """Create the OpenAI client; nothing connects until the first call."""
        self.config = config
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "EMPTY",
            max_retries=config.max_retries,
            timeout=config.timeout_s,
        )
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[list[float]]] = {}
        self._consecutive_failures = 0
        self.requests = 0
        self.failures = 0

    async def embed(self, text: str) -> tuple[list[float], bool]:
        """(vector, cache_hit) for one text; raises EmbeddingCallError / EmbeddingUnavailableError."""
        if self._consecutive_failures >= self.config.max_consecutive_failures:
            raise EmbeddingUnavailableError(
                f"embedding endpoint {self.config.base_url} unavailable: {self._consecutive_failures} calls failed "
                f"in a row; check embedding_base_url / {ENV_EMBEDDING_BASE_URL} and embedding_model"
            )
        text = text[: self.config.max_chars]
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached, True
        shared = self._inflight.get(text)
        if shared is not None:
            return await asyncio.shield(shared), False
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._inflight[text] = future
        try:
            vector = await self._request(text)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else EmbeddingCallError("cancelled"))
            future.exception()  # retrieved: waiters get it, nobody else logs it
            raise
        finally:
            del self._inflight[text]
        future.set_result(vector)
        if self.config.cache_size:
            self._cache[text] = vector
            if len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return vector, False

    async def _request(self, text: str) -> list[float]:
        """One /v1/embeddings call (openai retries inside), bounded as a whole."""
        cfg = self.config
        self.requests += 1
        try:
            response = await asyncio.wait_for(
                self._client.embeddings.create(model=cfg.model, input=[text]),
                timeout=cfg.timeout_s * (cfg.max_retries + 1) + 10.0,
            )
            vector = [float(x) for x in response.data[0].embedding]
        except (openai.OpenAIError, asyncio.TimeoutError, IndexError, TypeError, ValueError) as exc:
            self._consecutive_failures += 1
            self.failures += 1
            raise EmbeddingCallError(f"embedding call to {cfg.base_url} failed: {type(exc).__name__}: {exc}") from exc
        self._consecutive_failures = 0
        return vector

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()


_REGISTRY: dict[tuple[EmbeddingConfig, int, int], tuple[weakref.ref[asyncio.AbstractEventLoop], EmbeddingClient]] = {}
_LOCK = threading.Lock()


def get_embedding_client(config: EmbeddingConfig) -> EmbeddingClient:
    """The client for this config in this process and running loop (created on first use)."""
    loop = asyncio.get_running_loop()
    key = (config, os.getpid(), id(loop))
    with _LOCK:
        entry = _REGISTRY.get(key)
        if entry is not None and entry[0]() is loop:
            return entry[1]
        for k, (ref, _c) in list(_REGISTRY.items()):
            if ref() is None or ref().is_closed() or k[1] != os.getpid():  # type: ignore[union-attr]
                del _REGISTRY[k]
        client = EmbeddingClient(config)
        _REGISTRY[key] = (weakref.ref(loop), client)
        return client


async def close_embedding_clients() -> None:
    """Close and forget the embedding clients bound to the running event loop."""
    loop = asyncio.get_running_loop()
    with _LOCK:
        mine = [(k, c) for k, (ref, c) in _REGISTRY.items() if ref() is loop]
        for k, _c in mine:
            del _REGISTRY[k]
    for _k, client in mine:
        await client.aclose()
