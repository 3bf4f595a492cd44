"""The error budget per UID, keys that back off, and the clock from every answer (issue 18,
parts 1 and 2), against the simulator's error penalty: more than 20 error replies in
480 s disable the UID for five minutes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import email.utils
import itertools
import re
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
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH, UID_PATH
from bingx_assets._limiter import Blocked, GateClosed, LimiterBackend
from bingx_assets._refusals import refusal_of
from bingx_assets._uid_cache import default_uid_cache_path
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


def new_keys_with_a_wrong_secret(sim: BingXSimulator, count: int) -> list[Credentials]:
    return [creds(sim.add_key(uid=UID), f"bad{n}", secret="wrong") for n in range(count)]


def good_keys_verified_earlier(sim: BingXSimulator, count: int) -> tuple[list[Credentials], Path]:
    """`count` good keys of UID whose UIDs this machine's cache holds (so known to be
    good before their first answer), and the cache's path."""
    keys = [sim.add_key(uid=UID) for _ in range(count)]
    cache = default_uid_cache_path()
    for key in keys:
        verified_earlier(key.api_key, UID, cache)
    return [creds(k, f"good{n}") for n, k in enumerate(keys)], cache


def assert_every_good_key_read_every_round(
    rounds: list[tuple[object, ...]], keys: int, good: list[Credentials]
) -> None:
    labels = {c.label for c in good}
    for results in rounds:
        assert len(results) == keys  # every key, every round
        for result in results:
            assert result.ok == (result.label in labels), result  # type: ignore[attr-defined]


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
    assert second._clients[0]._backoff.known_good is False
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
    # 25 new keys with a wrong secret listed before the UID's good ones, their uids
    # trusted (no lookup): in their first round they reach the balance endpoint first.
    sim = penalty_simulator(clock)
    bad = new_keys_with_a_wrong_secret(sim, 25)
    good, cache = good_keys_verified_earlier(sim, 3)
    async with AssetsPool(
        [*bad, *good],
        uid_cache=cache,
        verify_uids=False,
        http_client=sim.http_client(),
        limiter=RateLimiter(clock=clock),
    ) as pool:
        rounds = await watch_rounds(pool, 40)
    # 25 keys that can only fail would disable the UID in their first round (more than 20).
    assert [r for r in sim.requests if r.code == 100410 or r.while_disabled] == []
    # Keys not known to be good never spend more than their share (5 of 10).
    assert most_errors_in_any_window(sim.requests) == 5
    assert_every_good_key_read_every_round(rounds, 28, good)
    budget_refusals = [r.error for r in rounds[0] if isinstance(r.error, ErrorBudgetError)]  # type: ignore[attr-defined]
    assert len(budget_refusals) == 20
    refusal = str(budget_refusals[0])
    assert refusal.startswith("not sent: this key is not known to be good")
    assert (
        "is full of error replies (or of requests never answered, each maybe one) until" in refusal
    )
    assert "keys known to be good go on with the rest" in refusal


@pytest.mark.parametrize("shared", [False, True], ids=["one-pool", "two-pools-one-host-store"])
async def test_new_failing_keys_ahead_of_good_ones_cost_the_good_ones_no_read(
    clock: LoopClock, tmp_path: Path, shared: bool
) -> None:
    sim = penalty_simulator(clock)
    bad = new_keys_with_a_wrong_secret(sim, 10)
    good, cache = good_keys_verified_earlier(sim, 3)
    backend = HostBackend(tmp_path / "limits.sqlite3", clock=clock) if shared else None
    pools = [
        AssetsPool(
            [*bad, *good],
            uid_cache=cache,
            verify_uids=False,
            http_client=sim.http_client(),
            limiter=RateLimiter(clock=clock, backend=backend),
        )
        for _ in range(2 if shared else 1)
    ]
    async with contextlib.AsyncExitStack() as stack:
        for pool in pools:
            await stack.enter_async_context(pool)
        watched = await asyncio.gather(*(watch_rounds(pool, 40) for pool in pools))
    if backend is not None:
        await backend.aclose()
    assert [r for r in sim.requests if r.code == 100410 or r.while_disabled] == []
    for rounds in watched:
        assert_every_good_key_read_every_round(rounds, 13, good)
    assert most_errors_in_any_window(sim.requests) == 5  # the new keys' share, in all


