"""The `LimiterBackend` contract, one suite run against every store: memory, the host
store (SQLite) and Redis (the real redis-server of the session).

Each backend reads a clock the test moves by hand, so every number is exact to the
microsecond: Redis's scripts read the test's time from a key instead of `TIME` (the
only line of them that differs), the others are given the clock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import _AsyncRESP2Parser

from bingx_assets._limiter import (
    BOUNDARY,
    Blocked,
    Closure,
    GateClosed,
    LimiterBackend,
    MemoryBackend,
    Permit,
    Rate,
    Scope,
)
from bingx_assets._limiter._host_store import HostBackend
from bingx_assets._limiter._redis import _NOW, RedisBackend

# Only the hand-moved clock keeps time here; Redis's own is real.
pytestmark = pytest.mark.looptime(False)

UID = ("uid:u:/x", Rate(3, 1.0))
IP = ("ip:i:/x", Rate(4, 10.0))
ERRORS = ("errors:u:/x", Rate(2, 480.0))
SCOPE = Scope(uid="u", ip="i", gates=("gate:u:/x", "gate:ip:i"), windows=(UID, IP))
BUDGETED = replace(SCOPE, errors=ERRORS)
# Answered at once unless a test says otherwise: in flight for 0 s, horizon 5 s.
NOW, HORIZON = 0.0, 5.0


class HandClock:
    """A clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0  # not 0: a store must not treat 0 as "never"

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return 1_767_225_600_000 + round(self.now * 1000)

    def advance(self, seconds: float) -> None:
        self.now += seconds


class HandClockRedisBackend(RedisBackend):
    """`RedisBackend` with its scripts reading `clock` (set before each call) for `TIME`."""

    def __init__(self, redis: Redis, namespace: str, clock: HandClock) -> None:
        super().__init__(redis, namespace=namespace, poll_interval=1e9)  # exact waits
        self._clock, self._time_key = clock, f"{namespace}:test-clock"
        now = f"local now = tonumber(redis.call('GET', '{self._time_key}'))\n"
        for name in (
            "_acquire",
            "_settle",
            "_settle_then_acquire",
            "_occupy",
            "_close_gate",
            "_closure",
            "_gate_remaining",
        ):
            script = getattr(self, name)
            assert script.script.startswith(_NOW)
            setattr(self, name, redis.register_script(now + script.script[len(_NOW) :]))

    async def _run(self, script: object, keys: Sequence[str], *rest: Any) -> Any:
        await self.redis.set(self._time_key, repr(self._clock.now))
        return await super()._run(script, keys, *rest)


@pytest.fixture
def clock() -> HandClock:  # type: ignore[override]
    return HandClock()


# "redis" parses replies with hiredis, as `[redis]` installs it; "redis-pure-parser" with
# redis-py's own parser, what a redis-py installed without hiredis uses.
@pytest.fixture(params=["memory", "host", "redis", "redis-pure-parser"])
async def backend(
    request: pytest.FixtureRequest, clock: HandClock, tmp_path: Path
) -> AsyncIterator[LimiterBackend]:
    made: LimiterBackend
    redis: Redis | None = None
    if request.param == "memory":
        made = MemoryBackend(clock)
    elif request.param == "host":
        made = HostBackend(tmp_path / "limits.sqlite3", clock=clock, poll_interval=1e9)
    else:
        pure = {"parser_class": _AsyncRESP2Parser} if request.param == "redis-pure-parser" else {}
        redis = Redis.from_url(request.getfixturevalue("redis_url"), **pure)
        made = HandClockRedisBackend(redis, f"contract-{uuid.uuid4().hex[:8]}", clock)
    yield made
    await made.aclose()
    if redis is not None:
        await redis.aclose()


async def take(backend: LimiterBackend, scope: Scope = SCOPE, in_flight: float = NOW) -> Permit:
    permit = await backend.try_acquire(scope, in_flight, HORIZON)
    assert not isinstance(permit, Blocked | GateClosed), permit
    return permit


async def blocked(backend: LimiterBackend, scope: Scope = SCOPE) -> Blocked:
    outcome = await backend.try_acquire(scope, NOW, HORIZON)
    assert isinstance(outcome, Blocked), outcome
    return outcome


def exactly(seconds: float) -> Any:
    return pytest.approx(seconds, abs=1e-6)


