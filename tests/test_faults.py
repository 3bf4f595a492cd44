"""Every fault the simulator can inject ends in a result or the right typed error."""

from __future__ import annotations

import asyncio
import itertools
from urllib.parse import parse_qs

import msgspec
import pytest

from bingx_assets import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AssetsClient,
    AssetsPool,
    AuthenticationError,
    Credentials,
    DecodeError,
    ErrorBudgetError,
    Rate,
    RateLimiter,
    RateLimitError,
    RateLimits,
    ServerBusyError,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH, UID_PATH
from bingx_assets._limiter import BOUNDARY
from bingx_assets._refusals import key_gate
from bingx_assets._uid_cache import default_uid_cache_path
from bingx_assets.testing import BingXSimulator, Fault, LoopClock, ReceivedRequest, SimKey
from bingx_assets.testing._messages import MSG_SYSTEM_BUSY

from .conftest import (
    MakeClient,
    assert_nothing_sent_into_a_known_disabled_period,
    verified_earlier,
)

TRANSIENT = [
    pytest.param(Fault.http(500), id="500"),
    pytest.param(Fault.html(502), id="502-html"),
    pytest.param(Fault.http(503), id="503"),
    pytest.param(Fault.html(504), id="504-html"),
    pytest.param(Fault.reset(), id="reset"),
    pytest.param(Fault.timeout(after=2.0), id="timeout"),
    pytest.param(Fault.answer(100500, "Internal error"), id="100500"),
    pytest.param(Fault.answer(100503, "Server busy"), id="100503"),
    pytest.param(Fault.answer(100410, MSG_SYSTEM_BUSY), id="100410-busy"),
    pytest.param(Fault.answer(100421, MSG_SYSTEM_BUSY), id="100421-busy"),
    pytest.param(Fault.slow(3.0), id="slow"),
]


@pytest.mark.parametrize("fault", TRANSIENT)
async def test_transient_faults_are_retried_to_success(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, limiter: RateLimiter, fault: Fault
) -> None:
    sim.inject(fault, fault)
    overview = await make_client(key, uid=key.uid).asset_overview()
    assert overview.total > 0
    assert limiter.stats.retries == (0 if fault.passes_through else 2)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.http(503), ServerBusyError),
        (Fault.reset(), APIConnectionError),
        (Fault.timeout(), APITimeoutError),
    ],
)
async def test_transient_faults_that_persist_raise_after_max_retries(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, fault: Fault, error: type
) -> None:
    sim.inject(*[fault] * 3)
    with pytest.raises(error):
        await make_client(key, uid=key.uid, max_retries=2).asset_overview()


@pytest.mark.parametrize(
    "fault",
    [
        Fault.body(b'{"code":0,"da'),
        Fault.body(b'{"code":0,"data":[{"accountType":"sopt","usdtBal'),
        Fault.body(b"{not json}"),
        Fault.body(b"<html>hello</html>", content_type="text/html"),
        Fault.body(b'{"code":0,"data":[]}'[:0]),
        Fault.body(b'{"code":0,"data":"nope"}', content_type="text/plain"),
    ],
    ids=["cut-short", "truncated", "malformed", "html-200", "empty", "wrong-shape"],
)
async def test_unreadable_200_answers_are_retried_and_signed_afresh(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, fault: Fault
) -> None:
    # A read is safe to repeat: a cut-off 200 is retried like a connection lost mid-answer.
    sim.inject(fault)
    overview = await make_client(key, uid=key.uid).asset_overview()
    assert overview.total > 0
    sent = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert [r.injected for r in sent] == [True, False]
    signatures = {parse_qs(r.query)["signature"][0] for r in sent}
    assert len(signatures) == 2


