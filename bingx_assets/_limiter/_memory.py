"""`MemoryBackend`: the windows and gates in this process's memory."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort

from .._clock import Clock
from ._backend import BOUNDARY, Blocked, Closure, GateClosed, Permit, Rate, Scope

__all__ = ["MemoryBackend"]

# Below this many windows and gates, freeing the idle ones is not worth a sweep.
_SWEEP_AT_LEAST = 256


class _Slot:
    __slots__ = ("anchor", "horizon")

    def __init__(self, anchor: float, horizon: float) -> None:
        self.anchor = anchor
        self.horizon = horizon


class _Window:
    """The moments this window's slots stop counting (`anchor + period + BOUNDARY`),
    kept sorted in a plain list.

    Why a sorted list: a window is asked two things, how many slots are alive (those
    ending after now) and, when it is full, when the `limit`-th youngest ends (the wait).
    In sorted order both are one `bisect` and one index: O(log n), whatever `limit` a
    check brings (an error budget's share is a smaller limit on the same window). A heap
    would know only the oldest slot; counting by buckets would round waits. Slots are
    kept by value, not identity: equal ends are interchangeable for counting.

    Moving an anchor (earlier when answered, later when given up on) is a removal and an
    insertion found by bisection; the list shifts the entries after the position, in C,
    and those are the slots ending later: requests still in flight, since an answered
    slot moves to the answer's moment and a new one is anchored after everything
    answered. Expired ends are dropped from the front lazily (`_head`), the list
    compacted once they are half of it, so expiry costs O(1) per slot.
    """

    __slots__ = ("_ends", "_expiry", "_head", "pending", "rate", "taken")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._expiry = rate.period + BOUNDARY
        self._ends: list[float] = []
        self._head = 0
        """Entries before it have ended (dropped lazily)."""
        self.taken = 0
        """Slots ever taken here: tells how many of ours a server's count may include."""
        self.pending = 0
        """Permits not settled yet: their slots may still move, so the window is kept."""

    def alive(self, now: float) -> int:
        return len(self._ends) - bisect_right(self._ends, now, self._head)

    def alive_after_wait(self) -> int:
        """`alive` at the moment of the last `wait`, which dropped what had ended."""
        return len(self._ends) - self._head

    def wait(self, now: float, limit: int) -> float:
        """Seconds until this window admits one more request, `limit` at most (one
        window may be checked with different limits: an error budget's)."""
        # The nanosecond forgives float error in `anchor + period`, nothing more.
        now += 1e-9
        ends = self._ends
        head = self._head
        if head < len(ends) and ends[head] <= now:
            # Each end is stepped over once: O(1) a slot, cheaper than a bisection
            # in the steady state, where one or two end between calls.
            head += 1
            while head < len(ends) and ends[head] <= now:
                head += 1
            self._head = head
            if head > 16 and head * 2 > len(ends):
                del ends[:head]
                head = self._head = 0
        if len(ends) - head < limit:
            return 0.0
        # The limit-th youngest: once it ends, fewer than `limit` are alive.
        return ends[len(ends) - limit] - now

    def awaits_answers(self, now: float, limit: int) -> bool:
        """Whether fewer than `limit` of the slots alive at the last `wait` are answered:
        an answered slot is anchored at its answer, one in flight after now. The slots
        are sorted, so the `limit`-th oldest tells."""
        at = self._head + limit - 1
        return at < len(self._ends) and self._ends[at] > now + self._expiry + 1e-9

    def idle(self, now: float) -> bool:
        """Nothing alive and nothing that may move back in: the window can be freed."""
        return not self.pending and (not self._ends or self._ends[-1] <= now)

    def take(self, anchor: float) -> None:
        ends, end = self._ends, anchor + self._expiry
        if not ends or ends[-1] <= end:  # the usual: the newest slot ends last
            ends.append(end)
        else:
            insort(ends, end, self._head)
        self.taken += 1

    def _find(self, end: float) -> int:
        """Where `end` is, or -1; the newest slot first, the one usually settled."""
        ends = self._ends
        if ends and ends[-1] == end:
            return len(ends) - 1
        at = bisect_left(ends, end, self._head)
        return at if at < len(ends) and ends[at] == end else -1

    def remove(self, anchor: float) -> None:
        """Give back a slot anchored at `anchor`: a request that succeeded was no error.
        One that has ended already (an answer days late) is gone anyway."""
        at = self._find(anchor + self._expiry)
        if at >= self._head:
            del self._ends[at]

    def move(self, anchor: float, to: float, now: float) -> None:
        ends, head = self._ends, self._head
        new = to + self._expiry
        at = self._find(anchor + self._expiry)
        if at >= head:
            # Most moves keep the order (the newest slot answered first): no shifting.
            if (at == head or ends[at - 1] <= new) and (at + 1 == len(ends) or new <= ends[at + 1]):
                ends[at] = new
                return
            del ends[at]
        if new > now:  # a slot given up on counts again until its horizon
            insort(ends, new, head)


class _MemoryPermit:
    __slots__ = (
        "_alive",
        "_backend",
        "_clock",
        "_errors",
        "_settled",
        "_slot",
        "_taken",
        "_windows",
    )

    def __init__(
        self,
        backend: MemoryBackend,
        clock: Clock,
        slot: _Slot,
        windows: list[_Window],
        errors: _Window | None,
    ) -> None:
        self._backend, self._clock, self._slot, self._windows = backend, clock, slot, windows
        self._errors = errors
        self._settled = False
        for window in windows:
            window.pending += 1
        # What this client can account for in the UID window when the server counts
        # this request: what was alive when it was sent, and whatever was sent since.
        uid_window = windows[0]
        self._alive, self._taken = uid_window.alive_after_wait(), uid_window.taken

    async def settle(
        self, *, answered: bool, succeeded: bool = False, server_count: int | None = None
    ) -> bool:
        slot, windows = self._slot, self._windows
        now = self._clock.monotonic()
        if not self._settled:  # the first settle: the windows may be freed once idle
            self._settled = True
            for window in windows:
                window.pending -= 1
        old = slot.anchor
        slot.anchor = min(old, now) if answered else max(old, slot.horizon)
        errors = self._errors
        if succeeded and errors is not None:
            errors.remove(old)  # a success was no error: given back, wherever it stood
            windows = self._windows = [w for w in windows if w is not errors]
            self._errors = None  # settled twice, it is given back once
        if slot.anchor != old:
            for window in windows:
                window.move(old, slot.anchor, now)
        if not answered:
            return False
        if server_count is None:
            return False
        ours = self._alive + windows[0].taken - self._taken
        return self._backend.fill(windows[0], server_count - ours) > 0


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
        # gate -> its latest closure, and when that is forgotten.
        self._closures: dict[str, tuple[Closure, float]] = {}
        self._acquired = 0
        self._next_sweep = _SWEEP_AT_LEAST

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
        checked = scope.checked
        windows = []
        longest, blocking, full, limit = 0.0, "", None, 0
        for key, rate in checked:  # on every call's path: one pass, no intermediate lists
            window = self._windows.get(key)
            if window is None or window.rate.period != rate.period:
                window = self._windows[key] = _Window(rate)
            windows.append(window)
            wait = window.wait(now, rate.limit)
            if wait > longest:  # the first of equal waits: the UID's before the IP's
                longest, blocking, full, limit = wait, key, window, rate.limit
        if full is not None:
            return Blocked(longest, blocking, full.awaits_answers(now, limit))
        slot = _Slot(now + in_flight, now + horizon)
        for window in windows:
            window.take(slot.anchor)
        errors = windows[-1] if scope.errors is not None else None
        self._acquired += 1
        if self._acquired >= self._next_sweep:
            self._sweep(now)
        return _MemoryPermit(self, self._clock, slot, windows, errors)

    def _sweep(self, now: float) -> None:
        """Free the windows and gates of UIDs that have gone quiet: a process whose pools
        come and go with new UIDs must not keep each one for ever. Run once the limiter
        has acquired as many slots as it held windows and gates, it costs O(1) per slot."""
        self._windows = {k: w for k, w in self._windows.items() if not w.idle(now)}
        self._gates = {k: until for k, until in self._gates.items() if until > now}
        self._closures = {k: c for k, c in self._closures.items() if c[1] > now}
        self._acquired = 0
        kept = len(self._windows) + len(self._gates) + len(self._closures)
        self._next_sweep = max(_SWEEP_AT_LEAST, kept)

    def fill(self, window: _Window, missing: int) -> int:
        now = self._clock.monotonic()
        for _ in range(max(0, missing)):
            window.take(now)
        return max(0, missing)

    async def occupy(self, window: str, rate: Rate, count: int) -> int:
        found = self._window(window, rate)
        return self.fill(found, count - found.alive(self._clock.monotonic()))

    async def close_gate(
        self, gate: str, seconds: float, *, code: int | None = None, remember: float = 0.0
    ) -> None:
        until = self._clock.monotonic() + seconds
        if until > self._gates.get(gate, float("-inf")):
            self._gates[gate] = until
            self._closures[gate] = (Closure(seconds, code), until + remember)

    async def closure(self, gate: str) -> Closure | None:
        found = self._closures.get(gate)
        return found[0] if found is not None and found[1] > self._clock.monotonic() else None

    async def gate_remaining(self, gate: str) -> float:
        return max(0.0, self._gates.get(gate, 0.0) - self._clock.monotonic())

    async def aclose(self) -> None:
        return None
