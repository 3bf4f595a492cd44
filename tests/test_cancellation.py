"""Cancelling a call at any await leaves no half state: the clock measurement included.

The first call of a client measures the offset to BingX's clock before it signs. A call
cancelled while it measures must leave the clock unmeasured, so that the next call
measures it; marked measured with no offset, every later request would be signed on
the local clock, and against a skewed server earn a timestamp error each.
"""

from __future__ import annotations

import asyncio

import pytest

from bingx_assets import AssetsClient, RateLimiter
from bingx_assets._constants import SERVER_TIME_PATH
from bingx_assets.testing import BingXSimulator, LoopClock

SKEW_MS = 30_000  # far outside the 5 s recvWindow
TIMESTAMP_CODES = {80014, 100421}


LATENCY = 0.010  # each request's way there and back: the awaits that wait on the network
# Where to cut: after a few turns of the loop (awaits that wait on nothing but other
# tasks), then every virtual millisecond (awaits on the network and on timers).
CUTS = [(turns, 0.0) for turns in range(6)] + [(0, ms / 1000) for ms in range(1, 500)]


async def cancelled_after(turns: int, seconds: float, task: asyncio.Task[object]) -> bool:
    """Let `task` run for `turns` turns of the loop and `seconds` of virtual time, then
    cancel it; False if it finished first (every await point has then been cut)."""
    for _ in range(turns):
        await asyncio.sleep(0)
    if seconds:
        await asyncio.sleep(seconds)
    if task.done():
        return False
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return True


@pytest.mark.parametrize("uid_known", [True, False], ids=["uid-given", "uid-looked-up"])
async def test_a_first_call_cancelled_at_any_await_leaves_the_clock_unmeasured(
    clock: LoopClock, uid_known: bool
) -> None:
    sim = BingXSimulator(clock=clock, skew_ms=SKEW_MS, latency=LATENCY)
    key = sim.add_key(uid=7)
    http = sim.http_client()
    cut = 0
    for turns, seconds in CUTS:
        limiter = RateLimiter(clock=clock)  # a fresh process's: nothing measured yet
        client = AssetsClient(
            key.api_key, key.secret_key, uid=key.uid if uid_known else None,
            http_client=http, limiter=limiter, uid_cache=False,
        )  # fmt: skip
        first = asyncio.create_task(client.asset_overview())
        before = len(sim.requests)
        if not await cancelled_after(turns, seconds, first):
            break
        cut += 1
        overview = await client.asset_overview()  # the next call, on the same limiter
        assert overview.total > 0
        signed = [r for r in sim.requests[before:] if r.path != SERVER_TIME_PATH]
        assert not [r for r in signed if r.code in TIMESTAMP_CODES], (turns, seconds, signed)
        assert limiter.server_clock.measured
        await clock_settles(sim)
    else:
        pytest.fail("the first call never finished within half a second")
    await http.aclose()
    # Cut at every turn and every millisecond of its round trips (two of 2 x 10 ms, or
    # three with the UID's lookup), the clock's measurement among them.
    assert cut >= 6 + 2 * 2 * LATENCY * 1000 - 1


async def clock_settles(sim: BingXSimulator) -> None:
    """Past the UID's window, so the next round's first call waits for nothing."""
    await asyncio.sleep(1.1)
    await sim.settle()