async def test_unreadable_200_answers_end_as_decode_error_after_max_retries(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    sim.inject(*[Fault.body(b'{"code":0,"da')] * 3)
    with pytest.raises(DecodeError) as caught:
        await make_client(key, uid=key.uid, max_retries=2).asset_overview()
    assert caught.value.status_code == 200
    assert len([r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]) == 3


async def test_unreadable_error_answers_are_not_retried(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    sim.inject(Fault.html(404))
    with pytest.raises(APIError) as caught:
        await make_client(key, uid=key.uid).asset_overview()
    assert caught.value.status_code == 404
    assert len([r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]) == 1


@pytest.mark.parametrize(
    ("fault", "pause"),
    [
        (Fault.http(429, retry_after=4), 4.0),
        (Fault.html(418), 300.0),
        (Fault.html(403), 300.0),
    ],
)
async def test_http_rate_faults_pause_the_uid(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, clock: LoopClock,
    fault: Fault, pause: float,
) -> None:  # fmt: skip
    sim.inject(fault)
    await make_client(key, uid=key.uid, max_wait=600).asset_overview()
    first, second = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert second.arrived - first.arrived >= pause


@pytest.mark.parametrize("too_many_errors", [False, True])
async def test_injected_disabled_period_is_honoured_to_the_millisecond(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, too_many_errors: bool
) -> None:
    sim.skew_ms = -12_345
    until = sim.server_ms() + 7_000
    sim.inject(Fault.rate_limited(until, too_many_errors=too_many_errors))
    await make_client(key, uid=key.uid).asset_overview()
    _, retry = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert 0 <= retry.server_ms - until <= 50


async def test_a_clock_jump_mid_run_costs_one_retry(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    client = make_client(key, uid=key.uid)
    await client.asset_overview()
    sim.skew_ms += 90_000
    await client.asset_overview()
    assert [r.code for r in sim.requests if r.path == ASSET_OVERVIEW_PATH] == [0, 100421, 0]


async def test_the_local_clock_stepping_back_past_recv_window_costs_one_retry() -> None:
    # The last measurement's local wall time is then later than the refused request's:
    # read as "measured since", it kept the offset, and every call failed for its
    # timestamp. When it was measured is kept on the monotonic clock instead.
    client_clock = LoopClock()
    sim = BingXSimulator(clock=LoopClock())
    key = sim.add_key(uid=1002)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, verify_uids=False,
        http_client=sim.http_client(), limiter=RateLimiter(clock=client_clock),
        uid_cache=False, recv_window=5000,
    ) as client:  # fmt: skip
        await client.asset_overview()
        client_clock.start_ms -= 60_000
        await client.asset_overview()
        await client.asset_overview()
    assert [r.code for r in sim.requests if r.path == ASSET_OVERVIEW_PATH] == [0, 100421, 0, 0]


@pytest.mark.parametrize(
    ("server_step_ms", "client_step_ms", "held_longer_ms"),
    [
        pytest.param(-1200, 0, 50, id="server-clock-back"),
        # Read with the old offset the period is over already, though the answer says
        # it is not: the UID is held while the clock is measured, then to the real end.
        pytest.param(0, 120_000, 50, id="client-clock-forward"),
    ],
)
async def test_a_disabled_period_announced_after_a_clock_step_is_held_to_its_end(
    server_step_ms: int, client_step_ms: int, held_longer_ms: int
) -> None:
    # Model seeds 158 and 65: the end was read with the offset measured before the step,
    # and the gate opened early, or (the period over by that clock) at once.
    client_clock = LoopClock()
    sim = BingXSimulator(clock=LoopClock())
    key = sim.add_key(uid=1003)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, verify_uids=False,
        http_client=sim.http_client(), limiter=RateLimiter(clock=client_clock),
        uid_cache=False,
    ) as client:  # fmt: skip
        await client.asset_overview()
        sim.skew_ms += server_step_ms
        client_clock.start_ms += client_step_ms
        sim.latency = 0.02  # measured again with a longer round trip: it still counts
        until = sim.server_ms() + 7_000
        sim.inject(Fault.rate_limited(until))
        await client.asset_overview()
    balances = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert [(r.code, r.injected) for r in balances] == [(0, False), (None, True), (0, False)]
    assert 0 <= balances[-1].server_ms - until <= held_longer_ms


async def test_a_disabled_period_over_by_the_time_its_answer_is_read_holds_nothing_longer(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, clock: LoopClock
) -> None:
    # The period ends as its answer comes (a slow answer, or BingX's end rounded): the
    # UID is held while the clock is measured, not a whole attempt's deadline.
    client = make_client(key, uid=key.uid)
    await client.asset_overview()
    sim.inject(Fault.rate_limited(sim.server_ms() - 1000))
    started = clock.monotonic()
    await client.asset_overview()
    assert clock.monotonic() - started < 2.0
    balances = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert [(r.code, r.injected) for r in balances] == [(0, False), (None, True), (0, False)]


async def test_a_disabled_period_is_read_on_the_last_offset_when_the_clock_cannot_be_read(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    # Measuring again after the refusal fails: the offset measured before still stands
    # (only a timestamp error proves it wrong), not the local clock 20 s off.
    sim.skew_ms = -20_000
    client = make_client(key, uid=key.uid)
    await client.asset_overview()
    sim.inject(Fault.http(503), path=SERVER_TIME_PATH)
    until = sim.server_ms() + 7_000
    sim.inject(Fault.rate_limited(until))
    await client.asset_overview()
    balances = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert [(r.code, r.injected) for r in balances] == [(0, False), (None, True), (0, False)]
    assert 0 <= balances[-1].server_ms - until <= 50


@pytest.mark.parametrize(
    ("server_step_ms", "disabled_for"),
    [pytest.param(0, 5.0, id="same-clock"), pytest.param(-3000, 2.0, id="over-by-our-clock")],
)
async def test_no_key_of_a_disabled_uid_goes_while_the_clock_is_measured(
    sim: BingXSimulator, make_client: MakeClient, server_step_ms: int, disabled_for: float
) -> None:
    # The refusal's end is read on a clock measured after it came; the UID's gate closes
    # before that measurement, not after, or another key goes in the meantime: on the
    # clock as it stands, and for the measurement's deadline where that clock says the
    # period is over (it stepped: the answer says it is not).
    first, second = (make_client(sim.add_key(uid=1004), uid=1004) for _ in range(2))
    await asyncio.gather(first.asset_overview(), second.asset_overview())
    sim.skew_ms += server_step_ms  # within recvWindow: no timestamp error tells of it
    sim.disable(1004, disabled_for)
    sim.inject(Fault.slow(1.0), path=SERVER_TIME_PATH)

    async def a_moment_later() -> None:
        await asyncio.sleep(0.2)  # the first key's refusal has come; the clock is measured
        await second.asset_overview()

    await asyncio.gather(first.asset_overview(), a_moment_later())
    assert len([r for r in sim.requests if r.while_disabled]) == 1
    assert_nothing_sent_into_a_known_disabled_period(sim.requests)


async def test_a_disabled_period_that_starts_mid_fan_out(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock, jitter=0.01)
    keys = [sim.add_key(uid=1 + n % 3) for n in range(45)]  # 15 keys on each of 3 UIDs
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", str(k.uid)) for n, k in enumerate(keys)
    ]

    async def disable_uid_2() -> None:
        await asyncio.sleep(1.5)
        sim.disable(2, 5.0)

    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        _, results = await asyncio.gather(disable_uid_2(), pool.gather())
    assert all(r.ok for r in results)
    during = [r for r in sim.requests if r.while_disabled]
    assert 1 <= len(during) <= 5  # those already on their way when the first answer came
    assert_nothing_sent_into_a_known_disabled_period(sim.requests)
    assert sim.rejections == during  # nothing else was refused


async def test_a_disabled_period_longer_than_max_wait_fails_only_that_uid(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock)
    keys = [sim.add_key(uid=1 + n % 2) for n in range(10)]
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", str(k.uid)) for n, k in enumerate(keys)
    ]
    until = sim.disable(2, 600.0)
    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        results = await pool.gather()
    by_uid = {
        uid: [r for r, k in zip(results, keys, strict=True) if k.uid == uid] for uid in (1, 2)
    }
    assert all(r.ok for r in by_uid[1])
    assert all(isinstance(r.error, RateLimitError) for r in by_uid[2])
    assert all(
        r.error.unblock_at_ms is not None and abs(r.error.unblock_at_ms - until) <= 50
        for r in by_uid[2]
    )  # type: ignore[union-attr]
    assert len([r for r in sim.requests if r.uid == 2 and r.path == ASSET_OVERVIEW_PATH]) == 1


