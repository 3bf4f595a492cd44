"""The error budget per UID, keys that back off, and the clock from every answer (issue 18,
parts 1 and 2), against the simulator's error penalty: more than 20 error replies in
480 s disable the UID for five minutes."""

from __future__ import annotations

import asyncio
import datetime
import itertools
from collections import Counter
from pathlib import Path

import pytest

from bingx_assets import (
    APIConnectionError,
    APIError,
    AssetsClient,
    AssetsPool,
    AuthenticationError,
    ConfigurationError,
    Credentials,
    DecodeError,
    ErrorBudgetError,
    HostBackend,
    InvalidArgumentError,
    KeyFailed,
    MemoryBackend,
    PermissionDeniedError,
    Rate,
    RateLimiter,
    RateLimitError,
    RateLimits,
    ServerBusyError,
    TimestampError,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH
from bingx_assets._limiter import Blocked, LimiterBackend
from bingx_assets._refusals import refusal_of
from bingx_assets.testing import BingXSimulator, Fault, LoopClock, ReceivedRequest, SimKey

from .conftest import verified_earlier

UID = 7001


def penalty_simulator(clock: LoopClock) -> BingXSimulator:
    return BingXSimulator(clock=clock, jitter=0.01, disable_seconds=300.0)


def creds(key: SimKey, label: str, *, secret: str | None = None) -> Credentials:
    return Credentials(key.api_key, secret or key.secret_key, label, str(key.uid))


def errors(requests: list[ReceivedRequest]) -> list[ReceivedRequest]:
    """Error replies the simulator counted against a UID (its own, not injected ones)."""
    return [r for r in requests if r.code not in (0, None) and not r.injected]


def most_errors_in_any_window(requests: list[ReceivedRequest], period: float = 480.0) -> int:
    times = sorted(r.arrived for r in errors(requests))
    return max(
        (sum(1 for t in times[i:] if t <= s + period) for i, s in enumerate(times)), default=0
    )


def bad_and_good_keys(sim: BingXSimulator) -> tuple[list[Credentials], set[str]]:
    good = [creds(sim.add_key(uid=UID), f"good{n}") for n in range(3)]
    wrong_secret = creds(sim.add_key(uid=UID), "wrong-secret", secret="not-the-secret")
    foreign = creds(sim.add_key(uid=UID, ip_whitelist=("127.9.9.9",)), "foreign-whitelist")
    return [*good, wrong_secret, foreign], {"wrong-secret", "foreign-whitelist"}


async def watch_rounds(pool: AssetsPool, rounds: int) -> list[tuple[object, ...]]:
    seen: list[tuple[object, ...]] = []
    async for snapshot in pool.watch(0.5):
        seen.append(snapshot.results)
        if len(seen) == rounds:
            break
    return seen


async def test_failing_keys_beside_good_ones_never_disable_their_uid(clock: LoopClock) -> None:
    sim = penalty_simulator(clock)
    credentials, bad = bad_and_good_keys(sim)
    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        rounds = await watch_rounds(pool, 60)
    assert [r for r in sim.requests if r.code == 100410 or r.while_disabled] == []
    for results in rounds:
        assert len(results) == len(credentials)  # every key, every round
        for result in results:
            assert result.ok == (result.label not in bad), result  # type: ignore[attr-defined]
    # Each bad key was sent once, then backed off (60 s: longer than the 30 s watched),
    # and every round after reported when it is tried again.
    assert Counter(r.code for r in errors(sim.requests)) == {100001: 1, 100419: 1}
    last = {r.label: r for r in rounds[-1]}  # type: ignore[attr-defined]
    wrong, foreign = last["wrong-secret"], last["foreign-whitelist"]
    assert isinstance(wrong.error, AuthenticationError)
    assert isinstance(foreign.error, PermissionDeniedError)
    assert "not sent: this key was refused with code 100001" in str(wrong.error)
    assert "retrying it at" in str(wrong.error)
    refused = next(r for r in errors(sim.requests) if r.code == 100001)
    assert isinstance(wrong.retry_at, datetime.datetime)
    assert wrong.retry_at.timestamp() == pytest.approx(refused.server_ms / 1000 + 60, abs=1.0)


async def test_a_key_backs_off_doubling_up_to_the_error_window_and_a_success_resets_it(
    clock: LoopClock,
) -> None:
    sim = penalty_simulator(clock)
    key = sim.add_key(uid=UID)
    # The balance endpoint's back-off, not the lookup's.
    cache = verified_earlier(key.api_key, UID)
    client = AssetsClient(
        key.api_key,
        "wrong",
        uid=UID,
        uid_cache=cache,
        http_client=sim.http_client(),
        limiter=RateLimiter(clock=clock),
    )
    sent_at: list[float] = []
    for _ in range(600):  # a call every second for ten minutes
        before = len(sim.requests)
        with pytest.raises(AuthenticationError):
            await client.asset_overview()
        if len([r for r in sim.requests[before:] if r.path == ASSET_OVERVIEW_PATH]):
            sent_at.append(clock.monotonic())
        await asyncio.sleep(1.0)
    gaps = [round(b - a) for a, b in itertools.pairwise(sent_at)]
    assert gaps == [60, 120, 240]  # sent at 0, 60, 180 and 420 s; next at 900 s
    assert most_errors_in_any_window(sim.requests) == 4  # alone, far from BingX's 20
    # A success (the right secret, the same key) resets the doubling.
    client._secret = key.secret_key.encode()
    await asyncio.sleep(480.0)
    assert (await client.asset_overview()).total > 0
    client._secret = b"wrong"
    with pytest.raises(AuthenticationError):
        await client.asset_overview()
    assert client.retry_at(Exception()) is not None
    assert client._backoff.holds_until - clock.monotonic() == pytest.approx(60.0, abs=0.1)


async def test_two_processes_sharing_a_backend_add_up_and_share_the_back_off(
    clock: LoopClock,
) -> None:
    sim = penalty_simulator(clock)
    credentials, bad = bad_and_good_keys(sim)
    backend = MemoryBackend(clock)
    pools = [
        AssetsPool(
            credentials,
            http_client=sim.http_client(),
            limiter=RateLimiter(clock=clock, backend=backend),
        )
        for _ in range(2)
    ]
    async with pools[0], pools[1]:
        both = await asyncio.gather(*(watch_rounds(pool, 60) for pool in pools))
    assert [r for r in sim.requests if r.code == 100410 or r.while_disabled] == []
    for rounds in both:
        for results in rounds:
            assert len(results) == len(credentials)
            assert {r.label for r in results if not r.ok} == bad  # type: ignore[attr-defined]
    # One process's refusal holds the key in the other too: in the first minute each bad
    # key is sent at most once per process (both first rounds may race), and only then.
    first_minute = [r for r in errors(sim.requests) if r.arrived < 60.0]
    assert set(Counter(r.code for r in first_minute)) == {100001, 100419}
    assert max(Counter(r.code for r in first_minute).values()) <= 2
    assert max(r.arrived for r in first_minute) < 0.5


def shared_backend(kind: str, clock: LoopClock, tmp_path: Path) -> LimiterBackend:
    if kind == "memory":
        return MemoryBackend(clock)
    return HostBackend(tmp_path / "limits.sqlite3", clock=clock)


@pytest.mark.parametrize("store", ["memory", "host"])
@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (100001, AuthenticationError),
        (100419, PermissionDeniedError),
        (100004, PermissionDeniedError),
    ],
)
async def test_a_second_process_reports_the_refusal_of_the_first(
    clock: LoopClock, tmp_path: Path, store: str, code: int, error_type: type[APIError]
) -> None:
    sim = penalty_simulator(clock)
    if code == 100001:
        key = sim.add_key(uid=UID)
        credentials = [creds(key, "bad", secret="not-the-secret")]
    elif code == 100419:
        credentials = [creds(sim.add_key(uid=UID, ip_whitelist=("127.9.9.9",)), "bad")]
    else:
        credentials = [creds(sim.add_key(uid=UID, can_read=False), "bad")]
    backend = shared_backend(store, clock, tmp_path)
    first, second = (
        AssetsPool(
            credentials,
            http_client=sim.http_client(),
            limiter=RateLimiter(clock=clock, backend=backend),
        )
        for _ in range(2)
    )
    async with first, second:
        [refused] = await first.gather()  # BingX's answer itself
        await asyncio.sleep(10.0)
        [elsewhere] = await second.gather()
        [here] = await first.gather()
    assert [r.code for r in errors(sim.requests)] == [code]  # sent once, by the first
    assert isinstance(refused, KeyFailed) and refused.retry_at is not None
    assert type(refused.error) is error_type and refused.error.code == code
    for result in (elsewhere, here):
        assert isinstance(result, KeyFailed) and result.retry_at is not None
        assert type(result.error) is error_type and result.error.code == code
        assert str(result.error).startswith(f"not sent: this key was refused with code {code} at ")
        assert result.retry_at.timestamp() == pytest.approx(refused.retry_at.timestamp(), abs=0.01)
    assert str(elsewhere.error) == str(here.error)  # type: ignore[union-attr]
    # The second learnt when the key was refused: it is a key with recent errors there too.
    assert second._clients[0]._backoff.suspect(clock.monotonic())
    await backend.aclose()


