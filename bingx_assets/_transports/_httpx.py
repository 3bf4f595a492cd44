"""The default transport: httpx (what respx and `httpx.MockTransport` plug into)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from .._exceptions import APIConnectionError, APITimeoutError
from ._base import Answer, attempt_deadline, read_capped, too_large

__all__ = ["HttpxTransport"]


class HttpxTransport:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout) -> Answer:
        deadline = attempt_deadline(timeouts)
        failure: APIConnectionError
        try:
            async with asyncio.timeout(deadline):
                answer = await self._read(url, headers, timeouts)
        except TimeoutError:
            failure = APITimeoutError(f"no whole answer within {deadline:g} s")
        except httpx.TimeoutException as exc:
            failure = APITimeoutError(f"no answer in time ({type(exc).__name__})")
        except httpx.RequestError as exc:  # transport errors, and a body it cannot decode
            failure = APIConnectionError(type(exc).__name__)
        else:
            if answer is not None:
                return answer
            failure = too_large()
        # Raised out here, not in the except: the library's error (and its request: the
        # signed URL, the api key header) must not ride along as __context__, nor these
        # arguments in the traceback's frame.
        del url, headers
        raise failure

    async def _read(
        self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout
    ) -> Answer | None:
        async with self.client.stream("GET", url, headers=headers, timeout=timeouts) as response:
            # Decoded bytes are counted: a gzip bomb stops at the cap too.
            content = await read_capped(
                response.aiter_bytes(), response.headers.get("content-length")
            )
            if content is None:
                return None
            return Answer(response.status_code, response.headers, content)
