"""The Redis backend on a real three-master Redis Cluster, and every redis-py failure typed."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterCrossSlotError,
    ClusterDownError,
    CrossSlotTransactionError,
    MasterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bingx_assets import (
    AssetsClient,
    ConfigurationError,
    LimiterUnavailableError,
    Rate,
    RateLimiter,
    RateLimits,
    RedisBackend,
)
from bingx_assets.testing import BingXSimulator, LocalRedisCluster, SimulatorServer

from .test_limits import most_in_any_window

# Redis keeps real time: the event loop must too.
pytestmark = pytest.mark.looptime(False)

FAST = RateLimits(per_uid=Rate(5, 0.5))
BALANCES = "allAccountBalance"


@pytest.fixture
async def backend(cluster: LocalRedisCluster) -> AsyncIterator[RedisBackend]:
    made = RedisBackend.from_url(cluster.url, namespace=f"test-{uuid.uuid4().hex[:8]}")
    yield made
    await made.aclose()


def namespace_where(redis: RedisCluster, master_is: Callable[[int], bool]) -> str:
    """A fresh namespace whose hash slot lives on a master whose port is `master_is`."""
    while True:
        namespace = f"test-{uuid.uuid4().hex[:8]}"
        if master_is(redis.get_node_from_key(f"{{{namespace}}}:x").port):
            return namespace


async def test_a_cluster_url_makes_a_cluster_client(cluster: LocalRedisCluster) -> None:
    on_cluster = RedisBackend.from_url(cluster.url.replace("?", "?socket_timeout=2&"))
    assert isinstance(on_cluster.redis, RedisCluster)
    assert on_cluster.redis.connection_kwargs["socket_timeout"] == 2.0  # other options stay
    await on_cluster.aclose()
    single = RedisBackend.from_url(f"redis://127.0.0.1:{cluster.ports[0]}/0?cluster=false")
    assert isinstance(single.redis, Redis)
    await single.aclose()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://127.0.0.1:6379/?cluster=maybe", "cluster=true or false"),
        ("redis://127.0.0.1:6379/?cluster=true&cluster=false", "cluster=true or false"),
        ("unix:///tmp/redis.sock?cluster=true", "Unix domain socket"),
        ("redis://127.0.0.1:6379/2?cluster=true", "'db' must be 0"),
        ("http://127.0.0.1:6379/?cluster=true", "unusable Redis URL"),
    ],
)
def test_a_bad_cluster_url_is_a_configuration_error(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        RedisBackend.from_url(url)


@pytest.mark.parametrize("namespace", ["", "a{b}", "}b", "a{b"])
async def test_a_cluster_namespace_must_make_a_hash_tag(namespace: str) -> None:
    redis = RedisCluster(host="127.0.0.1", port=6379)  # connects only when used
    with pytest.raises(ConfigurationError, match="hash tag"):
        RedisBackend(redis, namespace=namespace)
    await redis.aclose()


async def test_every_key_of_a_namespace_shares_one_hash_slot(backend: RedisBackend) -> None:
    limiter = RateLimiter(FAST, backend=backend)
    limiter.server_clock.observe(1_000, 1_000, 1_000)  # an exact offset: no uncertainty
    scope = limiter.scope("uid1", "/x")
    # Every script: each would be refused (CROSSSLOT) if its keys spanned two slots.
    ticket = await limiter.acquire(scope, max_wait=60)
    await ticket.settle(answered=True, succeeded=True, server_remaining=1)
    await limiter.fill_window(scope.ip_windows[0])
    await limiter.close_gate(scope.ip_gate, 2.0)
    assert 1.5 < await limiter.gate_remaining(scope.ip_gate) <= 2.0
    await limiter.close_gate(scope.uid_gate, 2.0)
    await limiter.close_gate("gate:key:k", 2.0, code=100001, remember=480.0)
    assert await limiter.closure("gate:key:k") is not None
    redis = backend.redis
    assert isinstance(redis, RedisCluster)
    found = await redis.keys(f"{{{backend.namespace}}}:*", target_nodes=RedisCluster.PRIMARIES)
    keys = sorted(k.decode() for k in found)
    tag = f"{{{backend.namespace}}}"
    assert keys == sorted(
        f"{tag}:{name}"
        for name in (
            *scope.gates,
            *(f"{gate}:closure" for gate in scope.gates),  # each gate's latest closure
            "gate:key:k",
            "gate:key:k:closure",
            *(window for window, _ in scope.windows),
            f"{scope.windows[0][0]}:taken",  # the UID window's count of slots taken
            f"{scope.windows[1][0]}:taken",  # filled: it counts too
        )
    )
    assert len({redis.keyslot(key) for key in keys}) == 1


async def test_the_single_redis_layout_on_a_cluster_is_refused_typed(
    cluster: LocalRedisCluster,
) -> None:
    """Keys without the hash tag span slots: the cluster refuses the script (CROSSSLOT)."""

    class Untagged(RedisBackend):
        def _key(self, name: str) -> str:
            return f"{self.namespace}:{name}"

    backend = Untagged(RedisCluster.from_url(cluster.url.split("?")[0]))
    limiter = RateLimiter(FAST, backend=backend)
    with pytest.raises(LimiterUnavailableError, match=r"in several hash slots.*nothing was sent"):
        await limiter.acquire(limiter.scope("uid1", "/x"), max_wait=60)
    await backend.redis.aclose()


async def test_a_cluster_reached_as_one_redis_says_to_ask_for_a_cluster(
    cluster: LocalRedisCluster,
) -> None:
    backend = RedisBackend.from_url(f"redis://127.0.0.1:{cluster.ports[0]}/0")
    limiter = RateLimiter(FAST, backend=backend)
    with pytest.raises(LimiterUnavailableError, match=r"cluster=true.*nothing was sent"):
        await limiter.acquire(limiter.scope("uid1", "/x"), max_wait=60)
    await backend.aclose()


async def test_limiters_on_a_cluster_never_overfill_a_window(
    cluster: LocalRedisCluster, backend: RedisBackend
) -> None:
    # Three "processes": three clients of their own, one namespace.
    backends = [backend] + [
        RedisBackend.from_url(cluster.url, namespace=backend.namespace) for _ in range(2)
    ]
    limiters = [RateLimiter(FAST, backend=b) for b in backends]
    times: list[float] = []

    async def take(limiter: RateLimiter) -> None:
        ticket = await limiter.acquire(limiter.scope("uid1", "/x"), max_wait=60)
        times.append(asyncio.get_running_loop().time())
        await ticket.settle(answered=True, succeeded=True)

    await asyncio.gather(*(take(limiters[n % 3]) for n in range(18)))
    # Stamped here after Redis admitted them, so allow for scheduling delay: 0.45 s.
    assert most_in_any_window(times, 0.45) == 5
    assert max(times) - min(times) >= 3 * 0.5  # 18 at 5 per 0.5 s: three more windows
    for other in backends[1:]:
        await other.aclose()


async def test_processes_sharing_a_cluster_hit_one_simulator_without_rejection(
    cluster: LocalRedisCluster,
) -> None:
    sim = BingXSimulator(limits=RateLimits(per_uid=Rate(5, 0.5)), jitter=0.005)
    keys = [sim.add_key(uid=77) for _ in range(6)]
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    async with SimulatorServer(sim) as server:
        common = ["--base-url", server.url, "--redis", cluster.url, "--namespace", namespace]
        common += ["--calls", "4", "--uid-period", "0.5"]
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bingx_assets.testing.load",
                *common,
                *(f"{k.api_key}:{k.secret_key}:77" for k in keys[n * 2 : n * 2 + 2]),
            )
            for n in range(3)
        ]
        codes = await asyncio.gather(*(w.wait() for w in workers))
    assert codes == [0, 0, 0]
    served = [r for r in sim.requests if r.path.endswith(BALANCES)]
    assert len(served) == 24
    assert sim.rejections == []
    assert sim.peak(uid=77, period=0.5) <= 5


async def test_a_dead_master_stops_its_keys_and_nothing_is_sent_until_it_is_back(
    cluster: LocalRedisCluster,
) -> None:
    redis = RedisCluster.from_url(cluster.url.split("?")[0])
    await redis.initialize()
    victim = cluster.ports[1]
    on_victim = namespace_where(redis, lambda port: port == victim)
    elsewhere = namespace_where(redis, lambda port: port != victim)
    limiter = RateLimiter(FAST, backend=RedisBackend(redis, namespace=on_victim))
    sim = BingXSimulator()
    key = sim.add_key(uid=1)
    http = sim.http_client()
    client = AssetsClient(key.api_key, key.secret_key, uid=1, http_client=http, limiter=limiter)
    await client.asset_overview()
    cluster.kill(victim)
    try:
        with pytest.raises(LimiterUnavailableError, match=r"cannot be reached.*nothing was sent"):
            await client.asset_overview()
        assert len([r for r in sim.requests if r.path.endswith(BALANCES)]) == 1
        # Keys on the other masters go on (until the cluster, after its node timeout,
        # declares itself down).
        other = RateLimiter(FAST, backend=RedisBackend(redis, namespace=elsewhere))
        await other.acquire(other.scope("uid1", "/x"), max_wait=60)
    finally:
        await asyncio.to_thread(cluster.restart, victim)
    await client.asset_overview()  # the same client goes on once the node is back
    assert len([r for r in sim.requests if r.path.endswith(BALANCES)]) == 2
    await http.aclose()
    await limiter.aclose()  # records its last answer before the client closes
    await redis.aclose()


async def test_a_cluster_nobody_answers_is_a_clear_error_and_nothing_is_sent() -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=1)
    backend = RedisBackend.from_url("redis://127.0.0.1:1/?cluster=true")
    http = sim.http_client()
    client = AssetsClient(
        key.api_key, key.secret_key, uid=1, http_client=http,
        limiter=RateLimiter(backend=backend),
    )  # fmt: skip
    with pytest.raises(LimiterUnavailableError, match=r"cannot be reached.*nothing was sent"):
        await client.asset_overview()
    assert [r for r in sim.requests if r.path.endswith(BALANCES)] == []
    await http.aclose()
    await backend.aclose()


class FailingRedis:
    """A client whose every script fails with `error`: what no healthy cluster shows."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def register_script(self, text: str) -> object:
        async def run(keys: list[str], args: list[object]) -> object:
            raise self.error

        return run


