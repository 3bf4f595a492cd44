"""`RateLimiter`: who waits for which window and gate, and for how long (the rules are
the package's docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

from .._clock import Clock, ServerClock, SystemClock
from .._constants import DEFAULT_BASE_URL, DEFAULT_RECV_WINDOW_MS
from .._exceptions import ConfigurationError
from .._observer import Observer
from ._backend import BOUNDARY, Blocked, Closure, GateClosed, LimiterBackend, Permit, Rate, Scope
from ._memory import MemoryBackend

__all__ = [
    "ErrorBudgetFull",
    "GateTooLong",
    "LimiterStats",
    "RateLimiter",
    "RateLimits",
    "Ticket",
    "resolve_limiter",
]

log = logging.getLogger("bingx_assets")

# Scopes are rebuilt in microseconds: keep the newest this many, not every UID ever seen.
_SCOPES_CACHED = 2048
# Why gates were closed: pruned of the opened ones once there are this many or more.
_REASONS_KEPT = 256


@dataclass(frozen=True, slots=True)
class RateLimits:
    """BingX's limits for this endpoint. BingX raises them from time to time; so can you.

    `assume_arrival_within` (seconds, default None: no assumption) bets that every
    request reaches BingX within that long of being sent, so that a slot in flight stops
    counting from `sent + assume_arrival_within` instead of from its answer. It wins
    back a slow network's round trip per window, and loses a refusal (a step towards a
    disabled UID) each time a request is later than that: a cold TLS handshake, a
    retransmission, a busy event loop. Leave it None unless you measured your worst case.

    `error_budget` is how many error replies a UID's requests may hold in its period
    (every request holds a slot until it succeeds); `suspect_error_limit` is the share
    of it that keys not known to be good may use, so that they leave the rest to the
    UID's keys whose last answer was a success.
    """

    # Rate is frozen: one shared default instance is safe.
    per_uid: Rate = Rate(5, 1.0)  # noqa: RUF009
    per_ip_endpoint: Rate = Rate(300, 10.0)  # noqa: RUF009
    per_ip_group: Rate = Rate(2000, 10.0)  # noqa: RUF009
    assume_arrival_within: float | None = None
    error_budget: Rate = Rate(10, 480.0)  # noqa: RUF009
    suspect_error_limit: int = 5

    def __post_init__(self) -> None:
        for name in ("per_uid", "per_ip_endpoint", "per_ip_group", "error_budget"):
            if not isinstance(getattr(self, name), Rate):
                raise ConfigurationError(f"{name} must be a Rate, not {getattr(self, name)!r}")
        share = self.suspect_error_limit
        if (
            isinstance(share, bool)
            or not isinstance(share, int)
            or not 1 <= share <= self.error_budget.limit
        ):
            raise ConfigurationError(
                "suspect_error_limit must be an int from 1 to error_budget's limit "
                f"({self.error_budget.limit}), not {share!r}"
            )
        bet = self.assume_arrival_within
        if bet is not None and (
            isinstance(bet, bool) or not isinstance(bet, int | float) or not 0 <= bet < 1e9
        ):
            raise ConfigurationError(
                f"assume_arrival_within must be None or seconds >= 0, not {bet!r}"
            )


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


@dataclass(eq=False)
class RateLimiter:
    """Keeps every request inside BingX's limits. One per egress IP is right.

    Clients made without a limiter share `RateLimiter.default(base_url)`, so all clients
    of a server on this machine, in every process, draw from one budget per UID and per
    IP. Pass your own to use other limits, a Redis backend shared by many hosts, this
    process's memory alone (`RateLimiter()`), or (in tests) a virtual clock.
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
        self._scopes: dict[tuple[str, str, int, bool], Scope] = {}
        # A list, so that `for_ip`'s twins share the locks of whichever loop runs.
        self._loop_state: list[tuple[asyncio.AbstractEventLoop, _LoopState]] = []
        # gate -> (monotonic time it opens, why): what a request refused at it is told.
        self._closed_because: dict[str, tuple[float, str]] = {}
        self._prune_reasons_at = _REASONS_KEPT

    _defaults: ClassVar[dict[str | None, RateLimiter]] = {}

    @classmethod
    def default(cls, base_url: str | None = DEFAULT_BASE_URL) -> RateLimiter:
        """The limiter that clients of the server at `base_url` use unless given another,
        one per server in a process. Its backend is that server's host store
        (`HostBackend`), so every process of this machine shares its windows, gates and
        error budgets. None: this process's memory alone, for the in-process simulator,
        whose windows are nobody else's."""
        found = cls._defaults.get(base_url)
        if found is None:
            if base_url is None:
                found = cls()
            else:
                from ._host_store import HostBackend

                found = cls(backend=HostBackend.for_base_url(base_url))
            cls._defaults[base_url] = found
        return found

    def for_ip(self, ip: str) -> RateLimiter:
        """This limiter counting IP windows and the IP gate under the name `ip`: one per
        egress route. Everything else is shared (backend, clock, stats, observers, server
        clock, locks), so a UID stays limited across all routes."""
        twin = copy.copy(self)
        twin.ip = ip
        twin._scopes = {}  # its scopes name its own IP
        return twin

    def scope(
        self,
        uid: str,
        endpoint: str,
        group: int = 2,
        *,
        suspect: bool = False,
    ) -> Scope:
        """What a request of `uid` to `endpoint` counts against (made once, then reused:
        it is on every call's path).

        `suspect`: the key is not known to be good (its last answer was no success,
        or it has had none and no UID is cached for it), so it may use only
        `suspect_error_limit` of the UID's error budget. A key's own gate goes
        after the UID's and the IP's."""
        cache_key = (uid, endpoint, group, suspect)
        found = self._scopes.get(cache_key)
        if found is None:
            if len(self._scopes) >= _SCOPES_CACHED:  # the oldest: a UID long gone, or rebuilt
                del self._scopes[next(iter(self._scopes))]
            limits = self.limits
            budget = limits.error_budget
            if suspect:
                budget = Rate(limits.suspect_error_limit, budget.period)
            found = self._scopes[cache_key] = Scope(
                uid=uid,
                ip=self.ip,
                gates=(f"gate:{uid}:{endpoint}", f"gate:ip:{self.ip}"),
                windows=(
                    (f"uid:{uid}:{endpoint}", limits.per_uid),
                    (f"ip:{self.ip}:{endpoint}", limits.per_ip_endpoint),
                    (f"ip:{self.ip}:group{group}", limits.per_ip_group),
                ),
                errors=(f"errors:{uid}:{endpoint}", budget),
            )
        return found

    def _state(self) -> _LoopState:
        # Locks and events belong to one event loop; a limiter reused under a new
        # asyncio.run starts a fresh set instead of failing.
        loop = asyncio.get_running_loop()
        if not self._loop_state or self._loop_state[0][0] is not loop:
            self._loop_state[:] = [(loop, _LoopState())]
        return self._loop_state[0][1]

    def lock(self, name: str) -> _NamedLock:
        """A lock named `name`, shared by everyone using this limiter in this event loop
        (`async with` it)."""
        return self._state().lock(name)

    @contextlib.asynccontextmanager
    async def holding(self, gate: str) -> AsyncIterator[None]:
        """While the block runs, this process gives no slot behind `gate` (a scope's
        `uid_gate`): for what a backend's gate cannot do, holding the UID only until a
        measurement ends, since a gate, once closed, is never shortened."""
        holds = self._state().holds
        hold = holds.get(gate)
        if hold is None:
            hold = holds[gate] = _Hold()
        hold.holders += 1
        try:
            yield
        finally:
            hold.holders -= 1
            if not hold.holders:
                del holds[gate]
                hold.set()

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
        """Wait for a slot in `scope`; `GateTooLong` if a gate stays shut past `max_wait`,
        `ErrorBudgetFull` if the UID's error budget does.

        Waits happen inside the UID's queue, so only what stops every key of the UID
        is waited for there: its gate, the IP's, its windows, its whole error budget.
        What stops one key only fails at once (a gate of its own after those two), or
        waits outside the queue (the smaller error share of a key not known to be good,
        held by requests in flight), so that the UID's good keys are never stalled
        behind it. An error budget is waited for only while requests in flight hold it
        (their successes give slots back), up to `max_wait`; one full of answered
        errors fails at once.

        The ticket carries the `timestamp` to sign with, read just before the slot was
        taken, so that the slot's horizon covers the request's whole `recvWindow`.
        """
        state = self._state()
        bet = self.limits.assume_arrival_within
        started = self.clock.monotonic()
        waited = retaken = False

        def stale(timestamp_ms: int) -> bool:
            return self.server_clock.now_ms() - timestamp_ms > recv_window_ms // 4

        while True:
            async with state.lock(scope.uid_gate):
                while True:
                    held = state.holds.get(scope.uid_gate)
                    if held is not None:
                        await held.wait()
                        continue
                    timestamp_ms = self.server_clock.now_ms()
                    horizon = self.horizon(recv_window_ms)
                    in_flight = horizon if bet is None else min(bet, horizon)
                    outcome = await self._backend.try_acquire(scope, in_flight, horizon)
                    if isinstance(outcome, Blocked | GateClosed):
                        wake_on, delay, alone = self._wait_for(outcome, scope, max_wait, started)
                        if alone:
                            break
                        await self._pause(state, wake_on, delay, waited)
                        waited = True
                        continue
                    if not retaken and stale(timestamp_ms):
                        # The backend was slow (another process held the host store's
                        # lock, up to 5 s; a slow Redis): a request signed with this
                        # timestamp would arrive with little of its recvWindow left and
                        # be refused for its time, an error in the UID's budget. The slot
                        # is given back as a request answered now (it was never sent:
                        # no error, one slot of rate) and taken again with a fresh one.
                        await outcome.settle(answered=True, succeeded=True)
                        retaken = True
                        continue
                    self.stats.acquired += 1
                    ticket = Ticket(outcome, timestamp_ms, state, scope, self)
                    for observer in self.observers:
                        observer.acquired(ticket.granted - started)
                    return ticket
            # Outside the UID's queue: this key's share is full, not the UID's budget.
            await self._pause(state, wake_on, delay, waited)
            waited = True

    def _wait_for(
        self, outcome: Blocked | GateClosed, scope: Scope, max_wait: float, started: float
    ) -> tuple[str | None, float, bool]:
        """What to wait for (a window to be woken by, or None), for how long, and whether
        outside the UID's queue; raises when the call fails instead."""
        if isinstance(outcome, GateClosed):
            if outcome.seconds > max_wait or outcome.gate not in scope.gates[:2]:
                raise GateTooLong(outcome.seconds, outcome.gate)
            self.stats.gate_waits += 1
            log.debug("%s closed, waiting %.3f s", outcome.gate, outcome.seconds)
            return None, outcome.seconds, False
        errors = scope.errors
        if errors is None or outcome.window != errors[0]:
            return outcome.window, outcome.seconds, False
        spent = self.clock.monotonic() - started
        suspect = errors[1].limit < self.limits.error_budget.limit
        if not outcome.pending or spent >= max_wait:
            raise ErrorBudgetFull(outcome.seconds, errors[1], suspect, outcome.pending)
        return outcome.window, min(outcome.seconds, max_wait - spent), suspect

    async def _pause(
        self, state: _LoopState, window: str | None, delay: float, waited: bool
    ) -> None:
        if not waited:
            self.stats.waits += 1
        # Never sleep less than the boundary: float error can leave a wait of
        # 1e-15 s, which a clock with millisecond steps would never get past.
        delay = max(delay, BOUNDARY)
        self.stats.wait_seconds += delay
        await state.pause(window, delay)

    async def close_gate(
        self,
        gate: str,
        seconds: float,
        *,
        because: str = "",
        code: int | None = None,
        remember: float = 0.0,
    ) -> None:
        """Hold every request behind `gate` (a scope's `uid_gate` or `ip_gate`, or a
        key's own); `because` is remembered in this process for `closed_because`, `code`
        and the closure's length in the backend, for every process, until `remember`
        seconds after the gate opens (`closure`)."""
        self.stats.gate_closures += 1
        now = self.clock.monotonic()
        opens = now + seconds
        reasons = self._closed_because  # shared with `for_ip`'s twins: pruned in place
        if len(reasons) >= self._prune_reasons_at:
            for opened in [g for g, (until, _) in reasons.items() if until <= now]:
                del reasons[opened]
            self._prune_reasons_at = max(_REASONS_KEPT, 2 * len(reasons))
        if opens > self._closed_because.get(gate, (-math.inf, ""))[0]:
            self._closed_because[gate] = (opens, because)
        for observer in self.observers:
            observer.gate_closed(gate, seconds)
        log.debug("closing %s for %.3f s", gate, seconds)
        await self._backend.close_gate(gate, seconds, code=code, remember=remember)

    async def closure(self, gate: str) -> Closure | None:
        """`gate`'s latest closure (its length and code), whichever process closed it,
        while the gate is closed or that closure is remembered."""
        return await self._backend.closure(gate)

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


