"""The one rule for HTTP clients: use the one given, or open one per event loop and close
only what was opened."""

from __future__ import annotations

import asyncio
from typing import Self

import httpx

__all__ = ["HttpClients", "OwnsHttpClient"]


class HttpClients:
    """The `httpx.AsyncClient` for the running event loop.

    An injected client is used as it is, always. Otherwise one is opened per event loop,
    lazily: an httpx client's connections belong to the loop that opened them, so a
    client reused under a new `asyncio.run` gets a fresh one instead of "Event loop is
    closed". httpx's own clients verify TLS.
    """

    def __init__(self, injected: httpx.AsyncClient | None) -> None:
        self._injected = injected
        self._own: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def current(self) -> httpx.AsyncClient:
        if self._injected is not None:
            return self._injected
        loop = asyncio.get_running_loop()
        if self._own is None or self._own[0] is not loop:
            # One from a finished loop cannot be closed any more; its sockets went with it.
            self._own = (loop, httpx.AsyncClient())
        return self._own[1]

    async def aclose(self) -> None:
        own, self._own = self._own, None
        if own is not None and own[0] is asyncio.get_running_loop():
            await own[1].aclose()


class OwnsHttpClient:
    """Base of `AssetsClient` and `AssetsPool`: `async with` closes what it opened."""

    def __init__(self, http_client: httpx.AsyncClient | None) -> None:
        self._http_clients = HttpClients(http_client)

    @property
    def _http(self) -> httpx.AsyncClient:
        return self._http_clients.current()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client opened here; an injected one is left open."""
        await self._http_clients.aclose()
