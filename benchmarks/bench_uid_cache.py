"""The UID cache: a fleet's first balances in a new process, cold against warm.

N keys (default 1,000, each its own UID: sub-accounts) in a keys file without `uid`,
read by `AssetsPool` in a fresh process against the simulator served on loopback, twice
with one cache directory: the first process finds the cache empty and looks every UID up
(5 lookups/s in all), the second finds them remembered. Real time, 20 ms of jitter.
Reported: seconds from the process's start until its first balance and until every key
has one, the lookups each run sent, and the cold/warm ratio.

    python benchmarks/bench_uid_cache.py [KEYS]      # or: nox -s bench
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
from bingx_assets.testing import BingXSimulator, SimulatorServer

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from bingx_assets import AssetsPool, Credentials

    async def main() -> None:
        started = float(sys.argv[3])
        done = []
        async with AssetsPool(Credentials.from_file(sys.argv[1]), base_url=sys.argv[2]) as pool:
            async for result in pool.stream():
                assert result.ok, result.error
                done.append(time.time() - started)
        print(json.dumps({"first_s": done[0], "all_s": done[-1], "keys": len(done)}))

    asyncio.run(main())
    """
)


async def one_process(keys_file: Path, url: str, cache_home: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cache_home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(keys_file), url, repr(time.time()),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0
    result: dict[str, float] = json.loads(out)
    return result


async def main(count: int) -> None:
    sim = BingXSimulator(jitter=0.02, seed=14)
    keys = [sim.add_key(uid=500_000 + n) for n in range(count)]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        keys_file, cache_home = Path(scratch) / "keys.toml", Path(scratch) / "cache"
        keys_file.write_text(
            "".join(
                f'[[keys]]\nlabel = "k{n}"\napi_key = "{k.api_key}"\n'
                f'secret_key = "{k.secret_key}"\n\n'
                for n, k in enumerate(keys)
            )
        )
        keys_file.chmod(0o600)
        async with SimulatorServer(sim) as server:
            for run in ("cold", "warm"):
                sent = sum(r.path == UID_PATH for r in sim.requests)
                timing = await one_process(keys_file, server.url, cache_home)
                rows.append(
                    {
                        "cache": run,
                        "keys": timing["keys"],
                        "first_balance_s": round(timing["first_s"], 2),
                        "all_first_balances_s": round(timing["all_s"], 2),
                        "lookups": sum(r.path == UID_PATH for r in sim.requests) - sent,
                        "rejections": len(sim.rejections),
                    }
                )
                await asyncio.sleep(11)  # the IP's 10 s window of the last run passes
    cold, warm = (float(r["all_first_balances_s"]) for r in rows)  # type: ignore[arg-type]
    for row in rows:
        row["cold_over_warm"] = round(cold / warm, 2) if row["cache"] == "warm" else None
    report("uid_cache", rows)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
