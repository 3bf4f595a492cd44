"""What every transport takes and gives: a signed GET in, an `Answer` out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

import httpx

__all__ = ["Answer", "Transport"]


class Answer(NamedTuple):
    """An HTTP answer, read whole."""

    status: int
    headers: Mapping[str, str]
    """Case-insensitive, as both libraries give them: `Retry-After`, `X-RateLimit-*`."""
    content: bytes


class Transport(Protocol):
    async def get(self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout) -> Answer:
        """GET `url` (already encoded and signed) and read the whole answer."""
        ...
