"""The Redis backend: its cost per call against the in-memory one, and utilisation
when K processes share one UID through it.

Starts its own redis-server (unix socket). Per-call costs are medians of repeated
batches, interleaved with the in-memory backend's and the host store's: wall time with
its ratio, and this process's CPU with what it adds to the memory backend's (the CPU a
call on aiohttp gains by sharing its limits through Redis); utilisation is wall time
over the physical minimum against the simulator served on loopback.

    python benchmarks/bench_redis.py        # or: nox -s bench
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _report import SMOKE, report  # type: ignore[import-not-found]
from redis.asyncio import Redis
from redis.asyncio.connection import _AsyncRESP2Parser

from bingx_assets import HostBackend, Rate, RateLimiter, RateLimits, RedisBackend
from bingx_assets.testing import BingXSimulator, SimulatorServer, redis_server

# Limits so high that nothing waits: what is left is the backend's own cost.
UNLIMITED = RateLimits(
    per_uid=Rate(10**9, 1.0), per_ip_endpoint=Rate(10**9, 10.0), per_ip_group=Rate(10**9, 10.0)
)
BATCH, REPEATS = (20, 2) if SMOKE else (500, 7)


async def per_acquire_us(limiter: RateLimiter | Ping) -> tuple[float, float]:
    """One batch: (wall µs, this process's CPU µs) per acquire + settle, settled as a
    success whose answer said how many requests BingX counts (as every answer does)."""
    scope = limiter.scope("bench", "/x")
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(BATCH):
        permit = await limiter.acquire(scope, max_wait=1)
        await permit.settle(answered=True, succeeded=True, server_remaining=10**9 - 1)
    return (
        (time.perf_counter() - start) / BATCH * 1e6,
        (time.process_time() - cpu) / BATCH * 1e6,
    )


class Ping:
    """A redis-py `PING` per "acquire + settle": the floor of one round trip, which no
    script of ours can go under."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def scope(self, uid: str, path: str) -> Ping:
        return self

    async def acquire(self, scope: Ping, max_wait: float) -> Ping:
        await self.redis.ping()
        return self

    async def settle(self, **_: object) -> None:
        return None


async def overhead(redis_url: str) -> list[dict[str, object]]:
    redis = Redis.from_url(redis_url)  # with hiredis's parser, as `[redis]` installs it
    # redis-py's own pure-Python parser, what a `redis` installed without hiredis uses.
    pure = Redis.from_url(redis_url, parser_class=_AsyncRESP2Parser)
    with tempfile.TemporaryDirectory() as scratch:
        host_store = HostBackend(Path(scratch) / "limits.sqlite3")
        limiters: dict[str, RateLimiter | Ping] = {
            "memory": RateLimiter(UNLIMITED),
            "host store (SQLite, the default)": RateLimiter(UNLIMITED, backend=host_store),
            "redis (unix socket)": RateLimiter(
                UNLIMITED, backend=RedisBackend(redis, namespace=uuid.uuid4().hex)
            ),
            "redis, pure-Python parser (no hiredis)": RateLimiter(
                UNLIMITED, backend=RedisBackend(pure, namespace=uuid.uuid4().hex)
            ),
            "redis-py PING alone (one round trip)": Ping(redis),
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in limiters}
        for limiter in limiters.values():  # warm: connections, scripts loaded, tables
            await per_acquire_us(limiter)
        for _ in range(REPEATS):  # interleaved, so drift in the machine hits all alike
            for name, limiter in limiters.items():
                samples[name].append(await per_acquire_us(limiter))
        await host_store.aclose()
    await redis.aclose()
    await pure.aclose()
    memory_wall = statistics.median(wall for wall, _ in samples["memory"])
    memory_cpu = statistics.median(cpu for _, cpu in samples["memory"])
    rows: list[dict[str, object]] = []
    for name, runs in samples.items():
        wall = [w for w, _ in runs]
        cpu = statistics.median(c for _, c in runs)
        # A PING runs no limiter: all of its CPU is what it would add to a call.
        added = cpu if isinstance(limiters[name], Ping) else cpu - memory_cpu
        rows.append({
            "backend": name,
            "median_us_per_call": round(statistics.median(wall), 1),
            "min_us": round(min(wall), 1),
            "max_us": round(max(wall), 1),
            "ratio_to_memory": round(statistics.median(wall) / memory_wall, 2),
            "cpu_us_per_call": round(cpu, 1),
            "cpu_added_us": round(added, 1),
        })  # fmt: skip
    return rows


async def utilisation(redis_url: str, processes: int, calls: int = 40) -> dict[str, object]:
    sim = BingXSimulator(jitter=0.005)
    keys = [sim.add_key(uid=500) for _ in range(processes)]
    namespace = uuid.uuid4().hex
    async with SimulatorServer(sim) as server:
        start = time.perf_counter()
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bingx_assets.testing.load",
                "--base-url",
                server.url,
                "--redis",
                redis_url,
                "--namespace",
                namespace,
                "--calls",
                str(calls // processes),
                f"{k.api_key}:{k.secret_key}:500",
            )
            for k in keys
        ]
        await asyncio.gather(*(w.wait() for w in workers))
        elapsed = time.perf_counter() - start
    served = [r for r in sim.requests if r.path.endswith("allAccountBalance")]
    minimum = (len(served) - 1) // 5 * 1.0
    return {
        "processes": processes,
        "calls": len(served),
        "elapsed_s": round(elapsed, 3),
        "minimum_s": minimum,
        "ratio": round(elapsed / minimum, 3) if minimum else None,
        "rejections": len(sim.rejections),
        "peak_per_1s": sim.peak(uid=500),
    }


async def main() -> None:
    with redis_server() as url:
        report("redis_overhead", await overhead(url))
        if SMOKE:
            report("redis_processes", [await utilisation(url, 2, calls=4)])
        else:
            report("redis_processes", [await utilisation(url, k) for k in (1, 2, 4)])


if __name__ == "__main__":
    asyncio.run(main())
