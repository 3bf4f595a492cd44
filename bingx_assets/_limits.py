"""Rate limiting: strict sliding windows per UID and per IP, and the UID's 100410 gate.

Why not a token or leaky bucket (such as aiolimiter's `AsyncLimiter(5, 1)`): BingX counts
in sliding windows, so a bucket that refills while it is being drained lets 9 or 10
requests into one second. Here every request takes a *slot* in each window it counts
against, and a window admits a request only while fewer than `limit` slots are younger
than `period`.

When does a slot stop counting? The server stamps a request when it arrives, which is
after the client sends it and before the client reads the answer. So a slot's anchor
is `min(time the answer arrived, time sent + safety_margin)`: the answer bounds the
arrival exactly, and the margin bounds it when the network's jitter is known to be
smaller than the margin. Either way no window the server measures can hold more than
`limit` requests, and on a fast link the budget is used almost to the last request.

Who waits: a request checks its gate and all its windows (UID first, then IP) at once
and takes a slot in all of them or in none, so it never holds one budget while waiting
for another. Requests of one UID queue in order behind one lock per gate; the one at
the head sleeps until a slot frees, and wakes early when an answer of its UID arrives
(its slot's anchor moved earlier, so the wait may be shorter now).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from ._clock import Clock, ServerClock, SystemClock
from ._exceptions import ConfigurationError
from ._observer import Observer, observed_permit

__all__ = [
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
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ConfigurationError(f"a rate's limit must be a positive int, not {self.limit!r}")
        if not self.period > 0:
            raise ConfigurationError(f"a rate's period must be positive, not {self.period!r}")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """BingX's limits for this endpoint. BingX raises them from time to time; so can you.

    `safety_margin` is the most the network may delay one request more than another
    (seconds). It only matters when answers are slower than it: see `bingx_assets._limits`.
    """

    per_uid: Rate = Rate(5, 1.0)
    per_ip_endpoint: Rate = Rate(300, 10.0)
    per_ip_group: Rate = Rate(2000, 10.0)
    safety_margin: float = 0.25

    def __post_init__(self) -> None:
        if not self.safety_margin >= 0:
            raise ConfigurationError(f"safety_margin must be >= 0, not {self.safety_margin!r}")


@dataclass(frozen=True, slots=True)
class Scope:
    """What one request counts against: a gate and the windows, in the order checked."""

    gate: str
    windows: tuple[tuple[str, Rate], ...]


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


@dataclass(slots=True)
class GateClosed:
    """A gate that is closed for `seconds` more."""

    seconds: float


class Permit(Protocol):
    """A taken slot. Settle it when the request ends, so it counts as long as it must."""

    async def settle(self, *, answered: bool) -> None:
        """`answered`: the server's answer arrived, so the request arrived before now.
        Otherwise (timeout, reset) it may have arrived as late as now."""
        ...


class LimiterBackend(Protocol):
    """Where window and gate state lives: this process (`MemoryBackend`) or Redis."""

    async def try_acquire(self, scope: Scope, margin: float) -> Permit | float | GateClosed:
        """Take a slot in every window of `scope` at once, or say how long to wait."""
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
    __slots__ = ("_clock", "anchor")

    def __init__(self, clock: Clock, anchor: float) -> None:
        self._clock = clock
        self.anchor = anchor

    async def settle(self, *, answered: bool) -> None:
        now = self._clock.monotonic()
        self.anchor = min(self.anchor, now) if answered else max(self.anchor, now)


class _Window:
    __slots__ = ("_slots", "rate")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._slots: deque[_Slot] = deque()

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
        # Anchors move earlier when answers arrive, so slots do not always free in the
        # order they were taken: look at all of them once the window is full.
        alive = sorted(s.anchor for s in slots if s.anchor + expiry > now)
        if len(alive) < self.rate.limit:
            self._slots = deque(s for s in slots if s.anchor + expiry > now)
            return 0.0
        return alive[len(alive) - self.rate.limit] + expiry - now

    def take(self, slot: _Slot) -> None:
        self._slots.append(slot)


class MemoryBackend:
    """Limiter state in this process: the default. Share one between clients of one IP."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._gates: dict[str, float] = {}

    def _window(self, key: str, rate: Rate) -> _Window:
        window = self._windows.get(key)
        if window is None or window.rate != rate:
            window = self._windows[key] = _Window(rate)
        return window

    async def try_acquire(self, scope: Scope, margin: float) -> Permit | float | GateClosed:
        now = self._clock.monotonic()
        gate_left = self._gates.get(scope.gate, now) - now
        if gate_left > 0:
            return GateClosed(gate_left)
        windows = [self._window(key, rate) for key, rate in scope.windows]
        wait = max(w.wait(now) for w in windows)
        if wait > 0:
            return wait
        slot = _Slot(self._clock, now + margin)
        for window in windows:
            window.take(slot)
        return slot

    async def close_gate(self, gate: str, seconds: float) -> None:
        until = self._clock.monotonic() + seconds
        if until > self._gates.get(gate, float("-inf")):
            self._gates[gate] = until

    async def gate_remaining(self, gate: str) -> float:
        return max(0.0, self._gates.get(gate, 0.0) - self._clock.monotonic())

    async def aclose(self) -> None:
        pass


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
        self._backend: LimiterBackend = self.backend or MemoryBackend(self.clock)
        self.backend = self._backend
        self.server_clock = ServerClock(self.clock)
        self._loop_state: tuple[asyncio.AbstractEventLoop, _LoopState] | None = None

    _default: ClassVar[RateLimiter | None] = None

    @classmethod
    def default(cls) -> RateLimiter:
        """The process-wide limiter that clients use unless given another."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    def scope(self, uid: str, endpoint: str, group: int = 2) -> Scope:
        limits = self.limits
        return Scope(
            gate=f"gate:{uid}:{endpoint}",
            windows=(
                (f"uid:{uid}:{endpoint}", limits.per_uid),
                (f"ip:{self.ip}:{endpoint}", limits.per_ip_endpoint),
                (f"ip:{self.ip}:group{group}", limits.per_ip_group),
            ),
        )

    def _state(self) -> _LoopState:
        # Locks and events belong to one event loop; a limiter reused under a new
        # asyncio.run starts a fresh set instead of failing.
        loop = asyncio.get_running_loop()
        if self._loop_state is None or self._loop_state[0] is not loop:
            self._loop_state = (loop, _LoopState())
        return self._loop_state[1]

    def lock(self, name: str) -> asyncio.Lock:
        """A lock named `name`, shared by everyone using this limiter in this event loop."""
        return self._state().lock(name)

    async def acquire(self, scope: Scope, *, max_wait: float) -> Permit:
        """Wait for a slot in `scope`; `GateTooLong` if its gate stays shut past `max_wait`."""
        state = self._state()
        started = self.clock.monotonic() if self.observers else 0.0
        waited = False
        async with state.lock(scope.gate):
            while True:
                outcome = await self._backend.try_acquire(scope, self.limits.safety_margin)
                if isinstance(outcome, GateClosed):
                    if outcome.seconds > max_wait:
                        raise GateTooLong(outcome.seconds)
                    self.stats.gate_waits += 1
                    log.debug("%s closed, waiting %.3f s", scope.gate, outcome.seconds)
                    delay = outcome.seconds
                elif isinstance(outcome, float):
                    delay = outcome
                else:
                    self.stats.acquired += 1
                    permit = _WakingPermit(outcome, state, scope.gate)
                    if self.observers:
                        waited_for = self.clock.monotonic() - started
                        return observed_permit(permit, self.observers, waited_for)
                    return permit
                if not waited:
                    waited = True
                    self.stats.waits += 1
                # Never sleep less than the boundary: float error can leave a wait of
                # 1e-15 s, which a clock with millisecond steps would never get past.
                delay = max(delay, BOUNDARY)
                self.stats.wait_seconds += delay
                await state.pause(scope.gate, delay)

    async def close_gate(self, scope: Scope, seconds: float) -> None:
        self.stats.gate_closures += 1
        for observer in self.observers:
            observer.gate_closed(scope.gate, seconds)
        log.debug("closing %s for %.3f s", scope.gate, seconds)
        await self._backend.close_gate(scope.gate, seconds)

    async def gate_remaining(self, scope: Scope) -> float:
        return await self._backend.gate_remaining(scope.gate)

    async def aclose(self) -> None:
        """Close the backend's connections (a Redis client made by `from_url`)."""
        await self._backend.aclose()


class GateTooLong(Exception):
    """Internal: the gate stays closed past `max_wait`; the client raises RateLimitError."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


class _LoopState:
    """One event loop's locks (a FIFO queue per gate) and wake-up events."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._wakers: dict[str, asyncio.Event] = {}

    def lock(self, gate: str) -> asyncio.Lock:
        lock = self._locks.get(gate)
        if lock is None:
            lock = self._locks[gate] = asyncio.Lock()
        return lock

    async def pause(self, gate: str, seconds: float) -> None:
        """Sleep `seconds`, or less if an answer for `gate` arrives first."""
        waker = self._wakers.setdefault(gate, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await waker.wait()

    def wake(self, gate: str) -> None:
        waker = self._wakers.pop(gate, None)
        if waker is not None:
            waker.set()


class _WakingPermit:
    """A backend's permit that, once answered, wakes whoever waits on its gate."""

    __slots__ = ("_gate", "_permit", "_state")

    def __init__(self, permit: Permit, state: _LoopState, gate: str) -> None:
        self._permit, self._state, self._gate = permit, state, gate

    async def settle(self, *, answered: bool) -> None:
        await self._permit.settle(answered=answered)
        if answered:
            self._state.wake(self._gate)
