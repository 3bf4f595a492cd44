"""Egress routes: keys per second through 1, 2 and 4 source addresses, against what the IP
windows of that many addresses allow.

Real time, real sockets: the simulator served on 127.0.0.1 (20 ms of jitter), each route
bound to its own loopback address (127.0.0.2, 127.0.0.3, ...), which the simulator counts
as an IP of its own. The IP window is scaled down to 20 per second (BingX: 300 per 10 s)
so that the whole run takes about half a minute; 324 keys of 108 UIDs (3 keys each) make
16, 8 and 4 full windows' waits on 1, 2 and 4 routes.

    python benchmarks/bench_egress.py        # or: nox -s bench
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, defaultdict

from _report import SMOKE, report  # type: ignore[import-not-found]

from bingx_assets import AssetsPool, Credentials, Egress, Rate, RateLimiter, RateLimits
from bingx_assets._constants import ASSET_OVERVIEW_PATH
from bingx_assets.testing import BingXSimulator, SimulatorServer

IP_RATE = Rate(20, 1.0)
LIMITS = RateLimits(per_ip_endpoint=IP_RATE)
UIDS, KEYS_PER_UID = (6, 1) if SMOKE else (108, 3)
JITTER = 0.02


def minimum_seconds(keys_per_route: list[int]) -> float:
    """The busiest route's IP window: its first `limit` keys at once, then a window more
    for each `limit` after them."""
    busiest = max(keys_per_route)
    return (math.ceil(busiest / IP_RATE.limit) - 1) * IP_RATE.period


async def scenario(routes: int) -> dict[str, object]:
    egress = [Egress(f"127.0.0.{2 + n}") for n in range(routes)]
    async with SimulatorServer(BingXSimulator(limits=LIMITS, jitter=JITTER, seed=5)) as server:
        sim = server.simulator
        keys = [sim.add_key(uid=1000 + u) for u in range(UIDS) for _ in range(KEYS_PER_UID)]
        credentials = [
            Credentials(k.api_key, k.secret_key, f"k{n}", k.uid) for n, k in enumerate(keys)
        ]
        async with AssetsPool(
            credentials,
            egress=egress,
            limiter=RateLimiter(LIMITS),
            base_url=server.url,
            uid_cache=False,
            verify_uids=False,
        ) as pool:
            start = time.perf_counter()
            results = await pool.gather()
            elapsed = time.perf_counter() - start
    served = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    per_address = Counter(r.client_ip for r in served)
    addresses_of_uid: defaultdict[int | None, set[str]] = defaultdict(set)
    for r in served:
        addresses_of_uid[r.uid].add(r.client_ip)
    minimum = minimum_seconds([per_address[route.ip] for route in egress])
    peaks = [sim.peak(client_ip=route.ip, period=IP_RATE.period) for route in egress]
    return {
        "routes": routes,
        "keys": len(keys),
        "elapsed_s": round(elapsed, 3),
        "minimum_s": minimum,
        "ratio": round(elapsed / minimum, 3) if minimum else None,
        "keys_per_s": round(len(keys) / elapsed, 1),
        "bound_keys_per_s": round(len(keys) / minimum, 1) if minimum else None,
        "ok": sum(r.ok for r in results),
        "rejections": len(sim.rejections),
        "uids_on_2+_addresses": sum(len(a) > 1 for a in addresses_of_uid.values()),
        "peak_per_address": max(peaks),
        "limit": IP_RATE.limit,
    }


async def main() -> None:
    rows = [await scenario(routes) for routes in ((1, 2) if SMOKE else (1, 2, 4))]
    base = rows[0]["keys_per_s"]
    for row in rows:
        row["speedup"] = round(float(row["keys_per_s"]) / float(base), 2)  # type: ignore[arg-type]
    report("egress", rows)


if __name__ == "__main__":
    asyncio.run(main())