# -- _client.py's refusal policy: what mutmut's run over it found unpinned ----------------
# Each says what the user reads or sees happen; each was checked against its mutant by hand.


def overview_requests(sim: BingXSimulator) -> list[ReceivedRequest]:
    return [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]


_BARE_100410 = msgspec.json.encode({"code": 100410, "msg": "rate limited", "data": {}})


@pytest.mark.parametrize(
    ("fault", "max_wait", "said"),
    [
        pytest.param(
            Fault.http(429), 10,
            "BingX found the window of this IP (local) full (HTTP 429) until "
            "2026-01-01T00:00:10+00:00 (10.0 s from now): its requests wait until then",
            id="429",  # 10 s is within a max_wait of 10 s: the slack is not counted
        ),
        pytest.param(
            Fault.http(418), 60,
            "BingX blocked this IP (local) (HTTP 418) until 2026-01-01T00:05:00+00:00 "
            "(300.0 s from now): longer than max_wait (60 s), so calls fail until then",
            id="418",
        ),
        pytest.param(
            Fault.rate_limited(), 60,
            "BingX found the window of UID 1001 full of requests not sent here (code 100410) "
            "until 2026-01-01T00:00:01+00:00 (1.0 s from now): its requests wait until then",
            id="bare-100410",
        ),
        pytest.param(
            # BingX's code says the UID's window, whatever a header says of the IP's.
            Fault(content=_BARE_100410, headers=(("Retry-After", "30"),)), 60,
            "BingX found the window of UID 1001 full of requests not sent here (code 100410) "
            "until 2026-01-01T00:00:01+00:00 (1.0 s from now): its requests wait until then",
            id="bare-100410-with-retry-after",
        ),
        pytest.param(
            Fault.http(429, retry_after=86_400), 60,
            "BingX asked this IP (local) to wait 86400 s (HTTP 429) until "
            "2026-01-02T00:00:00+00:00 (86400.0 s from now): longer than max_wait (60 s), "
            "so calls fail until then",
            id="retry-after-a-day",  # a day is believed as it is
        ),
        pytest.param(
            Fault.http(429, retry_after=1e300), 60,
            "BingX asked this IP (local) to wait 1e+300 s, believed for a day at most "
            "(HTTP 429) until 2026-01-02T00:00:00+00:00 (86400.0 s from now): longer than "
            "max_wait (60 s), so calls fail until then",
            id="retry-after-garbled",
        ),
    ],
)  # fmt: skip
async def test_a_refusal_for_rate_says_what_was_full_how_long_and_what_happens_next(
    sim: BingXSimulator,
    make_client: MakeClient,
    key: SimKey,
    limiter: RateLimiter,
    fault: Fault,
    max_wait: float,
    said: str,
) -> None:
    client = make_client(key, uid=key.uid, max_retries=0, max_wait=max_wait)
    sim.inject(fault)
    with pytest.raises(RateLimitError) as refused:
        await client.asset_overview()
    assert str(refused.value) == said
    ip_paused = await limiter.gate_remaining(limiter.scope(str(key.uid), "/").ip_gate)
    assert (ip_paused > 0) is ("this IP" in said and "window" not in said)


