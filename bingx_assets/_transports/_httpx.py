"""A caller's `httpx.AsyncClient` as the transport (what respx, `httpx.MockTransport` and
`BingXSimulator.http_client()` plug into)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import httpx

from .._exceptions import APIConnectionError, APITimeoutError
from ._base import MAX_ANSWER_BYTES, Answer, BoundedTransport, read_capped

__all__ = ["HttpxTransport"]

# httpx would decode a body whole, chunk by chunk: one 64 KiB chunk of a gzip bomb
# becomes 64 MiB before anything could count it. The body is read as sent and
# decoded here instead, never past the cap; so only what is decoded here is asked for.
_ACCEPTED_ENCODINGS = "gzip, deflate"
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class _UnreadableEncoding(Exception):
    """A Content-Encoding not asked for, or a body that does not decode."""


class HttpxTransport(BoundedTransport):
    """A caller's `httpx.AsyncClient`, used as it is and never closed here."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def aclose(self) -> None:
        """Close the client: only for one a test opened in place of the client's own."""
        await self.client.aclose()

    def _failure(self, exc: Exception) -> APIConnectionError | None:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"no answer in time ({type(exc).__name__})")
        if isinstance(exc, httpx.RequestError):  # transport errors, and a body it cannot decode
            return APIConnectionError(type(exc).__name__)
        if isinstance(exc, _UnreadableEncoding):
            return APIConnectionError(f"DecodingError: {exc}")
        return None

    async def _read(
        self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout
    ) -> Answer | None:
        asked = {**headers, "Accept-Encoding": _ACCEPTED_ENCODINGS}
        async with self.client.stream("GET", url, headers=asked, timeout=timeouts) as response:
            if response.is_stream_consumed:  # built in memory (a MockTransport): read already
                whole = response.content
                if len(whole) > MAX_ANSWER_BYTES:
                    return None
                return Answer(response.status_code, response.headers, whole)
            raw = await read_capped(response.aiter_raw(), response.headers.get("content-length"))
            encoding = response.headers.get("content-encoding")
            content = _decoded(raw, encoding) if raw is not None and encoding else raw
            if content is None:
                return None
            return Answer(response.status_code, response.headers, content)


def _decoded(content: bytes, encoding: str) -> bytes | None:
    """`content` undone of each coding in `encoding` (last applied first), or None past
    `MAX_ANSWER_BYTES`."""
    codings = [c.strip().lower() for c in encoding.split(",")]
    for coding in reversed([c for c in codings if c not in ("", "identity")]):
        if coding not in _WBITS:
            raise _UnreadableEncoding(f"Content-Encoding {coding[:20]!r} was not asked for")
        try:
            content = _inflate(content, _WBITS[coding])
        except zlib.error:
            if coding != "deflate":
                raise _UnreadableEncoding(f"not {coding}") from None
            try:  # "deflate" is sent with and without its zlib header
                content = _inflate(content, -zlib.MAX_WBITS)
            except zlib.error:
                raise _UnreadableEncoding("not deflate") from None
        if len(content) > MAX_ANSWER_BYTES:
            return None
    return content


def _inflate(content: bytes, wbits: int) -> bytes:
    return zlib.decompressobj(wbits).decompress(content, MAX_ANSWER_BYTES + 1)
