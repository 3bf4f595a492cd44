"""The budget is used, to the millisecond: exact virtual durations through client and
simulator, so that a limiter that waits longer than it must fails a test, not only a
benchmark.

Under looptime every wait is virtual and exact: a slot counts from its answer, and
frees one period and the boundary (1 ms) later; nothing else may cost time.
"""

from __future__ import annotations

import asyncio

import pytest

from bingx_assets import APITimeoutError, AssetsClient, Rate, RateLimiter, RateLimits
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH, UID_PATH
from bingx_assets._limiter import BOUNDARY
from bingx_assets.testing import BingXSimulator, Fault, LoopClock

LATENCY = 0.02  # each way


def overview_sent(sim: BingXSimulator) -> list[float]:
    return sorted(r.sent for r in sim.requests if r.path == ASSET_OVERVIEW_PATH)


@pytest.mark.parametrize("latency", [0.0, LATENCY])
async def test_fifty_calls_on_one_key_finish_when_the_windows_allow(latency: float) -> None:
    clock = LoopClock()
    sim = BingXSimulator(clock=clock, latency=latency)
    key = sim.add_key(uid=7)
    limiter = RateLimiter(clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=7, http_client=sim.http_client(), limiter=limiter,
        uid_cache=False,
    ) as client:  # fmt: skip
        start = clock.monotonic()
        await asyncio.gather(*(client.asset_overview() for _ in range(50)))
        elapsed = clock.monotonic() - start
    round_trip = 2 * latency
    period = 1.0 + BOUNDARY
    # The clock's measurement, the lookup that checks the uid given by hand (one each,
    # before any balance), then ten batches of five, each sent one period after the
    # answers of the one before, then the last batch's answers.
    assert [r.path for r in sim.requests[:3]] == [SERVER_TIME_PATH, UID_PATH, ASSET_OVERVIEW_PATH]
    assert len(sim.requests) == 2 + 50
    before_balances = 2 * round_trip
    assert elapsed == pytest.approx(
        before_balances + 9 * (round_trip + period) + round_trip, abs=1e-6
    )
    sent = overview_sent(sim)
    batches = [sent[n : n + 5] for n in range(0, 50, 5)]
    assert all(len(set(batch)) == 1 for batch in batches)  # each batch leaves at once
    assert sim.rejections == []


async def test_keys_over_many_uids_finish_at_the_ip_windows_bound() -> None:
    # 6 UIDs with 4 calls each: no UID window binds; the IP's 12 per 10 s does.
    clock = LoopClock()
    limits = RateLimits(per_ip_endpoint=Rate(12, 10.0), per_ip_group=Rate(20, 10.0))
    sim = BingXSimulator(clock=clock, limits=limits)
    limiter = RateLimiter(limits, clock=clock)
    http = sim.http_client()
    clients = [
        AssetsClient(k.api_key, k.secret_key, uid=k.uid, http_client=http, limiter=limiter,
                     uid_cache=False)
        for k in (sim.add_key(uid=uid) for uid in range(20, 26))
    ]  # fmt: skip
    start = clock.monotonic()
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(4)))
    elapsed = clock.monotonic() - start
    await http.aclose()
    assert elapsed == pytest.approx(10.0 + BOUNDARY, abs=1e-6)
    sent = overview_sent(sim)
    assert sent[:12] == [sent[0]] * 12 and sent[12:] == [sent[12]] * 12
    assert sent[12] - sent[0] == pytest.approx(10.0 + BOUNDARY, abs=1e-6)
    assert sim.rejections == []


async def test_a_waiter_sleeps_until_the_slot_that_makes_room_frees() -> None:
    # Five calls 0.1 s apart fill the UID's window; the sixth must leave when the
    # *oldest* slot frees (1.001 s after the first), not when the youngest does (1.401 s).
    clock = LoopClock()
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=8)
    limiter = RateLimiter(clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=8, http_client=sim.http_client(), limiter=limiter,
        uid_cache=False,
    ) as client:  # fmt: skip
        await client.asset_overview()  # measures the clock first: t = 0 from here
        await asyncio.sleep(2.0)
        start = clock.monotonic()
        calls = []
        for _ in range(5):
            calls.append(asyncio.ensure_future(client.asset_overview()))
            await asyncio.sleep(0.1)
        calls.append(asyncio.ensure_future(client.asset_overview()))  # at 0.5 s
        await asyncio.gather(*calls)
    sent = [t - start for t in overview_sent(sim)[1:]]
    assert sent == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 1.0 + BOUNDARY], abs=1e-6)


async def test_a_waiter_behind_a_lost_request_waits_for_its_horizon_and_no_longer() -> None:
    # A request with no answer may arrive until timestamp + recvWindow (+ the offset's
    # error, + the boundary), and then counts one period: with a limit of one, the next
    # call leaves exactly then.
    clock = LoopClock()
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=9)
    limiter = RateLimiter(RateLimits(per_uid=Rate(1, 1.0)), clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=9, http_client=sim.http_client(), limiter=limiter,
        uid_cache=False, timeout=2.0, max_retries=0, recv_window=3000,
    ) as client:  # fmt: skip
        await client.asset_overview()
        await asyncio.sleep(2.0)
        sim.inject(Fault.timeout(after=1.0))
        start = clock.monotonic()
        with pytest.raises(APITimeoutError):
            await client.asset_overview()
        await client.asset_overview()
    sent = [t - start for t in overview_sent(sim)[1:]]
    horizon = limiter.horizon(3000)
    assert sent == pytest.approx([0.0, horizon + 1.0 + BOUNDARY], abs=1e-6)