@pytest.mark.parametrize(
    ("server_step_ms", "held"),
    [
        pytest.param(0, 5.01, id="same-clock"),
        # BingX's clock is 3 s ahead of what the last offset says: read on the old offset
        # the period has 8 s left, and the gate closed for that cannot be shortened.
        pytest.param(3000, 7.01, id="server-clock-ahead"),
    ],
)
async def test_a_disabled_period_says_how_long_the_uid_is_held_once_the_clock_is_measured(
    sim: BingXSimulator,
    make_client: MakeClient,
    key: SimKey,
    clock: LoopClock,
    server_step_ms: int,
    held: float,
) -> None:
    # The measurement after the refusal takes 1 s (its round trip's half is counted as
    # uncertainty, so the 5 s period reads as 5 s from its end); the seconds said are
    # those the UID's gate holds from then, the loop's clock far from 0 by then.
    client = make_client(key, uid=key.uid, max_retries=0)
    await client.asset_overview()
    await asyncio.sleep(100.0)
    sim.skew_ms += server_step_ms  # within recvWindow: no timestamp error tells of it
    sim.inject(Fault.slow(1.0), path=SERVER_TIME_PATH)
    sim.disable(key.uid, 5.0)
    with pytest.raises(RateLimitError, match=rf"\({held:.1f} s from now\): its requests wait"):
        await client.asset_overview()
    measured = clock.monotonic()
    await client.asset_overview()
    assert overview_requests(sim)[-1].arrived - measured == pytest.approx(held)


