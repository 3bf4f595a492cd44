"""Rate limiting: strict sliding windows per UID and per IP, and gates for disabled periods.

Why not a token or leaky bucket (such as aiolimiter's `AsyncLimiter(5, 1)`): BingX counts
in sliding windows, so a bucket that refills while it is being drained lets 9 or 10
requests into one second. Here every request takes a *slot* in each window it counts
against, and a window admits a request only while fewer than `limit` slots are younger
than `period`.

When does a slot stop counting? BingX stamps a request when it arrives, and the client
cannot see that moment: only that it came after the request was sent and before its
answer arrived. A slot must never free before the server's does, so its *anchor* (the
moment its `period` starts) is the latest moment the server can have stamped it:

- answered: the moment the answer arrived. Exact, whatever the network did.
- not answered yet, or never (a timeout, a reset): the request may still be on its way.
  BingX admits a request only while its `timestamp` is within `recvWindow` of the
  server's clock, so `timestamp + recvWindow`, plus the uncertainty of the measured clock
  offset, is the last moment it can count. That bound rests on BingX checking the
  timestamp before it counts the request for rate; a smaller `recv_window` shortens it.

Nothing here assumes the network is fast. `RateLimits.assume_arrival_within` is an
opt-in bet that every request arrives within that many seconds of being sent; it frees
in-flight slots sooner and costs a refusal whenever the network loses the bet.

Who waits: a request checks its gates (its UID's and its IP's) and all its windows (UID
first, then IP) at once and takes a slot in all of them or in none, so it never holds one
budget while waiting for another. Requests of one UID queue in order behind one lock per
UID; the one at the head sleeps until the window that blocks it frees, and wakes early
when an answer settles a slot of that window (its anchor moved earlier).

What the server says is used only to become more careful, never faster: a UID's
disabled period (100410 with a time) closes its gate, a 429 or a ban closes the IP's,
and a count of remaining requests lower than ours fills the window with the requests
someone else made.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import math
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from ._clock import Clock, ServerClock, SystemClock
from ._constants import DEFAULT_RECV_WINDOW_MS
from ._exceptions import ConfigurationError
from ._files import write_private
from ._observer import Observer

__all__ = [
    "Blocked",
    "GateClosed",
    "GateTooLong",
    "LimiterBackend",
    "LimiterStats",
    "MemoryBackend",
    "Permit",
    "Rate",
    "RateLimiter",
    "RateLimits",
    "Scope",
    "Ticket",
]

log = logging.getLogger("bingx_assets")

# A slot frees this long after its window's period, so that a server counting its
# window as closed at both ends ([t - period, t]) still sees at most `limit`.
BOUNDARY = 0.001


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` requests in any `period` seconds."""

    limit: int
    period: float

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigurationError(f"a rate's limit must be a positive int, not {self.limit!r}")
        if (
            isinstance(self.period, bool)
            or not isinstance(self.period, int | float)
            or not 0 < self.period < float("inf")
        ):
            raise ConfigurationError(f"a rate's period must be seconds > 0, not {self.period!r}")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """BingX's limits for this endpoint. BingX raises them from time to time; so can you.

    `assume_arrival_within` (seconds, default None: no assumption) bets that every
    request reaches BingX within that long of being sent, so that a slot in flight stops
    counting from `sent + assume_arrival_within` instead of from its answer. It wins
    back a slow network's round trip per window, and loses a refusal (a step towards a
    disabled UID) each time a request is later than that: a cold TLS handshake, a
    retransmission, a busy event loop. Leave it None unless you measured your worst case.
    """

    per_uid: Rate = Rate(5, 1.0)
    per_ip_endpoint: Rate = Rate(300, 10.0)
    per_ip_group: Rate = Rate(2000, 10.0)
    assume_arrival_within: float | None = None

    def __post_init__(self) -> None:
        for name in ("per_uid", "per_ip_endpoint", "per_ip_group"):
            if not isinstance(getattr(self, name), Rate):
                raise ConfigurationError(f"{name} must be a Rate, not {getattr(self, name)!r}")
        bet = self.assume_arrival_within
        if bet is not None and (
            isinstance(bet, bool) or not isinstance(bet, int | float) or not 0 <= bet < 1e9
        ):
            raise ConfigurationError(
                f"assume_arrival_within must be None or seconds >= 0, not {bet!r}"
            )


