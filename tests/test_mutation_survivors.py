"""Tests that kill mutants the rest of the suite let live (`nox -s mutation`).

Each test names the small, plausible bug it catches: the nine found by hand (issue 22)
and the survivors of mutmut's runs over `_limiter/_memory.py` and `_clock.py`
(docs/reliability.md, "Mutation testing"). Every one was checked by applying the
mutation by hand: the test fails with it and passes without.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import itertools
import math
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bingx_assets import (
    APIError,
    AssetsClient,
    AuthenticationError,
    BingXError,
    ConfigurationError,
    DecodeError,
    Rate,
    RateLimiter,
    RateLimitError,
    RateLimits,
    RedisBackend,
    ServerBusyError,
)
from bingx_assets._clock import ServerClock, SystemClock
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH, UID_PATH
from bingx_assets._limiter import (
    BOUNDARY,
    Blocked,
    Closure,
    GateClosed,
    MemoryBackend,
    Permit,
    Scope,
)
from bingx_assets._refusals import KeyBackoff, key_gate, key_not_sent
from bingx_assets._wire import BALANCES, decode_envelope_data, excerpt
from bingx_assets.testing import BingXSimulator, Fault, LoopClock


def scope(uid: str = "u", *, limit: int = 5, group: int = 300, errors: Rate | None = None) -> Scope:
    return Scope(
        uid=uid,
        ip="local",
        gates=(f"gate:{uid}", "gate:ip"),
        windows=(
            (f"uid:{uid}", Rate(limit, 1.0)),
            ("ip:endpoint", Rate(300, 10.0)),
            ("ip:group", Rate(group, 10.0)),
        ),
        errors=(f"errors:{uid}", errors) if errors is not None else None,
    )


async def permit(backend: MemoryBackend, s: Scope, in_flight: float = 0.0) -> Permit:
    outcome = await backend.try_acquire(s, in_flight, in_flight)
    assert not isinstance(outcome, Blocked | GateClosed), outcome
    return outcome


def overview(sim: BingXSimulator) -> list[float]:
    return [r.sent for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]


# -- the nine survivors found by hand ----------------------------------------------------


class TestRedis:
    pytestmark = pytest.mark.looptime(False)  # Redis keeps real time

    @pytest.fixture
    async def backend(self, redis_url: str) -> AsyncIterator[RedisBackend]:
        client = Redis.from_url(redis_url)
        backend = RedisBackend(client, namespace=f"test-{uuid.uuid4().hex[:8]}")
        yield backend
        await backend.aclose()  # before the Redis client: it records the answers still waiting
        await client.aclose()

    async def test_a_gate_lasts_its_seconds_not_milliseconds(self, backend: RedisBackend) -> None:
        # Mutant: the gate key's expiry given in seconds where PX wants milliseconds.
        # Real time: past the second a key given seconds as milliseconds (+1 s) lasts.
        await backend.close_gate("gate:u", 3.0)
        await asyncio.sleep(1.1)
        assert 1.0 < await backend.gate_remaining("gate:u") <= 1.9
        outcome = await backend.try_acquire(scope(), 0.0, 0.0)
        assert isinstance(outcome, GateClosed) and 1.0 < outcome.seconds <= 1.9

    async def test_a_window_keeps_the_boundary_slack(self, backend: RedisBackend) -> None:
        # Mutant: Redis windows free a slot at `period` instead of `period + 1 ms`. The
        # gate, closed just before the slot for as long as it should count, opens first;
        # the Redis round trips between can only widen the gap, never close it.
        for n in range(20):
            s = scope(f"u{n}", limit=1)
            await backend.close_gate("gate:probe", 1.0)
            await backend.try_acquire(s, 0.0, 0.0)
            blocked = await backend.try_acquire(s, 0.0, 0.0)
            gate = await backend.gate_remaining("gate:probe")
            assert isinstance(blocked, Blocked)
            assert blocked.seconds - gate >= BOUNDARY


def test_an_http_error_whose_body_says_code_0_is_no_success() -> None:
    body = b'{"code":0,"msg":"","data":[{"accountType":"sopt","usdtBalance":"1"}]}'
    for status in (400, 500):
        with pytest.raises(APIError) as caught:
            decode_envelope_data(body, status_code=status, headers={}, data=BALANCES)
        assert caught.value.status_code == status
    with pytest.raises(ServerBusyError):
        decode_envelope_data(body, status_code=500, headers={}, data=BALANCES)


async def test_a_bare_429_fills_the_group_window_too(clock: LoopClock) -> None:
    # The IP's group window is shared with the UID endpoint: after a bare 429 on the
    # asset overview, a UID lookup waits the IP window out too.
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=5)
    limiter = RateLimiter(clock=clock)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=5, http_client=sim.http_client(), limiter=limiter,
        uid_cache=False, max_retries=0,
    ) as client:  # fmt: skip
        sim.inject(Fault.http(429))
        with pytest.raises(RateLimitError):
            await client.asset_overview()
    start = clock.monotonic()
    ticket = await limiter.acquire(limiter.scope("lookup", UID_PATH), max_wait=60)
    await ticket.settle(answered=True)
    assert clock.monotonic() - start == pytest.approx(10.0 + BOUNDARY, abs=1e-6)


async def test_repeated_bare_100410s_back_off(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=6)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=6, http_client=sim.http_client(),
        limiter=RateLimiter(clock=clock), uid_cache=False,
    ) as client:  # fmt: skip
        sim.inject(Fault.rate_limited(), Fault.rate_limited(), Fault.rate_limited())
        await client.asset_overview()
    sent = overview(sim)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    # The first fills the UID's window (one period), then 2 s, then 4 s.
    assert gaps == pytest.approx([1.0 + BOUNDARY, 2.0, 4.0], abs=1e-6)


async def test_a_decode_error_is_retried_only_on_http_200(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=7)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=7, http_client=sim.http_client(),
        limiter=RateLimiter(clock=clock), uid_cache=False,
    ) as client:  # fmt: skip
        sim.inject(Fault(status=302, content=b"<html>moved</html>", content_type="text/html"))
        with pytest.raises(DecodeError):
            await client.asset_overview()
        assert len(overview(sim)) == 1  # not retried
        sim.inject(Fault.body(b'{"code":0,"da'))
        await client.asset_overview()  # cut off on HTTP 200: retried, and read
        assert len(overview(sim)) == 3


async def test_the_offset_counts_half_the_round_trip() -> None:
    server_clock = ServerClock(LoopClock())
    server_clock.observe(server_ms=10_000, sent_ms=1_000, received_ms=1_200)
    assert (server_clock.offset_ms, server_clock.uncertainty_ms) == (8_900, 100)
    server_clock.observe(server_ms=10_000, sent_ms=1_000, received_ms=1_201)  # 100.5: no
    assert server_clock.offset_ms == 8_900
    server_clock.observe(server_ms=20_000, sent_ms=2_000, received_ms=2_200)  # as good: yes
    assert server_clock.offset_ms == 17_900
    server_clock.observe(server_ms=30_000, sent_ms=3_000, received_ms=3_001)  # better: yes
    assert (server_clock.offset_ms, server_clock.uncertainty_ms) == (27_000, 0)


async def test_a_timestamp_error_replaces_the_old_offset(clock: LoopClock) -> None:
    # Mutant: the offset is not forgotten, so a new sample with a longer round trip
    # than the first is ignored, and the retry fails for its timestamp again.
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=8)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=8, http_client=sim.http_client(),
        limiter=RateLimiter(clock=clock), uid_cache=False,
    ) as client:  # fmt: skip
        await client.asset_overview()  # measured with no latency: uncertainty 0
        sim.latency, sim.skew_ms = 0.05, 30_000
        await client.asset_overview()
    codes = [r.code for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert codes == [0, 100421, 0]


async def test_forgetting_the_offset_forgets_all_of_it() -> None:
    server_clock = ServerClock(LoopClock())
    server_clock.observe(server_ms=10_000, sent_ms=1_000, received_ms=1_200)
    server_clock.forget()
    assert (server_clock.offset_ms, server_clock.uncertainty_ms) == (None, 0)
    assert server_clock.measured_at == -math.inf and not server_clock.measured
    fresh = ServerClock(LoopClock())
    assert (fresh.offset_ms, fresh.uncertainty_ms, fresh.measured_at) == (None, 0, -math.inf)
    assert fresh.attempted is False


async def test_server_time_and_seconds_until_err_late_never_early() -> None:
    clock = LoopClock()
    server_clock = ServerClock(clock)
    assert server_clock.now_ms() == clock.wall_ms()  # no offset: the wall clock itself
    server_clock.observe(server_ms=clock.wall_ms() + 500, sent_ms=clock.wall_ms(),
                         received_ms=clock.wall_ms() + 40)  # fmt: skip
    until = server_clock.now_ms() + 3_000
    assert server_clock.seconds_until(until) == pytest.approx(3.020)
    # A time no calendar holds reads as a plain "in N s".
    assert server_clock.local_time(10**20) == f"in {(10**20 - server_clock.now_ms()) // 1000} s"


async def test_local_time_takes_the_offset_off() -> None:
    clock = LoopClock(start_ms=1_767_225_600_000)
    midnight = datetime.datetime.fromtimestamp(1_767_225_600).astimezone()
    server_clock = ServerClock(clock)
    assert server_clock.local_time(1_767_225_600_000) == midnight.isoformat(timespec="seconds")
    server_clock.observe(server_ms=clock.wall_ms() + 3_600_000, sent_ms=clock.wall_ms(),
                         received_ms=clock.wall_ms())  # fmt: skip
    in_an_hour = server_clock.local_time(1_767_225_600_000 + 3_600_000)
    assert in_an_hour == midnight.isoformat(timespec="seconds")


def test_the_system_clock_reads_epoch_milliseconds() -> None:
    assert abs(SystemClock().wall_ms() - time.time() * 1000) < 1000
    assert repr(SystemClock()) == "SystemClock()"


async def test_a_waiter_sleeps_until_the_oldest_slot_that_makes_room_frees() -> None:
    backend = MemoryBackend(LoopClock())
    for _ in range(5):
        await permit(backend, scope())
        await asyncio.sleep(0.1)
    blocked = await backend.try_acquire(scope(), 0.0, 0.0)
    assert isinstance(blocked, Blocked)
    assert blocked.seconds == pytest.approx(1.0 + BOUNDARY - 0.5, abs=1e-9)


async def test_the_rate_header_disagreement_counts_what_was_sent_since() -> None:
    # A, B and C are sent in that order; BingX counts all three when A arrives (B and C
    # overtook it): no disagreement. Counted from the slots alive at A's sending only,
    # two of them would be taken for someone else's.
    backend = MemoryBackend(LoopClock())
    a = await permit(backend, scope(), 0.5)
    await permit(backend, scope(), 0.5)
    await permit(backend, scope(), 0.5)
    assert await a.settle(answered=True, server_count=3) is False
    await permit(backend, scope())
    await permit(backend, scope())
    assert isinstance(await backend.try_acquire(scope(), 0.0, 0.0), Blocked)
    # Had BingX counted four, one is someone else's, and the window holds it.
    other = MemoryBackend(LoopClock())
    x = await permit(other, scope(), 0.5)
    await permit(other, scope(), 0.5)
    await permit(other, scope(), 0.5)
    assert await x.settle(answered=True, server_count=4) is True
    await permit(other, scope())
    assert isinstance(await other.try_acquire(scope(), 0.0, 0.0), Blocked)


# -- survivors of mutmut over _limiter/_memory.py ---------------------------------------


async def test_a_gate_shorter_than_a_second_holds() -> None:
    backend = MemoryBackend(LoopClock())
    await backend.close_gate("gate:u", 0.5)
    outcome = await backend.try_acquire(scope(), 0.0, 0.0)
    assert isinstance(outcome, GateClosed) and outcome.seconds == pytest.approx(0.5)
    assert await backend.gate_remaining("gate:u") == pytest.approx(0.5)
    assert await backend.gate_remaining("never closed") == 0.0
    await asyncio.sleep(0.6)
    assert await backend.gate_remaining("gate:u") == 0.0


async def test_occupy_adds_only_what_is_missing() -> None:
    backend = MemoryBackend(LoopClock())
    await permit(backend, scope())
    await permit(backend, scope())
    assert await backend.occupy("uid:u", Rate(5, 1.0), 5) == 3
    assert await backend.occupy("uid:u", Rate(5, 1.0), 5) == 0
    await asyncio.sleep(1.0 + BOUNDARY / 2)  # every slot still alive: the boundary
    assert await backend.occupy("uid:u", Rate(5, 1.0), 5) == 0


async def test_settling_with_the_servers_count_adds_exactly_the_difference() -> None:
    backend = MemoryBackend(LoopClock())
    same = await permit(backend, scope("a"))
    assert await same.settle(answered=True, server_count=1) is False  # ours alone
    one_more = await permit(backend, scope("b"))
    assert await one_more.settle(answered=True, server_count=2) is True
    lost = await permit(backend, scope("c"))
    assert await lost.settle(answered=False) is False


async def test_a_success_gives_back_only_the_error_budget_slot() -> None:
    backend = MemoryBackend(LoopClock())
    s = scope(errors=Rate(1, 480.0))
    first = await permit(backend, s)
    await first.settle(answered=True, succeeded=True)
    await first.settle(answered=True, succeeded=True)  # settled twice: given back once
    await asyncio.sleep(1.0 + BOUNDARY)
    await permit(backend, s)  # the error budget's one slot is free again
    # Without an error budget, a success gives nothing back: the group window holds.
    plain = MemoryBackend(LoopClock())
    done = await permit(plain, scope(group=1))
    await done.settle(answered=True, succeeded=True)
    blocked = await plain.try_acquire(scope(group=1), 0.0, 0.0)
    assert isinstance(blocked, Blocked) and blocked.window == "ip:group"


async def test_a_success_settled_after_its_error_slot_expired_is_fine() -> None:
    backend = MemoryBackend(LoopClock())
    s = scope(errors=Rate(1, 2.0))
    late = await permit(backend, s)
    await asyncio.sleep(3.0)
    await (await permit(backend, s)).settle(answered=True)  # expires `late`'s slot
    await late.settle(answered=True, succeeded=True)


async def test_a_slot_given_up_moves_in_among_the_others() -> None:
    # It is the oldest, moved to between the two younger ones: the order must be kept
    # (a shortcut that checked the wrong neighbour left the list unsorted).
    backend = MemoryBackend(LoopClock())
    s = scope(limit=5)
    given_up = await backend.try_acquire(s, 0.0, 0.15)
    assert not isinstance(given_up, Blocked | GateClosed)
    await asyncio.sleep(0.1)
    await permit(backend, s)
    await asyncio.sleep(0.1)
    await permit(backend, s)
    await given_up.settle(answered=False)  # counts again until t = 0.15
    await asyncio.sleep(0.92 + BOUNDARY)  # t = 1.12 + BOUNDARY: the slot of t = 0.1 ended
    assert await backend.occupy("uid:u", Rate(5, 1.0), 5) == 3


async def test_a_slot_given_up_after_its_window_was_compacted_counts_again() -> None:
    # 17 slots end while the long window blocks: the short one drops them all (its list
    # compacted to nothing), then one of them is given up and must count until its horizon.
    backend = MemoryBackend(LoopClock())
    s = Scope(
        uid="u",
        ip="local",
        gates=(),
        windows=(("short", Rate(100, 1.0)), ("long", Rate(17, 100.0))),
    )
    permits = []
    for _ in range(17):
        outcome = await backend.try_acquire(s, 0.0, 5.0)
        assert not isinstance(outcome, Blocked | GateClosed)
        permits.append(outcome)
    await asyncio.sleep(1.1 + BOUNDARY)
    blocked = await backend.try_acquire(s, 0.0, 5.0)
    assert isinstance(blocked, Blocked) and blocked.window == "long"
    await permits[0].settle(answered=False)
    assert await backend.occupy("short", Rate(100, 1.0), 100) == 99


async def test_a_window_with_a_permit_in_flight_survives_a_sweep() -> None:
    # Two permits share the window; one is settled, twice: the other still holds it, so
    # the sweep keeps it and giving that one up counts its slot again.
    backend = MemoryBackend(LoopClock())
    s = scope("k", limit=5)
    settled = await backend.try_acquire(s, 0.0, 5.0)
    in_flight = await backend.try_acquire(s, 0.0, 5.0)
    assert not isinstance(settled, Blocked | GateClosed)
    assert not isinstance(in_flight, Blocked | GateClosed)
    await settled.settle(answered=True)
    await settled.settle(answered=True)
    await asyncio.sleep(1.1 + BOUNDARY)  # both slots ended: only `pending` keeps it
    for i in range(254):  # the 256th acquire sweeps
        await permit(backend, scope(f"other{i}"))
    await in_flight.settle(answered=False)  # counts again until t = 5
    assert await backend.occupy("uid:k", Rate(5, 1.0), 5) == 4


# -- survivors of mutmut over _wire.py ---------------------------------------------------


def decode(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> object:
    return decode_envelope_data(body, status_code=status, headers=headers or {}, data=BALANCES)


def test_an_http_400_is_an_error_whatever_its_body() -> None:
    success = b'{"code":0,"data":[{"accountType":"sopt","usdtBalance":"1"}]}'
    with pytest.raises(APIError) as caught:
        decode(success, 400)  # not read through the fast path for successes
    assert caught.value.status_code == 400
    with pytest.raises(APIError, match="HTTP 400") as html:
        decode(b"<html>bad request</html>", 400)
    assert not isinstance(html.value, DecodeError)
    with pytest.raises(ServerBusyError, match="nginx"):
        decode(b"<html>nginx</html>", 502)  # the excerpt says what happened
    with pytest.raises(APIError, match="maintenance"):
        decode(b'{"code":0,"msg":"maintenance"}', 503)


def test_retry_after_reaches_the_error_whichever_the_answer() -> None:
    with pytest.raises(RateLimitError) as plain:
        decode(b'{"code":0,"msg":"slow down"}', 429, {"retry-after": "7"})
    assert plain.value.retry_after == 7
    with pytest.raises(RateLimitError) as enveloped:
        decode(b'{"code":100410,"msg":"rate limited"}', 200, {"retry-after": "7"})
    assert enveloped.value.retry_after == 7


def test_what_a_decode_error_says() -> None:
    cases = [
        (b"<html></html>", "answer is not a BingX JSON envelope"),
        (b'{"code":0,"data":null}', "success without data"),
        (b'{"code":0}', "success without data"),
        (b'{"code":0,"data":{"unexpected":1}}', "unexpected data"),
        (b'{"code":"abc"}', "non-numeric code 'abc'"),
        # Cut to 20 characters, the cut marked; a terminal escape made harmless.
        (b'{"code":"' + b"x" * 30 + b'"}', "non-numeric code '" + "x" * 19 + "…'"),
        (b'{"code":"' + b"x" * 20 + b'"}', "non-numeric code '" + "x" * 20 + "'"),
        (b'{"code":"a\\u001b[2Jb"}', "non-numeric code 'a [2Jb'"),
    ]
    for body, says in cases:
        with pytest.raises(DecodeError) as caught:
            decode(body)
        assert str(caught.value).startswith(says), body


def test_an_error_with_no_message_says_only_its_code() -> None:
    with pytest.raises(APIError) as caught:
        decode(b'{"code":100400}')
    assert str(caught.value) == "BingX code 100400"


def test_an_excerpt_is_printable_and_marks_what_it_cut() -> None:
    assert excerpt(b"\xff\xfe ok") == "\ufffd\ufffd ok"
    assert excerpt(b"a" * 200) == "a" * 200
    assert excerpt(b"a" * 201) == "a" * 200 + "…"


def test_an_echo_in_the_code_is_masked_too() -> None:
    """Found in the #19 re-review: a non-numeric `code` was quoted unmasked (19 chars)."""
    key = "VICTIMKEY" + "v" * 55
    with pytest.raises(DecodeError) as caught:
        decode_envelope_data(
            b'{"code":"' + key.encode() + b'"}', status_code=200, headers={}, data=BALANCES,
            secrets=[key],
        )  # fmt: skip
    assert "VICTIMK" not in str(caught.value)


