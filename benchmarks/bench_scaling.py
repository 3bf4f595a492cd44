"""How a pool's cost grows with its size: N keys over N/5 UIDs, each read `ROUNDS` times.

The simulator runs in its own process with BingX's per-UID limit (5 a second) and the IP
limits out of the way, so the physical minimum is `ROUNDS - 1` seconds whatever N: the
UID windows alone. Reported per transport (the pool's own aiohttp session, the default,
and an httpx client handed in) and N: client CPU per call, RSS the pool added per key,
wall time over that minimum, and the exponent k of CPU in N (total CPU ~ N^k between the
smallest and the largest N; 1.0 is linear: a constant cost per call). On a 2-core
machine the simulator takes one core, so at 5,000 keys the client's own CPU is what bounds the wall.

    python benchmarks/bench_scaling.py            # or: nox -s bench
    python benchmarks/bench_scaling.py --smoke    # seconds, results to a temp dir
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from _report import SMOKE, report  # type: ignore[import-not-found]

from bingx_assets import AssetsPool, Credentials, Rate, RateLimiter, RateLimits

SIZES = (5, 10) if SMOKE else (10, 100, 1_000, 5_000)
ROUNDS = 1 if SMOKE else 3
KEYS_PER_UID = 5
LIMITS = RateLimits(per_ip_endpoint=Rate(10**9, 10.0), per_ip_group=Rate(10**9, 10.0))

SERVER = """
import asyncio, json, sys
from bingx_assets import Rate, RateLimits
from bingx_assets.testing import BingXSimulator, SimulatorServer

async def main(keys: int, per_uid: int) -> None:
    limits = RateLimits(per_ip_endpoint=Rate(10**9, 10.0), per_ip_group=Rate(10**9, 10.0))
    sim = BingXSimulator(limits=limits)
    made = [sim.add_key(uid=1000 + n // per_uid) for n in range(keys)]
    async with SimulatorServer(sim) as server:
        print(json.dumps({"url": server.url,
                          "keys": [[k.api_key, k.secret_key, k.uid] for k in made]}))
        sys.stdout.flush()
        await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


@asynccontextmanager
async def simulator(keys: int) -> AsyncIterator[tuple[str, list[Any]]]:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, str(keys), str(KEYS_PER_UID),
        stdout=subprocess.PIPE, limit=2**26,
    )  # fmt: skip
    assert server.stdout is not None
    started = json.loads(await server.stdout.readline())
    try:
        yield started["url"], started["keys"]
    finally:
        server.terminate()
        await server.wait()


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def one_size(transport: str, keys: int) -> dict[str, object]:
    async with simulator(keys) as (url, made):
        credentials = [Credentials(a, s, f"k{n}", u) for n, (a, s, u) in enumerate(made)]
        # As many connections as the pool's own session has: its concurrency, 32.
        http = (
            httpx.AsyncClient(limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))
            if transport == "httpx client"
            else None
        )
        gc.collect()
        before = rss_bytes()
        async with AssetsPool(
            credentials, base_url=url, limiter=RateLimiter(LIMITS), http_client=http,
            uid_cache=False, verify_uids=False,
        ) as pool:  # fmt: skip
            start, cpu = time.perf_counter(), time.process_time()
            results = [r for _ in range(ROUNDS) for r in await pool.gather()]
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            grown = rss_bytes() - before
        if http is not None:
            await http.aclose()
    minimum = (ROUNDS - 1) * 1.0
    return {
        "transport": transport,
        "keys": keys,
        "uids": keys // KEYS_PER_UID,
        "calls": len(results),
        "ok": sum(r.ok for r in results),
        "cpu_us_per_call": round(cpu / len(results) * 1e6),
        "rss_kib_per_key": round(grown / keys / 1024, 1),
        "elapsed_s": round(elapsed, 2),
        "minimum_s": minimum,
        "ratio": round(elapsed / minimum, 3) if minimum else None,
    }


async def main() -> None:
    # What the UIDs' full windows say is expected here: the table is the record of it.
    logging.getLogger("bingx_assets").setLevel(logging.ERROR)
    rows: list[dict[str, object]] = []
    for transport in ("aiohttp (default)", "httpx client"):
        await one_size(transport, SIZES[0])  # warm: imports, TLS context, first sessions
        measured = [await one_size(transport, keys) for keys in SIZES]
        first, last = measured[0], measured[-1]
        total = [float(r["cpu_us_per_call"]) * int(r["calls"]) for r in (first, last)]  # type: ignore[call-overload]
        exponent = math.log(total[1] / total[0]) / math.log(int(last["keys"]) / int(first["keys"]))  # type: ignore[call-overload]
        for row in measured:
            row["cpu_exponent"] = round(exponent, 2)
        rows += measured
    report("scaling", rows)


if __name__ == "__main__":
    asyncio.run(main())