@dataclass(frozen=True, slots=True)
class Scope:
    """What one request counts against: its gates and windows, in the order checked."""

    uid: str
    ip: str
    gates: tuple[str, ...]
    """The UID's gate, then the IP's."""
    windows: tuple[tuple[str, Rate], ...]
    """The UID's window, then the IP's endpoint and group windows."""

    @property
    def uid_gate(self) -> str:
        return self.gates[0]

    @property
    def ip_gate(self) -> str:
        return self.gates[1]

    @property
    def uid_window(self) -> tuple[str, Rate]:
        return self.windows[0]

    @property
    def ip_windows(self) -> tuple[tuple[str, Rate], ...]:
        return self.windows[1:]


@dataclass(slots=True)
class LimiterStats:
    """Counters of what the limiter did, for metrics and tests."""

    acquired: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    gate_closures: int = 0
    gate_waits: int = 0
    retries: int = 0
    rejections: int = 0
    """Answers refused for rate (100410, 429, 418, 403). Zero is the goal."""
    server_disagreements: int = 0
    """Answers whose `X-RateLimit-Requests-Remain` said fewer requests were left than the
    client's own window allowed: someone else used the UID's budget."""


@dataclass(slots=True)
class GateClosed:
    """`gate` is closed for `seconds` more."""

    seconds: float
    gate: str


@dataclass(slots=True)
class Blocked:
    """`window` (one of the scope's) is full for `seconds` more, unless an answer frees it."""

    seconds: float
    window: str


class Permit(Protocol):
    """A backend's taken slot. Settle it when the request ends, so it counts as long as
    it must."""

    async def settle(self, *, answered: bool, server_count: int | None = None) -> bool:
        """`answered`: the server's answer arrived, so the request arrived before now;
        otherwise it may arrive until its horizon. `server_count`: how many requests the
        server said its UID window held, this one included, if it said; when that is more
        than this client can account for, the difference is added to the window as
        someone else's requests. Returns whether that happened."""
        ...


class LimiterBackend(Protocol):
    """Where window and gate state lives: this process (`MemoryBackend`) or Redis."""

    async def try_acquire(
        self, scope: Scope, in_flight: float, horizon: float
    ) -> Permit | Blocked | GateClosed:
        """Take a slot in every window of `scope` at once, or say what to wait for.

        The slot's anchor is `now + in_flight` until it is settled; unanswered, it is
        `now + horizon`.
        """
        ...

    async def occupy(self, window: str, rate: Rate, count: int) -> int:
        """Make `window` hold at least `count` slots that count from now; returns how
        many were added (requests someone else made)."""
        ...

    async def close_gate(self, gate: str, seconds: float) -> None:
        """Keep `gate` closed for `seconds` from now (never shortens a closure)."""
        ...

    async def gate_remaining(self, gate: str) -> float:
        """Seconds until `gate` opens; 0 when open."""
        ...

    async def aclose(self) -> None:
        """Release what the backend opened (connections); nothing for memory."""
        ...


class _Slot:
    __slots__ = ("anchor", "horizon")

    def __init__(self, anchor: float, horizon: float) -> None:
        self.anchor = anchor
        self.horizon = horizon


