"""bingx-assets against its peers, side by side in one run, over real HTTP on loopback.

Peers: ccxt's async BingX client (`account_v1_private_get_allaccountbalance`) and
minimal hand-written signed GETs on httpx and on aiohttp (the floors); ours runs as a
user gets it without choosing (its own aiohttp session, one per client as ccxt's, and
the default limiter's backend, the host store) and on clients handed in, limited in
memory (`RateLimiter()`).
The simulator runs in its own process (`bingx-assets simulate`), so client CPU is
measured alone. Reported: medians with
min and max over repeats, and ratios; never one timing.

    python benchmarks/bench_peers.py        # or: nox -s bench (installs ccxt there only)
    python benchmarks/bench_peers.py cpu    # the CPU table only
    python benchmarks/bench_peers.py cpu ccxt "on aiohttp"   # those clients and the floors
    python benchmarks/bench_peers.py import # the import table only
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import httpx
import httpx_aiohttp
import msgspec
import yarl
from _report import SMOKE, report  # type: ignore[import-not-found]

from bingx_assets import (
    AssetsClient,
    AssetsPool,
    Credentials,
    HostBackend,
    Rate,
    RateLimiter,
    RateLimits,
)
from bingx_assets._constants import API_KEY_HEADER, ASSET_OVERVIEW_PATH
from bingx_assets._signing import signed_query
from bingx_assets.testing import BingXSimulator

DEFAULT = "bingx-assets (default: aiohttp, host store)"
# The default's own sessions with a limiter in memory: what the host store costs apart.
OWN_SESSIONS = "bingx-assets (own aiohttp sessions, memory limiter)"
# `python benchmarks/bench_peers.py cpu [name ...]`: the CPU table of those clients only.
ONLY = sys.argv[2:] if sys.argv[1:2] == ["cpu"] else []
UNLIMITED = RateLimits(Rate(10**9, 1.0), Rate(10**9, 10.0), Rate(10**9, 10.0))
REPEATS = 1 if SMOKE else 7
KEYS, CALLS = (2, 20) if SMOKE else (50, 400)  # keys (one UID each), calls per sample
Key = dict[str, Any]


@contextlib.asynccontextmanager
async def simulator(
    keys: int, uids: int, *, unlimited: bool
) -> AsyncIterator[tuple[str, list[Key]]]:
    """`bingx-assets simulate` in its own process: its URL and keys."""
    with tempfile.TemporaryDirectory() as folder:
        keys_file = Path(folder) / "keys.toml"
        argv = [
            sys.executable,
            "-m",
            "bingx_assets",
            "simulate",
            "--write-keys",
            str(keys_file),
            "--simulated-keys",
            str(keys),
            "--simulated-uids",
            str(uids),
        ]
        server = await asyncio.create_subprocess_exec(
            *argv, *(["--unlimited"] if unlimited else []), stdout=subprocess.PIPE
        )
        assert server.stdout is not None
        url = (await server.stdout.readline()).decode().split()[-1]
        await server.stdout.readline()  # "keys written to ..."
        try:
            yield url, tomllib.loads(keys_file.read_text())["keys"]
        finally:
            server.terminate()
            await server.wait()


def our_client(
    url: str,
    key: Key,
    limiter: RateLimiter,
    http: httpx.AsyncClient | aiohttp.ClientSession | None = None,
) -> AssetsClient:
    return AssetsClient(
        key["api_key"],
        key["secret_key"],
        uid=key["uid"],
        verify_uids=False,  # the simulator's own UIDs: ccxt is not asked to check them
        base_url=url,
        http_client=http,
        limiter=limiter,
    )


def ccxt_client(url: str, key: Key, *, rate_limit: bool = True) -> Any:
    exchange = ccxt.bingx(
        {"apiKey": key["api_key"], "secret": key["secret_key"], "enableRateLimit": rate_limit}
    )
    for name in list(exchange.urls["api"]):
        exchange.urls["api"][name] = f"{url}/openApi"
    return exchange


# -- CPU and wall time per call ---------------------------------------------------------

CONCURRENCY = (1, 50)


async def per_call(
    calls: Callable[[int], Awaitable[object]], n: int, concurrency: int
) -> tuple[float, float]:
    """(CPU µs, wall µs) per call over `n` calls, `concurrency` of them in flight."""

    async def lane(start: int) -> None:
        for i in range(start, n, concurrency):
            await calls(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane(k) for k in range(concurrency)))
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


async def cpu_and_wall() -> list[dict[str, object]]:
    n = CALLS
    with tempfile.TemporaryDirectory() as scratch:
        return await _cpu_and_wall(n, scratch)


async def _cpu_and_wall(n: int, scratch: str) -> list[dict[str, object]]:
    async with simulator(KEYS, KEYS, unlimited=True) as (url, keys):
        http = httpx.AsyncClient()
        session = aiohttp.ClientSession()
        on_httpx = [our_client(url, k, RateLimiter(UNLIMITED), http) for k in keys]
        on_aiohttp = [our_client(url, k, RateLimiter(UNLIMITED), session) for k in keys]
        # httpx's API over aiohttp's parser, as openai-python's DefaultAioHttpClient.
        bridged = httpx_aiohttp.HttpxAiohttpClient()
        on_bridge = [our_client(url, k, RateLimiter(UNLIMITED), bridged) for k in keys]
        # What a client made without a limiter gets: the host store (RateLimiter.default's
        # backend), here in a scratch file and with the limits raised, as everywhere here.
        host_store = HostBackend(Path(scratch) / "limits.sqlite3")
        by_default = [our_client(url, k, RateLimiter(UNLIMITED, backend=host_store)) for k in keys]
        own_sessions = [our_client(url, k, RateLimiter(UNLIMITED)) for k in keys]
        peers = [ccxt_client(url, k, rate_limit=False) for k in keys]

        def signed_url(i: int) -> tuple[str, dict[str, str]]:
            key = keys[i % len(keys)]
            params = {"timestamp": int(time.time() * 1000), "recvWindow": 5000}
            query = signed_query(params, key["secret_key"].encode())
            return f"{url}{ASSET_OVERVIEW_PATH}?{query}", {API_KEY_HEADER: key["api_key"]}

        async def bare_httpx(i: int) -> object:
            address, headers = signed_url(i)
            response = await http.get(address, headers=headers)
            return msgspec.json.decode(response.content)

        async def bare_aiohttp(i: int) -> object:
            address, headers = signed_url(i)
            async with session.get(yarl.URL(address, encoded=True), headers=headers) as response:
                return msgspec.json.decode(await response.read())

        runners: dict[str, Callable[[int], Awaitable[object]]] = {
            "ccxt": lambda i: peers[i % len(peers)].account_v1_private_get_allaccountbalance(),
            "bare httpx (sign + GET + decode)": bare_httpx,
            "bare aiohttp (sign + GET + decode)": bare_aiohttp,
            DEFAULT: lambda i: by_default[i % len(keys)].asset_overview(),
            OWN_SESSIONS: lambda i: own_sessions[i % len(keys)].asset_overview(),
            "bingx-assets on httpx": lambda i: on_httpx[i % len(keys)].asset_overview(),
            "bingx-assets on aiohttp": lambda i: on_aiohttp[i % len(keys)].asset_overview(),
            "bingx-assets on httpx-aiohttp": lambda i: on_bridge[i % len(keys)].asset_overview(),
        }
        if ONLY:  # `cpu ccxt "on aiohttp"`: those clients (and the floors) alone
            runners = {
                name: run
                for name, run in runners.items()
                if name.startswith("bare") or any(part in name for part in ONLY)
            }
        for run in runners.values():  # warm up: connections, server time, imports
            for concurrency in CONCURRENCY:
                await per_call(run, 2 * len(keys), concurrency)
        samples: dict[tuple[str, int], list[tuple[float, float]]] = {
            (name, c): [] for c in CONCURRENCY for name in runners
        }
        for _ in range(REPEATS):  # interleaved, so drift in the machine hits all alike
            for concurrency in CONCURRENCY:
                for name, run in runners.items():
                    samples[name, concurrency].append(await per_call(run, n, concurrency))
        for client in (*by_default, *own_sessions):
            await client.aclose()
        await host_store.aclose()
        await http.aclose()
        await bridged.aclose()
        await session.close()
        for exchange in peers:
            await exchange.close()

    def median_cpu(name: str, concurrency: int) -> float:
        return statistics.median(s[0] for s in samples[name, concurrency])

    rows: list[dict[str, object]] = []
    for (name, concurrency), runs in samples.items():
        cpu = [s[0] for s in runs]
        wall = [s[1] for s in runs]
        floor = "bare aiohttp" if "aiohttp" in name else "bare httpx"
        floor_name = next(n for n in runners if n.startswith(floor))
        rows.append(
            {
                "client": name,
                "in_flight": concurrency,
                "cpu_us_median": round(statistics.median(cpu)),
                "cpu_us_min_max": f"{min(cpu):.0f}-{max(cpu):.0f}",
                "wall_us_median": round(statistics.median(wall)),
                "cpu_vs_bare_same_library": round(
                    statistics.median(cpu) / median_cpu(floor_name, concurrency), 2
                )
                if name != "ccxt"
                else None,
                "cpu_vs_ccxt": round(statistics.median(cpu) / median_cpu("ccxt", concurrency), 2)
                if ("ccxt", concurrency) in samples
                else None,
            }
        )
    return rows


# -- import time ----------------------------------------------------------------------


def import_seconds(modules: tuple[str, ...]) -> dict[str, tuple[list[float], bool]]:
    """Seconds to import each module in a fresh interpreter, the modules' runs
    interleaved (the machine's drift hits all alike), and whether each imported aiohttp."""
    # As an installed package is imported: from bytecode. Where the environment says
    # not to write any (PYTHONDONTWRITEBYTECODE), a source checkout compiled every
    # module on every run while the peers, compiled by pip, did not.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for module in modules:  # warm: bytecode written, files in the page cache
        subprocess.run([sys.executable, "-c", f"import {module}"], env=env, check=True)
    timed = {
        module: f"import sys, time; t = time.perf_counter(); import {module}; "
        "print(time.perf_counter() - t, 'aiohttp' in sys.modules)"
        for module in modules
    }
    runs: dict[str, list[list[str]]] = {module: [] for module in modules}
    for _ in range(REPEATS):
        for module, code in timed.items():
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
            )
            runs[module].append(done.stdout.split())
    return {
        module: ([float(seconds) for seconds, _ in seen], seen[0][1] == "True")
        for module, seen in runs.items()
    }