async def test_a_held_key_says_when_it_was_refused_and_how_long_is_left(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, clock: LoopClock
) -> None:
    client = make_client(key, uid=key.uid, max_retries=0)
    await client.asset_overview()
    await asyncio.sleep(40.0)
    sim.inject(Fault.answer(100413, "Incorrect apiKey"))
    with pytest.raises(AuthenticationError):
        await client.asset_overview()
    await asyncio.sleep(59.5)  # the first hold is 60 s
    with pytest.raises(AuthenticationError) as held:
        await client.asset_overview()
    assert str(held.value) == (
        "not sent: this key was refused with code 100413 at 2026-01-01T00:00:40+00:00; "
        "retrying it at 2026-01-01T00:01:40+00:00 (0.5 s from now)"
    )


async def test_a_key_held_by_a_gate_with_no_code_says_another_process_refused_it(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, limiter: RateLimiter
) -> None:
    # A key gate with no closure recorded (closed by an older version): the type and the
    # code are unknown, and the message says what is.
    client = make_client(key, uid=key.uid)
    await limiter.close_gate(key_gate(key.api_key, key.secret_key.encode()), 30.0)
    with pytest.raises(APIError) as held:
        await client.asset_overview()
    assert type(held.value) is APIError and held.value.code is None
    assert str(held.value) == (
        "not sent: BingX refused this key as it is (its key, secret, whitelist or "
        "permission) in another process sharing this limiter; retrying it at "
        "2026-01-01T00:00:30+00:00 (30.0 s from now)"
    )
    assert overview_requests(sim) == []


async def test_a_lost_lookup_then_a_uid_found_by_another_client_still_lets_calls_succeed(
    sim: BingXSimulator, key: SimKey
) -> None:
    # The lost lookup is remembered under the lookup's path; the overview's success, with
    # the UID another client of the key found meanwhile, forgives that path's losses,
    # and there are none.
    http, cache = sim.http_client(), default_uid_cache_path()
    limiter = RateLimiter(clock=sim.clock)
    first = AssetsClient(
        key.api_key, key.secret_key, http_client=http, limiter=limiter, uid_cache=cache,
        max_retries=0,
    )  # fmt: skip
    sim.inject(Fault.timeout(), path=UID_PATH)
    with pytest.raises(APITimeoutError):
        await first.asset_overview()
    async with AssetsClient(
        key.api_key, key.secret_key, http_client=http, limiter=limiter, uid_cache=cache
    ) as second:
        await second.asset_overview()
    overview = await first.asset_overview()
    assert overview.total > 0
    await first.aclose()
    await http.aclose()


async def test_bare_100410s_back_off_in_periods_of_the_uid_window_doubling_to_64(
    clock: LoopClock,
) -> None:
    # A UID window of 0.5 s (not the default 1 s, where one period times n is n): the
    # first refusal fills it, each next one closes the UID for 2**(n-1) periods, up to 64.
    # The key is known good, so that its nine refusals fit in the UID's error budget.
    limits = RateLimits(per_uid=Rate(5, 0.5))
    sim = BingXSimulator(clock=clock, limits=limits)
    key = sim.add_key(uid=1005)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, uid_cache=verified_earlier(key.api_key, 1005),
        http_client=sim.http_client(), limiter=RateLimiter(limits, clock=clock),
        max_retries=9,
    ) as client:  # fmt: skip
        sim.inject(*[Fault.rate_limited()] * 9)
        await client.asset_overview()
        assert client.limiter.stats.rejections == 9  # each counted, as metrics show them
    sent = [r.arrived for r in overview_requests(sim)]
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    # Within 5 ms: the gates end on whole milliseconds of the server clock.
    assert gaps == pytest.approx([0.5 + BOUNDARY, 1, 2, 4, 8, 16, 32, 32, 32], abs=0.005)


