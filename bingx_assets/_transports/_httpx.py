"""The default transport: httpx (what respx and `httpx.MockTransport` plug into)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .._exceptions import APIConnectionError, APITimeoutError
from ._base import Answer

__all__ = ["HttpxTransport"]


class HttpxTransport:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout) -> Answer:
        try:
            response = await self.client.get(url, headers=headers, timeout=timeouts)
        except httpx.TimeoutException as exc:
            raise APITimeoutError(f"no answer in time ({type(exc).__name__})") from None
        except httpx.RequestError as exc:  # transport errors, and a body it cannot decode
            raise APIConnectionError(type(exc).__name__) from None
        return Answer(response.status_code, response.headers, response.content)
