"""`MemoryBackend`: the windows and gates in this process's memory."""

from __future__ import annotations

import contextlib
from collections import deque

from .._clock import Clock
from ._backend import BOUNDARY, Blocked, GateClosed, Permit, Rate, Scope

__all__ = ["MemoryBackend"]


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

    def wait(self, now: float, limit: int) -> float:
        """Seconds until this window admits one more request, `limit` at most (one
        window may be checked with different limits: an error budget's)."""
        # The nanosecond forgives float error in `anchor + period`, nothing more.
        now += 1e-9
        expiry = self.rate.period + BOUNDARY
        slots = self._slots
        while slots and slots[0].anchor + expiry <= now:
            slots.popleft()
        if len(slots) < limit:
            return 0.0
        # Anchors move when requests are settled, so slots do not always free in the
        # order they were taken: look at all of them once the window is full.
        alive = sorted(s.anchor for s in slots if s.anchor + expiry > now)
        if len(alive) < limit:
            self._slots = deque(s for s in slots if s.anchor + expiry > now)
            return 0.0
        return alive[len(alive) - limit] + expiry - now

    def take(self, slot: _Slot) -> None:
        self._slots.append(slot)
        self.taken += 1

    def remove(self, slot: _Slot) -> None:
        """Give `slot` back: a request that succeeded was no error."""
        with contextlib.suppress(ValueError):  # already expired (an answer days late)
            self._slots.remove(slot)


class _MemoryPermit:
    __slots__ = ("_alive", "_backend", "_clock", "_errors", "_slot", "_taken", "_window")

    def __init__(
        self,
        backend: MemoryBackend,
        clock: Clock,
        slot: _Slot,
        window: _Window,
        errors: _Window | None,
    ) -> None:
        self._backend, self._clock, self._slot, self._window = backend, clock, slot, window
        self._errors = errors
        # What this client can account for in the UID window when the server counts
        # this request: what was alive when it was sent, and whatever was sent since.
        self._alive, self._taken = window.alive(clock.monotonic()), window.taken

    async def settle(
        self, *, answered: bool, succeeded: bool = False, server_count: int | None = None
    ) -> bool:
        slot = self._slot
        if not answered:
            slot.anchor = max(slot.anchor, slot.horizon)
            return False
        slot.anchor = min(slot.anchor, self._clock.monotonic())
        if succeeded and self._errors is not None:
            self._errors.remove(slot)
            self._errors = None  # settled twice, it is given back once
        if server_count is None:
            return False
        ours = self._alive + self._window.taken - self._taken
        return self._backend.fill(self._window, server_count - ours) > 0


class MemoryBackend:
    """Limiter state in this process alone: share one between clients of one IP.

    A new process knows nothing of what the last one sent, and BingX still counts those
    requests for a period (10 s for the IP windows): choose it for one process that runs
    on its own (a test, the in-process simulator). Processes of one machine share the
    default `HostBackend`; processes on several hosts, Redis.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._gates: dict[str, float] = {}

    def _window(self, key: str, rate: Rate) -> _Window:
        window = self._windows.get(key)
        if window is None or window.rate.period != rate.period:
            window = self._windows[key] = _Window(rate)
        return window

    async def try_acquire(
        self, scope: Scope, in_flight: float, horizon: float
    ) -> Permit | Blocked | GateClosed:
        now = self._clock.monotonic()
        for gate in scope.gates:
            gate_left = self._gates.get(gate, now) - now
            if gate_left > 0:
                return GateClosed(gate_left, gate)
        checked = scope.windows if scope.errors is None else (*scope.windows, scope.errors)
        windows = [self._window(key, rate) for key, rate in checked]
        waits = [w.wait(now, rate.limit) for w, (_, rate) in zip(windows, checked, strict=True)]
        longest = max(waits)
        if longest > 0:
            return Blocked(longest, checked[waits.index(longest)][0])
        slot = _Slot(now + in_flight, now + horizon)
        for window in windows:
            window.take(slot)
        errors = windows[-1] if scope.errors is not None else None
        return _MemoryPermit(self, self._clock, slot, windows[0], errors)

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
        return max(0.0, self._gates.get(gate, 0.0) - self._clock.monotonic())

    async def aclose(self) -> None:
        return None
