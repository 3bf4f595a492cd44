"""Every request that reaches BingX took a rate slot of its own: the HTTP library never
resends one behind the limiter's back. aiohttp would (RFC 9112 9.3.1.1): an idempotent
GET whose connection drops before the answer goes out again on the same signed URL,
where BingX may have counted the first. Real HTTP on loopback, in real time."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import pytest
from tenacity import wait_fixed

from bingx_assets import (
    AssetsClient,
    ConfigurationError,
    Rate,
    RateLimiter,
    RateLimits,
    _client,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH
from bingx_assets.testing import BingXSimulator, Fault, SimulatorServer

from .conftest import verified_earlier

pytestmark = pytest.mark.looptime(False)  # real sockets want the real clock

# BingX's five per UID, in a tenth of its second: the same refusals, ten times sooner.
FAST = RateLimits(per_uid=Rate(5, 0.1))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff after a lost connection is half a second and more: too long here."""
    monkeypatch.setattr(_client, "_busy_backoff", wait_fixed(0.003))


class CountThenDrop(BingXSimulator):
    """Counts each request as BingX does, then drops the next `drops` connections
    before answering (a proxy or load balancer resetting mid-answer)."""

    drops = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle(request)
        if self.drops and request.url.path == ASSET_OVERVIEW_PATH:
            self.drops -= 1
            raise httpx.RemoteProtocolError("dropped after counting", request=request)
        return response


def overview_queries(sim: BingXSimulator) -> list[str]:
    return [r.query for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_dropped_request_is_sent_again_only_by_the_client_under_a_new_slot(
    transport: str,
) -> None:
    sim = CountThenDrop(limits=FAST)
    key = sim.add_key(uid=1)
    limiter = RateLimiter(FAST)
    async with SimulatorServer(sim) as server:
        verified_earlier(key.api_key, key.uid, base_url=server.url)
        http: httpx.AsyncClient | aiohttp.ClientSession = (
            aiohttp.ClientSession() if transport == "aiohttp" else httpx.AsyncClient()
        )
        client = AssetsClient(
            key.api_key, key.secret_key, uid=1, base_url=server.url, http_client=http,
            limiter=limiter,
        )  # fmt: skip
        try:
            await client.asset_overview()  # connections open, clocks measured
            sim.drops = 3
            await asyncio.gather(*(client.asset_overview() for _ in range(10)))
        finally:
            await (http.close() if isinstance(http, aiohttp.ClientSession) else http.aclose())
    queries = overview_queries(sim)
    # Without the guard, aiohttp: 18 arrivals for 15 slots, and 4 refusals (code 100410).
    assert len(queries) == limiter.stats.acquired == 14
    assert limiter.stats.retries == 3
    assert sim.rejections == []


async def test_a_session_middleware_still_runs_and_cannot_resend_either() -> None:
    """A session's own middlewares run around the guard; one that resends on a server
    error reaches BingX once: the client's retry sends again, under a new slot."""
    sim = BingXSimulator(limits=FAST)
    key = sim.add_key(uid=1)
    limiter = RateLimiter(FAST)
    seen: list[str] = []

    async def retry_server_errors(
        request: aiohttp.ClientRequest, send: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        seen.append(request.url.path)
        response = await send(request)
        if response.status < 500:
            return response
        response.release()
        return await send(request)

    sim.inject(Fault.http(503))
    async with (
        SimulatorServer(sim) as server,
        aiohttp.ClientSession(middlewares=(retry_server_errors,)) as session,
    ):
        verified_earlier(key.api_key, key.uid, base_url=server.url)
        client = AssetsClient(
            key.api_key, key.secret_key, uid=1, base_url=server.url, http_client=session,
            limiter=limiter,
        )  # fmt: skip
        assert (await client.asset_overview()).total > 0
    assert seen.count(ASSET_OVERVIEW_PATH) == 2  # the 503's attempt, then the client's retry
    assert len(overview_queries(sim)) == limiter.stats.acquired == 2


async def test_an_aiohttp_without_per_request_middlewares_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(aiohttp, "ClientMiddlewareType")  # as in aiohttp 3.11
    monkeypatch.setattr(aiohttp, "__version__", "3.11.18")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigurationError, match=r"aiohttp 3\.12 or later, not 3\.11\.18"):
            AssetsClient("k" * 64, "s" * 64, http_client=session)
