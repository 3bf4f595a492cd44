"""Time: the local clocks the client reads, and the measured offset to BingX's clock.

Waiting is always done on the event loop (`asyncio.sleep`, `asyncio.timeout`), so a
`Clock`'s monotonic time *is* the running loop's time. Under a fast-forwarding loop
(`looptime` in tests) every wait is then virtual; `bingx_assets.testing.LoopClock`
derives the wall clock from the loop too, so nothing in a test sleeps for real.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import math
import time
from collections.abc import Mapping
from typing import Protocol

__all__ = ["Clock", "ServerClock", "SystemClock"]

PROBE_HOLD_FIRST = 15.0
"""Seconds before the clock is probed again after a probe was refused for its timestamp
and nothing gave the server's time; the hold doubles up to `PROBE_HOLD_LONGEST`."""
PROBE_HOLD_LONGEST = 480.0  # BingX's error window: at most a few probes in any of them


class Clock(Protocol):
    """The two things the client reads from time."""

    def monotonic(self) -> float:
        """The running event loop's time, in seconds: what windows and gates are kept on."""
        ...

    def wall_ms(self) -> int:
        """Epoch milliseconds on the local wall clock; what `timestamp` is built from."""
        ...


class SystemClock:
    """The real clocks: the event loop's monotonic time and `time.time`."""

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def __repr__(self) -> str:
        return "SystemClock()"


class ServerClock:
    """BingX's clock, as the local wall clock plus a measured offset.

    An offset comes from any answer that carries the server's time: the server-time
    endpoint, an envelope's `timestamp` (a success's; an error's when it has one), or
    (when nothing better is known) any answer's HTTP `Date` header, a timestamp error's
    included. When none does, a request refused for its timestamp holds the next one
    back (`probe_refused`), so a clock nothing can measure costs a few error replies in
    BingX's error window rather than one per call. The midpoint of the
    request's round trip is taken as the moment the server read its clock, so the
    estimate is off by at most half the round trip plus what the value's resolution
    hides (a whole second for `Date`), which is kept as `uncertainty_ms`. The sample
    with the smallest uncertainty wins, so a `Date` only fills in until a millisecond
    timestamp arrives.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.offset_ms: int | None = None
        self.uncertainty_ms = 0
        self.attempted = False
        """Whether a measurement was tried; the client measures once before its first call."""
        self.measured_at = -math.inf
        """Monotonic time of the last sample (-inf: none). Not the wall clock: that may
        have stepped back since, and a sample from before would look newer than it is."""
        self.vouched = False
        """A success answered a timestamp signed on this clock with no offset measured:
        the local clock is within `recvWindow` of the server's."""
        self.probe_held_until = -math.inf
        """Monotonic time until which no request is sent on this unmeasured clock."""
        self.probe_hold = 0.0
        self.refused_at_ms: int | None = None
        """Local wall time of the timestamp error that started the hold."""

    @property
    def needs_probe(self) -> bool:
        """Nothing says the clock is right: one request should go alone and learn the
        offset from its answer, rather than every key earning a timestamp error at once."""
        return self.offset_ms is None and not self.vouched

    @property
    def measured(self) -> bool:
        return self.offset_ms is not None

    def observe(
        self, server_ms: int, sent_ms: int, received_ms: int, *, resolution_ms: int = 0
    ) -> None:
        """A sample: the server's clock read `server_ms` (to `resolution_ms`) at some
        moment between `sent_ms` and `received_ms` on the local wall clock."""
        half_trip = max(0, received_ms - sent_ms) // 2
        uncertainty = half_trip + resolution_ms
        if self.offset_ms is not None and uncertainty > self.uncertainty_ms:
            return
        self.offset_ms = server_ms - (sent_ms + half_trip)
        self.uncertainty_ms = uncertainty
        self.measured_at = self._clock.monotonic()
        self.probe_held_until, self.probe_hold, self.refused_at_ms = -math.inf, 0.0, None

    def probe_refused(self) -> None:
        """A request signed on this clock was refused for its timestamp, and nothing
        since said the server's time (the server-time endpoint failed, the answer
        carried none): every request would be refused the same way, and each refusal
        counts in its UID's error budget. Send none for a while, doubling, so that a
        clock nothing can measure costs a few errors in BingX's error window, not one
        per call."""
        self.probe_hold = min(max(self.probe_hold * 2, PROBE_HOLD_FIRST), PROBE_HOLD_LONGEST)
        self.probe_held_until = self._clock.monotonic() + self.probe_hold
        self.refused_at_ms = self._clock.wall_ms()

    def probe_held(self) -> float:
        """Seconds until the next request may be sent on this unmeasured clock (0: now)."""
        return max(0.0, self.probe_held_until - self._clock.monotonic())

    def observe_answer(
        self,
        server_ms: int | None,
        headers: Mapping[str, str],
        sent_ms: int,
        received_ms: int,
    ) -> None:
        """A sample from whatever an answer says of the server's time: its envelope's
        `timestamp` (`server_ms`, to the millisecond), else its `Date` header."""
        if server_ms is not None:
            self.observe(server_ms, sent_ms, received_ms)
        else:
            self.observe_date(headers, sent_ms, received_ms)

    def observe_date(self, headers: Mapping[str, str], sent_ms: int, received_ms: int) -> None:
        """A sample from an answer's HTTP `Date` header, when it has a readable one.

        `Date` has whole seconds: the server's clock read somewhere in the second it
        names (or, if a server rounds, the half seconds either side), so the sample is
        taken at the middle of that second and trusted to a whole second more than the
        round trip. Anything unreadable or outside the calendar is no sample."""
        value = headers.get("date")
        if value is None or len(value) > 64:
            return
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        if moment.tzinfo is None:
            return  # RFC 9110 dates are GMT; without a zone it is not one
        try:
            server_ms = int(moment.timestamp() * 1000) + 500
        except (OverflowError, OSError, ValueError):
            return
        self.observe(server_ms, sent_ms, received_ms, resolution_ms=1000)

    def forget(self) -> None:
        """Drop the offset: the clocks jumped (a timestamp error says so)."""
        self.offset_ms = None
        self.uncertainty_ms = 0
        self.measured_at = -math.inf
        self.vouched = False

    def now_ms(self) -> int:
        """The server's time now, as well as it is known."""
        return self._clock.wall_ms() + (self.offset_ms or 0)

    def local_datetime(self, server_ms: int) -> datetime.datetime | None:
        """The local moment, with its UTC offset, when the server's clock reads
        `server_ms`; None for a time no calendar holds (a garbled answer's)."""
        local_ms = server_ms - (self.offset_ms or 0)
        try:
            return datetime.datetime.fromtimestamp(local_ms / 1000).astimezone()
        except (ValueError, OverflowError, OSError):
            return None

    def local_time(self, server_ms: int) -> str:
        """`local_datetime` as a person reads it. A time no calendar holds reads as a
        plain "in N s" rather than raising in the middle of an error message."""
        moment = self.local_datetime(server_ms)
        if moment is None:
            return f"in {(server_ms - self.now_ms()) // 1000} s"  # ints: never overflows
        return moment.isoformat(timespec="seconds")

    def seconds_until(self, server_ms: int) -> float:
        """Local seconds until the server's clock reads `server_ms`, erring late, never early."""
        return (server_ms - self.now_ms() + self.uncertainty_ms) / 1000