class _Window:
    __slots__ = ("_slots", "rate", "taken")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._slots: deque[_Slot] = deque()
        self.taken = 0
        """Slots ever taken here: tells how many of ours a server's count may include."""

    def alive(self, now: float) -> int:
        expiry = self.rate.period + BOUNDARY
        return sum(1 for s in self._slots if s.anchor + expiry > now)

    def wait(self, now: float) -> float:
        """Seconds until this window admits one more request."""
        # The nanosecond forgives float error in `anchor + period`, nothing more.
        now += 1e-9
        expiry = self.rate.period + BOUNDARY
        slots = self._slots
        while slots and slots[0].anchor + expiry <= now:
            slots.popleft()
        if len(slots) < self.rate.limit:
            return 0.0
        # Anchors move when requests are settled, so slots do not always free in the
        # order they were taken: look at all of them once the window is full.
        alive = sorted(s.anchor for s in slots if s.anchor + expiry > now)
        if len(alive) < self.rate.limit:
            self._slots = deque(s for s in slots if s.anchor + expiry > now)
            return 0.0
        return alive[len(alive) - self.rate.limit] + expiry - now

    def take(self, slot: _Slot) -> None:
        self._slots.append(slot)
        self.taken += 1

    def slots(self) -> Iterable[_Slot]:
        return iter(self._slots)


class _MemoryPermit:
    __slots__ = ("_alive", "_backend", "_clock", "_slot", "_taken", "_window")

    def __init__(self, backend: MemoryBackend, clock: Clock, slot: _Slot, window: _Window) -> None:
        self._backend, self._clock, self._slot, self._window = backend, clock, slot, window
        # What this client can account for in the UID window when the server counts
        # this request: what was alive when it was sent, and whatever was sent since.
        self._alive, self._taken = window.alive(clock.monotonic()), window.taken

    async def settle(self, *, answered: bool, server_count: int | None = None) -> bool:
        slot = self._slot
        if not answered:
            slot.anchor = max(slot.anchor, slot.horizon)
            return False
        slot.anchor = min(slot.anchor, self._clock.monotonic())
        if server_count is None:
            return False
        ours = self._alive + self._window.taken - self._taken
        return self._backend.fill(self._window, server_count - ours) > 0


class MemoryBackend:
    """Limiter state in this process: the default. Share one between clients of one IP.

    A new process knows nothing of what the last one sent, and BingX still counts those
    requests for a period (10 s for the IP windows). With `state_file`, the windows and
    gates are saved there by `aclose` and read back on first use, so that processes run
    one after another (a command line, a bot that restarts) share one budget. Processes
    running *at once* need Redis.
    """

    def __init__(self, clock: Clock, *, state_file: str | os.PathLike[str] | None = None) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._gates: dict[str, float] = {}
        self._state_file = Path(state_file) if state_file is not None else None
        self._restored = state_file is None

    def _window(self, key: str, rate: Rate) -> _Window:
        window = self._windows.get(key)
        if window is None or window.rate != rate:
            window = self._windows[key] = _Window(rate)
        return window

    async def try_acquire(
        self, scope: Scope, in_flight: float, horizon: float
    ) -> Permit | Blocked | GateClosed:
        if not self._restored:
            self._restore()
        now = self._clock.monotonic()
        for gate in scope.gates:
            gate_left = self._gates.get(gate, now) - now
            if gate_left > 0:
                return GateClosed(gate_left, gate)
        windows = [self._window(key, rate) for key, rate in scope.windows]
        waits = [w.wait(now) for w in windows]
        longest = max(waits)
        if longest > 0:
            return Blocked(longest, scope.windows[waits.index(longest)][0])
        slot = _Slot(now + in_flight, now + horizon)
        for window in windows:
            window.take(slot)
        return _MemoryPermit(self, self._clock, slot, windows[0])

    def fill(self, window: _Window, missing: int) -> int:
        now = self._clock.monotonic()
        for _ in range(max(0, missing)):
            window.take(_Slot(now, now))
        return max(0, missing)

    async def occupy(self, window: str, rate: Rate, count: int) -> int:
        found = self._window(window, rate)
        return self.fill(found, count - found.alive(self._clock.monotonic()))

    async def close_gate(self, gate: str, seconds: float) -> None:
        until = self._clock.monotonic() + seconds
        if until > self._gates.get(gate, float("-inf")):
            self._gates[gate] = until

    async def gate_remaining(self, gate: str) -> float:
        if not self._restored:
            self._restore()
        return max(0.0, self._gates.get(gate, 0.0) - self._clock.monotonic())

    async def aclose(self) -> None:
        if self._state_file is not None and self._restored:
            self._save(self._state_file)

    # -- the state file: anchors and gates as wall-clock seconds ----------------------

    def _to_wall(self) -> Callable[[float], float]:
        offset = self._clock.wall_ms() / 1000 - self._clock.monotonic()
        return lambda moment: round(moment + offset, 6)

    def _save(self, path: Path) -> None:
        now, wall = self._clock.monotonic(), self._to_wall()
        windows = {}
        for key, window in self._windows.items():
            expiry = window.rate.period + BOUNDARY
            anchors = [wall(s.anchor) for s in window.slots() if s.anchor + expiry > now]
            if anchors:
                rate = window.rate
                windows[key] = {"limit": rate.limit, "period": rate.period, "anchors": anchors}
        gates = {key: wall(until) for key, until in self._gates.items() if until > now}
        state = {"version": 1, "windows": windows, "gates": gates}
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(path, json.dumps(state).encode())
        except OSError as exc:
            log.warning("could not save the limiter's state to %s (%s)", path, exc)

    def _restore(self) -> None:
        self._restored = True
        assert self._state_file is not None
        try:
            state = json.loads(self._state_file.read_bytes())
            now = self._clock.monotonic()
            offset = now - self._clock.wall_ms() / 1000
            for key, saved in state["windows"].items():
                window = self._window(key, Rate(saved["limit"], saved["period"]))
                for anchor in saved["anchors"]:
                    window.take(_Slot(float(anchor) + offset, float(anchor) + offset))
            for key, until in state["gates"].items():
                self._gates[key] = max(self._gates.get(key, now), float(until) + offset)
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ConfigurationError):
            # Only a saving of throughput is lost: start as a new process would.
            log.warning("ignoring the limiter's unreadable state file %s", self._state_file)


