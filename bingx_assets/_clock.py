"""Time: the local clocks the client reads, and the measured offset to BingX's clock.

Waiting is always done on the event loop (`asyncio.sleep`, `asyncio.timeout`), so a
`Clock`'s monotonic time *is* the running loop's time. Under a fast-forwarding loop
(`looptime` in tests) every wait is then virtual; `bingx_assets.testing.LoopClock`
derives the wall clock from the loop too, so nothing in a test sleeps for real.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Protocol

__all__ = ["Clock", "ServerClock", "SystemClock"]


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

    An offset comes from any answer that carries the server's time: the midpoint of
    the request's round trip is taken as the moment the server read its clock, so the
    estimate is off by at most half the round trip, which is kept as `uncertainty_ms`.
    The sample with the smallest round trip wins.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.offset_ms: int | None = None
        self.uncertainty_ms = 0
        self.attempted = False
        """Whether a measurement was tried; the client measures once before its first call."""
        self.measured_at_ms = -1
        """Local wall time of the last sample (-1: none)."""

    @property
    def measured(self) -> bool:
        return self.offset_ms is not None

    def observe(self, server_ms: int, sent_ms: int, received_ms: int) -> None:
        half_trip = max(0, received_ms - sent_ms) // 2
        if self.offset_ms is not None and half_trip > self.uncertainty_ms:
            return
        self.offset_ms = server_ms - (sent_ms + half_trip)
        self.uncertainty_ms = half_trip
        self.measured_at_ms = received_ms

    def forget(self) -> None:
        """Drop the offset: the clocks jumped (a timestamp error says so)."""
        self.offset_ms = None
        self.uncertainty_ms = 0
        self.measured_at_ms = -1

    def now_ms(self) -> int:
        """The server's time now, as well as it is known."""
        return self._clock.wall_ms() + (self.offset_ms or 0)

    def local_time(self, server_ms: int) -> str:
        """The local wall-clock time, with its UTC offset, when the server's clock reads
        `server_ms`: what a person can read. A time no calendar holds (a garbled answer's)
        reads as a plain "in N s" rather than raising in the middle of an error message."""
        local_ms = server_ms - (self.offset_ms or 0)
        try:
            moment = datetime.datetime.fromtimestamp(local_ms / 1000).astimezone()
        except (ValueError, OverflowError, OSError):
            return f"in {(server_ms - self.now_ms()) // 1000} s"  # ints: never overflows
        return moment.isoformat(timespec="seconds")

    def seconds_until(self, server_ms: int) -> float:
        """Local seconds until the server's clock reads `server_ms`, erring late, never early."""
        return (server_ms - self.now_ms() + self.uncertainty_ms) / 1000
