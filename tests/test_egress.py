"""Egress routes: a pool spread over several source addresses (or proxies), each with IP
windows of its own, against `SimulatorServer`, which limits per source address.

The fan-outs run over real sockets (127.0.0.2, 127.0.0.3 ... are sources of their own on
Linux's loopback), in real time, with IP limits scaled down to 20 per second so that each
takes a second or two. Durations are compared as a ratio, never against a number of
seconds.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from redis.asyncio import Redis

from bingx_assets import (
    AssetsClient,
    AssetsPool,
    ConfigurationError,
    Credentials,
    Egress,
    Rate,
    RateLimiter,
    RateLimits,
    RedisBackend,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH
from bingx_assets._limiter import GateTooLong
from bingx_assets._transports._aiohttp import open_session
from bingx_assets._uid_cache import default_uid_cache_path
from bingx_assets.testing import BingXSimulator, LoopClock, SimKey, SimulatorServer

from .conftest import verified_earlier

IP_RATE = Rate(20, 1.0)
LIMITS = RateLimits(per_ip_endpoint=IP_RATE)
real_time = pytest.mark.looptime(False)  # real sockets want the real clock


def credentials(keys: Sequence[SimKey], prefix: str = "k") -> list[Credentials]:
    """The keys with their UIDs, verified on this machine before (the test's cache)."""
    for k in keys:
        verified_earlier(k.api_key, k.uid)
    return [Credentials(k.api_key, k.secret_key, f"{prefix}{n}", k.uid) for n, k in enumerate(keys)]


def fleet(sim: BingXSimulator, uids: int, keys_per_uid: int, first_uid: int = 1000) -> list[SimKey]:
    return [sim.add_key(uid=first_uid + u) for u in range(uids) for _ in range(keys_per_uid)]


def addresses_by_uid(sim: BingXSimulator) -> dict[int | None, set[str]]:
    seen: defaultdict[int | None, set[str]] = defaultdict(set)
    for r in sim.requests:
        if r.path == ASSET_OVERVIEW_PATH:
            seen[r.uid].add(r.client_ip)
    return seen


# -- Egress itself --------------------------------------------------------------------


def test_a_route_is_named_by_its_address_or_its_proxy_host() -> None:
    assert Egress("127.0.0.2").ip == "127.0.0.2"
    assert Egress(local_address="0:0::1").local_address == "::1"
    assert Egress(proxy="http://user:pw@proxy.example:3128").ip == "proxy.example"
    assert Egress("10.0.0.5", ip="egress-1").ip == "egress-1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Egress("127.0.0.2").ip = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "needs a local_address or a proxy"),
        ({"local_address": "10.0.0.5", "proxy": "http://p.example"}, "not both: BingX sees"),
        ({"local_address": "my-host"}, "local_address must be an IP address"),
        ({"local_address": b"127.0.0.1"}, "local_address must be an IP address"),
        ({"proxy": "socks5://proxy.example:1080"}, "http:// or https:// URL"),
        ({"proxy": "http://"}, "with a host"),
        ({"proxy": 3128}, "proxy must be an http:// or https:// URL"),
        ({"proxy": "http://proxy.example/path?x=1"}, r"scheme://\[user:password@\]host"),
        ({"proxy": "http://proxy.example:port"}, "proxy is not a URL"),
        ({"local_address": "127.0.0.2", "ip": ""}, "non-empty name"),
        ({"local_address": "127.0.0.2", "ip": "two words"}, "without spaces"),
        ({"local_address": "127.0.0.2", "ip": 7}, "non-empty name"),
    ],
)
def test_a_bad_route_is_a_configuration_error(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Egress(**arguments)  # type: ignore[arg-type]


def test_a_proxy_password_is_never_shown() -> None:
    route = Egress(proxy="http://user:hunter2@proxy.example:3128")
    assert "hunter2" not in repr(route)
    assert "user:***@proxy.example:3128" in repr(route)
    with pytest.raises(ConfigurationError) as bad:
        Egress(proxy="http://user:hunter2@proxy.example:3128/path")
    assert "hunter2" not in str(bad.value)


# -- AssetsPool with routes -------------------------------------------------------------


def pool_keys(sizes: Sequence[int]) -> list[Credentials]:
    return [
        Credentials(f"api-{uid}-{n}" + "x" * 40, "s" * 64, f"u{uid}k{n}", uid)
        for uid, size in enumerate(sizes, start=1)
        for n in range(size)
    ]


@pytest.mark.parametrize(
    ("egress", "message"),
    [
        ([], "at least one Egress"),
        (Egress("127.0.0.2"), "a list of Egress routes"),
        (["127.0.0.2"], "must hold Egress routes"),
        ([Egress("127.0.0.2", ip="a"), Egress("127.0.0.3", ip="a")], "share the IP name 'a'"),
        ([Egress(proxy="http://p.example:1"), Egress(proxy="http://p.example:2")], "pass ip="),
    ],
)
def test_bad_egress_lists_are_configuration_errors(egress: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AssetsPool(pool_keys([1]), egress=egress, uid_cache=False)  # type: ignore[arg-type]


async def test_an_http_client_and_routes_together_are_refused_with_the_reason() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError, match="http_client and egress cannot go together"):
            AssetsPool(pool_keys([1]), http_client=http, egress=[Egress("127.0.0.2")])


def test_uids_are_shared_out_whole_by_key_count() -> None:
    pool = AssetsPool(
        pool_keys([5, 3, 3, 2, 1, 1, 1]),
        egress=[Egress("127.0.0.2"), Egress("127.0.0.3")],
        uid_cache=False,
    )
    routes_by_uid: defaultdict[str | None, set[str]] = defaultdict(set)
    for creds, client in zip(pool.credentials, pool._clients, strict=True):
        routes_by_uid[creds.uid].add(client.limiter.ip)
    assert all(len(routes) == 1 for routes in routes_by_uid.values())
    assert Counter(c.limiter.ip for c in pool._clients) == {"127.0.0.2": 8, "127.0.0.3": 8}
    # The routes take turns in the schedule, so that neither waits while the other idles.
    first = [pool._clients[n].limiter.ip for n in pool._schedule[:4]]
    assert first == ["127.0.0.2", "127.0.0.3"] * 2
    assert "2 egress routes" in repr(pool)


def test_without_routes_nothing_changes() -> None:
    limiter = RateLimiter()
    pool = AssetsPool(pool_keys([2, 1]), limiter=limiter, uid_cache=False)
    assert pool.egress == ()
    assert all(c.limiter is limiter for c in pool._clients)
    assert all(c._http_clients is pool._http_clients for c in pool._clients)


async def test_a_uid_is_limited_across_routes_and_an_ip_per_route(clock: LoopClock) -> None:
    """Virtual time: route limiters from `for_ip` share the UID's window and nothing of
    each other's IP windows."""
    limiter = RateLimiter(RateLimits(per_uid=Rate(5, 1.0), per_ip_endpoint=Rate(4, 1.0)), clock)
    first, second = limiter.for_ip("a"), limiter.for_ip("b")
    loop = asyncio.get_running_loop()

    async def take(route: RateLimiter, uid: str) -> float:
        ticket = await route.acquire(route.scope(uid, "/x"), max_wait=60)
        await ticket.settle(answered=True)
        return loop.time()

    start = loop.time()
    # One UID over both routes: 5 per second in all, not 5 on each.
    times = await asyncio.gather(*(take((first, second)[n % 2], "1") for n in range(6)))
    assert sorted(t - start for t in times)[4:] == [0, pytest.approx(1.0, abs=0.01)]
    # Sixteen UIDs, eight on each of two fresh routes: each route's own 4 per second,
    # side by side (one IP window for both would take until 3 s).
    third, fourth = limiter.for_ip("c"), limiter.for_ip("d")
    start = loop.time()
    times = await asyncio.gather(
        *(take(route, f"{route.ip}{n}") for route in (third, fourth) for n in range(8))
    )
    assert sorted(round(t - start, 1) for t in times) == [0.0] * 8 + [1.0] * 8
    assert limiter.stats.acquired == 6 + 16  # one set of stats for every route


async def test_a_uid_gate_holds_every_route_and_an_ip_gate_only_its_own(
    clock: LoopClock,
) -> None:
    limiter = RateLimiter(clock=clock)
    first, second = limiter.for_ip("a"), limiter.for_ip("b")
    await first.close_gate(first.scope("1", "/x").ip_gate, 30)  # a 429 on route a
    await second.acquire(second.scope("1", "/x"), max_wait=0)
    with pytest.raises(GateTooLong, match="30"):
        await first.acquire(first.scope("2", "/x"), max_wait=0)
    await second.close_gate(second.scope("3", "/x").uid_gate, 60)  # UID 3 disabled
    with pytest.raises(GateTooLong):
        await first.acquire(first.scope("3", "/x"), max_wait=0)


async def test_the_simulator_counts_ip_windows_per_source_address() -> None:
    """Through `SimulatorServer` a request carries its peer address; in process, the
    simulator's `client_ip` stands in."""
    sim = BingXSimulator(limits=RateLimits(per_ip_endpoint=Rate(1, 10.0)), client_ip="127.0.0.11")

    async def status(client_ip: str | None) -> int:
        extensions = {"client_ip": client_ip} if client_ip else {}
        request = httpx.Request("GET", f"https://sim{ASSET_OVERVIEW_PATH}", extensions=extensions)
        return (await sim.handle(request)).status_code

    assert [await status(None), await status("127.0.0.11"), await status("127.0.0.12")] == [
        200,  # counted, then refused for its unknown key (100413)
        429,  # the same address again
        200,
    ]
    assert [r.client_ip for r in sim.requests] == ["127.0.0.11", "127.0.0.11", "127.0.0.12"]


# -- over real sockets ------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(BingXSimulator(limits=LIMITS, seed=3)) as server:
        yield server


async def fan_out(
    server: SimulatorServer, keys: Sequence[SimKey], routes: list[Egress], **pool_args: object
) -> tuple[float, int]:
    """Read every key once through `routes`; (seconds taken, results that were ok)."""
    loop = asyncio.get_running_loop()
    pool_args.setdefault("limiter", RateLimiter(LIMITS))
    pool_args.setdefault("uid_cache", default_uid_cache_path())  # a served simulator's: named
    async with AssetsPool(
        credentials(keys), egress=routes, base_url=server.url, **pool_args
    ) as pool:  # type: ignore[arg-type]
        start = loop.time()
        results = await pool.gather()
        elapsed = loop.time() - start
    assert sorted(r.label for r in results) == sorted(f"k{n}" for n in range(len(keys)))
    return elapsed, sum(r.ok for r in results)


@real_time
async def test_two_routes_read_an_ip_bound_fleet_in_half_the_time() -> None:
    """60 keys of 20 UIDs at 20 per second per IP: three windows' worth on one route
    (two waits), one and a half on each of two (one wait)."""
    runs = {}
    for routes in ([Egress("127.0.0.2")], [Egress("127.0.0.2"), Egress("127.0.0.3")]):
        async with SimulatorServer(BingXSimulator(limits=LIMITS, seed=3)) as server:
            sim = server.simulator
            keys = fleet(sim, uids=20, keys_per_uid=3)
            elapsed, ok = await fan_out(server, keys, routes)
            assert ok == 60
            assert sim.rejections == []
            served = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
            assert len(served) == 60
            by_uid = addresses_by_uid(sim)
            assert all(len(seen) == 1 for seen in by_uid.values()), by_uid
            used = Counter(r.client_ip for r in served)
            assert used == {route.ip: 60 // len(routes) for route in routes}
            for route in routes:
                assert sim.peak(client_ip=route.ip, period=IP_RATE.period) <= IP_RATE.limit
            runs[len(routes)] = elapsed
    ratio = runs[2] / runs[1]
    assert 0.3 < ratio < 0.75, runs


@real_time
async def test_a_route_session_binds_its_address_sized_as_asked(
    server: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session a route opens leaves from the route's address, and takes no proxy
    from the environment (it would carry the requests past the route)."""
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")  # unreachable: never taken
    transport = open_session(httpx.Limits(max_connections=7), Egress("127.0.0.2"))
    try:
        assert transport.session.connector is not None
        assert transport.session.connector.limit == 7
        answer = await transport.get(server.url + SERVER_TIME_PATH, {}, httpx.Timeout(5.0))
    finally:
        await transport.aclose()
    assert answer.status == 200
    assert [r.client_ip for r in server.simulator.requests] == ["127.0.0.2"]


@real_time
async def test_a_route_through_a_proxy_leaves_from_the_proxy(
    server: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain-http forwarding proxy on loopback, whose own connections leave from
    127.0.0.9: the simulator sees that address for the proxied route's keys, and the
    proxy the credentials in the route's URL."""
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")  # a route never takes this one
    async with forwarding_proxy(source="127.0.0.9") as proxy:
        with_credentials = proxy.url.replace("http://", "http://route:pw@")
        routes = [Egress(proxy=with_credentials, ip="proxy-a"), Egress("127.0.0.3")]
        keys = fleet(server.simulator, uids=4, keys_per_uid=2)
        _, ok = await fan_out(server, keys, routes)
    assert ok == 8
    by_uid = addresses_by_uid(server.simulator)
    assert sorted(seen.pop() for seen in by_uid.values()) == ["127.0.0.3"] * 2 + ["127.0.0.9"] * 2
    assert proxy.heads
    assert all(proxy_credentials(head) == "route:pw" for head in proxy.heads)


# -- the default session and the environment's proxies ----------------------------------

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def no_proxy_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def read_one_key(server: SimulatorServer) -> None:
    """One key of its own read once, on the client's own session."""
    [key] = fleet(server.simulator, uids=1, keys_per_uid=1, first_uid=7000)
    limiter = RateLimiter(LIMITS)
    async with AssetsClient(key.api_key, key.secret_key, base_url=server.url, limiter=limiter) as c:
        await c.asset_overview()


@real_time
@pytest.mark.usefixtures("no_proxy_in_the_environment")
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
async def test_the_default_session_goes_through_the_environments_proxy(
    server: SimulatorServer, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """As httpx's default did: HTTP_PROXY, else ALL_PROXY, in either case; a proxy named
    without a scheme is http://, and credentials in its URL reach the proxy."""
    async with forwarding_proxy(source="127.0.0.9") as proxy:
        named = proxy.url.replace("http://", "env:pw@")  # no scheme
        monkeypatch.setenv(variable, named if variable == "ALL_PROXY" else f"http://{named}")
        await read_one_key(server)
    assert {r.client_ip for r in server.simulator.requests} == {"127.0.0.9"}
    assert len(server.simulator.requests) == 3  # the UID, the clock, the balances
    assert proxy.heads
    assert all(proxy_credentials(head) == "env:pw" for head in proxy.heads)


@real_time
@pytest.mark.usefixtures("no_proxy_in_the_environment")
async def test_no_proxy_hosts_are_reached_directly(
    server: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")  # unreachable
    monkeypatch.setenv("NO_PROXY", "example.com, 127.0.0.1")
    await read_one_key(server)
    assert {r.client_ip for r in server.simulator.requests} == {"127.0.0.1"}


@real_time
@pytest.mark.usefixtures("no_proxy_in_the_environment")
async def test_a_socks_proxy_in_the_environment_is_refused_not_bypassed(
    server: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiohttp has no SOCKS: going direct instead would leave from an address the user
    meant to hide."""
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match=r"ALL_PROXY names a socks5:// proxy"):
        await read_one_key(server)
    assert server.simulator.requests == []


@real_time
@pytest.mark.usefixtures("no_proxy_in_the_environment")
@pytest.mark.parametrize(
    "proxy",
    ["http://user:hunter/2qzx@127.0.0.1:1", "http://user:hunter2qzx@[::1", "127.0.0.1:99999"],
)
async def test_an_environment_proxy_that_is_no_url_is_a_configuration_error(
    server: SimulatorServer, monkeypatch: pytest.MonkeyPatch, proxy: str
) -> None:
    """Found in the #19 re-review: yarl's ValueError escaped untyped, once per key."""
    monkeypatch.setenv("HTTP_PROXY", proxy)
    with pytest.raises(ConfigurationError, match=r"HTTP_PROXY is not a URL") as raised:
        await read_one_key(server)
    assert "hunter" not in str(raised.value) and "2qzx" not in str(raised.value)
    assert server.simulator.requests == []


@real_time
async def test_two_pools_on_one_route_share_its_windows_in_redis(
    server: SimulatorServer, redis_url: str
) -> None:
    """Two pools (as two processes would), each with its own Redis connection and keys of
    other UIDs, leaving by one route with one `ip` name: together they keep to its 20 per
    second, where each alone would send its 20 at once."""
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    sim = server.simulator
    backends = [RedisBackend(Redis.from_url(redis_url), namespace=namespace) for _ in range(2)]
    try:
        outcomes = await asyncio.gather(
            *(
                fan_out(
                    server,
                    fleet(sim, uids=10, keys_per_uid=2, first_uid=1000 + 100 * n),
                    [Egress("127.0.0.2", ip="route-a")],
                    limiter=RateLimiter(LIMITS, backend=backend),
                )
                for n, backend in enumerate(backends)
            )
        )
        windows = await backends[0].redis.keys(f"{namespace}:ip:route-a:*")
    finally:
        for backend in backends:
            await backend.aclose()  # before the Redis client: it records the answers still waiting
            await backend.redis.aclose()
    assert [ok for _, ok in outcomes] == [20, 20]
    assert sim.rejections == []
    assert sim.peak(client_ip="127.0.0.2", period=IP_RATE.period) <= IP_RATE.limit
    assert windows  # the route's windows live under its name


def proxy_credentials(head: bytes) -> str | None:
    """What a request's `Proxy-Authorization: Basic ...` header says, decoded."""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"proxy-authorization":
            scheme, _, encoded = value.strip().partition(b" ")
            assert scheme == b"Basic"
            return base64.b64decode(encoded).decode()
    return None


class forwarding_proxy:
    """The least HTTP proxy that forwards plain-http requests: it reads the head of the
    first request of a connection (absolute-form, as clients send to a proxy), opens a
    connection from `source` to the origin it names, and pipes both ways."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.heads: list[bytes] = []
        """The head (request line and headers) of each connection's first request."""
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> forwarding_proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        origin = httpx.URL(head.split()[1].decode())
        self.heads.append(head)
        upstream_reader, upstream_writer = await asyncio.open_connection(
            origin.host, origin.port, local_addr=(self.source, 0)
        )
        upstream_writer.write(head)
        for pipe in (pipe_to(reader, upstream_writer), pipe_to(upstream_reader, writer)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)


async def pipe_to(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
