"""Requests that reach BingX late: no slot frees before the server's does (issue #11).

The simulator makes requests arrive late (`delay_next`, `arrival_delay`, `jitter`) with
their answers on time, bounds the client's wait by its read timeout as a network would,
and lets a request the client gave up on arrive anyway. Every test counts refusals the
way BingX would: on arrival, in strict sliding windows.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from redis.asyncio import Redis

from bingx_assets import (
    APITimeoutError,
    AssetsClient,
    AssetsPool,
    Credentials,
    Rate,
    RateLimiter,
    RateLimits,
    RedisBackend,
)
from bingx_assets._client import _server_window
from bingx_assets._constants import ASSET_OVERVIEW_PATH
from bingx_assets.testing import BingXSimulator, LoopClock, SimKey

from .conftest import MakeClient


def answered_requests(sim: BingXSimulator, key: SimKey | None = None) -> int:
    return sum(
        1
        for r in sim.requests
        if r.path == ASSET_OVERVIEW_PATH and (key is None or r.api_key == key.api_key)
    )


@pytest.mark.parametrize("late", [0.4, 1.5])
async def test_a_late_first_burst_is_never_refused(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, late: float
) -> None:
    """Cold connections: the first five arrive `late`, the rest at once."""
    client = make_client(key, uid=key.uid)
    sim.delay_next(5, late)
    await asyncio.gather(*(client.asset_overview() for _ in range(10)))
    await asyncio.gather(*(client.asset_overview() for _ in range(10)))
    assert sim.rejections == []
    assert sim.peak(uid=key.uid) == 5


@pytest.mark.parametrize("late", [0.4, 1.5])
async def test_the_opt_in_bet_on_latency_loses_on_the_same_burst(
    sim: BingXSimulator, key: SimKey, clock: LoopClock, late: float
) -> None:
    """The failure the default rule prevents, reproduced: betting that requests arrive
    within 250 ms of being sent gets the sixth to tenth calls refused."""
    limiter = RateLimiter(RateLimits(assume_arrival_within=0.25), clock=clock)
    sim.delay_next(5, late)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, http_client=sim.http_client(),
        limiter=limiter, max_retries=0,
    ) as client:  # fmt: skip
        await asyncio.gather(*(client.asset_overview() for _ in range(10)), return_exceptions=True)
    assert sim.rejections != []


@pytest.mark.parametrize("late", [0.05, 0.1, 0.2])
async def test_every_request_late_costs_only_the_delay_per_window(
    clock: LoopClock, late: float
) -> None:
    """Fifty calls on one key, each arriving `late`: no refusal, and the time is the
    physical minimum (batches of five a period apart, on arrival) plus one delay per
    window: 1.10x the minimum at 100 ms."""
    sim = BingXSimulator(clock=clock, arrival_delay=late)
    key = sim.add_key(uid=7)
    limiter = RateLimiter(clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=7, http_client=sim.http_client(), limiter=limiter
    ) as client:
        await client.asset_overview()  # the clock measurement and a warm start
        await asyncio.sleep(1.1)
        start = clock.monotonic()
        await asyncio.gather(*(client.asset_overview() for _ in range(50)))
        elapsed = clock.monotonic() - start
    assert sim.rejections == []
    minimum = 9 * 1.0 + late  # the last batch arrives 9 periods after the first
    assert elapsed <= minimum * (1 + late) * 1.01


async def test_a_request_that_arrives_after_the_client_gave_up_still_counts(
    sim: BingXSimulator, key: SimKey, clock: LoopClock
) -> None:
    """Five calls time out at 1 s and arrive at 1.5 s; the retries and the calls after
    them wait until those five certainly no longer count: no refusal."""
    limiter = RateLimiter(clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, http_client=sim.http_client(),
        limiter=limiter, timeout=1.0,
    ) as client:  # fmt: skip
        await client.asset_overview()
        await asyncio.sleep(1.1)
        sim.delay_next(5, 1.5)
        start = clock.monotonic()
        await asyncio.gather(*(client.asset_overview() for _ in range(5)))
        await asyncio.gather(*(client.asset_overview() for _ in range(10)))
        elapsed = clock.monotonic() - start
    await sim.settle()
    assert sim.rejections == []
    assert sim.peak(uid=key.uid) == 5
    # The five given up on counted until timestamp + recvWindow (5 s) + offset error:
    # a few seconds, not a minute.
    assert elapsed < 5.0 + 3 * 1.0 + 1.0


@pytest.mark.parametrize(("recv_window", "within"), [(5000, 9.0), (1500, 5.0)])
async def test_a_smaller_recv_window_shortens_what_a_lost_request_costs(
    sim: BingXSimulator, key: SimKey, clock: LoopClock, recv_window: int, within: float
) -> None:
    limiter = RateLimiter(RateLimits(per_uid=Rate(1, 1.0)), clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, http_client=sim.http_client(),
        limiter=limiter, timeout=1.0, recv_window=recv_window, max_retries=0,
    ) as client:  # fmt: skip
        await client.asset_overview()
        sim.delay_next(1, 1.2)
        with pytest.raises(APITimeoutError):
            await client.asset_overview()
        start = clock.monotonic()
        await client.asset_overview()
        waited = clock.monotonic() - start
    assert sim.rejections == []
    assert recv_window / 1000 - 1.0 <= waited <= within


async def test_a_pool_of_300_keys_over_60_uids_read_twice_with_late_arrivals(
    clock: LoopClock,
) -> None:
    sim = BingXSimulator(clock=clock, jitter=0.05, seed=11)
    keys = [sim.add_key(uid=500 + n % 60) for n in range(300)]
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", str(k.uid)) for n, k in enumerate(keys)
    ]
    sim.delay_next(32, 0.4)  # the pool's first connections are cold
    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        first = await pool.gather()
        sim.delay_next(10, 1.5)
        second = await pool.gather()
    assert [r.label for r in first] == [r.label for r in second] == [c.label for c in credentials]
    assert all(r.ok for r in first + second)
    assert sim.rejections == []
    assert answered_requests(sim) == 600


async def test_answers_that_say_someone_else_uses_the_uid_make_the_client_hold_back(
    clock: LoopClock,
) -> None:
    """Another program, with a limiter of its own, reads the same UID: BingX's
    `X-RateLimit-Requests-Remain` says fewer are left than our window knows, and the
    client fills its window with the other program's requests."""
    sim = BingXSimulator(clock=clock)
    ours, theirs = sim.add_key(uid=9), sim.add_key(uid=9)
    limiter = RateLimiter(clock=clock)
    http = sim.http_client()
    mine = AssetsClient(ours.api_key, ours.secret_key, uid=9, http_client=http, limiter=limiter)
    other = AssetsClient(
        theirs.api_key, theirs.secret_key, uid=9, http_client=http,
        limiter=RateLimiter(clock=clock), max_retries=0,
    )  # fmt: skip
    await mine.asset_overview()
    await asyncio.sleep(1.1)
    await asyncio.gather(*(other.asset_overview() for _ in range(3)))
    await asyncio.gather(*(mine.asset_overview() for _ in range(6)))
    await http.aclose()
    assert limiter.stats.server_disagreements >= 1
    assert [r for r in sim.rejections if r.api_key == ours.api_key] == []


