"""A bot's own `aiohttp.ClientSession` as the transport (the `aiohttp` extra)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from .._exceptions import APIConnectionError, APITimeoutError, ConfigurationError
from ._base import Answer, attempt_deadline, read_capped, too_large

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport"]


class AiohttpTransport:
    """A caller's `aiohttp.ClientSession`, used as it is (its TLS settings, its
    connection limits) and never closed here."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        import aiohttp  # only here: `import bingx_assets` must not pay for aiohttp
        import yarl

        if not hasattr(aiohttp, "ClientMiddlewareType"):  # per-request middlewares: 3.12
            raise ConfigurationError(
                f"an aiohttp.ClientSession needs aiohttp 3.12 or later, not {aiohttp.__version__}"
            )
        self.session = session
        # A per-request `middlewares=` replaces the session's own, so theirs go first,
        # around ours. aiohttp keeps them in a private attribute with no public getter;
        # the default keeps requests going out (once) should a later aiohttp rename it.
        self._middlewares: tuple[aiohttp.ClientMiddlewareType, ...] = tuple(
            getattr(session, "_middlewares", ())
        )
        self._connection_error = aiohttp.ClientConnectionError
        self._client_error = aiohttp.ClientError
        self._client_timeout = aiohttp.ClientTimeout
        self._url = yarl.URL
        self._timeouts: tuple[httpx.Timeout, aiohttp.ClientTimeout] | None = None

    async def get(self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout) -> Answer:
        deadline = attempt_deadline(timeouts)
        failure: APIConnectionError
        try:
            async with asyncio.timeout(deadline):
                answer = await self._read(url, headers, timeouts)
        except TimeoutError as exc:  # the deadline's; aiohttp's own timeouts subclass it
            if type(exc) is TimeoutError:
                failure = APITimeoutError(f"no whole answer within {deadline:g} s")
            else:
                failure = APITimeoutError(f"no answer in time ({type(exc).__name__})")
        except self._client_error as exc:
            failure = APIConnectionError(type(exc).__name__)
        else:
            if answer is not None:
                return answer
            failure = too_large()
        # Raised out here, not in the except: aiohttp's error (its request info: the
        # signed URL, the api key header) must not ride along as __context__, nor these
        # arguments in the traceback's frame.
        del url, headers
        raise failure

    async def _read(
        self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout
    ) -> Answer | None:
        # encoded=True: the URL is sent byte for byte as it was signed.
        async with self.session.get(
            self._url(url, encoded=True),
            headers=headers,
            timeout=self._timeout(timeouts),
            allow_redirects=False,  # as httpx: a redirect is an answer, not followed
            raise_for_status=False,  # a 429 is read here, whatever the session says
            middlewares=(*self._middlewares, self._send_once()),
        ) as response:
            content = await read_capped(
                response.content.iter_any(), response.headers.get("Content-Length")
            )
            if content is None:
                response.close()  # the rest of the body is never read: drop the connection
                return None
            return Answer(response.status, response.headers, content)

    def _send_once(self) -> aiohttp.ClientMiddlewareType:
        """A middleware for one request that lets it reach the server once. aiohttp
        resends an idempotent GET when a reused connection drops before the answer
        (RFC 9112 9.3.1.1), the same signed URL under the same rate slot; BingX may have
        counted the first. A second send raises instead, and the error reaches the
        client's own retry, which takes a new slot and signs afresh."""
        sent = False
        failure: aiohttp.ClientError | None = None

        async def send_once(
            request: aiohttp.ClientRequest, send: aiohttp.ClientHandlerType
        ) -> aiohttp.ClientResponse:
            nonlocal sent, failure
            if sent:  # aiohttp's resend (the first error again: aiohttp resends once),
                # or a session middleware's after an answer (an error aiohttp never resends)
                raise failure or self._connection_error("sent once already")
            sent = True
            try:
                return await send(request)
            except self._client_error as exc:
                failure = exc
                raise

        return send_once

    def _timeout(self, timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
        """httpx's four timeouts as aiohttp's: the same limits on the same waits."""
        if self._timeouts is None or self._timeouts[0] is not timeout:
            connect = None
            if timeout.pool is not None and timeout.connect is not None:
                connect = timeout.pool + timeout.connect
            converted = self._client_timeout(
                total=None, connect=connect, sock_connect=timeout.connect, sock_read=timeout.read
            )
            self._timeouts = (timeout, converted)
        return self._timeouts[1]
