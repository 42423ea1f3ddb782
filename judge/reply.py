"""Judge reply bodies read within a byte budget: streamed, decoded here, and cut once past max_reply_bytes.

A judge reply is a few hundred bytes. A sick server or proxy can send a body that never ends (chunked) or a small
gzip body that inflates a thousandfold; read whole, either grows a reward worker by hundreds of MB. The HTTP client
gets a response hook (`limit_reply_bodies`) that swaps each response's byte stream for one that decodes the body
itself (identity, gzip, deflate) in pieces of at most the bytes left in the budget and raises ReplyBodyError once the
decoded body passes it, so neither the raw nor the decoded body is ever held past the budget. Error bodies (which
openai reads to build its exception) go through the same stream.

Hand-written rather than counting what httpx decodes: httpx decodes inside `Response.aiter_bytes` after the stream
has handed the raw bytes over, and its decoder classes are private; zlib with ``max_length`` is a few lines here.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any

import openai

__all__ = ["ACCEPT_ENCODING", "ReplyBodyError", "limit_reply_bodies"]

# What the client asks for; anything else a server sends anyway is refused (ReplyBodyError).
ACCEPT_ENCODING = "gzip, deflate"


def _httpx_package() -> ModuleType:
    """The httpx package openai's HTTP client is built on (httpx2 from openai 3 on, httpx before)."""
    for base in openai.DefaultAsyncHttpxClient.__mro__:
        root = base.__module__.partition(".")[0]
        if base.__name__ == "AsyncClient" and root in ("httpx", "httpx2"):
            return importlib.import_module(root)
    raise ImportError("cannot tell which httpx package openai's client uses")  # pragma: no cover


_HTTPX = _httpx_package()


class ReplyBodyError(Exception):
    """A reply body that is too long once decoded, or encoded in a way the client did not ask for."""


def _decompressor(encoding: str) -> Any:
    """A zlib decompressor for a Content-Encoding, None for identity, a ReplyBodyError for anything else."""
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if enc == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib-wrapped deflate (gzip headers accepted too)
    return ReplyBodyError(f"reply body in Content-Encoding {encoding[:40]!r}, which was not asked for")


class _BoundedStream(_HTTPX.AsyncByteStream):  # type: ignore[misc,name-defined]
    """The decoded body of one response, cut with ReplyBodyError once it passes max_bytes."""

    def __init__(self, inner: Any, decompressor: Any, max_bytes: int) -> None:
        """Wrap the transport's raw stream; decompressor: zlib's, None (identity) or the error to raise on reading."""
        self._inner = inner
        self._decompressor = decompressor
        self._max = max_bytes
        self._seen = 0

    def _count(self, piece: bytes) -> bytes:
        self._seen += len(piece)
        if self._seen > self._max:
            raise ReplyBodyError(f"reply body over max_reply_bytes={self._max} bytes (decoded)")
        return piece

    def _decode(self, raw: bytes) -> list[bytes]:
        """Decoded pieces of one raw chunk, never more than one byte past the budget in all."""
        d = self._decompressor
        if d is None:
            return [self._count(raw)]
        pieces = []
        data = raw
        try:
            while True:
                piece = d.decompress(data, self._max - self._seen + 1)
                pieces.append(self._count(piece))
                data = d.unconsumed_tail
                if not data or not piece:
                    return pieces
        except zlib.error as exc:
            raise ReplyBodyError(f"reply body is not valid compressed data ({exc})") from None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Decoded pieces of the body, raising ReplyBodyError past the budget (the connection is then dropped)."""
        if isinstance(self._decompressor, ReplyBodyError):
            raise self._decompressor
        async for raw in self._inner:
            for piece in self._decode(raw):
                if piece:
                    yield piece
        if self._decompressor is not None:
            tail = self._count(self._decompressor.flush())
            if tail:
                yield tail

    async def aclose(self) -> None:
        """Close the underlying response (an unfinished body closes its connection)."""
        await self._inner.aclose()


def limit_reply_bodies(max_bytes: int) -> Callable[[Any], Awaitable[None]]:
    """An httpx response hook: the response's body is read through a decoder capped at max_bytes decoded bytes."""

    async def hook(response: Any) -> None:
        decompressor = _decompressor(response.headers.get("content-encoding", ""))
        response.stream = _BoundedStream(response.stream, decompressor, max_bytes)
        response.headers.pop("content-encoding", None)  # decoded here: httpx must not decode it again

    return hook
