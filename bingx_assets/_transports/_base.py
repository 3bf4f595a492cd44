"""What every transport takes and gives: a signed GET in, an `Answer` out, in bounded
time and memory.

BingX's answers to this API are under 2 KB. Whatever else arrives (a captive portal's
page, a proxy's endless stream, a body trickled a byte at a time so that no read ever
times out) must still end, soon and small: each attempt has one deadline for all of it
(`attempt_deadline`), and reading stops at `MAX_ANSWER_BYTES`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import NamedTuple, Protocol

import httpx

from .._exceptions import AnswerTooLargeError, APIConnectionError, APITimeoutError

__all__ = [
    "MAX_ANSWER_BYTES",
    "Answer",
    "BoundedTransport",
    "OwnTransport",
    "Transport",
    "attempt_deadline",
    "read_capped",
    "too_large",
]

MAX_ANSWER_BYTES = 1 << 20
"""1 MiB: 500 times BingX's largest answer, and nothing a retry or a pool of keys
reading at once could turn into memory trouble."""


class Answer(NamedTuple):
    """An HTTP answer, read whole."""

    status: int
    headers: Mapping[str, str]
    """Case-insensitive, as both libraries give them: `Retry-After`, `X-RateLimit-*`."""
    content: bytes


class Transport(Protocol):
    async def get(self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout) -> Answer:
        """GET `url` (already encoded and signed) and read the whole answer, within
        `attempt_deadline(timeouts)` and `MAX_ANSWER_BYTES`, or raise
        `APITimeoutError` / `AnswerTooLargeError` / `APIConnectionError`."""
        ...


class OwnTransport(Transport, Protocol):
    """A transport the client opened for itself, and so closes."""

    async def aclose(self) -> None: ...


class BoundedTransport:
    """`Transport.get` for an adapter that gives `_read` (the answer, or None past the
    cap) and `_failure` (our error for one of its library's, or None for none of them)."""

    async def _read(
        self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout
    ) -> Answer | None:
        raise NotImplementedError

    def _failure(self, exc: Exception) -> APIConnectionError | None:
        raise NotImplementedError

    async def get(self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout) -> Answer:
        deadline = attempt_deadline(timeouts)
        failure: APIConnectionError | None
        try:
            async with asyncio.timeout(deadline):
                answer = await self._read(url, headers, timeouts)
        except Exception as exc:
            # The deadline's own TimeoutError; the libraries' timeouts are their own types
            # (aiohttp's subclass TimeoutError).
            if type(exc) is TimeoutError:
                failure = APITimeoutError(f"no whole answer within {deadline:g} s")
            else:
                failure = self._failure(exc)
            if failure is None:
                raise
        else:
            if answer is not None:
                return answer
            failure = too_large()
        # Raised out here, not in the except: the library's error (its request: the
        # signed URL, the api key header) must not ride along as __context__, nor these
        # arguments in the traceback's frame.
        del url, headers
        raise failure


def attempt_deadline(timeouts: httpx.Timeout) -> float:
    """Seconds one attempt may take in all: to connect, and then once more the time an
    answer may keep us waiting. The libraries' read timeout restarts with every byte, so
    on its own it lets a trickled body run for ever; this bound does not restart. At the
    defaults (10 s, 5 s to connect) it is 15 s."""
    return (timeouts.connect or 0.0) + (timeouts.read or 0.0)


async def read_capped(chunks: AsyncIterator[bytes], content_length: str | None) -> bytes | None:
    """The whole body, or None as soon as it is known to pass `MAX_ANSWER_BYTES` (from
    its `Content-Length`, or counting): nothing past the cap is read or kept."""
    if content_length is not None and _more_than_the_cap(content_length):
        return None
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            return None
    return bytes(body)


def too_large() -> AnswerTooLargeError:
    return AnswerTooLargeError(f"answer larger than {MAX_ANSWER_BYTES} bytes: stopped reading")


def _more_than_the_cap(content_length: str) -> bool:
    digits = content_length.strip()
    # More digits than the cap has is past it, and int() of a long string is slow.
    return (
        digits.isascii()
        and digits.isdecimal()
        and (len(digits) > len(str(MAX_ANSWER_BYTES)) or int(digits) > MAX_ANSWER_BYTES)
    )