async def test_a_full_rate_header_holds_the_uid_until_it_expires_and_says_so(
    clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    # BingX's header says the UID's window is full for 5 s more, longer than our 1 s
    # window knows of: the UID is held until then and 10 ms more, and the warning says
    # what the header said and what the client does.
    sim = BingXSimulator(clock=clock, rate_limit_headers=False)
    key = sim.add_key(uid=1006)
    expire = sim.server_ms() + 5_000
    body = msgspec.json.encode({"code": 0, "data": [{"accountType": "sopt", "usdtBalance": "1"}]})
    sim.inject(
        Fault(content=body, headers=(
            ("X-RateLimit-Requests-Remain", "0"), ("X-RateLimit-Requests-Expire", str(expire)),
        ))
    )  # fmt: skip
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, verify_uids=False, uid_cache=False,
        http_client=sim.http_client(), limiter=RateLimiter(clock=clock),
    ) as client:  # fmt: skip
        await client.asset_overview()
        await client.asset_overview()
    _, second = overview_requests(sim)
    assert second.server_ms - expire == 10
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (
        "BingX's rate headers say the window of UID 1006 is full until "
        f"2026-01-01T00:00:05+00:00 (X-RateLimit-Requests-Expire: {expire}, 5.0 s from now): "
        "holding UID 1006 until 2026-01-01T00:00:05+00:00 (5.0 s)"
    )


async def test_a_timestamp_error_while_bingx_time_fails_is_retried_at_once_on_its_own_time(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, clock: LoopClock
) -> None:
    # BingX's clock jumps 90 s and its time endpoint fails: the refusal proves the offset
    # wrong, so it is dropped and the refusal's own time stands in; the retry goes at
    # once (the corrected clock is the whole remedy) and is accepted.
    client = make_client(key, uid=key.uid)
    await client.asset_overview()
    sim.skew_ms += 90_000
    sim.inject(Fault.http(503), path=SERVER_TIME_PATH)
    started = clock.monotonic()
    await client.asset_overview()
    assert [r.code for r in overview_requests(sim)] == [0, 100421, 0]
    assert clock.monotonic() - started < 0.1


async def test_an_error_budget_that_frees_within_max_wait_is_not_retried(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, clock: LoopClock
) -> None:
    # A full error budget is never waited for, however soon it frees: its errors are
    # what a disabled UID is made of.
    client = make_client(key, uid=key.uid, max_retries=3)
    sim.inject(*[Fault.answer(100400, "Invalid parameters")] * 10)
    for _ in range(10):
        with pytest.raises(APIError):
            await client.asset_overview()
    await asyncio.sleep(475.0)  # the first error frees in 5 s, within max_wait
    with pytest.raises(ErrorBudgetError):
        await client.asset_overview()
    assert client.limiter.stats.retries == 0


class _Attempts:
    """An observer that keeps what each attempt ended with."""

    def __init__(self) -> None:
        self.ended: list[type[BaseException] | None] = []

    def acquired(self, waited: float) -> None:
        pass

    def settled(self, seconds: float) -> None:
        pass

    def gate_closed(self, gate: str, seconds: float) -> None:
        pass

    def attempted(self, error: BaseException | None) -> None:
        self.ended.append(None if error is None else type(error))

    def read(self, label: str, overview: object) -> None:
        pass


@pytest.mark.parametrize(
    ("fault", "first"), [(Fault.http(503), ServerBusyError), (Fault.rate_limited(), RateLimitError)]
)
async def test_observers_are_told_how_each_attempt_ended(
    sim: BingXSimulator,
    make_client: MakeClient,
    key: SimKey,
    limiter: RateLimiter,
    fault: Fault,
    first: type[BaseException],
) -> None:
    # Metrics count attempts by outcome: a retried call is two attempts, not one read.
    attempts = _Attempts()
    limiter.observers.append(attempts)
    client = make_client(key, uid=key.uid)
    sim.inject(fault)
    await client.asset_overview()
    assert attempts.ended == [first, None]
    assert [r.injected for r in overview_requests(sim)] == [True, False]


