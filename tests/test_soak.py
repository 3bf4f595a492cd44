"""Soak: many keys over many UIDs, random faults and disabled periods, several rounds.

Bounded in count and (virtual or real) time. Asserts what must hold at any scale: every
key accounted for, nothing sent into a disabled period the client knew of, no rejection
of the client's own making, no leaked task, connection or descriptor, memory flat.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import tracemalloc

import pytest

from bingx_assets import AssetsPool, Credentials, RateLimiter
from bingx_assets.testing import BingXSimulator, Fault, LoopClock, SimulatorServer
from bingx_assets.testing._messages import MSG_SYSTEM_BUSY

from .conftest import assert_nothing_sent_into_a_known_disabled_period, verified_earlier

FAULTS = [
    Fault.http(500), Fault.html(502), Fault.http(503), Fault.html(504), Fault.reset(),
    Fault.timeout(after=1.0), Fault.slow(0.5), Fault.answer(100500, "Internal error"),
    Fault.answer(100410, MSG_SYSTEM_BUSY), Fault.answer(100421, MSG_SYSTEM_BUSY),
    Fault.http(429, retry_after=1), Fault.body(b'{"code":0,"data":[{"accou'),
]  # fmt: skip


def client_memory() -> int:
    """Bytes held by everything but the simulator (whose error windows grow by design)
    and pytest, which keeps every log record it captures."""
    gc.collect()
    leave_out = ["*/bingx_assets/testing/*", __file__, "*/logging/*", "*/_pytest/*"]
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, pattern) for pattern in leave_out]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_soak_in_virtual_time(clock: LoopClock) -> None:
    rng = random.Random(5)
    sim = BingXSimulator(clock=clock, jitter=0.01, seed=5)
    uids = list(range(1, 13))
    keys = [sim.add_key(uid=uid) for uid in uids for _ in range(10)]  # 120 keys
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", str(k.uid)) for n, k in enumerate(keys)
    ]
    sim.random_faults(0.08, FAULTS)
    limiter = RateLimiter(clock=clock)

    async def disable_now_and_then() -> None:
        while True:
            await asyncio.sleep(rng.uniform(1, 4))
            sim.disable(rng.choice(uids), rng.uniform(1, 8))

    http = sim.http_client()
    tracemalloc.start()
    try:
        async with AssetsPool(credentials, http_client=http, limiter=limiter, max_wait=10) as pool:
            chaos = asyncio.create_task(disable_now_and_then())
            for round_number in range(8):
                results = await pool.gather()
                assert [r.label for r in results] == [c.label for c in credentials]
                assert all((r.overview is None) != (r.error is None) for r in results)
                assert_nothing_sent_into_a_known_disabled_period(sim.requests)
                assert all(r.while_disabled for r in sim.rejections)
                sim.requests.clear()
                # A round's results are the caller's, and a failed one holds its error's
                # frames: how many keys a round could not read is no leak.
                del results
                if round_number == 2:
                    baseline = client_memory()
            chaos.cancel()
            await asyncio.gather(chaos, return_exceptions=True)
        grown = client_memory() - baseline
    finally:
        tracemalloc.stop()
        await http.aclose()
    assert grown < 64 * 1024, f"memory grew by {grown} bytes over five rounds"
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
    assert limiter.stats.acquired >= 8 * 120


@pytest.mark.looptime(False)
async def test_soak_over_loopback_http_leaks_no_connection_or_descriptor() -> None:
    sim = BingXSimulator(jitter=0.002, seed=9)
    keys = [sim.add_key(uid=uid) for uid in range(1, 9) for _ in range(4)]  # 32 keys, 8 UIDs
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", str(k.uid)) for n, k in enumerate(keys)
    ]
    sim.random_faults(0.1, [Fault.reset(), Fault.http(503), Fault.html(502), Fault.slow(0.05)])
    limiter = RateLimiter()  # one per egress IP: a fresh one per pool would not know the last
    for k in keys:  # the UID cache's database stays open for the process: opened before
        cache = verified_earlier(k.api_key, k.uid)
    before = open_descriptors()
    async with SimulatorServer(sim) as server:
        for _ in range(2):
            async with AssetsPool(
                credentials, base_url=server.url, limiter=limiter, uid_cache=cache
            ) as pool:
                results = await pool.gather()
            assert len(results) == 32
            assert sum(r.ok for r in results) >= 28
            assert sim.rejections == []
    gc.collect()
    assert open_descriptors() == before
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
