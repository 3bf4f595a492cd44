"""The one rule for HTTP clients: use the one given, or open one per event loop and close
only what was opened, on the loop that opened it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, Self

import httpx

from .._constants import DEFAULT_HTTP_LIMITS
from .._egress import Egress
from . import transport_for
from ._aiohttp import open_session
from ._base import OwnTransport, Transport

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpClients", "OwnsHttpClient", "open_session"]


class HttpClients:
    """The `Transport` for the running event loop.

    An injected client (`httpx.AsyncClient` or `aiohttp.ClientSession`) is used as it
    is, always, and never closed. Otherwise an aiohttp session is opened per event loop
    (`open_session`), lazily: its connections belong to the loop that opened them, so a
    client reused under a new `asyncio.run` gets a fresh one instead of "Event loop is
    closed". It verifies TLS; `limits` sizes its connection pool, and `egress` makes it
    leave by that route.
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
        self._own: _Own | None = None
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
        if self._own is None or self._own.loop is not loop:
            # The last loop's is closed with that loop, if it was not before.
            self._own = _Own(loop, open_session(self._limits, self._egress))
        return self._own.transport

    async def aclose(self) -> None:
        """Wait for the requests left to finish in the background (each is bounded by
        its attempt's deadline), then close the session opened here."""
        loop = asyncio.get_running_loop()
        while finishing := [f for f in self._finishing if f.get_loop() is loop]:
            await asyncio.wait(finishing)
        own, self._own = self._own, None
        if own is not None and own.loop is loop:
            await own.close()


class _Own:
    """A transport opened for one event loop, closed on that loop: by `close`, or else
    as the loop shuts down (the end of `asyncio.run`), so that a client nobody closed
    leaves no "Unclosed client session" behind.

    The loop closes what is left of the async generators it ran
    (`loop.shutdown_asyncgens`), before it stops for good; `_closed_with_the_loop` is
    one, holding the transport open. A generator dropped while its loop still runs (a
    client collected, or used on another loop since) is closed by that loop too."""

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: OwnTransport) -> None:
        self.loop = loop
        self.transport = transport
        self._holder = _closed_with_the_loop(transport)
        # Its first step reaches the `yield` without awaiting anything, so it runs here
        # at once; taking it is what registers the generator with the running loop.
        with contextlib.suppress(StopIteration):
            self._holder.asend(None).send(None)

    async def close(self) -> None:
        await self._holder.aclose()


async def _closed_with_the_loop(transport: OwnTransport) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await transport.aclose()


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