# -- windows -----------------------------------------------------------------------------


async def test_a_window_admits_its_limit_then_frees_one_period_and_the_boundary_later(
    backend: LimiterBackend, clock: HandClock
) -> None:
    for _ in range(3):
        await (await take(backend)).settle(answered=True)
    full = await blocked(backend)
    assert (full.window, full.seconds) == ("uid:u:/x", exactly(1.0 + BOUNDARY))
    clock.advance(1.0)  # a server counting [t - 1 s, t] still sees all three
    assert (await blocked(backend)).seconds == exactly(BOUNDARY)
    clock.advance(BOUNDARY)
    await take(backend)


async def test_the_longest_wait_is_told_and_nothing_is_taken_while_blocked(
    backend: LimiterBackend, clock: HandClock
) -> None:
    for _ in range(4):  # the IP window fills: 4 in 10 s
        await (await take(backend)).settle(answered=True)
        clock.advance(1.5)
    full = await blocked(backend)
    assert (full.window, full.seconds) == ("ip:i:/x", exactly(10.0 + BOUNDARY - 6.0))
    for _ in range(5):  # all or none: the UID window took nothing meanwhile
        await blocked(backend)
    clock.advance(full.seconds)
    await take(backend)
    await blocked(backend)  # the IP window again, not the UID one
    other_ip = replace(SCOPE, windows=(UID, ("ip:j:/x", Rate(4, 10.0))))
    for _ in range(2):  # the UID window holds exactly the one taken since
        await take(backend, other_ip)
    assert (await blocked(backend, other_ip)).window == "uid:u:/x"


async def test_a_slot_in_flight_counts_until_answered_then_from_the_answer(
    backend: LimiterBackend, clock: HandClock
) -> None:
    one = replace(SCOPE, windows=(("uid:u:/x", Rate(1, 1.0)), IP))
    permit = await take(backend, one, in_flight=HORIZON)
    assert (await blocked(backend, one)).seconds == exactly(HORIZON + 1.0 + BOUNDARY)
    clock.advance(0.25)
    assert await permit.settle(answered=True) is False
    assert (await blocked(backend, one)).seconds == exactly(1.0 + BOUNDARY)
    clock.advance(1.0 + BOUNDARY)
    await take(backend, one)


async def test_an_unanswered_request_counts_until_its_horizon(
    backend: LimiterBackend, clock: HandClock
) -> None:
    one = replace(SCOPE, windows=(("uid:u:/x", Rate(1, 1.0)), IP))
    bet = await take(backend, one, in_flight=0.3)  # betting on arrival within 0.3 s
    assert (await blocked(backend, one)).seconds == exactly(0.3 + 1.0 + BOUNDARY)
    clock.advance(2.0)
    await bet.settle(answered=False)  # the bet is off: it may arrive until its horizon
    assert (await blocked(backend, one)).seconds == exactly(HORIZON - 2.0 + 1.0 + BOUNDARY)
    clock.advance(HORIZON - 2.0 + 1.0 + BOUNDARY)
    safe = await take(backend, one, in_flight=HORIZON)
    clock.advance(1.0)
    await safe.settle(answered=False)  # already counted until its horizon
    assert (await blocked(backend, one)).seconds == exactly(HORIZON - 1.0 + 1.0 + BOUNDARY)


async def test_one_window_checked_with_a_smaller_limit_counts_the_same_slots(
    backend: LimiterBackend, clock: HandClock
) -> None:
    for _ in range(3):
        await take(backend)
    smaller = replace(SCOPE, windows=(("uid:u:/x", Rate(2, 1.0)), IP))
    assert (await blocked(backend, smaller)).window == "uid:u:/x"  # same slots, lower limit
    other = replace(SCOPE, windows=(("uid:v:/x", Rate(3, 1.0)), ("ip:j:/x", Rate(4, 10.0))))
    await take(backend, other)  # another name: its own window


# -- the error budget ---------------------------------------------------------------------


