"""Where a call's CPU goes, on aiohttp over loopback: our layers against the library's.

The simulator runs in its own process (`bingx-assets simulate --unlimited`), so what is
profiled is the client alone: `CALLS` calls of one client, one at a time and 50 in
flight, under cProfile. Each function's own time (not its callees') is charged to the
part its module belongs to: the limiter, clocks, the client's retry loop and call path,
signing, decoding, observers, the transport seam, then aiohttp (with yarl, multidict)
and asyncio's loop. Reported: each part's share of the profiled time and its
microseconds per call, scaled to the call's unprofiled CPU (cProfile slows small Python
functions more than C, so read the shares as where to look, not as exact costs).

    python benchmarks/bench_profile.py            # or: nox -s bench
    python benchmarks/bench_profile.py --smoke    # seconds, results to a temp dir
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from _report import SMOKE, report  # type: ignore[import-not-found]

from bingx_assets import AssetsClient, Rate, RateLimiter, RateLimits

UNLIMITED = RateLimits(Rate(10**9, 1.0), Rate(10**9, 10.0), Rate(10**9, 10.0))
CALLS = 100 if SMOKE else 3000
KEYS = 2 if SMOKE else 50

# First match wins: module path fragments, and the part they are charged to.
PARTS = (
    ("bingx_assets/_limiter/", "limiter (windows, locks, tickets)"),
    ("bingx_assets/_clock", "clocks"),
    ("bingx_assets/_signing", "signing"),
    ("bingx_assets/_wire", "decoding (msgspec, Decimal)"),
    ("bingx_assets/_models", "decoding (msgspec, Decimal)"),
    ("bingx_assets/_observer", "observers"),
    ("bingx_assets/_metrics", "observers"),
    ("bingx_assets/_transports/", "transport seam"),
    ("bingx_assets/_exceptions", "client: call path, retry loop"),
    ("bingx_assets/", "client: call path, retry loop"),
    ("tenacity", "client: call path, retry loop"),
    ("msgspec", "decoding (msgspec, Decimal)"),
    ("aiohttp", "aiohttp (with yarl, multidict)"),
    ("yarl", "aiohttp (with yarl, multidict)"),
    ("multidict", "aiohttp (with yarl, multidict)"),
    ("propcache", "aiohttp (with yarl, multidict)"),
    ("asyncio", "asyncio (loop, tasks, selector)"),
    ("selectors", "asyncio (loop, tasks, selector)"),
    ("socket", "asyncio (loop, tasks, selector)"),
)


def part_of(filename: str, function: str) -> str:
    for fragment, part in PARTS:
        if fragment in filename:
            return part
    if filename == "~":  # a builtin: where its caller lives is unknown here
        if "hmac" in function or "sha256" in function or "digest" in function:
            return "signing"
        if "select" in function or "epoll" in function or "socket" in function:
            return "asyncio (loop, tasks, selector)"
        return "builtins (C, callers mixed)"
    if "hmac" in filename or "hashlib" in filename or "urllib" in filename:
        return "signing"
    return "other Python"


@contextlib.asynccontextmanager
async def simulator(keys: int) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    with tempfile.TemporaryDirectory() as folder:
        keys_file = Path(folder) / "keys.toml"
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bingx_assets", "simulate", "--unlimited",
            "--write-keys", str(keys_file), "--simulated-keys", str(keys),
            "--simulated-uids", str(keys), stdout=subprocess.PIPE,
        )  # fmt: skip
        assert server.stdout is not None
        url = (await server.stdout.readline()).decode().split()[-1]
        await server.stdout.readline()  # "keys written to ..."
        try:
            yield url, tomllib.loads(keys_file.read_text())["keys"]
        finally:
            server.terminate()
            await server.wait()


async def calls(clients: list[AssetsClient], n: int, in_flight: int) -> None:
    async def lane(start: int) -> None:
        for i in range(start, n, in_flight):
            await clients[i % len(clients)].asset_overview()

    await asyncio.gather(*(lane(k) for k in range(in_flight)))


async def profile(in_flight: int) -> list[dict[str, object]]:
    async with simulator(KEYS) as (url, keys), aiohttp.ClientSession() as session:
        limiter = RateLimiter(UNLIMITED)
        clients = [
            AssetsClient(k["api_key"], k["secret_key"], uid=k["uid"], base_url=url,
                         http_client=session, limiter=limiter, verify_uids=False)
            for k in keys
        ]  # fmt: skip
        await calls(clients, 2 * len(clients), in_flight)  # warm: connections, server time
        cpu = time.process_time()
        await calls(clients, CALLS, in_flight)
        cpu_per_call = (time.process_time() - cpu) / CALLS * 1e6
        profiler = cProfile.Profile(time.process_time)  # CPU: the waits in poll() are not cost
        profiler.enable()
        await calls(clients, CALLS, in_flight)
        profiler.disable()
    totals: defaultdict[str, float] = defaultdict(float)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, own, _, _) in stats.items():
        totals[part_of(filename, function)] += own
    profiled = sum(totals.values())
    return [
        {
            "in_flight": in_flight,
            "part": part,
            "share": round(seconds / profiled, 3),
            "us_per_call": round(seconds / profiled * cpu_per_call, 1),
        }
        for part, seconds in sorted(totals.items(), key=lambda item: -item[1])
    ] + [{"in_flight": in_flight, "part": "all (unprofiled CPU per call)", "share": 1.0,
          "us_per_call": round(cpu_per_call, 1)}]  # fmt: skip


async def main() -> None:
    report("profile", [row for in_flight in (1, 50) for row in await profile(in_flight)])


if __name__ == "__main__":
    asyncio.run(main())