async def test_without_rate_headers_nothing_changes(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, limiter: RateLimiter
) -> None:
    sim.rate_limit_headers = False
    client = make_client(key, uid=key.uid)
    await asyncio.gather(*(client.asset_overview() for _ in range(12)))
    assert sim.rejections == [] and limiter.stats.server_disagreements == 0


@pytest.mark.parametrize(
    ("remain", "expire", "read"),
    [
        ("3", "1767225601000", (3, 1767225601000)),
        ("0", None, (0, None)),
        (None, None, (None, None)),
        ("-1", "soon", (None, None)),
        ("2.5", "1767225601", (None, None)),  # seconds, or a fraction: not what we know
        ("\u0663".encode(), "1767225601000", (None, 1767225601000)),  # not ASCII digits
    ],
)
def test_rate_headers_are_read_only_when_they_hold_plain_numbers(
    remain: str | bytes | None, expire: str | None, read: tuple[int | None, int | None]
) -> None:
    headers = httpx.Headers(
        {name: value for name, value in (
            ("X-RateLimit-Requests-Remain", remain), ("X-RateLimit-Requests-Expire", expire),
        ) if value is not None}
    )  # fmt: skip
    assert _server_window(headers) == read


@pytest.mark.looptime(False)
async def test_the_redis_backend_holds_a_late_burst_too(redis_url: str) -> None:
    """Real time against a real redis-server: five arrive 0.4 s late, five more follow."""
    sim = BingXSimulator(limits=RateLimits(per_uid=Rate(5, 0.5)))
    key = sim.add_key(uid=31)
    redis = Redis.from_url(redis_url)
    backend = RedisBackend(redis, namespace=f"late-{uuid.uuid4().hex[:8]}")
    limiter = RateLimiter(RateLimits(per_uid=Rate(5, 0.5)), backend=backend)
    sim.delay_next(5, 0.4)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=31, http_client=sim.http_client(), limiter=limiter
    ) as client:
        await asyncio.gather(*(client.asset_overview() for _ in range(10)))
    await limiter.aclose()  # before the Redis client: it records the answers still waiting
    await redis.aclose()
    assert sim.rejections == []
    assert answered_requests(sim) == 10


@pytest.mark.parametrize(("counts_expired", "refused"), [(False, False), (True, True)])
async def test_the_bound_for_lost_requests_rests_on_bingx_checking_time_first(
    clock: LoopClock, counts_expired: bool, refused: bool
) -> None:
    """Five calls time out and arrive 7 s late, after timestamp + recvWindow (5 s). If
    BingX refuses them for their timestamp before counting them (the documented
    assumption), nothing more is refused; if it counted them, the calls that followed
    would be: the bound is only as good as that ordering."""
    sim = BingXSimulator(clock=clock, counts_expired_requests=counts_expired)
    key = sim.add_key(uid=12)
    limiter = RateLimiter(clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=12, http_client=sim.http_client(), limiter=limiter,
        timeout=1.0, max_retries=0,
    ) as client:  # fmt: skip
        await client.asset_overview()
        await asyncio.sleep(1.1)
        sim.delay_next(5, 7.0)
        await asyncio.gather(*(client.asset_overview() for _ in range(5)), return_exceptions=True)
        await asyncio.sleep(6.5 - 1.0)  # now just past the five's horizon, before they arrive
        await asyncio.gather(*(client.asset_overview() for _ in range(5)), return_exceptions=True)
    await sim.settle()
    assert (sim.rejections != []) is refused
