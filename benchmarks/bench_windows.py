"""What one acquire + settle costs as a window fills: the limiter's own CPU.

One UID's scope (its three windows and an error budget) with the limit raised and a
period chosen so that slots end as fast as calls take them: `alive` slots stay alive
in every window, the steady state of a window used at its limit. Each call is timed
for acquire + settle through `RateLimiter` on `MemoryBackend`, on a clock that steps
between calls. Reported: CPU microseconds per acquire + settle (process time, so that
the machine's other load counts less; the median of interleaved repeats) and the ratio
to the cost at one alive slot, the goal being at most 1.5 at 10,000.

    python benchmarks/bench_windows.py            # or: nox -s bench
    python benchmarks/bench_windows.py --smoke    # seconds, results to a temp dir
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _report import SMOKE, report  # type: ignore[import-not-found]

from bingx_assets import Rate, RateLimiter, RateLimits
from bingx_assets._clock import SystemClock
from bingx_assets._limiter import BOUNDARY, Scope

SIZES = (1, 100, 1_000) if SMOKE else (1, 10, 100, 1_000, 10_000)
CALLS, REPEATS = (200, 1) if SMOKE else (5_000, 7)
STEP = 0.01  # seconds between calls on the stepped clock


class SteppedClock(SystemClock):
    """Time that moves only between calls, `STEP` at a time."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


async def microseconds_per_call(alive: int) -> float:
    # Slots end as fast as they are taken: `alive` stay alive, the steady state of a
    # window used at its limit (the BOUNDARY counts towards its period).
    rate = Rate(alive + 10, alive * STEP - BOUNDARY - STEP / 2)
    clock = SteppedClock()
    limiter = RateLimiter(
        RateLimits(per_uid=rate, per_ip_endpoint=rate, per_ip_group=rate), clock=clock
    )
    plain = limiter.scope("1000", "/x")
    scope = Scope(
        uid=plain.uid, ip=plain.ip, gates=plain.gates, windows=plain.windows,
        errors=("errors:1000:/x", rate),
    )  # fmt: skip
    start = 0.0
    for call in range(alive + CALLS):  # the first `alive` fill the window
        if call == alive:
            start = time.process_time()
        ticket = await limiter.acquire(scope, max_wait=0)
        await ticket.settle(answered=True, succeeded=True)
        clock.now += STEP
    return (time.process_time() - start) / CALLS * 1e6


async def main() -> None:
    samples: dict[int, list[float]] = {alive: [] for alive in SIZES}
    for _ in range(REPEATS):  # interleaved, so that the machine's load falls on every size
        for alive in SIZES:
            samples[alive].append(await microseconds_per_call(alive))
    base = statistics.median(samples[1])
    rows: list[dict[str, object]] = [
        {
            "alive_slots": alive,
            "us_per_acquire_settle": round(statistics.median(samples[alive]), 2),
            "ratio_to_1": round(statistics.median(samples[alive]) / base, 2),
        }
        for alive in SIZES
    ]
    report("windows", rows)


if __name__ == "__main__":
    asyncio.run(main())
