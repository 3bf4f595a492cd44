"""Instructions per call under callgrind: a measure of CPU work that does not move with
the shared machine's load, for telling a real cut from noise.

The simulator runs in its own process (not under valgrind); each client runs twice
under `valgrind --tool=callgrind`, for `CALLS` and for 4 x `CALLS` calls after the
same warm-up, and the difference over the extra calls is its instructions per call.
Clients: the bare signed aiohttp GET (the floor), ours on that session with a limiter
in memory, and ours limited through the host store. Slow (valgrind runs Python some
fifty times slower): minutes, not part of `nox -s bench`.

    python benchmarks/_instructions.py [in_flight]       # default 1
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

CALLS = 100
MODES = ("bare", "memory", "host store")


async def run_client(
    mode: str, calls: int, in_flight: int, url: str, keys: list[dict[str, str]]
) -> None:
    """One client's calls against the simulator at `url`."""
    import aiohttp
    import msgspec
    import yarl
    from bench_peers import UNLIMITED, our_client, per_call  # type: ignore[import-not-found]

    from bingx_assets import HostBackend, RateLimiter
    from bingx_assets._constants import API_KEY_HEADER, ASSET_OVERVIEW_PATH
    from bingx_assets._signing import signed_query

    session = aiohttp.ClientSession()
    scratch = tempfile.mkdtemp()

    async def bare(i: int) -> object:
        key = keys[i % len(keys)]
        params = {"timestamp": int(time.time() * 1000), "recvWindow": 5000}
        query = signed_query(params, key["secret_key"].encode())
        address = yarl.URL(f"{url}{ASSET_OVERVIEW_PATH}?{query}", encoded=True)
        async with session.get(address, headers={API_KEY_HEADER: key["api_key"]}) as answer:
            return msgspec.json.decode(await answer.read())

    backend = HostBackend(Path(scratch) / "limits.sqlite3") if mode == "host store" else None
    clients = [our_client(url, k, RateLimiter(UNLIMITED, backend=backend), session) for k in keys]

    async def ours(i: int) -> object:
        return await clients[i % len(clients)].asset_overview()

    call = bare if mode == "bare" else ours
    await per_call(call, CALLS, in_flight)  # warm: connections, server time, imports
    await per_call(call, calls, in_flight)
    await session.close()


def instructions(mode: str, calls: int, in_flight: int, env: dict[str, str]) -> int:
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    argv += [__file__, "--client", mode, str(calls), str(in_flight)]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    line = next(x for x in run.stderr.splitlines() if "I   refs" in x)
    return int(line.split()[-1].replace(",", ""))


async def main(in_flight: int, here: Path) -> None:
    from bench_peers import simulator

    path = os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])
    async with simulator(50, 50, unlimited=True) as (url, keys):
        with tempfile.TemporaryDirectory() as folder:
            keys_file = Path(folder) / "keys.toml"
            keys_file.write_text(
                "".join(
                    f'[[keys]]\napi_key = "{k["api_key"]}"\nsecret_key = "{k["secret_key"]}"\n'
                    f'uid = "{k["uid"]}"\n'
                    for k in keys
                )
            )
            env = {**os.environ, "PYTHONPATH": path, "SIM_URL": url, "SIM_KEYS": str(keys_file)}
            for mode in MODES:
                small, large = await asyncio.gather(
                    *(
                        asyncio.to_thread(instructions, mode, calls, in_flight, env)
                        for calls in (CALLS, 4 * CALLS)
                    )
                )
                per_call = (large - small) / (3 * CALLS)
                print(f"{mode:12} {in_flight:3} in flight  {per_call:10,.0f} instructions a call")


if __name__ == "__main__":
    HERE = Path(__file__).resolve().parent
    sys.path.insert(0, str(HERE))
    if sys.argv[1:2] == ["--client"]:
        mode, calls, in_flight = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        keys = tomllib.loads(Path(os.environ["SIM_KEYS"]).read_text())["keys"]
        asyncio.run(run_client(mode, calls, in_flight, os.environ["SIM_URL"], keys))
    else:
        asyncio.run(main(int(sys.argv[1]) if sys.argv[1:] else 1, HERE))
