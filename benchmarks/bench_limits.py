"""Utilisation and rejections against the strict simulator, in real time.

Each scenario sends N calls as fast as its pacing allows to a simulator that counts
sliding windows on arrival after random network jitter. Reported: wall time over the
physical minimum (the ratio, 1.00 is perfect), rejections, and the busiest 1 s window
the server saw. Baselines: aiolimiter's AsyncLimiter(5, 1) and requests exactly 200 ms
apart, the pacing most wrappers use.

    python benchmarks/bench_limits.py        # or: nox -s bench
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from _report import report  # type: ignore[import-not-found]
from aiolimiter import AsyncLimiter

from bingx_assets import AssetsClient, RateLimiter, RateLimits
from bingx_assets._constants import API_KEY_HEADER, ASSET_OVERVIEW_PATH
from bingx_assets._signing import signed_query
from bingx_assets.testing import BingXSimulator, SimKey

JITTER = 0.02


async def raw_call(http: httpx.AsyncClient, key: SimKey) -> None:
    query = signed_query({"timestamp": int(time.time() * 1000)}, key.secret_key.encode())
    await http.get(
        f"https://open-api.bingx.com{ASSET_OVERVIEW_PATH}?{query}",
        headers={API_KEY_HEADER: key.api_key},
    )


async def ours(sim: BingXSimulator, keys: list[SimKey], calls: int, margin: float) -> None:
    limiter = RateLimiter(RateLimits(safety_margin=margin))
    http = sim.http_client()
    clients = [
        AssetsClient(k.api_key, k.secret_key, uid=k.uid, http_client=http, limiter=limiter)
        for k in keys
    ]
    await asyncio.gather(*(clients[n % len(clients)].asset_overview() for n in range(calls)))
    await http.aclose()


async def with_aiolimiter(sim: BingXSimulator, keys: list[SimKey], calls: int, _: float) -> None:
    limiter = AsyncLimiter(5, 1)

    async def one(key: SimKey) -> None:
        async with limiter:
            await raw_call(http, key)

    async with sim.http_client() as http:
        await asyncio.gather(*(one(keys[n % len(keys)]) for n in range(calls)))


async def every_200ms(sim: BingXSimulator, keys: list[SimKey], calls: int, _: float) -> None:
    async with sim.http_client() as http:
        sent = []
        for n in range(calls):
            sent.append(asyncio.create_task(raw_call(http, keys[n % len(keys)])))
            await asyncio.sleep(0.2)
        await asyncio.gather(*sent)


Runner = Callable[[BingXSimulator, list[SimKey], int, float], Awaitable[None]]


async def scenario(
    name: str, run: Runner, *, uids: int, keys_per_uid: int, calls: int,
    latency: float = 0.0, margin: float = 0.25,
) -> dict[str, object]:  # fmt: skip
    sim = BingXSimulator(jitter=JITTER, latency=latency, seed=7)
    keys = [sim.add_key(uid=100 + u) for u in range(uids) for _ in range(keys_per_uid)]
    start = time.perf_counter()
    await run(sim, keys, calls, margin)
    elapsed = time.perf_counter() - start
    per_uid = -(-calls // uids)
    ideal = (per_uid - 1) // 5 * 1.0  # five now, five more each second after
    return {
        "scenario": name,
        "calls": calls,
        "uids": uids,
        "keys": len(keys),
        "latency_s": latency,
        "jitter_s": JITTER,
        "elapsed_s": round(elapsed, 3),
        "ideal_s": ideal,
        "ratio": round(elapsed / ideal, 3) if ideal else None,
        "rejections": len(sim.rejections),
        "peak_per_1s": max(sim.peak(uid=100 + u) for u in range(uids)),
    }


async def main() -> None:
    rows = [
        await scenario("bingx-assets, 1 key", ours, uids=1, keys_per_uid=1, calls=50),
        await scenario("bingx-assets, 4 keys of 1 UID", ours, uids=1, keys_per_uid=4, calls=60),
        await scenario("bingx-assets, 10 UIDs", ours, uids=10, keys_per_uid=1, calls=100),
        await scenario(
            "bingx-assets, 1 key, 100 ms RTT, margin 20 ms",
            ours,
            uids=1,
            keys_per_uid=1,
            calls=50,
            latency=0.05,
            margin=0.02,
        ),
        await scenario(
            "bingx-assets, 1 key, 100 ms RTT, default margin",
            ours,
            uids=1,
            keys_per_uid=1,
            calls=50,
            latency=0.05,
        ),
        await scenario(
            "aiolimiter AsyncLimiter(5, 1)", with_aiolimiter, uids=1, keys_per_uid=1, calls=50
        ),
        await scenario("fixed 200 ms spacing", every_200ms, uids=1, keys_per_uid=1, calls=50),
    ]
    report("limits", rows)


if __name__ == "__main__":
    asyncio.run(main())