async def test_a_fresh_fan_out_of_new_good_keys_waits_for_its_answers_and_all_succeed(
    clock: LoopClock,
) -> None:
    # 16 keys new to this machine (trusted uids, no cache): each may use only the share of
    # keys not known to be good, which their own requests in flight fill; the others wait
    # for those answers (successes give the slots back) instead of failing.
    sim = BingXSimulator(clock=clock, latency=0.3, jitter=0.01)
    keys = [sim.add_key(uid=UID) for _ in range(16)]
    limiter = RateLimiter(clock=clock)
    async with AssetsPool(
        [creds(k, f"k{n}") for n, k in enumerate(keys)],
        verify_uids=False,
        http_client=sim.http_client(),
        limiter=limiter,
    ) as pool:
        results = await pool.gather()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert sim.rejections == []
    assert limiter.stats.waits > 0


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
    assert "this key is not known to be good" in str(by_label["odd"].error)
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


async def give_up_on_a_read_once_sent(client: AssetsClient, sim: BingXSimulator) -> None:
    """A read whose answer takes 5 s, cancelled by its caller 1 s after it left."""
    sim.inject(Fault.slow(5.0))
    call = asyncio.create_task(client.asset_overview())
    await asyncio.sleep(1.0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_request_whose_caller_gave_up_is_still_settled_by_its_answer(
    clock: LoopClock,
) -> None:
    """Cancelling a call (a caller's own timeout, Ctrl-C, SIGTERM) after its request left
    must not leave its slot counting as a possible error for the whole error window: the
    exchange finishes in the background and its answer settles it."""
    limits = RateLimits(error_budget=Rate(1, 480.0), suspect_error_limit=1)
    sim = penalty_simulator(clock)
    key = sim.add_key(uid=UID)
    limiter = RateLimiter(limits, clock=clock)
    scope = limiter.scope(str(UID), ASSET_OVERVIEW_PATH)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=UID, http_client=sim.http_client(), limiter=limiter
    ) as client:
        await client.asset_overview()  # the clock measured, the scope made
        await give_up_on_a_read_once_sent(client, sim)
        blocked = await limiter.backend.try_acquire(scope, 1.0, 1.0)  # type: ignore[union-attr]
        assert isinstance(blocked, Blocked)  # still in flight: it may yet be an error
        assert blocked.window.startswith("errors:")
        await asyncio.sleep(4.5)  # its answer, a success, has come
        permit = await limiter.backend.try_acquire(scope, 1.0, 1.0)  # type: ignore[union-attr]
        assert not isinstance(permit, Blocked | GateClosed)
        await permit.settle(answered=True, succeeded=True)
    reads = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert len(reads) == 2 and all(r.code == 0 for r in reads)


async def test_closing_a_client_waits_for_the_requests_its_callers_gave_up(
    clock: LoopClock,
) -> None:
    limits = RateLimits(error_budget=Rate(1, 480.0), suspect_error_limit=1)
    sim = penalty_simulator(clock)
    key = sim.add_key(uid=UID)
    limiter = RateLimiter(limits, clock=clock)
    scope = limiter.scope(str(UID), ASSET_OVERVIEW_PATH)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=UID, http_client=sim.http_client(), limiter=limiter
    ) as client:
        await client.asset_overview()
        await give_up_on_a_read_once_sent(client, sim)
        left_at = clock.monotonic()
    assert clock.monotonic() - left_at >= 3.9  # `async with` waited for the answer
    permit = await limiter.backend.try_acquire(scope, 1.0, 1.0)  # type: ignore[union-attr]
    assert not isinstance(permit, Blocked | GateClosed)


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
    # Not sent because the clock cannot be measured: sending it again changes nothing.
    assert row(TimestampError(None, "not sent", status_code=None)) == ("no", False, False, True)
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


