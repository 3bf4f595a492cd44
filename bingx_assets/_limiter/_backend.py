"""The contract between the limiter and where its state lives: what a request counts
against (`Scope`), and what a backend answers (`Permit`, `Blocked`, `GateClosed`,
`Closure`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .._exceptions import ConfigurationError

__all__ = [
    "BOUNDARY",
    "Blocked",
    "Closure",
    "GateClosed",
    "LimiterBackend",
    "Permit",
    "Rate",
    "Scope",
]

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
class Scope:
    """What one request counts against: its gates and windows, in the order checked."""

    uid: str
    ip: str
    gates: tuple[str, ...]
    """The UID's gate, the IP's, then any more (a key's own while it backs off)."""
    windows: tuple[tuple[str, Rate], ...]
    """The UID's window, then the IP's endpoint and group windows."""
    errors: tuple[str, Rate] | None = None
    """The UID's error budget, or None. BingX disables a UID after more than 20 error
    replies in 480 s, and a request's answer is unknown until it comes: so a request
    takes a slot here too, as an error it may turn out to be, checked with the others
    (all or none). Settled `succeeded`, it gives the slot back; an error reply keeps it
    from the answer on, an unanswered request until its horizon. One name may be checked
    with different limits (keys not known to be good get a smaller share); its period is
    the same for every check."""
    checked: tuple[tuple[str, Rate], ...] = field(init=False, repr=False, compare=False)
    """`windows`, then `errors` if any: every window a slot is taken in, in order."""

    def __post_init__(self) -> None:
        # Made once: every acquire and settle walks it.
        checked = self.windows if self.errors is None else (*self.windows, self.errors)
        object.__setattr__(self, "checked", checked)

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
class GateClosed:
    """`gate` is closed for `seconds` more."""

    seconds: float
    gate: str


@dataclass(frozen=True, slots=True)
class Closure:
    """A gate's latest closure, as every process sharing the backend reads it: how long
    it was and the BingX code that closed it. A number only: a backend's names and values
    are seen by whoever can read it (`redis-cli`), and nothing of the server's text is
    needed to say what happened."""

    seconds: float
    code: int | None = None


@dataclass(slots=True)
class Blocked:
    """`window` (one of the scope's) is full for `seconds` more, unless an answer frees it.

    `pending`: fewer than the limit checked of its slots are answered; the others are
    requests still in flight (unanswered, within their horizon), whose answers may free
    it sooner. In an error budget that is what tells waiting from failing: a success
    gives its slot back, so a budget held by requests in flight may free at any moment,
    and one full of answered errors stays full for `seconds`, whatever is answered."""

    seconds: float
    window: str
    pending: bool


class Permit(Protocol):
    """A backend's taken slot. Settle it when the request ends, so it counts as long as
    it must."""

    async def settle(
        self, *, answered: bool, succeeded: bool = False, server_count: int | None = None
    ) -> bool:
        """`answered`: the server's answer arrived, so the request arrived before now;
        otherwise it may arrive until its horizon. `succeeded`: the answer was a success,
        not an error reply, so the slot in the scope's error budget is given back; with
        `answered` False (a second settle), the request got no answer but is known since
        to be no error, and only that slot is given back. `server_count`: how many
        requests the server said its UID window held, this one included, if it said;
        when that is more than this client can account for, the difference is added to
        the window as someone else's requests. Returns whether that happened."""
        ...


class LimiterBackend(Protocol):
    """Where window and gate state lives: this process (`MemoryBackend`) or Redis.

    Every backend keeps the same rules, checked by one contract test suite run against
    each: windows, error budgets, gates and their lengths to the millisecond."""

    async def try_acquire(
        self, scope: Scope, in_flight: float, horizon: float
    ) -> Permit | Blocked | GateClosed:
        """Take a slot in every window of `scope` (its error budget included) at once,
        or say what to wait for.

        The slot's anchor is `now + in_flight` until it is settled; unanswered, it is
        `now + horizon`.
        """
        ...

    async def occupy(self, window: str, rate: Rate, count: int) -> int:
        """Make `window` hold at least `count` slots that count from now; returns how
        many were added (requests someone else made)."""
        ...

    async def close_gate(
        self, gate: str, seconds: float, *, code: int | None = None, remember: float = 0.0
    ) -> None:
        """Keep `gate` closed for `seconds` from now (never shortens a closure). A
        closure that lengthens it is recorded, `Closure(seconds, code)`, and read back by
        `closure` until `remember` seconds after the gate opens."""
        ...

    async def closure(self, gate: str) -> Closure | None:
        """`gate`'s latest closure while it is closed or remembered, else None."""
        ...

    async def gate_remaining(self, gate: str) -> float:
        """Seconds until `gate` opens; 0 when open."""
        ...

    async def aclose(self) -> None:
        """Release what the backend opened (connections); nothing for memory."""
        ...
