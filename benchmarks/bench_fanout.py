"""Fan-out: N keys over M UIDs through one AssetsPool, against what the limits allow.

Real time, the strict simulator with 20 ms of jitter. The physical minimum is set by
the busiest UID (5 per second after the first five) and by the IP's endpoint window
(300 per 10 s); the ratio is wall time over it.

    python benchmarks/bench_fanout.py        # or: nox -s bench
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time

from _report import SMOKE, report  # type: ignore[import-not-found]

from bingx_assets import AssetsPool, Credentials, RateLimiter
from bingx_assets.testing import BingXSimulator

JITTER = 0.02


def minimum_seconds(keys_per_uid: int, keys: int) -> float:
    by_uid = (keys_per_uid - 1) // 5 * 1.0
    by_ip = (keys - 1) // 300 * 10.0
    return max(by_uid, by_ip)


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def scenario(
    uids: int, keys_per_uid: int, *, rounds: int = 1, late_first: int = 0, busy_cores: int = 0
) -> dict[str, object]:
    """`late_first`: the first that many requests arrive 0.4 s late (cold connections);
    `busy_cores`: that many other processes spin meanwhile (a loaded machine)."""
    sim = BingXSimulator(jitter=JITTER, seed=11)
    sim.delay_next(late_first, 0.4)
    keys = [sim.add_key(uid=1000 + u) for u in range(uids) for _ in range(keys_per_uid)]
    credentials = [Credentials(k.api_key, k.secret_key, f"k{n}", k.uid) for n, k in enumerate(keys)]
    hogs = [multiprocessing.Process(target=spin, args=(60.0,)) for _ in range(busy_cores)]
    for hog in hogs:
        hog.start()
    try:
        async with AssetsPool(
            credentials, http_client=sim.http_client(), limiter=RateLimiter(), verify_uids=False
        ) as pool:
            start, cpu = time.perf_counter(), time.process_time()
            results = [r for _ in range(rounds) for r in await pool.gather()]
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join()
    minimum = minimum_seconds(keys_per_uid * rounds, len(keys) * rounds)
    return {
        "keys": len(keys),
        "uids": uids,
        "rounds": rounds,
        "late_first": late_first,
        "busy_cores": busy_cores,
        "elapsed_s": round(elapsed, 3),
        "minimum_s": minimum,
        "ratio": round(elapsed / minimum, 3) if minimum else None,
        "cpu_s": round(cpu, 3),  # client and simulator together, one process
        "ok": sum(r.ok for r in results),
        "errors": sum(not r.ok for r in results),
        "rejections": len(sim.rejections),
    }


async def main() -> None:
    if SMOKE:
        report("fanout", [await scenario(uids=2, keys_per_uid=3, late_first=1)])
        return
    rows = [
        await scenario(uids=4, keys_per_uid=12),
        await scenario(uids=10, keys_per_uid=30),
        await scenario(uids=3, keys_per_uid=20),
        await scenario(uids=40, keys_per_uid=10),  # 400 keys: the IP window decides
        # Issue #11's failing case: 300 keys over 60 UIDs, read twice, on a loaded machine.
        await scenario(uids=60, keys_per_uid=5, rounds=2, late_first=32, busy_cores=2),
    ]
    report("fanout", rows)


if __name__ == "__main__":
    asyncio.run(main())