async def test_an_error_budget_slot_is_given_back_by_a_success_and_kept_by_an_error(
    backend: LimiterBackend, clock: HandClock
) -> None:
    wide = replace(BUDGETED, windows=(("uid:u:/x", Rate(1000, 1.0)), ("ip:i:/x", Rate(1000, 1.0))))
    for _ in range(10):  # successes never spend the budget
        await (await take(backend, wide, in_flight=HORIZON)).settle(answered=True, succeeded=True)
    clock.advance(1.0)
    for _ in range(2):  # errors do, from their answer on
        await (await take(backend, wide, in_flight=HORIZON)).settle(answered=True)
    clock.advance(2.0)
    full = await blocked(backend, wide)
    assert (full.window, full.seconds) == ("errors:u:/x", exactly(478.0 + BOUNDARY))
    clock.advance(478.0 + BOUNDARY)
    await take(backend, wide)


async def test_an_error_budget_counts_requests_in_flight_and_unanswered_until_their_horizon(
    backend: LimiterBackend, clock: HandClock
) -> None:
    first = await take(backend, BUDGETED, in_flight=HORIZON)
    second = await take(backend, BUDGETED, in_flight=HORIZON)
    full = await blocked(backend, BUDGETED)  # both may turn out to be errors
    assert (full.window, full.seconds) == ("errors:u:/x", exactly(HORIZON + 480.0 + BOUNDARY))
    clock.advance(0.5)
    await first.settle(answered=True, succeeded=True)
    await first.settle(answered=True, succeeded=True)  # given back once, not twice
    clock.advance(1.0 + BOUNDARY)  # the UID window has room again
    third = await take(backend, BUDGETED)
    assert (await blocked(backend, BUDGETED)).window == "errors:u:/x"  # second and third
    await third.settle(answered=True, succeeded=True)
    clock.advance(1.0)
    await second.settle(answered=False)  # it may have been an error: kept until its horizon
    one = replace(BUDGETED, errors=(ERRORS[0], Rate(1, 480.0)))
    full = await blocked(backend, one)
    assert (full.window, full.seconds) == (
        "errors:u:/x",
        exactly(HORIZON + 480.0 + BOUNDARY - 2.501),
    )


async def test_an_unanswered_request_known_since_to_be_no_error_gives_back_only_its_budget_slot(
    backend: LimiterBackend, clock: HandClock
) -> None:
    wide = replace(BUDGETED, windows=(("uid:u:/x", Rate(1, 1.0)), ("ip:i:/x", Rate(1000, 1.0))))
    lost = await take(backend, wide, in_flight=HORIZON)
    await lost.settle(answered=False)  # a timeout: it may have arrived and been an error
    clock.advance(1.0)
    other = await blocked(backend, wide)  # the UID window: it may yet arrive
    assert (other.window, other.seconds) == ("uid:u:/x", exactly(HORIZON + BOUNDARY))
    await lost.settle(answered=False, succeeded=True)  # the key's next answer succeeded
    await lost.settle(answered=False, succeeded=True)  # given back once, not twice
    still = await blocked(backend, wide)  # its rate slot still counts until its horizon
    assert (still.window, still.seconds) == ("uid:u:/x", exactly(HORIZON + BOUNDARY))
    clock.advance(HORIZON + BOUNDARY)
    one = replace(wide, errors=(ERRORS[0], Rate(1, 480.0)))
    await (await take(backend, one)).settle(answered=True)  # its budget slot was free
    assert (await blocked(backend, one)).window == "errors:u:/x"


async def test_one_error_budget_checked_with_a_smaller_limit(
    backend: LimiterBackend, clock: HandClock
) -> None:
    suspect = replace(BUDGETED, errors=("errors:u:/x", Rate(1, 480.0)))
    await (await take(backend, BUDGETED)).settle(answered=True)  # one error reply
    clock.advance(1.0)
    assert (await blocked(backend, suspect)).seconds == exactly(479.0 + BOUNDARY)
    await take(backend, BUDGETED)  # the full share still has one
    assert (await blocked(backend, BUDGETED)).window == "errors:u:/x"


