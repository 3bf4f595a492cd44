"""Client and simulator together: never rejected, gates honoured, clocks corrected."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import httpx
import pytest
import respx

from bingx_assets import (
    AssetsClient,
    RateLimiter,
    RateLimitError,
    RateLimits,
    TimestampError,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH, UID_PATH
from bingx_assets.testing import BingXSimulator, Fault, LoopClock, SimKey

from .conftest import MakeClient, verified_earlier

HOST = "https://open-api.bingx.com"


def overview_requests(sim: BingXSimulator) -> list:  # type: ignore[type-arg]
    return [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]


async def test_fifty_calls_on_one_key_use_the_budget_with_no_rejection(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, clock: LoopClock
) -> None:
    sim.jitter = 0.02
    client = make_client(key, uid=key.uid)
    start = clock.monotonic()
    await asyncio.gather(*(client.asset_overview() for _ in range(50)))
    elapsed = clock.monotonic() - start
    assert sim.rejections == []
    assert sim.peak(uid=key.uid) == 5
    assert 9.0 <= elapsed <= 9.0 * 1.03


async def test_many_keys_of_one_uid_share_its_budget(
    sim: BingXSimulator, make_client: MakeClient, clock: LoopClock
) -> None:
    sim.jitter = 0.01
    keys = [sim.add_key(uid=42) for _ in range(4)]
    clients = [make_client(k) for k in keys]
    start = clock.monotonic()
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(15)))
    assert sim.rejections == []
    assert sim.peak(uid=42) == 5
    assert clock.monotonic() - start < 12.5  # 60 calls at 5/s: 11 windows after the first


async def test_different_uids_run_in_parallel(
    sim: BingXSimulator, make_client: MakeClient, clock: LoopClock
) -> None:
    clients = [make_client(sim.add_key(uid=uid), uid=uid) for uid in (1, 2, 3)]
    start = clock.monotonic()
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(10)))
    assert clock.monotonic() - start < 1.1  # each UID needs two windows, side by side
    assert sim.rejections == []


async def test_ip_limits_hold_across_uids(clock: LoopClock) -> None:
    limits = RateLimits(per_ip_endpoint=httpx_rate(12), per_ip_group=httpx_rate(15))
    sim = BingXSimulator(clock=clock, limits=limits, jitter=0.01)
    limiter = RateLimiter(limits, clock=clock)
    http = sim.http_client()
    clients = [
        AssetsClient(k.api_key, k.secret_key, http_client=http, limiter=limiter)
        for k in (sim.add_key(uid=uid) for uid in range(10, 16))
    ]
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(4)))
    assert sim.rejections == []
    assert sim.peak(period=10.0) <= 12
    await http.aclose()


def httpx_rate(limit: int):  # type: ignore[no-untyped-def]
    from bingx_assets import Rate

    return Rate(limit, 10.0)


@pytest.mark.parametrize("too_many_errors", [False, True], ids=["unblocked-after", "retry-after"])
async def test_a_disabled_period_stops_every_key_of_the_uid_until_it_ends(
    sim: BingXSimulator, make_client: MakeClient, clock: LoopClock, too_many_errors: bool
) -> None:
    sim.skew_ms = 30_000  # the unblock time is on the server's clock
    first, second = sim.add_key(uid=9), sim.add_key(uid=9)
    a, b = make_client(first, uid=9), make_client(second, uid=9)
    await a.asset_overview()
    until = sim.disable(9, 20.0, too_many_errors=too_many_errors)
    results = await asyncio.gather(a.asset_overview(), b.asset_overview(), a.asset_overview())
    assert all(r.total > 0 for r in results)
    sent = overview_requests(sim)
    while_disabled = [r for r in sent if r.while_disabled]
    assert len(while_disabled) == 1  # the one that found out, and no other
    after = [r for r in sent if r.server_ms >= until]
    assert len(after) == 3 and all(r.code == 0 for r in after)
    assert 0 <= after[0].server_ms - until <= 50


async def test_retries_are_signed_afresh(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    client = make_client(key, uid=key.uid)
    sim.disable(key.uid, 3.0)
    await client.asset_overview()
    refused, accepted = overview_requests(sim)
    assert refused.code == 100410 and accepted.code == 0
    stamp = {r.query.split("&")[0] for r in (refused, accepted)}
    signature = {r.query.rsplit("signature=")[1] for r in (refused, accepted)}
    assert len(stamp) == 2 and len(signature) == 2


async def test_a_disabled_period_beyond_max_wait_raises_with_the_unblock_time(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    client = make_client(key, uid=key.uid, max_wait=60)
    until = sim.disable(key.uid, 300.0)
    with pytest.raises(RateLimitError) as found:
        await client.asset_overview()
    assert found.value.unblock_at_ms == until
    assert found.value.status_code == 200 and found.value.code == 100410
    with pytest.raises(RateLimitError) as refused:
        await make_client(sim.add_key(uid=key.uid), uid=key.uid).asset_overview()
    assert refused.value.status_code is None  # not sent at all
    assert abs(refused.value.unblock_at_ms - until) <= 50  # type: ignore[operator]
    assert len(overview_requests(sim)) == 1


@pytest.mark.parametrize(
    ("answer", "expected_pause"),
    [
        (httpx.Response(429, headers={"Retry-After": "7"}), 7.0),
        (httpx.Response(418, text="<html>banned</html>"), 300.0),
        (httpx.Response(403, text="<html>firewall</html>"), 300.0),
        (httpx.Response(429), 10.0),
        (httpx.Response(200, json={"code": 100410, "msg": "rate limited"}), 1.0),
    ],
    ids=["429-retry-after", "418", "403", "429-no-time", "100410-no-time"],
)
async def test_rate_answers_pause_what_was_refused_as_long_as_it_said(
    respx_mock: respx.MockRouter,
    respx_http: httpx.AsyncClient,
    clock: LoopClock,
    answer: httpx.Response,
    expected_pause: float,
) -> None:
    """A time given (Retry-After, a ban) closes a gate; with none, the refused window
    counts as full for one period from the refusal: no more is lost than that window."""
    limiter = RateLimiter(clock=clock)
    respx_mock.get(HOST + SERVER_TIME_PATH).respond(json={"code": 0, "data": {"serverTime": 1}})
    ok = httpx.Response(
        200, json={"code": 0, "data": [{"accountType": "sopt", "usdtBalance": "2"}]}
    )
    route = respx_mock.get(HOST + ASSET_OVERVIEW_PATH).mock(side_effect=[answer, ok, ok])
    verified_earlier("k" * 64, 5)
    async with AssetsClient(
        "k" * 64, "s" * 64, uid=5, max_wait=600, limiter=limiter, http_client=respx_http
    ) as client:
        first = await client.asset_overview()
        paused = clock.monotonic()
        verified_earlier("j" * 64, 5)
        async with AssetsClient(
            "j" * 64, "s" * 64, uid=5, limiter=limiter, http_client=respx_http
        ) as sibling:
            await sibling.asset_overview()  # the gate already reopened
    assert first.total == Decimal(2) and route.call_count == 3
    assert expected_pause <= paused <= expected_pause + 0.01
    assert limiter.stats.rejections == 1
    assert limiter.stats.gate_closures == (0 if answer.headers.get("Retry-After") is None
                                           and answer.status_code in (200, 429) else 1)  # fmt: skip


async def test_the_gate_stops_siblings_that_are_already_waiting(
    respx_mock: respx.MockRouter, respx_http: httpx.AsyncClient, clock: LoopClock
) -> None:
    limiter = RateLimiter(clock=clock)
    respx_mock.get(HOST + SERVER_TIME_PATH).respond(json={"code": 0, "data": {"serverTime": 1}})
    calls: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(clock.monotonic())
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "30"})
        return httpx.Response(200, json={"code": 0, "data": []})

    respx_mock.get(HOST + ASSET_OVERVIEW_PATH).mock(side_effect=answer)
    verified_earlier("k" * 64, 5)
    async with AssetsClient(
        "k" * 64, "s" * 64, uid=5, limiter=limiter, http_client=respx_http
    ) as client:
        await asyncio.gather(*(client.asset_overview() for _ in range(8)))
    assert calls[0] == 0 and all(t >= 30 for t in calls[1:])


@pytest.mark.parametrize("skew_ms", [30_000, -30_000])
async def test_clock_skew_is_measured_before_the_first_call(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, skew_ms: int
) -> None:
    sim.skew_ms = skew_ms
    await make_client(key).asset_overview()
    assert [r.code for r in sim.requests if r.path != SERVER_TIME_PATH] == [0, 0]


async def test_a_clock_jump_is_corrected_and_retried_once(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    client = make_client(key, uid=key.uid)
    await client.asset_overview()
    sim.skew_ms = -45_000
    await client.asset_overview()
    codes = [r.code for r in overview_requests(sim)]
    assert codes == [0, 100421, 0]


async def test_a_timestamp_error_that_persists_is_raised(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    client = make_client(key, uid=key.uid)
    await client.asset_overview()
    # The server keeps refusing the time: correcting the clock cannot help.
    sim.inject(*[Fault.answer(100421, "Null timestamp or timestamp mismatch")] * 3)
    with pytest.raises(TimestampError):
        await client.asset_overview()
    assert len(overview_requests(sim)) == 3  # the first call, then one try and one retry


async def test_cancelling_calls_leaks_nothing_and_sent_requests_still_count(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, limiter: RateLimiter
) -> None:
    sim.latency = 0.4
    client = make_client(key, uid=key.uid)
    tasks = [asyncio.create_task(client.asset_overview()) for _ in range(12)]
    await asyncio.sleep(0.6)  # five are in flight, seven wait for the window
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await sim.settle()  # the five sent still arrive: the server's work, not a leak
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
    await asyncio.gather(*(client.asset_overview() for _ in range(5)))
    assert sim.rejections == []
    assert sim.peak(uid=key.uid) == 5
    assert not limiter._state().lock(f"gate:{key.uid}:{ASSET_OVERVIEW_PATH}").locked()


async def test_concurrent_first_calls_share_one_clock_measurement(
    sim: BingXSimulator, make_client: MakeClient
) -> None:
    sim.skew_ms, sim.latency = 30_000, 0.05  # the measurement takes a while
    clients = [make_client(sim.add_key(uid=n), uid=n) for n in range(1, 11)]
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(2)))
    assert [r.path for r in sim.requests].count(SERVER_TIME_PATH) == 1
    assert all(r.code == 0 for r in overview_requests(sim))


async def test_concurrent_first_calls_look_the_uid_up_once(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    sim.latency = 0.05
    client = make_client(key)
    await asyncio.gather(*(client.asset_overview() for _ in range(6)))
    assert [r.path for r in sim.requests].count(UID_PATH) == 1


async def test_a_429_pauses_every_uid_behind_the_ip(
    respx_mock: respx.MockRouter, respx_http: httpx.AsyncClient, clock: LoopClock
) -> None:
    """429 is the IP's budget: another UID waits too. (A 100410 with a time leaves other
    UIDs alone: test_faults.py, `...longer_than_max_wait_fails_only_that_uid`.)"""
    limiter = RateLimiter(clock=clock)
    respx_mock.get(HOST + SERVER_TIME_PATH).respond(json={"code": 0, "data": {"serverTime": 1}})
    calls: list[tuple[str, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append((request.headers["X-BX-APIKEY"], clock.monotonic()))
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "20"})
        return httpx.Response(200, json={"code": 0, "data": []})

    respx_mock.get(HOST + ASSET_OVERVIEW_PATH).mock(side_effect=answer)
    verified_earlier("k" * 64, 5)
    verified_earlier("j" * 64, 6)
    async with (
        AssetsClient("k" * 64, "s" * 64, uid=5, limiter=limiter, http_client=respx_http) as first,
        AssetsClient(
            "j" * 64, "s" * 64, uid=6, limiter=limiter, http_client=respx_http
        ) as other_uid,
    ):
        await first.asset_overview()
        await other_uid.asset_overview()
    assert len(calls) == 3 and calls[0][1] == 0
    assert all(t >= 20 for _, t in calls[1:])  # the retry, and the other UID's call


async def test_rate_limit_messages_say_who_until_when_and_what_next(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, caplog: pytest.LogCaptureFixture
) -> None:
    """Words a user reads: the UID, an ISO time with its UTC offset, what happens next;
    no internal gate name, no epoch milliseconds, no code twice."""
    until = sim.disable(key.uid, 300.0)
    client = make_client(key, uid=key.uid)
    with pytest.raises(RateLimitError) as raised:
        await client.asset_overview()
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    with pytest.raises(RateLimitError) as refused:  # the gate is known now: not sent
        await client.asset_overview()
    for text in (str(raised.value), logged[0], str(refused.value)):
        assert f"UID {key.uid}" in text
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", text), text
        assert "max_wait (60 s)" in text
        assert str(until) not in text and "gate:" not in text and "None" not in text
        assert text.count("100410") <= 1
    assert "not sent" in str(refused.value)
    assert refused.value.unblock_at_ms is not None
    assert abs(refused.value.unblock_at_ms - until) <= 50