FAILURES = [
    (ClusterDownError("CLUSTERDOWN The cluster is down"), "the Redis Cluster is down"),
    (MasterDownError("MASTERDOWN Link with MASTER is down"), "the Redis Cluster is down"),
    (MovedError("3999 127.0.0.1:6381"), "kept redirecting the call"),
    (AskError("3999 127.0.0.1:6381"), "kept redirecting the call"),
    (TryAgainError("TRYAGAIN"), "moving the limiter's hash slot"),
    (CrossSlotTransactionError("keys in two slots"), "could not route the call"),
    (ClusterCrossSlotError("CROSSSLOT Keys don't hash to one slot"), "in several hash slots"),
    (SlotNotCoveredError('Slot "5" is not covered'), "no Redis Cluster node serves"),
    (RedisClusterException("No targets were found"), "could not route the call"),
    (AuthenticationError("invalid username-password pair"), "refused the credentials"),
    (RedisConnectionError("Error 111 connecting"), "cannot be reached"),
    (RedisTimeoutError("Timeout reading from socket"), "did not answer in time"),
    (TimeoutError(), "did not answer in time"),
    (ConnectionResetError(104, "Connection reset by peer"), "cannot be reached"),
    (OSError(113, "No route to host"), "cannot be reached"),
    (ResponseError("NOSCRIPT No matching script"), "answered with an error"),
    (RedisError("something else"), "the Redis client failed"),
]


