"""Utilisation and rejections against the strict simulator, in real time.

Each scenario sends N calls as fast as its pacing allows to a simulator that counts
sliding windows on arrival, after 0-20 ms of random jitter and, where a row says so,
a fixed delay on the way to the server (`late_s`; answers come back at once). Reported:
wall time over the physical minimum (what a client that saw every arrival could do;
the ratio, 1.00 is perfect), rejections, and the busiest 1 s window the server saw.

Rules side by side: `safe` (the default: a slot counts from its answer, or until its
recvWindow ends) and `bet 0.25 s` (the old rule, now the opt-in
`RateLimits(assume_arrival_within=0.25)`). Baselines: aiolimiter's AsyncLimiter(5, 1)
and requests exactly 200 ms apart, the pacing most wrappers use.

    python benchmarks/bench_limits.py        # or: nox -s bench
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import httpx
from _report import SMOKE, report  # type: ignore[import-not-found]
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


async def ours(sim: BingXSimulator, keys: list[SimKey], calls: int, bet: float | None) -> int:
    limiter = RateLimiter(RateLimits(assume_arrival_within=bet))
    http = sim.http_client()
    clients = [
        AssetsClient(
            k.api_key,
            k.secret_key,
            uid=k.uid,
            http_client=http,
            limiter=limiter,
            verify_uids=False,
        )
        for k in keys
    ]
    outcomes = await asyncio.gather(
        *(clients[n % len(clients)].asset_overview() for n in range(calls)),
        return_exceptions=True,
    )
    await http.aclose()
    return sum(isinstance(o, Exception) for o in outcomes)


async def with_aiolimiter(
    sim: BingXSimulator, keys: list[SimKey], calls: int, _: float | None
) -> int:
    limiter = AsyncLimiter(5, 1)

    async def one(key: SimKey) -> None:
        async with limiter:
            await raw_call(http, key)

    async with sim.http_client() as http:
        await asyncio.gather(*(one(keys[n % len(keys)]) for n in range(calls)))
    return 0  # no client here: its refusals are the simulator's count


async def every_200ms(sim: BingXSimulator, keys: list[SimKey], calls: int, _: float | None) -> None:
    async with sim.http_client() as http:
        sent = []
        for n in range(calls):
            sent.append(asyncio.create_task(raw_call(http, keys[n % len(keys)])))
            await asyncio.sleep(0.2)
        await asyncio.gather(*sent)
    return 0


Runner = Callable[[BingXSimulator, list[SimKey], int, float | None], Awaitable[int]]
SAFE, OLD_BET = None, 0.25  # the default, and the old rule: sent + 250 ms


async def scenario(
    name: str, run: Runner, *, uids: int, keys_per_uid: int, calls: int,
    late: float = 0.0, late_first: int = 0, latency: float = 0.0, bet: float | None = SAFE,
) -> dict[str, object]:  # fmt: skip
    """`late`: every request arrives that long after it was sent (its answer at once);
    `late_first`: only the first that many do (a fresh client's cold connections);
    `latency`: each way, requests and answers alike."""
    sim = BingXSimulator(
        jitter=JITTER, arrival_delay=0.0 if late_first else late, latency=latency, seed=7
    )
    if late_first:
        sim.delay_next(late_first, late)
    keys = [sim.add_key(uid=100 + u) for u in range(uids) for _ in range(keys_per_uid)]
    start = time.perf_counter()
    failed = await run(sim, keys, calls, bet)
    elapsed = time.perf_counter() - start
    limits = RateLimits()
    per_uid = -(-calls // uids)
    # What a client that knew every arrival could do: five per UID now and five more
    # each period after, inside the IP's 300 per 10 s, the last batch arriving `late`.
    by_uid = (-(-per_uid // limits.per_uid.limit) - 1) * limits.per_uid.period
    by_ip = (-(-calls // limits.per_ip_endpoint.limit) - 1) * limits.per_ip_endpoint.period
    ideal = max(by_uid, by_ip) + (0.0 if late_first else late) + 2 * latency
    return {
        "scenario": name,
        "rule": "baseline" if run is not ours else ("safe" if bet is None else f"bet {bet:g} s"),
        "calls": calls,
        "uids": uids,
        "keys": len(keys),
        "late_s": late,
        "rtt_s": 2 * latency,
        "elapsed_s": round(elapsed, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(elapsed / ideal, 3) if ideal else None,
        "failed": failed,
        "rejections": len(sim.rejections),
        "peak_per_1s": max(sim.peak(uid=100 + u) for u in range(uids)),
    }


async def main() -> None:
    # The client's own warnings (refusals under the bet) would bury the table.
    logging.getLogger("bingx_assets").setLevel(logging.ERROR)
    if SMOKE:  # one of each kind, no call waiting long
        rows = [
            await scenario("1 key", ours, uids=1, keys_per_uid=1, calls=6),
            await scenario("aiolimiter", with_aiolimiter, uids=1, keys_per_uid=1, calls=3),
            await scenario("200 ms spacing", every_200ms, uids=1, keys_per_uid=1, calls=2),
            await scenario("late, bet", ours, uids=1, keys_per_uid=1, calls=5, late=0.05,
                           bet=OLD_BET),
        ]  # fmt: skip
        report("limits", rows)
        return
    rows = [
        await scenario("1 key", ours, uids=1, keys_per_uid=1, calls=50),
        await scenario("4 keys of 1 UID", ours, uids=1, keys_per_uid=4, calls=60),
        await scenario("10 UIDs", ours, uids=10, keys_per_uid=1, calls=100),
        await scenario(
            "aiolimiter AsyncLimiter(5, 1)", with_aiolimiter, uids=1, keys_per_uid=1, calls=50
        ),
        await scenario("fixed 200 ms spacing", every_200ms, uids=1, keys_per_uid=1, calls=50),
    ]
    # name, uids, calls, late, late_first, latency each way
    late_rows: list[tuple[str, int, int, float, int, float]] = []
    for late in (0.0, 0.05, 0.1, 0.2):
        late_rows.append(("1 key, every request late", 1, 50, late, 0, 0.0))
        late_rows.append(("40 UIDs (IP-bound), every request late", 40, 400, late, 0, 0.0))
    for late in (0.4, 1.5):
        late_rows.append(("1 key, first 5 late", 1, 20, late, 5, 0.0))
    late_rows.append(("1 key, 300 ms round trip", 1, 50, 0.0, 0, 0.15))
    for name, uids, calls, late, first, latency in late_rows:
        for bet in (SAFE, OLD_BET):
            options = {"late": late, "late_first": first, "latency": latency, "bet": bet}
            rows.append(
                await scenario(name, ours, uids=uids, keys_per_uid=1, calls=calls, **options)
            )
    report("limits", rows)


if __name__ == "__main__":
    asyncio.run(main())