@pytest.mark.parametrize("store", ["memory", "host"])
async def test_the_back_off_doubles_across_processes_and_an_error_window_resets_it(
    clock: LoopClock, tmp_path: Path, store: str
) -> None:
    sim = penalty_simulator(clock)
    key = sim.add_key(uid=UID)
    cache = verified_earlier(key.api_key, UID)  # the balance endpoint's back-off
    backend = shared_backend(store, clock, tmp_path)
    processes = [
        AssetsClient(
            key.api_key,
            "wrong",
            uid=UID,
            uid_cache=cache,
            http_client=sim.http_client(),
            limiter=RateLimiter(clock=clock, backend=backend),
        )
        for _ in range(2)
    ]
    holds = []
    # Each is refused in its turn, just after the other's hold has ended: 60, 120, 240,
    # 480 (the error window) and 480 s, as one process alone would be held.
    for turn in range(5):
        client = processes[turn % 2]
        with pytest.raises(AuthenticationError, match=r"^BingX code 100001"):
            await client.asset_overview()
        holds.append(round(client._backoff.holds_until - clock.monotonic()))
        await asyncio.sleep(holds[-1] + 0.5)
    assert holds == [60, 120, 240, 480, 480]
    # An error window after the last hold ended, no refusal of the key is left in
    # BingX's error window either: it starts at one minute again.
    await asyncio.sleep(480.0)
    with pytest.raises(AuthenticationError, match=r"^BingX code 100001"):
        await processes[1].asset_overview()
    assert processes[1]._backoff.holds_until - clock.monotonic() == pytest.approx(60.0, abs=0.1)
    assert most_errors_in_any_window(sim.requests) <= 4
    await backend.aclose()