@pytest.mark.parametrize("at", [150, 190, 193, 780, 799])
def test_a_secret_across_the_excerpt_s_cut_shows_none_of_itself(at: int) -> None:
    """Found in the #19 re-review: the body was cut at 200 characters before it was
    masked, and an api key from character 150 on showed its first 50."""
    key = "VICTIMKEY" + "v" * 55
    body = b"x" * at + key.encode() + b" rejected" + b" " * 2000
    assert "VICTIMK" not in excerpt(body, [key])
    # A run of control characters shortens the text, not what was cut from it.
    assert "VICTIMK" not in excerpt(b"\x07" * at + key.encode() + b"y" * 2000, [key])


# -- survivors of mutmut over _limiter/_rate_limiter.py ----------------------------------


class Recorder:
    """An observer that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object, ...]] = []

    def acquired(self, waited: float) -> None:
        self.events.append(("acquired", waited))

    def settled(self, seconds: float) -> None:
        self.events.append(("settled", seconds))

    def gate_closed(self, gate: str, seconds: float) -> None:
        self.events.append(("gate_closed", gate, seconds))

    def attempted(self, error: BaseException | None) -> None:
        self.events.append(("attempted", error))

    def read(self, label: str, overview: object) -> None:
        self.events.append(("read", label))


async def test_the_limiter_counts_and_tells_what_it_did() -> None:
    limiter = RateLimiter(RateLimits(per_uid=Rate(1, 1.0)), clock=LoopClock())
    recorder = Recorder()
    limiter.observers.append(recorder)
    s = limiter.scope("u", "/x")
    first = await limiter.acquire(s, max_wait=60)
    await asyncio.sleep(0.25)
    await first.settle(answered=True)
    await limiter.close_gate(s.uid_gate, 2.0, because="a test")
    await limiter.close_gate(s.uid_gate, 1.0)
    second = await limiter.acquire(s, max_wait=60)  # waits for the gate: 2 s
    await second.settle(answered=True)
    await limiter.close_gate(s.uid_gate, 0.5)
    # The gate again (0.5 s), then the window until 1 s after `second`: one wait.
    third = await limiter.acquire(s, max_wait=60)
    await third.settle(answered=True)
    assert recorder.events[6:] == [
        ("gate_closed", s.uid_gate, 0.5),
        ("acquired", pytest.approx(1.0 + BOUNDARY)),
        ("settled", 0.0),
    ]
    del recorder.events[6:]
    assert recorder.events == [
        ("acquired", 0.0),
        ("settled", pytest.approx(0.25)),
        ("gate_closed", s.uid_gate, 2.0),
        ("gate_closed", s.uid_gate, 1.0),
        ("acquired", pytest.approx(2.0)),
        ("settled", 0.0),
    ]
    stats = limiter.stats
    assert (stats.acquired, stats.waits, stats.gate_waits, stats.gate_closures) == (3, 2, 2, 3)
    assert stats.wait_seconds == pytest.approx(2.0 + 1.0 + BOUNDARY)


async def test_why_a_gate_is_closed_is_remembered_for_as_long_as_it_is() -> None:
    limiter = RateLimiter(clock=LoopClock())
    await limiter.close_gate("g", 10.0, because="BingX said so")
    assert limiter.closed_because("g", 10.0) == "BingX said so"
    assert limiter.closed_because("g", 9.95) == "BingX said so"
    assert limiter.closed_because("g", 10.5) == ""  # longer than ours: someone else's
    assert limiter.closed_because("other", 1.0) == ""
    await limiter.close_gate("g", 5.0, because="shorter")  # never shortens, nor renames
    await limiter.close_gate("g", 10.0, because="as long")  # the first reason stays
    assert limiter.closed_because("g", 10.0) == "BingX said so"
    await asyncio.sleep(10.0)
    assert limiter.closed_because("g", 0.0) == "BingX said so"
    assert limiter.closed_because("g", 1.0) == ""


async def test_a_ticket_keeps_its_error_slot_unless_it_succeeded() -> None:
    limiter = RateLimiter(clock=LoopClock())
    s = scope(errors=Rate(1, 480.0))
    failed = await limiter.acquire(s, max_wait=60)
    await failed.settle(answered=True)  # an error reply: the budget's one slot stays
    await asyncio.sleep(1.0 + BOUNDARY)
    blocked = await limiter.backend.try_acquire(s, 0.0, 0.0)  # type: ignore[union-attr]
    assert isinstance(blocked, Blocked) and blocked.window == "errors:u"
    other = scope("v", errors=Rate(1, 480.0))
    succeeded = await limiter.acquire(other, max_wait=60)
    await succeeded.settle(answered=True, succeeded=True)
    await asyncio.sleep(1.0 + BOUNDARY)
    ticket = await limiter.acquire(other, max_wait=60)
    assert ticket.granted == succeeded.granted + 1.0 + BOUNDARY  # given back: no wait


async def test_a_rate_header_saying_none_left_is_read() -> None:
    limiter = RateLimiter(clock=LoopClock())
    s = limiter.scope("u", "/x")
    ticket = await limiter.acquire(s, max_wait=60)
    await ticket.settle(answered=True, server_remaining=0)  # BingX counts 5, we sent 1
    assert limiter.stats.server_disagreements == 1
    ticket = await limiter.acquire(s, max_wait=60)  # the window is full until then
    assert ticket.granted == pytest.approx(1.0 + BOUNDARY)
    await ticket.settle(answered=True, server_remaining=0)
    assert limiter.stats.server_disagreements == 2


def test_the_default_limiter_is_one_per_process() -> None:
    assert isinstance(RateLimiter.default(), RateLimiter)
    assert RateLimiter.default() is RateLimiter.default()


def test_a_scope_is_made_once_and_names_its_ip() -> None:
    limiter = RateLimiter(clock=LoopClock(), ip="127.0.0.11")
    s = limiter.scope("u", "/x")
    assert limiter.scope("u", "/x") is s
    assert s.ip == "127.0.0.11" and s.ip_gate == "gate:ip:127.0.0.11"


def test_bad_limits_say_which_and_what() -> None:
    with pytest.raises(ConfigurationError, match=r"^per_uid must be a Rate, not 5$"):
        RateLimits(per_uid=5)  # type: ignore[arg-type]
    for bet in (True, -1, 1e9, float("nan")):
        with pytest.raises(ConfigurationError, match=r"^assume_arrival_within must be None or"):
            RateLimits(assume_arrival_within=bet)
    assert RateLimits(assume_arrival_within=0).assume_arrival_within == 0
    with pytest.raises(ConfigurationError, match=r"^limits must be RateLimits, not 'x'$"):
        RateLimiter(limits="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^limiter must be a RateLimiter or None"):
        AssetsClient("k" * 64, "s" * 64, limiter="x")  # type: ignore[arg-type]


# _refusals.py: what a key's back-off remembers and says.


def test_a_key_gate_keeps_its_name_across_versions() -> None:
    # Processes of different versions sharing a backend must name a key's gate alike, or
    # one holds a refused key that the other sends at once.
    assert key_gate("api-key", b"secret") == "gate:key:5fb08c9660fe75f0d5c0e5892862b391"


def test_a_key_refused_here_says_when_it_was_refused() -> None:
    backoff = KeyBackoff(error_window=480.0)
    backoff.hold(10.0, 1_000_000, 60.0, Closure(60.0, 100413))
    assert (backoff.refused_at_ms, backoff.retry_at_ms) == (1_000_000, 1_060_000)
    assert backoff.code == 100413 and backoff.held(69.9) and not backoff.held(70.0)


def test_a_key_held_by_another_process_dates_the_refusal_from_its_closure() -> None:
    # The other process closed the gate for 120 s, 90 s ago: 30 s are left.
    backoff = KeyBackoff(error_window=480.0)
    backoff.hold(10.0, 1_000_000, 30.0, Closure(120.0, 100001))
    assert (backoff.refused_at_ms, backoff.retry_at_ms) == (910_000, 1_030_000)
    assert backoff.code == 100001


def test_a_key_held_without_a_known_closure_holds_for_what_is_left() -> None:
    # The backend no longer has the closure (or never had one): no code to report.
    backoff = KeyBackoff(error_window=480.0)
    backoff.hold(10.0, 1_000_000, 30.0, None)
    assert (backoff.refused_at_ms, backoff.retry_at_ms, backoff.code) == (
        1_000_000,
        1_030_000,
        None,
    )
    assert backoff.held(39.9) and not backoff.held(40.0) and backoff.known_good is False


def test_an_error_about_the_key_makes_it_not_known_good_whatever_the_uid_cache_says() -> None:
    backoff = KeyBackoff(error_window=480.0)
    backoff.succeeded()
    backoff.errored()
    assert backoff.known_good is False  # None would ask the UID cache, which knows the UID


def test_a_key_held_for_an_unexpected_code_is_a_plain_api_error() -> None:
    # Only a code that refuses the key as it is keeps its type: a gate recording any other
    # (an older version's, a hand-edited backend's) must not read as server trouble, which
    # the client retries, or as a timestamp error, which re-measures the clock.
    for code in (100500, 80014, 100400, None):
        error = key_not_sent(code, "not sent: held")
        assert type(error) is APIError and error.code == code
    refused = key_not_sent(100001, "not sent: held")
    assert isinstance(refused, AuthenticationError)
    assert (str(refused), refused.msg, refused.status_code) == ("not sent: held",) * 2 + (None,)


# _limiter/_backend.py: what a Rate accepts.


def test_a_rate_is_a_positive_int_in_a_finite_positive_period() -> None:
    for limit in (True, 0, -1, 1.5, "5"):
        with pytest.raises(ConfigurationError) as limit_error:
            Rate(limit, 1.0)  # type: ignore[arg-type]
        assert str(limit_error.value) == f"a rate's limit must be a positive int, not {limit!r}"
    for period in (True, 0, -1.0, math.inf, math.nan, "1"):
        with pytest.raises(ConfigurationError) as period_error:
            Rate(5, period)  # type: ignore[arg-type]
        assert str(period_error.value) == f"a rate's period must be seconds > 0, not {period!r}"
    assert Rate(1, 0.001) == Rate(1, 0.001) and Rate(5, 1).period == 1


# _clock.py: the hold of a probe refused for its timestamp, and the `Date` header's bound.


async def test_a_refused_probe_holds_15_s_doubling_to_480_s() -> None:
    clock = LoopClock()
    await asyncio.sleep(100.0)  # a loop time far from 0: the hold counts from now
    server_clock = ServerClock(clock)
    holds = []
    for _ in range(7):
        server_clock.probe_refused()
        holds.append(server_clock.probe_held())
    assert holds == [15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 480.0]
    # When it was refused, for the error's message and the next probe's first step.
    assert server_clock.refused_at_ms == clock.wall_ms()
    await asyncio.sleep(480.0)
    assert server_clock.probe_held() == 0.0


async def test_a_date_header_is_read_up_to_64_characters() -> None:
    clock = LoopClock()
    date = email.utils.format_datetime(
        datetime.datetime.fromtimestamp(clock.wall_ms() // 1000, datetime.UTC), usegmt=True
    )
    for length, read in ((64, True), (65, False)):
        server_clock = ServerClock(clock)
        padded = date.ljust(length)  # a server's trailing spaces, which the parser skips
        server_clock.observe_date({"date": padded}, clock.wall_ms(), clock.wall_ms())
        assert server_clock.measured is read, length


async def test_the_first_probe_goes_without_asking_the_failed_time_endpoint_again(
    clock: LoopClock,
) -> None:
    # Only a probe refused before makes the client try the time endpoint again first.
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=9)
    sim.inject(Fault.http(503), path=SERVER_TIME_PATH)
    async with AssetsClient(
        key.api_key, key.secret_key, uid=9, http_client=sim.http_client(),
        limiter=RateLimiter(clock=clock), uid_cache=False,
    ) as client:  # fmt: skip
        await client.asset_overview()
    signed = [r.path for r in sim.requests if r.path != UID_PATH]  # the UID's check
    assert signed == [SERVER_TIME_PATH, ASSET_OVERVIEW_PATH]


# _wire.py: what an undecodable code says, and the longest code read.


def test_a_non_numeric_code_keeps_the_secrets_out_of_its_excerpt() -> None:
    body = b'{"code":"x1","msg":"unknown key my-api-key-123"}'
    with pytest.raises(DecodeError) as caught:
        decode_envelope_data(
            body, status_code=200, headers={}, data=BALANCES, secrets=("my-api-key-123",)
        )
    assert "my-api-key-123" not in str(caught.value)
    assert caught.value.excerpt == '{"code":"x1","msg":"unknown key ***"}'


def test_a_code_is_read_up_to_12_digits() -> None:
    body = b'{"code":"%s","msg":"Incorrect apiKey"}'
    with pytest.raises(AuthenticationError) as refused:
        decode_envelope_data(body % b"000000100001", status_code=200, headers={}, data=BALANCES)
    assert refused.value.code == 100001
    with pytest.raises(DecodeError, match="non-numeric code '0000000100001'"):
        decode_envelope_data(body % b"0000000100001", status_code=200, headers={}, data=BALANCES)


def test_an_answer_nested_too_deep_is_a_decode_error_that_says_so() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    body = b'{"code":0,"msg":"my-api-key-123","data":' + nested + b"}"
    with pytest.raises(DecodeError) as caught:
        decode_envelope_data(
            body, status_code=502, headers={}, data=BALANCES, secrets=("my-api-key-123",)
        )
    error = caught.value
    assert str(error).startswith("answer nested deeper than any BingX answer (HTTP 502): ")
    assert error.status_code == 502
    assert error.excerpt == excerpt(body, ("my-api-key-123",))
    assert error.excerpt.startswith('{"code":0,"msg":"***","data":[[[')
    assert error.__context__ is None and error.__traceback__ is not None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<html>my-api-key-123 is not allowed here</html>", 403),  # HTML with an HTTP error
        (b"<html>my-api-key-123</html>", 200),  # not an envelope
        (b'{"code":100400,"msg":"bad apiKey value my-api-key-123"}', 200),  # an error's msg
        (b'{"code":0,"msg":"my-api-key-123"}', 200),  # a success without data
        (b'{"code":0,"data":{"my-api-key-123":1}}', 200),  # data of another shape
    ],
)
def test_every_decoding_error_masks_the_api_key(body: bytes, status: int) -> None:
    # A bare key in a body (no `apiKey=` before it) is masked only by being named.
    with pytest.raises(BingXError) as caught:
        decode_envelope_data(
            body, status_code=status, headers={}, data=BALANCES, secrets=("my-api-key-123",)
        )
    error = caught.value
    shown = [str(error), getattr(error, "excerpt", ""), getattr(error, "msg", "")]
    assert "***" in str(error) and not any("my-api-key-123" in text for text in shown)


def test_data_of_another_shape_says_what_is_wrong_with_it() -> None:
    body = b'{"code":0,"data":[{"accountType":"spot","usdtBalance":[1,2]}]}'
    with pytest.raises(DecodeError) as caught:
        decode_envelope_data(body, status_code=200, headers={}, data=BALANCES)
    reason = "Expected `decimal`, got `array` - at `$[0].usdtBalance`"
    assert str(caught.value).startswith(f"unexpected data ({reason}) (HTTP 200): ")


def test_an_error_message_is_cut_at_500_characters() -> None:
    body = b'{"code":100400,"msg":"%s"}' % (b"x" * 600)
    with pytest.raises(APIError) as caught:
        decode_envelope_data(body, status_code=200, headers={}, data=BALANCES)
    assert caught.value.msg == "x" * 499 + "…"