@dataclass(eq=False)
class RateLimiter:
    """Keeps every request inside BingX's limits. One per egress IP is right.

    Clients made without a limiter share `RateLimiter.default()`, so all clients in a
    process draw from one budget per UID and per IP. Pass your own to use other limits,
    a Redis backend shared by many processes, or (in tests) a virtual clock.
    """

    limits: RateLimits = field(default_factory=RateLimits)
    clock: Clock = field(default_factory=SystemClock)
    backend: LimiterBackend | None = None
    ip: str = "local"
    """Names this IP's windows; processes behind one egress IP share a name in Redis."""
    stats: LimiterStats = field(default_factory=LimiterStats, init=False)
    server_clock: ServerClock = field(init=False)
    observers: list[Observer] = field(default_factory=list, init=False)
    """Told of every wait, answer and gate closure; empty unless metrics are attached."""

    def __post_init__(self) -> None:
        if not isinstance(self.limits, RateLimits):
            raise ConfigurationError(f"limits must be RateLimits, not {self.limits!r}")
        self._backend: LimiterBackend = self.backend or MemoryBackend(self.clock)
        self.backend = self._backend
        self.server_clock = ServerClock(self.clock)
        self._scopes: dict[tuple[str, str, int], Scope] = {}
        # A list, so that `for_ip`'s twins share the locks of whichever loop runs.
        self._loop_state: list[tuple[asyncio.AbstractEventLoop, _LoopState]] = []
        # gate -> (monotonic time it opens, why): what a request refused at it is told.
        self._closed_because: dict[str, tuple[float, str]] = {}

    _default: ClassVar[RateLimiter | None] = None

    @classmethod
    def default(cls) -> RateLimiter:
        """The process-wide limiter that clients use unless given another."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def for_ip(self, ip: str) -> RateLimiter:
        """This limiter counting IP windows and the IP gate under the name `ip`: one per
        egress route. Everything else is shared (backend, clock, stats, observers, server
        clock, locks), so a UID stays limited across all routes."""
        twin = copy.copy(self)
        twin.ip = ip
        twin._scopes = {}  # its scopes name its own IP
        return twin

    def scope(self, uid: str, endpoint: str, group: int = 2) -> Scope:
        """What a request of `uid` to `endpoint` counts against (made once, then reused:
        it is on every call's path)."""
        found = self._scopes.get((uid, endpoint, group))
        if found is None:
            limits = self.limits
            found = self._scopes[(uid, endpoint, group)] = Scope(
                uid=uid,
                ip=self.ip,
                gates=(f"gate:{uid}:{endpoint}", f"gate:ip:{self.ip}"),
                windows=(
                    (f"uid:{uid}:{endpoint}", limits.per_uid),
                    (f"ip:{self.ip}:{endpoint}", limits.per_ip_endpoint),
                    (f"ip:{self.ip}:group{group}", limits.per_ip_group),
                ),
            )
        return found

    def _state(self) -> _LoopState:
        # Locks and events belong to one event loop; a limiter reused under a new
        # asyncio.run starts a fresh set instead of failing.
        loop = asyncio.get_running_loop()
        if not self._loop_state or self._loop_state[0][0] is not loop:
            self._loop_state[:] = [(loop, _LoopState())]
        return self._loop_state[0][1]

    def lock(self, name: str) -> asyncio.Lock:
        """A lock named `name`, shared by everyone using this limiter in this event loop."""
        return self._state().lock(name)

    def horizon(self, recv_window_ms: int) -> float:
        """Seconds from now until a request signed now certainly no longer counts as
        arriving: its `recvWindow`, plus what the clock offset may be wrong by (with no
        measurement, the offset is only known to be within one more `recvWindow`: a
        larger error would have every request refused for its timestamp)."""
        server_clock = self.server_clock
        error_ms = server_clock.uncertainty_ms if server_clock.measured else recv_window_ms
        return (recv_window_ms + error_ms) / 1000 + BOUNDARY

    async def acquire(
        self, scope: Scope, *, max_wait: float, recv_window_ms: int = DEFAULT_RECV_WINDOW_MS
    ) -> Ticket:
        """Wait for a slot in `scope`; `GateTooLong` if a gate stays shut past `max_wait`.

        The ticket carries the `timestamp` to sign with, read just before the slot was
        taken, so that the slot's horizon covers the request's whole `recvWindow`.
        """
        state = self._state()
        bet = self.limits.assume_arrival_within
        started = self.clock.monotonic()
        waited = False
        async with state.lock(scope.uid_gate):
            while True:
                timestamp_ms = self.server_clock.now_ms()
                horizon = self.horizon(recv_window_ms)
                in_flight = horizon if bet is None else min(bet, horizon)
                outcome = await self._backend.try_acquire(scope, in_flight, horizon)
                if isinstance(outcome, GateClosed):
                    if outcome.seconds > max_wait:
                        raise GateTooLong(outcome.seconds, outcome.gate)
                    self.stats.gate_waits += 1
                    log.debug("%s closed, waiting %.3f s", outcome.gate, outcome.seconds)
                    delay, wake_on = outcome.seconds, None
                elif isinstance(outcome, Blocked):
                    delay, wake_on = outcome.seconds, outcome.window
                else:
                    self.stats.acquired += 1
                    ticket = Ticket(outcome, timestamp_ms, state, scope, self)
                    for observer in self.observers:
                        observer.acquired(ticket.granted - started)
                    return ticket
                if not waited:
                    waited = True
                    self.stats.waits += 1
                # Never sleep less than the boundary: float error can leave a wait of
                # 1e-15 s, which a clock with millisecond steps would never get past.
                delay = max(delay, BOUNDARY)
                self.stats.wait_seconds += delay
                await state.pause(wake_on, delay)

    async def close_gate(self, gate: str, seconds: float, *, because: str = "") -> None:
        """Hold every request behind `gate` (a scope's `uid_gate` or `ip_gate`);
        `because` is remembered in this process for `closed_because`."""
        self.stats.gate_closures += 1
        opens = self.clock.monotonic() + seconds
        if opens > self._closed_because.get(gate, (-math.inf, ""))[0]:
            self._closed_because[gate] = (opens, because)
        for observer in self.observers:
            observer.gate_closed(gate, seconds)
        log.debug("closing %s for %.3f s", gate, seconds)
        await self._backend.close_gate(gate, seconds)

    def closed_because(self, gate: str, seconds: float) -> str:
        """Why this process closed `gate` for `seconds` more, or "" if it did not (another
        process, through a shared backend, or an older closure that has ended)."""
        opens, because = self._closed_because.get(gate, (-math.inf, ""))
        # A shared backend counts on its own clock: allow it a little drift.
        return because if opens >= self.clock.monotonic() + seconds - 0.1 else ""

    async def fill_window(self, window: tuple[str, Rate]) -> None:
        """Count `window` (one of a scope's) as full from now for one period: what a
        refusal for rate with no time says of it."""
        name, rate = window
        await self._backend.occupy(name, rate, rate.limit)

    async def gate_remaining(self, gate: str) -> float:
        return await self._backend.gate_remaining(gate)

    async def aclose(self) -> None:
        """Close the backend's connections (a Redis client made by `from_url`)."""
        await self._backend.aclose()


def resolve_limiter(limiter: object) -> RateLimiter:
    """The limiter a client or pool was given, or the process-wide default for None."""
    if limiter is None:
        return RateLimiter.default()
    if not isinstance(limiter, RateLimiter):
        raise ConfigurationError(f"limiter must be a RateLimiter or None, not {limiter!r}")
    return limiter


class GateTooLong(Exception):
    """Internal: a gate stays closed past `max_wait`; the client raises RateLimitError."""

    def __init__(self, seconds: float, gate: str) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.gate = gate


class _LoopState:
    """One event loop's locks (a FIFO queue per UID) and wake-up events per window."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._wakers: dict[str, asyncio.Event] = {}

    def lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def pause(self, window: str | None, seconds: float) -> None:
        """Sleep `seconds`, or less if a slot of `window` is settled first."""
        if window is None:
            await asyncio.sleep(seconds)
            return
        waker = self._wakers.setdefault(window, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await waker.wait()

    def wake(self, windows: tuple[tuple[str, Rate], ...]) -> None:
        for window, _ in windows:
            waker = self._wakers.pop(window, None)
            if waker is not None:
                waker.set()


class Ticket:
    """A taken slot, the `timestamp` to sign the request with, and who to wake when it
    is settled."""

    __slots__ = ("_limiter", "_permit", "_scope", "_state", "granted", "timestamp_ms")

    def __init__(
        self,
        permit: Permit,
        timestamp_ms: int,
        state: _LoopState,
        scope: Scope,
        limiter: RateLimiter,
    ) -> None:
        self._permit, self._state, self._scope, self._limiter = permit, state, scope, limiter
        self.timestamp_ms = timestamp_ms
        self.granted = limiter.clock.monotonic()

    async def settle(self, *, answered: bool, server_remaining: int | None = None) -> None:
        """End the request: `answered` if an answer arrived. `server_remaining` is what
        BingX said is left of the UID's window, when it said so readably."""
        uid_rate = self._scope.uid_window[1]
        server_count = None
        if server_remaining is not None and 0 <= server_remaining < uid_rate.limit:
            server_count = uid_rate.limit - server_remaining
        limiter = self._limiter
        for observer in limiter.observers:
            observer.settled(limiter.clock.monotonic() - self.granted)
        if await self._permit.settle(answered=answered, server_count=server_count):
            limiter.stats.server_disagreements += 1
            log.info(
                "BingX counts more requests of UID %s than this client sent: "
                "someone else shares its budget; holding its window",
                self._scope.uid,
            )
        if answered:
            self._state.wake(self._scope.windows)