async def test_a_full_window_says_whether_requests_in_flight_hold_it(
    backend: LimiterBackend, clock: HandClock
) -> None:
    first = await take(backend, BUDGETED, in_flight=HORIZON)
    second = await take(backend, BUDGETED, in_flight=HORIZON)
    full = await blocked(backend, BUDGETED)
    assert (full.window, full.pending) == ("errors:u:/x", True)  # both may yet succeed
    clock.advance(0.5)
    await first.settle(answered=True)  # an error reply
    assert (await blocked(backend, BUDGETED)).pending  # the second may yet give its slot back
    share = replace(BUDGETED, errors=(ERRORS[0], Rate(1, 480.0)))
    assert not (await blocked(backend, share)).pending  # one answered error fills a share of one
    await second.settle(answered=True)
    full = await blocked(backend, BUDGETED)  # full of answered errors, whatever comes
    assert (full.window, full.pending, full.seconds) == (
        "errors:u:/x",
        False,
        exactly(480.0 + BOUNDARY),
    )
    # A request given up on may still arrive until its horizon: in flight until then.
    alone = replace(SCOPE, windows=(("uid:w:/x", Rate(1, 1.0)),))
    lost = await take(backend, alone, in_flight=HORIZON)
    clock.advance(1.0)
    await lost.settle(answered=False)
    assert (await blocked(backend, alone)).pending
    clock.advance(HORIZON - 1.0 + BOUNDARY)
    assert not (await blocked(backend, alone)).pending
    # A rate window says the same: answered, its slot counts for a period, whatever comes.
    other = replace(SCOPE, windows=(("uid:v:/x", Rate(1, 1.0)),))
    permit = await take(backend, other, in_flight=HORIZON)
    assert (await blocked(backend, other)).pending
    await permit.settle(answered=True)
    assert not (await blocked(backend, other)).pending


async def test_a_full_error_budget_takes_nothing_from_the_windows(
    backend: LimiterBackend, clock: HandClock
) -> None:
    for _ in range(2):
        await (await take(backend, BUDGETED)).settle(answered=True)
    for _ in range(5):
        await blocked(backend, BUDGETED)
    await take(backend)  # the UID window holds the two errors only: one more fits


# -- gates ----------------------------------------------------------------------------------


async def test_a_gate_holds_for_its_length_to_the_millisecond_and_is_never_shortened(
    backend: LimiterBackend, clock: HandClock
) -> None:
    await backend.close_gate("gate:u:/x", 300.0)
    clock.advance(10.0)
    await backend.close_gate("gate:u:/x", 5.0)  # shorter: ignored
    assert await backend.gate_remaining("gate:u:/x") == exactly(290.0)
    closed = await backend.try_acquire(SCOPE, NOW, HORIZON)
    assert isinstance(closed, GateClosed)
    assert (closed.gate, closed.seconds) == ("gate:u:/x", exactly(290.0))
    clock.advance(289.999)
    assert await backend.gate_remaining("gate:u:/x") == exactly(0.001)
    assert isinstance(await backend.try_acquire(SCOPE, NOW, HORIZON), GateClosed)
    clock.now = 1000.0 + 300.0  # exactly when it opens
    assert await backend.gate_remaining("gate:u:/x") == 0.0
    await take(backend)
    await backend.close_gate("gate:u:/x", 20.0)  # longer: taken
    assert await backend.gate_remaining("gate:u:/x") == exactly(20.0)


async def test_the_ip_gate_holds_every_uid_and_an_open_gate_reads_zero(
    backend: LimiterBackend, clock: HandClock
) -> None:
    assert await backend.gate_remaining("gate:ip:i") == 0.0
    await backend.close_gate("gate:ip:i", 1.5)
    other = replace(SCOPE, uid="v", gates=("gate:v:/x", "gate:ip:i"))
    closed = await backend.try_acquire(other, NOW, HORIZON)
    assert isinstance(closed, GateClosed)
    assert (closed.gate, closed.seconds) == ("gate:ip:i", exactly(1.5))


async def test_a_scope_checks_every_gate_it_names_a_keys_own_included(
    backend: LimiterBackend, clock: HandClock
) -> None:
    keyed = replace(SCOPE, gates=(*SCOPE.gates, "gate:key:k"))
    await backend.close_gate("gate:key:k", 60.0)
    closed = await backend.try_acquire(keyed, NOW, HORIZON)
    assert isinstance(closed, GateClosed)
    assert (closed.gate, closed.seconds) == ("gate:key:k", exactly(60.0))
    await take(backend)  # the same UID without that key's gate goes on