async def test_many_failing_keys_never_pass_the_budget(clock: LoopClock) -> None:
    sim = penalty_simulator(clock)
    good = [creds(sim.add_key(uid=UID), f"good{n}") for n in range(3)]
    bad = [creds(sim.add_key(uid=UID), f"bad{n}", secret="wrong") for n in range(25)]
    async with AssetsPool(
        [*good, *bad], http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        rounds = await watch_rounds(pool, 40)
    # 25 keys that can only fail would disable the UID in their first round (more than 20).
    assert [r for r in sim.requests if r.code == 100410 or r.while_disabled] == []
    assert most_errors_in_any_window(sim.requests) <= 10
    for results in rounds:
        assert len(results) == 28
    budget_refusals = [r.error for r in rounds[0] if isinstance(r.error, ErrorBudgetError)]  # type: ignore[attr-defined]
    assert budget_refusals
    assert "error budget" in str(budget_refusals[0]) and "not sent" in str(budget_refusals[0])


async def test_a_key_with_recent_errors_fails_at_once_and_the_good_keys_go_on(
    clock: LoopClock,
) -> None:
    limits = RateLimits(error_budget=Rate(4, 480.0), suspect_error_limit=2)
    sim = penalty_simulator(clock)
    good = creds(sim.add_key(uid=UID), "good")
    odd = creds(sim.add_key(uid=UID), "odd")
    limiter = RateLimiter(limits, clock=clock)
    async with AssetsPool([good, odd], http_client=sim.http_client(), limiter=limiter) as pool:
        # An error that says nothing about backing off (100400), twice for the odd key.
        for _ in range(2):
            sim.inject(Fault.answer(100400, "Invalid parameters"))
            with pytest.raises(InvalidArgumentError):
                await pool._clients[1].asset_overview()
        started = clock.monotonic()
        results = await pool.gather()
        assert clock.monotonic() - started < 1.0  # nobody waited minutes
    by_label = {r.label: r for r in results}
    assert by_label["good"].ok
    assert isinstance(by_label["odd"].error, ErrorBudgetError)
    assert "this key had an error reply" in str(by_label["odd"].error)
    assert by_label["odd"].retry_at is not None


async def test_a_success_gives_its_budget_slot_back_and_an_error_keeps_it(clock: LoopClock) -> None:
    limits = RateLimits(error_budget=Rate(2, 480.0), suspect_error_limit=2)
    sim = penalty_simulator(clock)
    key = sim.add_key(uid=UID)
    limiter = RateLimiter(limits, clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=UID, http_client=sim.http_client(), limiter=limiter
    ) as client:
        for _ in range(30):
            await client.asset_overview()
        scope = limiter.scope(str(UID), ASSET_OVERVIEW_PATH)
        free = await limiter.backend.try_acquire(scope, 1.0, 1.0)  # type: ignore[union-attr]
        assert not (isinstance(free, Blocked) and free.window.startswith("errors:"))
        for _ in range(2):
            sim.inject(Fault.answer(109999, "a code BingX added"))
        for _ in range(2):
            with pytest.raises(Exception, match="109999"):
                await client.asset_overview()
    blocked = await limiter.backend.try_acquire(scope, 1.0, 1.0)  # type: ignore[union-attr]
    assert isinstance(blocked, Blocked) and blocked.window == f"errors:{UID}:{ASSET_OVERVIEW_PATH}"


async def test_a_cancelled_request_keeps_its_slot_until_its_horizon(clock: LoopClock) -> None:
    limits = RateLimits(error_budget=Rate(1, 480.0), suspect_error_limit=1)
    sim = penalty_simulator(clock)
    key = sim.add_key(uid=UID)
    limiter = RateLimiter(limits, clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=UID, http_client=sim.http_client(), limiter=limiter
    ) as client:
        await client.asset_overview()  # the clock measured, the scope made
        sim.inject(Fault.slow(5.0))
        call = asyncio.create_task(client.asset_overview())
        await asyncio.sleep(1.0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        scope = limiter.scope(str(UID), ASSET_OVERVIEW_PATH)
        blocked = await limiter.backend.try_acquire(scope, 1.0, 1.0)  # type: ignore[union-attr]
        assert isinstance(blocked, Blocked)  # it may yet arrive and be an error
        assert blocked.window.startswith("errors:")


def test_the_refusal_table() -> None:
    def row(exc: Exception) -> tuple[str, bool, bool, bool]:
        found = refusal_of(exc)  # type: ignore[arg-type]
        return found.retry, found.key_backs_off, found.marks_key, found.counts

    for exc, pauses in [
        (RateLimitError(100410, "rate limited", status_code=200), "uid window"),
        (RateLimitError(100410, "", status_code=200, unblock_at_ms=1), "uid until its time"),
        (RateLimitError(None, "", status_code=429, retry_after=2.0), "ip as asked"),
        (RateLimitError(None, "", status_code=403, retry_after=2.0), "ip as asked"),
        (RateLimitError(None, "", status_code=429), "ip windows"),
        (RateLimitError(None, "", status_code=418), "ip for a ban"),
        (RateLimitError(None, "", status_code=403), "ip for a ban"),
    ]:
        assert row(exc) == ("within max_wait", False, False, True)
        assert refusal_of(exc).pauses == pauses
    assert refusal_of(AuthenticationError(100001, "", status_code=200)).pauses == "nothing"
    assert row(ErrorBudgetError(None, "not sent", status_code=None)) == ("no", False, False, True)
    for code in (100001, 100412, 100413):
        assert row(AuthenticationError(code, "", status_code=200)) == ("no", True, True, True)
    for code in (100419, 100004):
        assert row(PermissionDeniedError(code, "", status_code=200)) == ("no", True, True, True)
    assert row(TimestampError(100421, "", status_code=200)) == ("once", False, False, True)
    assert row(ServerBusyError(100500, "", status_code=200)) == (
        "with back-off",
        False,
        False,
        False,
    )
    assert row(DecodeError("cut", status_code=200, excerpt="")) == (
        "with back-off",
        False,
        False,
        True,
    )
    assert row(DecodeError("html", status_code=404, excerpt="")) == ("no", False, True, True)
    assert row(APIConnectionError("reset")) == ("with back-off", False, False, True)
    assert row(InvalidArgumentError(100400, "", status_code=200)) == ("no", False, True, True)


@pytest.mark.parametrize(
    "limits",
    [
        {"error_budget": (10, 480.0)},
        {"suspect_error_limit": 0},
        {"suspect_error_limit": 11},
        {"suspect_error_limit": True},
        {"error_budget": Rate(3, 480.0)},  # the default share, 5, is more than 3
    ],
)
def test_the_budget_is_validated(limits: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RateLimits(**limits)  # type: ignore[arg-type]


async def test_a_skewed_clock_with_the_time_endpoint_down_costs_one_error_per_uid(
    clock: LoopClock,
) -> None:
    sim = BingXSimulator(clock=clock, jitter=0.01, skew_ms=20_000)
    keys = [sim.add_key(uid=uid) for uid in (1, 2, 3) for _ in range(5)]
    sim.inject(*[Fault.http(503)] * 10, path=SERVER_TIME_PATH)
    credentials = [creds(k, f"k{n}") for n, k in enumerate(keys)]
    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        for _ in range(5):
            results = await pool.gather()
            assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert [r for r in sim.requests if r.path == SERVER_TIME_PATH and r.status == 200] == []
    timestamp_errors = Counter(r.uid for r in sim.requests if r.code == 100421)
    assert all(count <= 1 for count in timestamp_errors.values()), timestamp_errors
    assert sum(timestamp_errors.values()) >= 1  # the skew was real, and learnt from an answer


@pytest.mark.parametrize(
    ("date", "offset_ms"),
    [
        ("Thu, 01 Jan 2026 00:00:20 GMT", 20_500),  # the middle of the second it names
        ("Wed, 31 Dec 2025 23:59:40 GMT", -19_500),
    ],
)
async def test_a_date_header_gives_an_offset_trusted_to_a_second_plus_half_the_trip(
    date: str, offset_ms: int
) -> None:
    clock = LoopClock()  # its wall clock starts at 2026-01-01T00:00:00Z
    server_clock = RateLimiter(clock=clock).server_clock
    sent = clock.wall_ms()
    server_clock.observe_date({"date": date}, sent - 100, sent + 100)
    assert server_clock.offset_ms == offset_ms
    assert server_clock.uncertainty_ms == 1_100
    # A millisecond timestamp with a smaller uncertainty replaces it; a Date never
    # replaces a better sample.
    server_clock.observe(sent + 20_250, sent - 10, sent + 10)
    assert (server_clock.offset_ms, server_clock.uncertainty_ms) == (20_250, 10)
    server_clock.observe_date({"date": date}, sent, sent)
    assert (server_clock.offset_ms, server_clock.uncertainty_ms) == (20_250, 10)


@pytest.mark.parametrize(
    "date",
    ["", "yesterday", "Thu, 01 Jan 2026 00:00:20", "Thu, 32 Jan 2026 00:00:20 GMT",
     "Thu, 01 Jan 99999 00:00:20 GMT", "x" * 10_000, "Thu, 01 Jan 2026 99:99:99 GMT"],
)  # fmt: skip
def test_an_unreadable_date_header_is_no_sample(date: str) -> None:
    server_clock = RateLimiter(clock=LoopClock()).server_clock
    server_clock.observe_date({"date": date}, 0, 0)
    server_clock.observe_date({}, 0, 0)
    assert not server_clock.measured


async def test_a_clock_measurement_cut_off_by_cancellation_is_tried_again(
    clock: LoopClock,
) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=UID)
    sim.inject(Fault.slow(5.0), path=SERVER_TIME_PATH)
    limiter = RateLimiter(clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=UID, http_client=sim.http_client(), limiter=limiter
    ) as client:
        call = asyncio.create_task(client.asset_overview())
        await asyncio.sleep(1.0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not limiter.server_clock.attempted
        await client.asset_overview()
    assert limiter.server_clock.attempted and limiter.server_clock.measured


async def test_keys_without_errors_wait_for_answers_in_flight_rather_than_fail(
    clock: LoopClock,
) -> None:
    # A budget of 2 with slow answers: the third and later requests find it held by
    # requests in flight, wait for their answers (successes give the slots back), and
    # are sent as soon as one arrives.
    limits = RateLimits(error_budget=Rate(2, 480.0), suspect_error_limit=1)
    sim = BingXSimulator(clock=clock, latency=0.25)
    keys = [sim.add_key(uid=UID) for _ in range(6)]
    for key in keys:
        cache = verified_earlier(key.api_key, UID)
    limiter = RateLimiter(limits, clock=clock)
    async with AssetsPool(
        [creds(k, f"k{n}") for n, k in enumerate(keys)],
        uid_cache=cache,
        http_client=sim.http_client(),
        limiter=limiter,
    ) as pool:
        started = clock.monotonic()
        results = await pool.gather()
        elapsed = clock.monotonic() - started
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    sent = [round(r.sent - started, 3) for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    # After the clock measurement's round trip: pairs, each sent when the last pair's
    # answers came; the sixth waits for the UID's own window (five answered since 1.0 s).
    assert sent == [0.5, 0.5, 1.0, 1.0, 1.5, 2.001]
    assert elapsed == pytest.approx(2.501, abs=0.01)


async def test_a_key_gate_names_neither_the_key_nor_its_secret_and_a_new_secret_is_a_new_key(
    clock: LoopClock,
) -> None:
    sim = penalty_simulator(clock)
    key = sim.add_key(uid=UID)
    backend = MemoryBackend(clock)
    limiter = RateLimiter(clock=clock, backend=backend)
    http = sim.http_client()
    wrong = AssetsClient(key.api_key, "not-the-secret", uid=UID, http_client=http, limiter=limiter)
    with pytest.raises(AuthenticationError):
        await wrong.asset_overview()
    closed = [name for name in backend._gates if name.startswith("gate:key:")]
    assert len(closed) == 1
    assert key.api_key not in closed[0] and "not-the-secret" not in closed[0]
    assert key.secret_key not in closed[0]
    fixed = AssetsClient(key.api_key, key.secret_key, uid=UID, http_client=http, limiter=limiter)
    assert (await fixed.asset_overview()).total > 0  # sent at once
    with pytest.raises(AuthenticationError, match="not sent"):
        await wrong.asset_overview()
    await http.aclose()
