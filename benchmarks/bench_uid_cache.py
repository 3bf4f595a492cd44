"""The UID cache: a fleet's first balances in a new process, uids unchecked against cached,
and what one write to the cache costs as it grows.

N keys (default 1,000, each its own UID: sub-accounts) in a keys file with every `uid`
written by hand (and right), read by `AssetsPool` in a fresh process against the
simulator served on loopback, twice with one cache directory. The first process has
verified nothing on this machine: every uid is checked through the UID lookup, at 5/s in
all, before its key's first balance. The second finds every pair in the cache and sends
no lookup; it is bounded by the IP's 300 requests per 10 s instead (so 300 balances come
at once and the rest at 30/s). Real time, 20 ms of jitter. Reported: seconds from the
process's start until its first balance, its 300th (the IP window's first fill) and its
last, the lookups each sent, rejections, and the unchecked/cached ratio.

Then the cost of one `UidCache.put` (one new key) in a cache of 100 entries against one
of 50,000 (the JSON file it replaced rewrote itself whole: 0.4 ms against 24 ms).

    python benchmarks/bench_uid_cache.py [KEYS]      # or: nox -s bench
    python benchmarks/bench_uid_cache.py --smoke     # a few keys, seconds: run by the tests
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _report import report  # type: ignore[import-not-found]

from bingx_assets._constants import UID_PATH
from bingx_assets._uid_cache import UidCache, key_id
from bingx_assets.testing import BingXSimulator, SimulatorServer

ROOT = Path(__file__).resolve().parent.parent
IP_WINDOW = 300  # BingX's requests per 10 s per IP for this endpoint

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from bingx_assets import AssetsPool, Credentials

    async def main() -> None:
        started, window = float(sys.argv[3]), int(sys.argv[4])
        done = []
        async with AssetsPool(Credentials.from_file(sys.argv[1]), base_url=sys.argv[2]) as pool:
            async for result in pool.stream():
                assert result.ok, result.error
                done.append(time.time() - started)
        print(json.dumps({"first_s": done[0], "window_s": done[min(len(done), window) - 1],
                          "all_s": done[-1], "keys": len(done)}))

    asyncio.run(main())
    """
)


async def one_process(keys_file: Path, url: str, cache_home: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cache_home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(keys_file), url, repr(time.time()), str(IP_WINDOW),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0
    result: dict[str, float] = json.loads(out)
    return result


async def first_balances(count: int, pause: float) -> list[dict[str, object]]:
    sim = BingXSimulator(jitter=0.02, seed=14)
    keys = [sim.add_key(uid=500_000 + n) for n in range(count)]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        keys_file, cache_home = Path(scratch) / "keys.toml", Path(scratch) / "cache"
        keys_file.write_text(
            "".join(
                f'[[keys]]\nlabel = "k{n}"\napi_key = "{k.api_key}"\n'
                f'secret_key = "{k.secret_key}"\nuid = {k.uid}\n\n'
                for n, k in enumerate(keys)
            )
        )
        keys_file.chmod(0o600)
        async with SimulatorServer(sim) as server:
            for run in ("unchecked", "cached"):
                sent = sum(r.path == UID_PATH for r in sim.requests)
                timing = await one_process(keys_file, server.url, cache_home)
                rows.append(
                    {
                        "uids": f"by hand, {run}",
                        "keys": timing["keys"],
                        "lookups": sum(r.path == UID_PATH for r in sim.requests) - sent,
                        "first_balance_s": round(timing["first_s"], 2),
                        f"balance_{min(count, IP_WINDOW)}_s": round(timing["window_s"], 2),
                        "all_balances_s": round(timing["all_s"], 2),
                        "rejections": len(sim.rejections),
                    }
                )
                await asyncio.sleep(pause)  # the IP's 10 s window of the last run passes
    unchecked, cached = (float(r["all_balances_s"]) for r in rows)  # type: ignore[arg-type]
    for row in rows:
        row["unchecked_over_cached"] = round(unchecked / cached, 2) if row is rows[1] else None
    return rows


def put_cost(sizes: tuple[int, ...], repeats: int) -> list[dict[str, object]]:
    """Seconds per put of a new key into a cache already holding `size` entries."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            cache = UidCache(Path(scratch) / f"uids-{size}.sqlite3")
            cache.put("seed" + "x" * 40, "1")  # creates the database
            connection = cache._writer
            assert connection is not None
            with connection:
                connection.execute("BEGIN")
                connection.executemany(
                    "INSERT INTO uids VALUES (?, ?)",
                    ((key_id(f"fill-{n}"), str(n + 1)) for n in range(size)),
                )
            # The fill's pages leave the WAL first: the puts then pay only for their own
            # (SQLite folds the WAL back every 1,000 pages, about one page per put).
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            start = time.perf_counter()
            for n in range(repeats):
                cache.put(f"new-{n}-" + "x" * 40, "7")
            rows.append(
                {
                    "entries": size,
                    "put_us": round((time.perf_counter() - start) / repeats * 1e6, 1),
                }
            )
            cache.close()
    for row in rows:
        row["over_smallest"] = round(float(row["put_us"]) / float(rows[0]["put_us"]), 2)  # type: ignore[arg-type]
    return rows


async def main(count: int, smoke: bool) -> None:
    # A few keys of as many UIDs stay far inside every window: no need to wait them out.
    report("uid_cache", await first_balances(count, pause=0.0 if smoke else 11.0))
    report(
        "uid_cache_put",
        put_cost((100, 1_000) if smoke else (100, 50_000), repeats=200 if smoke else 2_000),
    )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    smoke = "--smoke" in arguments
    numbers = [int(a) for a in arguments if a != "--smoke"]
    asyncio.run(main(numbers[0] if numbers else 5 if smoke else 1000, smoke))
