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

The package, one seam as httpx's `_transports/`: `_rate_limiter` (who waits, and how
long), `_backend` (the contract a store keeps), and the stores themselves: `_host_store`
(every process of this machine, SQLite: the default), `_memory` (this process alone) and
`_redis` (processes on many hosts, imported only when asked for).
"""

from ._backend import (
    BOUNDARY,
    Blocked,
    Closure,
    GateClosed,
    LimiterBackend,
    Permit,
    Rate,
    Scope,
)
from ._host_store import HostBackend
from ._memory import MemoryBackend
from ._rate_limiter import (
    ErrorBudgetFull,
    GateTooLong,
    LimiterStats,
    RateLimiter,
    RateLimits,
    Ticket,
    resolve_limiter,
)

__all__ = [
    "BOUNDARY",
    "Blocked",
    "Closure",
    "ErrorBudgetFull",
    "GateClosed",
    "GateTooLong",
    "HostBackend",
    "LimiterBackend",
    "LimiterStats",
    "MemoryBackend",
    "Permit",
    "Rate",
    "RateLimiter",
    "RateLimits",
    "Scope",
    "Ticket",
    "resolve_limiter",
]