def resolve_limiter(limiter: object, base_url: str) -> RateLimiter:
    """The limiter a client or pool was given, or for None the default of its server
    (`_simulated.resolve_storage` keeps the in-process simulator's out of the store)."""
    if limiter is None:
        return RateLimiter.default(base_url)
    if not isinstance(limiter, RateLimiter):
        raise ConfigurationError(f"limiter must be a RateLimiter or None, not {limiter!r}")
    return limiter


class ErrorBudgetFull(Exception):
    """Internal: the UID's error budget (`rate`: this key's share of it) stays full for
    `seconds` more, of answered errors, or (`pending`) of requests still in flight that
    were not answered within max_wait; `suspect`: the share is that of keys not known
    to be good. The client raises ErrorBudgetError."""

    def __init__(self, seconds: float, rate: Rate, suspect: bool, pending: bool) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.rate = rate
        self.suspect = suspect
        self.pending = pending


class GateTooLong(Exception):
    """Internal: a gate stays closed past `max_wait`; the client raises RateLimitError."""

    def __init__(self, seconds: float, gate: str) -> None:
        super().__init__(seconds)
        self.seconds = seconds
        self.gate = gate


class _LoopState:
    """One event loop's locks (a FIFO queue per UID) and wake-up events per window.

    Each lives only while someone holds, waits for or sleeps on it: a process whose
    pools come and go with new UIDs keeps none of the old ones."""

    def __init__(self) -> None:
        self._locks: dict[str, _Queue] = {}
        self._wakers: dict[str, _Waker] = {}
        self.holds: dict[str, _Hold] = {}
        """Gates held in this process by `RateLimiter.holding`."""

    def lock(self, name: str) -> _NamedLock:
        return _NamedLock(self._locks, name)

    async def pause(self, window: str | None, seconds: float) -> None:
        """Sleep `seconds`, or less if a slot of `window` is settled first."""
        if window is None:
            await asyncio.sleep(seconds)
            return
        waker = self._wakers.get(window)
        if waker is None:
            waker = self._wakers[window] = _Waker()
        waker.sleepers += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await waker.wait()
        finally:
            waker.sleepers -= 1
            if not waker.sleepers and self._wakers.get(window) is waker:
                del self._wakers[window]

    def wake(self, windows: tuple[tuple[str, Rate], ...]) -> None:
        for window, _ in windows:
            waker = self._wakers.pop(window, None)
            if waker is not None:
                waker.set()