async def test_a_closure_carries_its_length_and_code_until_remembered_after_it_opens(
    backend: LimiterBackend, clock: HandClock
) -> None:
    assert await backend.closure("gate:key:k") is None  # never closed
    await backend.close_gate("gate:key:k", 60.0, code=100001, remember=480.0)
    assert await backend.closure("gate:key:k") == Closure(60.0, 100001)
    clock.advance(60.0)  # open: the closure is still remembered
    assert await backend.gate_remaining("gate:key:k") == 0.0
    await take(backend, replace(SCOPE, gates=(*SCOPE.gates, "gate:key:k")))
    clock.advance(479.999)
    assert await backend.closure("gate:key:k") == Closure(60.0, 100001)
    clock.advance(0.001)
    assert await backend.closure("gate:key:k") is None
    await backend.close_gate("gate:u:/x", 5.0)  # no code, nothing to remember after
    assert await backend.closure("gate:u:/x") == Closure(5.0, None)
    clock.advance(5.0)
    assert await backend.closure("gate:u:/x") is None


async def test_a_closure_that_lengthens_nothing_records_nothing(
    backend: LimiterBackend, clock: HandClock
) -> None:
    await backend.close_gate("gate:key:k", 120.0, code=100419, remember=480.0)
    clock.advance(10.0)
    await backend.close_gate("gate:key:k", 60.0, code=100001, remember=0.0)  # shorter
    assert await backend.closure("gate:key:k") == Closure(120.0, 100419)
    clock.advance(110.0 + 300.0)  # open 300 s: remembered as the first closure asked
    assert await backend.closure("gate:key:k") == Closure(120.0, 100419)
    await backend.close_gate("gate:key:k", 60.0, code=100004, remember=0.0)  # it was open
    assert await backend.closure("gate:key:k") == Closure(60.0, 100004)
    clock.advance(60.0)
    assert await backend.closure("gate:key:k") is None


async def test_a_closure_as_long_as_the_last_records_nothing(
    backend: LimiterBackend, clock: HandClock
) -> None:
    await backend.close_gate("gate:key:k", 60.0, code=100419, remember=480.0)
    await backend.close_gate("gate:key:k", 60.0, code=100001, remember=0.0)  # same end
    assert await backend.closure("gate:key:k") == Closure(60.0, 100419)
    clock.advance(60.0 + 400.0)  # remembered as the first closure asked
    assert await backend.closure("gate:key:k") == Closure(60.0, 100419)


# -- what the server says ---------------------------------------------------------------------


async def test_occupy_fills_a_window_up_to_a_count_from_now(
    backend: LimiterBackend, clock: HandClock
) -> None:
    await (await take(backend)).settle(answered=True)
    clock.advance(0.5)
    assert await backend.occupy(*UID, 3) == 2  # one of ours was alive: two more
    assert await backend.occupy(*UID, 3) == 0
    assert (await blocked(backend)).seconds == exactly(0.5 + BOUNDARY)  # ours frees first
    clock.advance(0.5 + BOUNDARY)
    await take(backend)
    assert (await blocked(backend)).seconds == exactly(0.5)  # then the two from 0.5


async def test_occupy_counts_a_new_window_as_empty_and_expired_slots_as_gone(
    backend: LimiterBackend, clock: HandClock
) -> None:
    assert await backend.occupy(*UID, 2) == 2  # a window never used
    assert await backend.occupy(*UID, 3) == 1
    clock.advance(1.0 + BOUNDARY)  # all three expired
    assert await backend.occupy(*UID, 3) == 3
    assert (await blocked(backend)).seconds == exactly(1.0 + BOUNDARY)


async def test_a_server_count_above_ours_is_someone_elses(
    backend: LimiterBackend, clock: HandClock
) -> None:
    first = await take(backend, in_flight=HORIZON)
    second = await take(backend, in_flight=HORIZON)
    clock.advance(0.2)
    assert await first.settle(answered=True, server_count=2) is False  # both ours
    assert await second.settle(answered=True, server_count=3) is True  # one was not
    full = await blocked(backend)
    assert (full.window, full.seconds) == ("uid:u:/x", exactly(1.0 + BOUNDARY))
    clock.advance(1.0 + BOUNDARY)
    lone = await take(backend, in_flight=HORIZON)
    assert await lone.settle(answered=True, server_count=1) is False
    assert await lone.settle(answered=True, server_count=None) is False


# -- found by mutation testing (docs/reliability.md) ------------------------------------------


async def test_a_server_count_on_a_new_window_is_read_against_one_slot(
    backend: LimiterBackend,
) -> None:
    assert await (await take(backend)).settle(answered=True, server_count=2) is True


