"""The cost of Prometheus metrics per call: a client with them attached against one without.

Both read the in-process simulator with no limits on either side, so nothing waits and
what is measured is the client's own work (the simulator's too, alike for both). Batches
of sequential calls alternate between the two clients, so drift in a shared machine hits
both alike; reported are medians of the per-call CPU times and their difference. Also:
the observers' own work for one call, timed alone (the five events a call emits), and
the time one scrape of a 100-key pool's metrics takes.

    python benchmarks/bench_metrics.py        # or: nox -s bench
"""

from __future__ import annotations

import asyncio
import statistics
import time

from _report import SMOKE, report  # type: ignore[import-not-found]
from prometheus_client import CollectorRegistry, generate_latest

from bingx_assets import (
    AssetsClient,
    AssetsPool,
    Credentials,
    PrometheusMetrics,
    Rate,
    RateLimiter,
    RateLimits,
)
from bingx_assets.testing import BingXSimulator

UNLIMITED = RateLimits(
    per_uid=Rate(10**9, 1.0), per_ip_endpoint=Rate(10**9, 10.0), per_ip_group=Rate(10**9, 10.0)
)
BATCH, REPEATS = (10, 3) if SMOKE else (100, 41)


async def per_call_us(client: AssetsClient) -> float:
    # CPU time, not wall: the machine is shared, and a neighbour's burst should not land
    # on one side only. Everything runs in this process, so CPU time is the whole cost.
    start = time.process_time()
    for _ in range(BATCH):
        await client.asset_overview()
    return (time.process_time() - start) / BATCH * 1e6


async def per_call() -> list[dict[str, object]]:
    sim = BingXSimulator(limits=UNLIMITED)
    key = sim.add_key(uid=1)
    http = sim.http_client()
    clients = {
        name: AssetsClient(
            key.api_key,
            key.secret_key,
            uid=key.uid,
            verify_uids=False,
            http_client=http,
            limiter=RateLimiter(UNLIMITED),
            label=name,
        )
        for name in ("without metrics", "with metrics")
    }
    PrometheusMetrics(CollectorRegistry()).attach(clients["with metrics"])
    samples: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():
        await per_call_us(client)  # warm-up: clock sync, connection, caches
    for _ in range(REPEATS):
        for name, client in clients.items():
            samples[name].append(await per_call_us(client))
    await http.aclose()
    base = statistics.median(samples["without metrics"])
    rows: list[dict[str, object]] = []
    for name, found in samples.items():
        median = statistics.median(found)
        rows.append({
            "client": name,
            "median_us_per_call": round(median, 1),
            "min_us": round(min(found), 1),
            "max_us": round(max(found), 1),
            "cost_us": round(median - base, 1),
            "ratio": round(median / base, 3),
        })  # fmt: skip
    return rows


async def observers_alone() -> dict[str, object]:
    """The five events one successful call emits, straight into the observer."""
    sim = BingXSimulator(limits=UNLIMITED)
    key = sim.add_key(uid=1)
    limiter = RateLimiter(UNLIMITED)
    async with AssetsClient(
        key.api_key,
        key.secret_key,
        uid=key.uid,
        http_client=sim.http_client(),
        limiter=limiter,
        verify_uids=False,
    ) as client:
        PrometheusMetrics(CollectorRegistry()).attach(limiter)
        overview = await client.asset_overview()
    observer = limiter.observers[0]
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(BATCH * 10):
            observer.acquired(0.0)
            observer.settled(0.0004)
            observer.attempted(None)
            observer.read("default", overview)
        times.append((time.perf_counter() - start) / (BATCH * 10) * 1e6)
    return _row("observer work per call, alone", times)


def _row(name: str, times: list[float]) -> dict[str, object]:
    return {
        "client": name,
        "median_us_per_call": round(statistics.median(times), 1),
        "min_us": round(min(times), 1),
        "max_us": round(max(times), 1),
        "cost_us": None,
        "ratio": None,
    }


async def scrape(keys: int = 100) -> dict[str, object]:
    sim = BingXSimulator(limits=UNLIMITED)
    made = [sim.add_key(uid=10 + n % 10) for n in range(keys)]
    credentials = [Credentials(k.api_key, k.secret_key, f"k{n}", k.uid) for n, k in enumerate(made)]
    registry = CollectorRegistry()
    async with AssetsPool(
        credentials,
        http_client=sim.http_client(),
        limiter=RateLimiter(UNLIMITED),
        verify_uids=False,
    ) as pool:
        PrometheusMetrics(registry).attach(pool)
        await pool.gather()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        text = generate_latest(registry)
        times.append((time.perf_counter() - start) * 1e6)
    return _row(f"one scrape: {keys} keys, {len(text)} bytes", times)


async def main() -> None:
    rows = await per_call()
    rows.append(await observers_alone())
    rows.append(await scrape(10 if SMOKE else 100))
    report("metrics", rows)


if __name__ == "__main__":
    asyncio.run(main())