async def test_a_failing_time_endpoints_date_measures_the_clock_of_each_new_process(
    clock: LoopClock,
) -> None:
    # Found in review: the 503 of a failing time endpoint carries a `Date`, as any HTTP
    # server's answers do, but only other answers were read for it, so each new process
    # (a cron job, a restart) paid one timestamp error: 14 runs put 11 on one UID in
    # 480 s, its budget filled and 20 reads of its good keys were not sent
    # (review18/s6_skewed_clock.py runs 14).
    sim = BingXSimulator(clock=clock, jitter=0.01, skew_ms=20_000)
    keys = [sim.add_key(uid=uid) for uid in (1, 2, 3) for _ in range(5)]
    original = sim._next_fault

    def time_endpoint_down(path: str) -> Fault | None:
        if path != SERVER_TIME_PATH:
            return original(path)
        date = email.utils.formatdate(sim.server_ms() // 1000, usegmt=True)
        return Fault(status=503, content=b"", content_type="text/plain", headers=(("Date", date),))

    sim._next_fault = time_endpoint_down  # type: ignore[method-assign]
    credentials = [creds(k, f"k{n}") for n, k in enumerate(keys)]
    for _ in range(5):  # five processes, one after another: nothing shared but the server
        async with AssetsPool(
            credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
        ) as pool:
            results = await pool.gather()
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert [r.status for r in sim.requests if r.path == SERVER_TIME_PATH] == [503] * 5
    assert [r for r in sim.requests if r.code == 100421] == []


def _no_clock_anywhere(clock: LoopClock, *, error_timestamps: bool) -> BingXSimulator:
    """A server 20 s ahead whose time endpoint always fails and whose answers carry no
    `Date` header: what the answers' envelopes say is all there is to learn from."""
    sim = BingXSimulator(
        clock=clock, skew_ms=20_000, date_header=False, error_timestamps=error_timestamps
    )
    sim.inject(*[Fault.http(503)] * 10_000, path=SERVER_TIME_PATH)
    return sim


async def _watch_rounds(sim: BingXSimulator, clock: LoopClock, rounds: int) -> list[KeyFailed]:
    """`rounds` rounds of a pool of 15 keys over 3 UIDs, one every 5 s; the failures."""
    keys = [sim.add_key(uid=uid) for uid in (1, 2, 3) for _ in range(5)]
    credentials = [creds(k, f"k{n}") for n, k in enumerate(keys)]
    failed: list[KeyFailed] = []
    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        for _ in range(rounds):
            results = await pool.gather()
            assert len(results) == len(keys)  # every key ends with a result or an error
            failed += [r for r in results if isinstance(r, KeyFailed)]
            await asyncio.sleep(5.0)
    return failed


async def test_an_error_answers_own_timestamp_measures_the_clock(clock: LoopClock) -> None:
    sim = _no_clock_anywhere(clock, error_timestamps=True)
    failed = await _watch_rounds(sim, clock, rounds=10)
    timestamp_errors = [r for r in sim.requests if r.code == 100421]
    assert len(timestamp_errors) == 1, Counter(r.uid for r in timestamp_errors)
    assert failed == []  # the refused probe was retried on the clock its answer gave


async def test_a_clock_nothing_can_measure_is_probed_with_back_off(clock: LoopClock) -> None:
    # Nothing says BingX's time: every signed request fails. One request finds that out;
    # the rest fail at once, not sent, until the next probe, 15 s on, doubling.
    sim = _no_clock_anywhere(clock, error_timestamps=False)
    failed = await _watch_rounds(sim, clock, rounds=96)  # 480 s
    timestamp_errors = [r for r in sim.requests if r.code == 100421]
    assert 1 <= len(timestamp_errors) <= 6, Counter(r.uid for r in timestamp_errors)
    assert len(failed) == 96 * 15
    assert all(isinstance(f.error, TimestampError) for f in failed)
    not_sent = [f for f in failed if str(f.error).startswith("not sent:")]
    assert len(not_sent) == len(failed) - len(timestamp_errors)
    assert "could not be measured" in str(not_sent[0].error)
    assert "next request" in str(not_sent[0].error)


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


async def test_failing_lookups_claiming_one_uid_never_hold_the_lookups_of_another(
    clock: LoopClock,
) -> None:
    sim = penalty_simulator(clock)
    limiter = RateLimiter(clock=clock)
    http = sim.http_client()
    failing = [
        AssetsClient(k.api_key, "wrong", uid=UID, http_client=http, limiter=limiter)
        for k in (sim.add_key(uid=UID) for _ in range(11))
    ]
    answers = await asyncio.gather(
        *(c.asset_overview() for c in failing[:10]), return_exceptions=True
    )
    assert all(isinstance(a, AuthenticationError) for a in answers), answers
    # Ten failed lookups fill the budget of the lookups claiming UID 7001 ...
    with pytest.raises(ErrorBudgetError) as refused:
        await failing[10].asset_overview()
    assert str(refused.value).startswith(
        f"not sent: the error budget of the UID lookups of keys claiming UID {UID} "
    )
    assert "is full of error replies (or of requests never answered, each maybe one) until" in str(
        refused.value
    )
    # ... and of those alone: a key claiming another UID, and one claiming none, go on.
    other, unclaimed = sim.add_key(uid=UID + 1), sim.add_key(uid=UID)
    for client in (
        AssetsClient(
            other.api_key, other.secret_key, uid=UID + 1, http_client=http, limiter=limiter
        ),
        AssetsClient(unclaimed.api_key, unclaimed.secret_key, http_client=http, limiter=limiter),
    ):
        assert (await client.asset_overview()).total > 0
    lookups = [r for r in sim.requests if r.path == UID_PATH]
    assert len(lookups) == 12 and len(errors(lookups)) == 10
    assert [r for r in sim.requests if r.code == 100410] == []
    await http.aclose()


def known_good_clients(
    sim: BingXSimulator, limiter: RateLimiter, count: int, **options: object
) -> list[AssetsClient]:
    """Clients of `count` keys of UID whose UIDs this machine's cache holds."""
    keys = [sim.add_key(uid=UID) for _ in range(count)]
    cache = default_uid_cache_path()
    for key in keys:
        verified_earlier(key.api_key, UID, cache)
    http = sim.http_client()
    return [
        AssetsClient(
            k.api_key,
            k.secret_key,
            uid=UID,
            uid_cache=cache,
            http_client=http,
            limiter=limiter,
            **options,  # type: ignore[arg-type]
        )
        for k in keys
    ]


SMALL_BUDGET = RateLimits(error_budget=Rate(2, 480.0), suspect_error_limit=1)


async def test_a_budget_full_of_error_replies_fails_at_once_and_says_so(clock: LoopClock) -> None:
    sim = penalty_simulator(clock)
    clients = known_good_clients(sim, RateLimiter(SMALL_BUDGET, clock=clock), 3)
    for client in clients[:2]:  # two keys known to be good, one error each: full
        sim.inject(Fault.answer(100400, "Invalid parameters"))
        with pytest.raises(InvalidArgumentError):
            await client.asset_overview()
    started = clock.monotonic()
    with pytest.raises(ErrorBudgetError) as refused:
        await clients[2].asset_overview()
    assert clock.monotonic() == started  # no wait for max_wait (60 s): no answer can free it
    message = str(refused.value)
    assert message.startswith(
        f"not sent: the error budget of UID {UID} (2 error replies in 480 s, kept well under "
        "BingX's penalty for more than 20 in 480 s) is full of error replies (or of requests "
        "never answered, each maybe one) until "
    )
    assert message.endswith(
        "s from now): its calls fail at once until then, none sent: fix the keys that fail"
    )
    assert refused.value.unblock_at_ms is not None
    assert clients[2].retry_at(refused.value) is not None


@pytest.mark.parametrize("answer", ["success", "error"])
async def test_a_budget_held_by_requests_in_flight_waits_for_their_answers(
    clock: LoopClock, answer: str
) -> None:
    sim = penalty_simulator(clock)
    clients = known_good_clients(sim, RateLimiter(SMALL_BUDGET, clock=clock), 3)
    await clients[2].asset_overview()  # the clock measured
    late = Fault.slow(3.0)
    if answer == "error":
        late = dataclasses.replace(Fault.answer(100400, "Invalid parameters"), delay=3.0)
    sim.inject(late, late)
    in_flight = [asyncio.create_task(c.asset_overview()) for c in clients[:2]]
    await asyncio.sleep(0.1)
    started = clock.monotonic()
    if answer == "success":  # each gives its slot back: sent as they arrive
        assert (await clients[2].asset_overview()).total > 0
    else:  # an error keeps it: the budget is full of them, and that is said at once
        with pytest.raises(
            ErrorBudgetError,
            match=re.escape("is full of error replies (or of requests never answered"),
        ):
            await clients[2].asset_overview()
    # Until the answers (3 s after they were sent, and a jitter), not max_wait (60 s).
    assert clock.monotonic() - started == pytest.approx(2.9, abs=0.03)
    await asyncio.gather(*in_flight, return_exceptions=True)


async def test_a_budget_held_past_max_wait_by_requests_in_flight_fails_and_says_so(
    clock: LoopClock,
) -> None:
    sim = penalty_simulator(clock)
    clients = known_good_clients(sim, RateLimiter(SMALL_BUDGET, clock=clock), 3, max_wait=2.0)
    await clients[2].asset_overview()
    sim.inject(Fault.slow(5.0), Fault.slow(5.0))
    in_flight = [asyncio.create_task(c.asset_overview()) for c in clients[:2]]
    await asyncio.sleep(0.1)
    started = clock.monotonic()
    with pytest.raises(ErrorBudgetError) as refused:
        await clients[2].asset_overview()
    assert clock.monotonic() - started == pytest.approx(2.0)
    assert (
        f"not sent: the error budget of UID {UID} (2 error replies in 480 s, kept well under "
        "BingX's penalty for more than 20 in 480 s) is held by requests still in flight, not "
        "answered within max_wait (2 s): this call fails; the budget frees as they are "
        "answered (a success gives its slot back), at the latest at "
    ) in str(refused.value)
    await asyncio.gather(*in_flight)


async def test_a_new_key_waiting_for_its_share_never_holds_the_uids_queue(
    clock: LoopClock,
) -> None:
    # A UID window wide enough that only the error budget holds anyone back.
    wide = Rate(20, 1.0)
    sim = BingXSimulator(clock=clock, jitter=0.01, limits=RateLimits(per_uid=wide))
    limiter = RateLimiter(RateLimits(per_uid=wide, suspect_error_limit=2), clock=clock)
    [good] = known_good_clients(sim, limiter, 1)
    http = sim.http_client()
    new = [
        AssetsClient(
            k.api_key, k.secret_key, uid=UID, verify_uids=False, http_client=http, limiter=limiter
        )
        for k in (sim.add_key(uid=UID) for _ in range(3))
    ]
    await good.asset_overview()  # the clock measured
    sim.inject(Fault.slow(3.0), Fault.slow(3.0))
    in_flight = [asyncio.create_task(c.asset_overview()) for c in new[:2]]  # the share, full
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(new[2].asset_overview())
    await asyncio.sleep(0.1)
    started = clock.monotonic()
    assert (await good.asset_overview()).total > 0
    assert clock.monotonic() - started < 0.05  # not behind the new key, for 3 s
    assert not waiting.done()
    assert (await waiting).total > 0  # sent once the share's answers came
    await asyncio.gather(*in_flight)
    await http.aclose()


@pytest.mark.parametrize(
    "lost", [Fault.reset(), Fault.timeout(after=2.0)], ids=["reset", "timeout"]
)
async def test_a_lossy_link_costs_a_good_key_no_read(clock: LoopClock, lost: Fault) -> None:
    """One request in ten lost on the way back: each may have been an error, so it holds
    an error-budget slot, until its key's next success says it was none. Held for the
    whole error window, ten lost requests in eight minutes would stop every key of the
    UID, though BingX counted no error at all."""
    sim = penalty_simulator(clock)
    good = [creds(sim.add_key(uid=UID), f"good{n}") for n in range(3)]
    sim.random_faults(0.1, [lost])
    limiter = RateLimiter(clock=clock)
    async with AssetsPool(good, http_client=sim.http_client(), limiter=limiter) as pool:
        rounds = await watch_rounds(pool, 60)
    answered = [r for r in sim.requests if r.path != SERVER_TIME_PATH and not r.injected]
    assert limiter.stats.acquired - len(answered) >= 10  # lost: more than the whole budget
    assert errors(sim.requests) == []
    failed = [r for results in rounds for r in results if not r.ok]  # type: ignore[attr-defined]
    # A read fails only where all of its attempts were lost, never for the budget.
    assert not [r for r in failed if isinstance(r.error, ErrorBudgetError)]  # type: ignore[attr-defined]
    assert len(failed) <= 2