class _Waker(asyncio.Event):
    sleepers = 0


class _Queue:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Hold(asyncio.Event):
    """Set when the last holder of a gate's hold lets go."""

    def __init__(self) -> None:
        super().__init__()
        self.holders = 0


class _NamedLock:
    """`async with` it: the lock named so, made by the first user and dropped by the
    last (holding or waiting)."""

    __slots__ = ("_locks", "_name", "_queue")

    def __init__(self, locks: dict[str, _Queue], name: str) -> None:
        self._locks, self._name = locks, name
        self._queue: _Queue | None = None

    def locked(self) -> bool:
        queue = self._locks.get(self._name)
        return queue is not None and queue.lock.locked()

    async def __aenter__(self) -> None:
        queue = self._locks.get(self._name)
        if queue is None:
            queue = self._locks[self._name] = _Queue()
        queue.users += 1
        self._queue = queue
        try:
            await queue.lock.acquire()
        except BaseException:
            self._leave(queue)
            raise

    async def __aexit__(self, *_: object) -> None:
        queue = self._queue
        assert queue is not None
        queue.lock.release()
        self._leave(queue)

    def _leave(self, queue: _Queue) -> None:
        queue.users -= 1
        if not queue.users and self._locks.get(self._name) is queue:
            del self._locks[self._name]


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

    async def settle(
        self, *, answered: bool, succeeded: bool = False, server_remaining: int | None = None
    ) -> None:
        """End the request: `answered` if an answer arrived, `succeeded` if it was no
        error reply (its error-budget slot is given back). `server_remaining` is what
        BingX said is left of the UID's window, when it said so readably."""
        uid_rate = self._scope.uid_window[1]
        server_count = None
        if server_remaining is not None and 0 <= server_remaining < uid_rate.limit:
            server_count = uid_rate.limit - server_remaining
        limiter = self._limiter
        for observer in limiter.observers:
            observer.settled(limiter.clock.monotonic() - self.granted)
        if await self._permit.settle(
            answered=answered, succeeded=succeeded, server_count=server_count
        ):
            limiter.stats.server_disagreements += 1
            log.info(
                "BingX counts more requests of UID %s than this client sent: "
                "someone else shares its budget; holding its window",
                self._scope.uid,
            )
        if answered:
            # Any answer: a success frees its error-budget slot, an error tells a key
            # waiting for the budget that waiting no longer helps.
            self._state.wake(self._scope.checked)

    async def forgive(self) -> None:
        """A request settled unanswered is known since to be no error (its key's next
        answer was a success): its error-budget slot is given back; its rate slots still
        count until its horizon, since it may yet arrive."""
        await self._permit.settle(answered=False, succeeded=True)
        if self._scope.errors is not None:
            self._state.wake((self._scope.errors,))