async def test_a_server_count_is_read_against_the_slots_alive_not_those_expired(
    backend: LimiterBackend, clock: HandClock
) -> None:
    scope = replace(SCOPE, windows=(("uid:u:/x", Rate(5, 1.0)), IP))
    await (await take(backend, scope)).settle(answered=True)
    clock.advance(1.0 + BOUNDARY)  # expired: BingX no longer counts it either
    second = await take(backend, scope, in_flight=HORIZON)
    clock.advance(0.1)
    assert await second.settle(answered=True, server_count=2) is True  # one not ours
    third = await take(backend, scope)  # ours: the second, the other's and this one
    assert await third.settle(answered=True, server_count=4) is True


async def test_a_window_blocked_by_another_still_drops_its_expired_slots(
    backend: LimiterBackend, clock: HandClock
) -> None:
    scope = replace(SCOPE, windows=(UID, ("ip:i:/x", Rate(2, 10.0))))
    for _ in range(2):
        await (await take(backend, scope)).settle(answered=True)
        clock.advance(1.0 + BOUNDARY)  # gone from the UID window, not the IP's
    assert (await blocked(backend, scope)).window == "ip:i:/x"
    clock.advance(10.0)
    lone = await take(backend, scope)
    assert await lone.settle(answered=True, server_count=2) is True  # ours is one


async def test_windows_full_alike_block_on_the_first_named(backend: LimiterBackend) -> None:
    scope = replace(SCOPE, windows=(("uid:u:/x", Rate(1, 1.0)), ("ip:i:/x", Rate(1, 1.0))))
    await (await take(backend, scope)).settle(answered=True)
    full = await blocked(backend, scope)
    assert (full.window, full.seconds) == ("uid:u:/x", exactly(1.0 + BOUNDARY))


async def test_settling_an_unanswered_request_reports_no_disagreement(
    backend: LimiterBackend,
) -> None:
    # In flight until its horizon: it already counts until then, and nothing is moved.
    assert await (await take(backend, in_flight=HORIZON)).settle(answered=False) is False


async def test_a_success_in_a_budgeted_scope_moves_every_window_slot_to_its_answer(
    backend: LimiterBackend, clock: HandClock
) -> None:
    scope = replace(BUDGETED, windows=(UID, ("ip:i:/x", Rate(1, 10.0))))
    in_flight = await take(backend, scope, in_flight=HORIZON)
    clock.advance(0.2)
    await in_flight.settle(answered=True, succeeded=True)
    assert (await blocked(backend, scope)).seconds == exactly(10.0 + BOUNDARY)
    clock.advance(10.0 + BOUNDARY)
    await take(backend, scope)


async def test_a_success_gives_back_its_budget_slot_and_no_other(
    backend: LimiterBackend,
) -> None:
    scope = replace(BUDGETED, windows=(UID, ("ip:i:/x", Rate(2, 10.0))))
    await (await take(backend, scope)).settle(answered=True, succeeded=True)
    await (await take(backend, scope)).settle(answered=True, succeeded=True)
    assert (await blocked(backend, scope)).window == "ip:i:/x"  # two of two


async def test_a_slot_in_flight_a_moment_more_still_holds_its_window_as_pending(
    backend: LimiterBackend, clock: HandClock
) -> None:
    alone = replace(SCOPE, windows=(("uid:w:/x", Rate(1, 1.0)),))
    await take(backend, alone, in_flight=0.5)
    assert (await blocked(backend, alone)).pending  # its answer may free it sooner
    clock.advance(0.4)
    assert (await blocked(backend, alone)).pending  # 0.1 s more, in flight all the same


async def test_slots_occupy_added_since_an_acquire_are_not_counted_again_from_a_server_count(
    backend: LimiterBackend,
) -> None:
    # A server's count is read against every slot taken since the acquire, occupy's too
    # (Redis counts them in the UID window's counter): otherwise one disagreement that
    # occupy already recorded would fill the window a second time.
    scope = replace(SCOPE, windows=(("uid:u:/x", Rate(5, 1.0)), IP))
    permit = await take(backend, scope, in_flight=HORIZON)
    assert await backend.occupy("uid:u:/x", Rate(5, 1.0), 3) == 2
    assert await permit.settle(answered=True, server_count=3) is False  # all three known
    await take(backend, scope)
    await take(backend, scope)
    assert (await blocked(backend, scope)).window == "uid:u:/x"  # 3 + 2: no more added
