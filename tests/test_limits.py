"""The limiter on its own: sliding windows, slots, gates, cancellation, event loops."""

from __future__ import annotations

import asyncio
import gc

import pytest

from bingx_assets import ConfigurationError, Rate, RateLimiter, RateLimits
from bingx_assets._constants import DEFAULT_BASE_URL
from bingx_assets._limiter import (
    GateTooLong,
    HostBackend,
    MemoryBackend,
)
from bingx_assets.testing import LoopClock

ONE_UID = RateLimits(per_uid=Rate(5, 1.0))


def most_in_any_window(times: list[float], period: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t <= start + period) for i, start in enumerate(times))


async def take(limiter: RateLimiter, uid: str, log: list[float], *, answered: bool = True) -> None:
    permit = await limiter.acquire(limiter.scope(uid, "/x"), max_wait=60)
    log.append(limiter.clock.monotonic())
    await permit.settle(answered=answered, succeeded=answered)


@pytest.mark.parametrize("calls", [6, 50, 137])
async def test_no_window_ever_holds_more_than_the_limit(calls: int) -> None:
    limiter = RateLimiter(ONE_UID, clock=LoopClock())
    times: list[float] = []
    await asyncio.gather(*(take(limiter, "u", times) for _ in range(calls)))
    assert most_in_any_window(times, 1.0) == 5
    # ... and uses the budget: batches of five, one period (and a millisecond) apart.
    assert max(times) == pytest.approx(((calls - 1) // 5) * 1.001, abs=1e-6)


async def test_a_burst_is_served_first_come_first_served() -> None:
    # Never settled, so each holds an error-budget slot: a budget wide enough for all.
    limits = RateLimits(per_uid=Rate(5, 1.0), error_budget=Rate(100, 480.0))
    limiter = RateLimiter(limits, clock=LoopClock())
    order: list[int] = []

    async def numbered(n: int) -> None:
        await limiter.acquire(limiter.scope("u", "/x"), max_wait=60)
        order.append(n)

    await asyncio.gather(*(numbered(n) for n in range(23)))
    assert order == list(range(23))


@pytest.mark.parametrize(
    ("bet", "recv_window", "settle_after", "answered", "next_slot_at"),
    [
        # The horizon: timestamp + recvWindow (5 s here; the offset was measured exactly).
        pytest.param(None, 5000, None, False, 6.002, id="in flight: until its recvWindow ends"),
        pytest.param(None, 5000, 0.05, True, 1.051, id="answered: from when the answer came"),
        pytest.param(None, 5000, 2.0, False, 6.002, id="no answer: until its recvWindow ends"),
        pytest.param(None, 1000, 0.5, False, 2.002, id="a smaller recvWindow shortens it"),
        pytest.param(None, 1000, 3.0, False, 3.0, id="given up on after its recvWindow"),
        pytest.param(0.3, 5000, None, False, 1.301, id="bet: in flight from send + bet"),
        pytest.param(0.3, 5000, 0.05, True, 1.051, id="bet: answered early"),
        pytest.param(0.3, 5000, 2.0, False, 6.002, id="bet: lost, until its recvWindow ends"),
    ],
)
async def test_how_long_a_slot_counts(
    bet: float | None,
    recv_window: int,
    settle_after: float | None,
    answered: bool,
    next_slot_at: float,
) -> None:
    clock = LoopClock()
    limits = RateLimits(per_uid=Rate(1, 1.0), assume_arrival_within=bet)
    limiter = RateLimiter(limits, clock=clock)
    limiter.server_clock.observe(clock.wall_ms(), clock.wall_ms(), clock.wall_ms())
    scope = limiter.scope("u", "/x")
    permit = await limiter.acquire(scope, max_wait=60, recv_window_ms=recv_window)
    if settle_after is not None:
        await asyncio.sleep(settle_after)
        await permit.settle(answered=answered)
    await limiter.acquire(scope, max_wait=60, recv_window_ms=recv_window)
    assert clock.monotonic() == pytest.approx(next_slot_at)


@pytest.mark.parametrize(("uncertainty_ms", "horizon"), [(0, 5.001), (40, 5.041), (None, 10.001)])
async def test_the_horizon_covers_what_the_clock_offset_may_be_wrong_by(
    uncertainty_ms: int | None, horizon: float
) -> None:
    limiter = RateLimiter(clock=LoopClock())
    if uncertainty_ms is not None:  # a sample whose round trip was twice the uncertainty
        limiter.server_clock.observe(1_000, 0, 2 * uncertainty_ms)
    assert limiter.horizon(5000) == pytest.approx(horizon)


async def test_ip_windows_are_shared_by_all_uids() -> None:
    limits = RateLimits(per_uid=Rate(5, 1.0), per_ip_endpoint=Rate(7, 10.0))
    limiter = RateLimiter(limits, clock=LoopClock())
    times: list[float] = []
    await asyncio.gather(*(take(limiter, f"uid{n % 4}", times) for n in range(20)))
    assert most_in_any_window(times, 10.0) == 7


async def test_the_group_window_spans_endpoints() -> None:
    limits = RateLimits(per_ip_group=Rate(3, 10.0))
    limiter = RateLimiter(limits, clock=LoopClock())
    times: list[float] = []
    for endpoint in ("/a", "/b", "/c", "/d"):
        permit = await limiter.acquire(limiter.scope("u", endpoint), max_wait=60)
        times.append(limiter.clock.monotonic())
        await permit.settle(answered=True)
    assert times[3] == pytest.approx(10.001)


async def test_a_closed_gate_holds_every_request_of_the_uid_until_it_opens() -> None:
    limiter = RateLimiter(ONE_UID, clock=LoopClock())
    scope = limiter.scope("u", "/x")
    await limiter.close_gate(scope.uid_gate, 12.5)
    other_uid = await limiter.acquire(limiter.scope("v", "/x"), max_wait=0)
    assert other_uid is not None and limiter.clock.monotonic() == 0
    times: list[float] = []
    await asyncio.gather(*(take(limiter, "u", times) for _ in range(3)))
    assert min(times) == pytest.approx(12.5)
    assert limiter.stats.gate_closures == 1


async def test_gates_only_ever_lengthen() -> None:
    limiter = RateLimiter(ONE_UID, clock=LoopClock())
    scope = limiter.scope("u", "/x")
    await limiter.close_gate(scope.uid_gate, 10)
    await limiter.close_gate(scope.uid_gate, 3)
    assert await limiter.gate_remaining(scope.uid_gate) == pytest.approx(10)


async def test_a_gate_longer_than_max_wait_is_refused_at_once() -> None:
    limiter = RateLimiter(ONE_UID, clock=LoopClock())
    scope = limiter.scope("u", "/x")
    await limiter.close_gate(scope.uid_gate, 300)
    with pytest.raises(GateTooLong) as caught:
        await limiter.acquire(scope, max_wait=60)
    assert caught.value.seconds == pytest.approx(300)
    assert limiter.clock.monotonic() == 0


async def test_cancelled_waiters_take_no_slot_and_leave_no_lock_held() -> None:
    limiter = RateLimiter(ONE_UID, clock=LoopClock())
    times: list[float] = []
    waiting = [asyncio.create_task(take(limiter, "u", times)) for _ in range(12)]
    await asyncio.sleep(0.5)  # five went through; seven wait for the window
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert len(times) == 5
    assert not limiter._state().lock("gate:u:/x").locked()
    await take(limiter, "u", times)  # the next one gets the first free slot
    assert times[-1] == pytest.approx(1.001)
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}


def test_one_limiter_serves_several_event_loops() -> None:
    limiter = RateLimiter(RateLimits(per_uid=Rate(1, 0.01)))

    async def contend() -> None:
        times: list[float] = []
        await asyncio.gather(*(take(limiter, "u", times) for _ in range(3)))

    asyncio.run(contend())
    asyncio.run(contend())
    assert limiter.stats.acquired == 6


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        Rate(0, 1.0)
    with pytest.raises(ConfigurationError):
        Rate(5, 0)
    with pytest.raises(ConfigurationError):
        RateLimits(assume_arrival_within=-1)


def test_the_default_limiter_is_one_per_server_on_its_host_store() -> None:
    assert RateLimiter.default() is RateLimiter.default(DEFAULT_BASE_URL)
    assert RateLimiter.default("http://127.0.0.1:9") is not RateLimiter.default()
    backend = RateLimiter.default("http://127.0.0.1:9").backend
    assert isinstance(backend, HostBackend)
    assert backend.path != RateLimiter.default().backend.path  # type: ignore[union-attr]
    assert isinstance(RateLimiter.default(None).backend, MemoryBackend)


def _limiter_sizes(limiter: RateLimiter) -> dict[str, int]:
    backend = limiter.backend
    assert isinstance(backend, MemoryBackend)
    state = limiter._state()
    return {
        "windows": len(backend._windows),
        "gates": len(backend._gates),
        "scopes": len(limiter._scopes),
        "locks": len(state._locks),
        "wakers": len(state._wakers),
        "gate reasons": len(limiter._closed_because),
    }


async def test_uids_that_have_gone_quiet_leave_nothing_behind() -> None:
    # A long-lived process whose pools come and go with new UIDs: 10,000 of them, 1,000
    # at a time, each waiting once for its window and every tenth behind a closed gate.
    limiter = RateLimiter(RateLimits(per_uid=Rate(1, 1.0)), clock=LoopClock())

    async def one_uid(uid: str) -> None:
        scope = limiter.scope(uid, "/x")
        if uid.endswith("0"):
            await limiter.close_gate(scope.uid_gate, 0.5, because="a test")
        for _ in range(2):
            ticket = await limiter.acquire(scope, max_wait=60)
            await ticket.settle(answered=True, succeeded=True)

    sizes = []
    for batch in range(10):
        await asyncio.gather(*(one_uid(f"{batch}-{n}") for n in range(1000)))
        await asyncio.sleep(11.0)  # past every window's period: all of them quiet
        gc.collect()
        sizes.append((_limiter_sizes(limiter), len(gc.get_objects())))
    (second, second_objects), (last, last_objects) = sizes[1], sizes[-1]
    assert last["locks"] == last["wakers"] == 0
    for name, size in last.items():  # what a batch left is freed during the next one
        assert size <= max(second[name], 2 * 1000 + 10, 2048), name
    assert last_objects < second_objects + 1000  # against 9 objects per UID kept