def import_times() -> list[dict[str, object]]:
    names = ("bingx_assets", "ccxt.async_support")
    measured = import_seconds(names)
    theirs = measured["ccxt.async_support"][0]
    return [
        {
            "module": name,
            "median_ms": round(statistics.median(s) * 1000, 1),
            "min_max_ms": f"{min(s) * 1000:.0f}-{max(s) * 1000:.0f}",
            "ratio_to_ccxt": round(statistics.median(s) / statistics.median(theirs), 3),
            "imports_aiohttp": aiohttp_too,
        }
        for name, (s, aiohttp_too) in measured.items()
    ]


# -- utilisation and rejections ---------------------------------------------------------


async def utilisation() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    scenarios = [
        ("50 calls, 1 key", 1, 1, 50),
        ("60 calls, 4 keys of 1 UID", 4, 1, 60),
        ("100 calls, 10 UIDs", 10, 10, 100),
    ]
    if SMOKE:
        scenarios = [("5 calls, 1 key", 1, 1, 5)]
    for scenario, n_keys, n_uids, calls in scenarios:
        for name in ("bingx-assets", "ccxt"):
            async with simulator(n_keys, n_uids, unlimited=False) as (url, keys):
                if name == "bingx-assets":
                    limiter = RateLimiter()
                    clients = [our_client(url, k, limiter) for k in keys]
                    call = [c.asset_overview for c in clients]
                else:
                    clients = [ccxt_client(url, k) for k in keys]
                    call = [c.account_v1_private_get_allaccountbalance for c in clients]
                start = time.perf_counter()
                results = await asyncio.gather(
                    *(call[i % len(call)]() for i in range(calls)), return_exceptions=True
                )
                elapsed = time.perf_counter() - start
                for client in clients:
                    await client.close() if name == "ccxt" else await client.aclose()
            per_uid = -(-calls // n_uids)
            minimum = (per_uid - 1) // 5 * 1.0
            rows.append(
                {
                    "scenario": scenario,
                    "client": name,
                    "elapsed_s": round(elapsed, 2),
                    "ratio_to_minimum": round(elapsed / minimum, 3) if minimum else None,
                    "rejected": sum(isinstance(r, Exception) for r in results),
                }
            )
    return rows


# -- memory per 1,000 keys ------------------------------------------------------------


async def memory_per_thousand_keys() -> list[dict[str, object]]:
    sim = BingXSimulator(limits=UNLIMITED)
    size = 20 if SMOKE else 1000
    keys = [sim.add_key(uid=1 + n // 5) for n in range(size)]  # UIDs start at 1
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", str(k.uid)) for n, k in enumerate(keys)
    ]
    leave_out = [tracemalloc.Filter(False, "*/bingx_assets/testing/*")]
    gc.collect()
    tracemalloc.start()
    async with AssetsPool(
        credentials,
        http_client=sim.http_client(),
        limiter=RateLimiter(UNLIMITED),
        verify_uids=False,
    ) as pool:
        results = await pool.gather()
        held = sum(
            s.size
            for s in tracemalloc.take_snapshot().filter_traces(leave_out).statistics("filename")
        )
    tracemalloc.stop()
    assert all(r.ok for r in results)
    gc.collect()
    tracemalloc.start()
    exchanges = [
        ccxt.bingx({"apiKey": k.api_key, "secret": k.secret_key})
        for k in keys[: 2 if SMOKE else 100]
    ]
    ccxt_held = tracemalloc.get_traced_memory()[0] * 1000 / len(exchanges)  # scaled to 1,000
    tracemalloc.stop()
    for exchange in exchanges:
        await exchange.close()
    ours_name = "bingx-assets (pool of 1,000 keys, after reading all)"
    ccxt_name = f"ccxt (1,000 bingx instances, before any call; {len(exchanges)} measured)"
    return [
        {"client": ours_name, "MiB": round(held * 1000 / size / 2**20, 1)},
        {"client": ccxt_name, "MiB": round(ccxt_held / 2**20, 1)},
    ]


async def main() -> None:
    if sys.argv[1:] == ["import"]:
        report("peers_import", import_times())
        return
    rows = await cpu_and_wall()
    if ONLY:  # some clients only: printed, never over the committed results
        for row in rows:
            print(row)
        return
    report("peers_cpu", rows)
    if "cpu" in sys.argv[1:]:  # only the CPU table: `python benchmarks/bench_peers.py cpu`
        return
    report("peers_import", import_times())
    report("peers_utilisation", await utilisation())
    report("peers_memory", await memory_per_thousand_keys())


if __name__ == "__main__":
    asyncio.run(main())