async def test_observed_clients_of_two_uids_each_have_their_uids_window(
    sim: BingXSimulator, make_client: MakeClient, limiter: RateLimiter, clock: LoopClock
) -> None:
    # Watching attempts changes nothing of how they are limited: ten calls of each UID
    # take two of its windows, side by side, not four of one.
    limiter.observers.append(_Attempts())
    clients = [make_client(sim.add_key(uid=uid), uid=uid) for uid in (2001, 2002)]
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(10)))
    assert clock.monotonic() < 1.5
    assert sim.rejections == []


@pytest.mark.parametrize("remain", ["3", None])
async def test_a_rate_header_with_requests_left_holds_nothing(
    clock: LoopClock, remain: str | None
) -> None:
    # Only "none left" (0) with an expiry holds the UID: an expiry alone, or with
    # requests left, says the window has room. The answer is an error, whose headers
    # are read as a success's are.
    sim = BingXSimulator(clock=clock, rate_limit_headers=False)
    key = sim.add_key(uid=1007)
    expire = str(sim.server_ms() + 5_000)
    headers = (("X-RateLimit-Requests-Expire", expire),)
    if remain is not None:
        headers += (("X-RateLimit-Requests-Remain", remain),)
    body = msgspec.json.encode({"code": 100400, "msg": "Invalid parameters", "data": {}})
    sim.inject(Fault(content=body, headers=headers))
    async with AssetsClient(
        key.api_key, key.secret_key, uid=key.uid, verify_uids=False, uid_cache=False,
        http_client=sim.http_client(), limiter=RateLimiter(clock=clock),
    ) as client:  # fmt: skip
        with pytest.raises(APIError):
            await client.asset_overview()
        await client.asset_overview()
    first, second = overview_requests(sim)
    assert second.arrived - first.arrived < 0.1


async def test_a_probe_refused_for_rate_is_retried_after_the_uids_window(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    # BingX's time endpoint fails, so the first request goes alone to learn the clock
    # (the probe); refused for rate, it is a refusal like any other.
    sim.inject(Fault.http(503), path=SERVER_TIME_PATH)
    sim.inject(Fault.rate_limited())
    await make_client(key, uid=key.uid).asset_overview()
    assert [(r.code, r.injected) for r in overview_requests(sim)] == [(None, True), (0, False)]


async def test_a_probe_counts_in_its_uids_window(clock: LoopClock) -> None:
    # The first request of one key goes alone to learn the clock (the probe), and it and
    # that key's later calls count in their UID's window, which the UID's other key
    # shares: ten calls of two keys fill two of its windows, none refused. Without rate
    # headers, which would correct the count from BingX's.
    sim = BingXSimulator(clock=clock, rate_limit_headers=False)
    keys = [sim.add_key(uid=1008) for _ in range(2)]
    sim.inject(Fault.http(503), path=SERVER_TIME_PATH)
    http, limiter = sim.http_client(), RateLimiter(clock=clock)
    clients = [
        AssetsClient(
            k.api_key,
            k.secret_key,
            uid=k.uid,
            verify_uids=False,
            uid_cache=False,
            http_client=http,
            limiter=limiter,
        )
        for k in keys
    ]
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(5)))
    for client in clients:
        await client.aclose()
    await http.aclose()
    assert sim.rejections == []
    assert sim.peak(uid=1008) == 5


async def test_after_a_refused_probe_the_time_endpoint_is_asked_again_first(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey, limiter: RateLimiter
) -> None:
    # The state after BingX's time endpoint failed and a probe was refused for its
    # timestamp with no time in its answer: once the hold is over, the endpoint (which
    # costs no error budget) may answer, and is asked before another probe is risked.
    limiter.server_clock.attempted = True
    limiter.server_clock.probe_refused()
    await asyncio.sleep(15.0)  # the first hold
    await make_client(key, uid=key.uid).asset_overview()
    assert [r.path for r in sim.requests] == [SERVER_TIME_PATH, ASSET_OVERVIEW_PATH]
