"""The one rule for HTTP clients: use the one given, or open one per event loop and close
only what was opened."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Self

import httpx

from .._constants import DEFAULT_HTTP_LIMITS
from .._egress import Egress
from . import HttpxTransport, Transport, transport_for

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpClients", "OwnsHttpClient"]


class HttpClients:
    """The `Transport` for the running event loop.

    An injected client (`httpx.AsyncClient` or `aiohttp.ClientSession`) is used as it
    is, always, and never closed. Otherwise an httpx client is opened per event loop,
    lazily: its connections belong to the loop that opened them, so a client reused
    under a new `asyncio.run` gets a fresh one instead of "Event loop is closed".
    httpx's own clients verify TLS. `limits` sizes the connection pool of those, and
    `egress` makes them leave by that route.
    """

    def __init__(
        self,
        injected: httpx.AsyncClient | aiohttp.ClientSession | None,
        limits: httpx.Limits = DEFAULT_HTTP_LIMITS,
        egress: Egress | None = None,
    ) -> None:
        self._injected = transport_for(injected) if injected is not None else None
        self._limits = limits
        self._egress = egress
        self._own: tuple[asyncio.AbstractEventLoop, HttpxTransport] | None = None
        self._finishing: set[asyncio.Future[object]] = set()

    def finish_in_background(self, exchange: asyncio.Future[Any]) -> None:
        """Keep `exchange` (a request whose caller gave up) until it ends; `aclose` waits
        for it, so that its answer still settles its slot."""
        self._finishing.add(exchange)
        exchange.add_done_callback(self._finished)

    def _finished(self, exchange: asyncio.Future[object]) -> None:
        self._finishing.discard(exchange)
        if not exchange.cancelled():
            exchange.exception()  # nobody awaits it any more: its error is no news

    def current(self) -> Transport:
        if self._injected is not None:
            return self._injected
        loop = asyncio.get_running_loop()
        if self._own is None or self._own[0] is not loop:
            # One from a finished loop cannot be closed any more; its sockets went with it.
            if self._egress is not None:
                client = self._egress.http_client(self._limits)
            else:
                client = httpx.AsyncClient(limits=self._limits)
            self._own = (loop, HttpxTransport(client))
        return self._own[1]

    async def aclose(self) -> None:
        """Wait for the requests left to finish in the background (each is bounded by
        its attempt's deadline), then close the client opened here."""
        loop = asyncio.get_running_loop()
        while finishing := [f for f in self._finishing if f.get_loop() is loop]:
            await asyncio.wait(finishing)
        own, self._own = self._own, None
        if own is not None and own[0] is asyncio.get_running_loop():
            await own[1].client.aclose()


class OwnsHttpClient:
    """Base of `AssetsClient` and `AssetsPool`: `async with` closes what it opened."""

    def __init__(
        self,
        http_client: httpx.AsyncClient | aiohttp.ClientSession | None,
        limits: httpx.Limits = DEFAULT_HTTP_LIMITS,
    ) -> None:
        self._http_clients = HttpClients(http_client, limits)

    @property
    def _transport(self) -> Transport:
        return self._http_clients.current()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client opened here; an injected one is left open."""
        await self._http_clients.aclose()