@pytest.mark.parametrize(("error", "description"), FAILURES, ids=lambda v: type(v).__name__)
async def test_every_redis_failure_is_a_limiter_unavailable_error(
    error: BaseException, description: str
) -> None:
    backend = RedisBackend(FailingRedis(error))  # type: ignore[arg-type]
    limiter = RateLimiter(backend=backend)
    scope = limiter.scope("uid1", "/x")
    with pytest.raises(LimiterUnavailableError) as caught:
        await limiter.acquire(scope, max_wait=60)
    message = str(caught.value)
    assert description in message
    assert message.endswith("; nothing was sent")
    assert "\n" not in message and len(message) < 200
    assert caught.value.__cause__ is error
    # After an answer, the same failure says the request is already over.
    with pytest.raises(
        LimiterUnavailableError,
        match=r"could not close a gate; the request had been sent and answered$",
    ):
        await limiter.close_gate(scope.uid_gate, 1.0)


async def test_a_cluster_failure_that_wraps_another_names_the_first_cause() -> None:
    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")
    try:
        raise RedisClusterException("Redis Cluster cannot be connected") from refused
    except RedisClusterException as wrapped:
        error = wrapped
    backend = RedisBackend(FailingRedis(error))  # type: ignore[arg-type]
    limiter = RateLimiter(backend=backend)
    with pytest.raises(LimiterUnavailableError) as caught:
        await limiter.acquire(limiter.scope("uid1", "/x"), max_wait=60)
    assert str(caught.value) == (
        "Redis cannot be reached (Error 111 connecting to 127.0.0.1:1); nothing was sent"
    )
