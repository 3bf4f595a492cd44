"""The host store (SQLite, the default): its cost per call against the memory backend,
the longest event-loop stall while 4 processes share it, and utilisation when K
`balances` runs share one UID through it.

- cost: acquire + settle with limits so high that nothing waits, medians of batches;
  the goal is at most 100 us added per call.
- stall: K processes hammer one store, 4 callers each; in each, a heartbeat task on
  the event loop records the longest gap between its turns (what another task waited
  for the loop: one acquire or settle, with any wait for another process's lock spent
  asleep on the loop). On a busy machine the longest gap also holds the times the
  operating system ran another process instead: the p99 is the store's own.
- runs at once: K `bingx-assets balances` processes against `simulate`-style keys of
  one UID on a loopback simulator; the span from the first request's arrival to the
  last over the physical minimum at 5 per second, and the refusals (goal: 0).

    python benchmarks/bench_host_store.py            # full sizes, about a minute
    python benchmarks/bench_host_store.py --smoke    # tiny sizes, a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import tomlkit
from _report import report  # type: ignore[import-not-found]

from bingx_assets import HostBackend, Rate, RateLimiter, RateLimits
from bingx_assets.testing import BingXSimulator, SimulatorServer

# Limits so high that nothing waits, periods so short that a window holds a few slots
# (as BingX's limits keep it): what is left is each backend's cost per call.
UNLIMITED = RateLimits(
    per_uid=Rate(10**9, 0.01), per_ip_endpoint=Rate(10**9, 0.01), per_ip_group=Rate(10**9, 0.01)
)


async def per_call_us(limiter: RateLimiter, batch: int, repeats: int) -> list[float]:
    scope = limiter.scope("bench", "/x")
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batch):
            permit = await limiter.acquire(scope, max_wait=1)
            await permit.settle(answered=True, succeeded=True)
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return samples


async def cost(directory: Path, batch: int, repeats: int) -> list[dict[str, object]]:
    memory = await per_call_us(RateLimiter(UNLIMITED), batch, repeats)
    store = HostBackend(directory / "cost.sqlite3")
    host = await per_call_us(RateLimiter(UNLIMITED, backend=store), batch, repeats)
    await store.aclose()
    base = statistics.median(memory)
    return [
        {
            "backend": name,
            "median_us_per_call": round(statistics.median(samples), 1),
            "min_us": round(min(samples), 1),
            "max_us": round(max(samples), 1),
            "added_us": round(statistics.median(samples) - base, 1),
            "ratio_to_memory": round(statistics.median(samples) / base, 2),
        }
        for name, samples in (("memory", memory), ("host store (SQLite)", host))
    ]


async def stall_worker(path: str, calls: int) -> None:
    """One of the processes sharing `path`: prints its longest and its p99 stall (ms)."""
    limiter = RateLimiter(UNLIMITED, backend=HostBackend(path))
    scope = limiter.scope("bench", "/x")
    gaps: list[float] = []
    done = False

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def caller() -> None:
        for _ in range(calls):
            permit = await limiter.acquire(scope, max_wait=10)
            await asyncio.sleep(0)  # the request in flight: the loop runs others meanwhile
            await permit.settle(answered=True, succeeded=True)
            await asyncio.sleep(0)

    beat = asyncio.create_task(heartbeat())
    await asyncio.gather(*(caller() for _ in range(4)))
    done = True
    await beat
    gaps.sort()
    print(f"{gaps[-1] * 1000:.3f} {gaps[int(len(gaps) * 0.99)] * 1000:.3f} {len(gaps)}")
    await limiter.aclose()


async def stall(directory: Path, processes: int, calls: int) -> dict[str, object]:
    path = str(directory / f"stall-{processes}.sqlite3")
    started = time.perf_counter()
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--stall-worker",
            path,
            str(calls),
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    outputs = [(await w.communicate())[0].decode().split() for w in workers]
    elapsed = time.perf_counter() - started
    longest = [float(o[0]) for o in outputs]
    p99 = [float(o[1]) for o in outputs]
    return {
        "processes": processes,
        "calls": processes * calls * 4,
        "loop_turns": sum(int(o[2]) for o in outputs),
        "longest_stall_ms": round(max(longest), 3),
        "p99_stall_ms": round(max(p99), 3),
        "calls_per_s": round(processes * calls * 4 / elapsed),
    }


def write_keys(path: Path, sim: BingXSimulator, count: int) -> None:
    document = tomlkit.document()
    keys = tomlkit.aot()
    for n in range(count):
        key = sim.add_key(uid=700)
        keys.append(
            tomlkit.item({"label": f"k{n}", "api_key": key.api_key, "secret_key": key.secret_key})
        )
    document["keys"] = keys
    path.write_text(tomlkit.dumps(document))
    path.chmod(0o600)


async def runs_at_once(directory: Path, runs: int, keys: int) -> dict[str, object]:
    sim = BingXSimulator(jitter=0.005)
    keys_file = directory / f"keys-{runs}.toml"
    write_keys(keys_file, sim, keys)
    environment = {**os.environ, "XDG_CACHE_HOME": str(directory / f"cache-{runs}")}
    async with SimulatorServer(sim) as server:
        started = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bingx_assets",
                "balances",
                "--keys",
                str(keys_file),
                "--base-url",
                server.url,
                "--json",
                stdout=asyncio.subprocess.DEVNULL,
                env=environment,
            )
            for _ in range(runs)
        ]
        codes = [await run.wait() for run in started]
    served = sorted(r.arrived for r in sim.requests if r.path.endswith("allAccountBalance"))
    minimum = (len(served) - 1) // 5 * 1.0
    span = served[-1] - served[0]
    return {
        "runs": runs,
        "requests": len(served),
        "span_s": round(span, 3),
        "minimum_s": minimum,
        "ratio": round(span / minimum, 3) if minimum else None,
        "refusals": len(sim.rejections),
        "peak_per_1s": sim.peak(uid=700),
        "all_exit_0": all(code == 0 for code in codes),
    }


async def main(smoke: bool) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        batch, repeats = (50, 3) if smoke else (1000, 7)
        report("host_store_cost", await cost(directory, batch, repeats))
        calls = 20 if smoke else 500
        # The smoke mode runs each part once with processes side by side, not at every size.
        processes = (2,) if smoke else (1, 4)
        report("host_store_stall", [await stall(directory, k, calls) for k in processes])
        keys, runs = (3, (2,)) if smoke else (10, (1, 2, 4))
        report("host_store_runs", [await runs_at_once(directory, k, keys) for k in runs])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stall-worker"]:
        asyncio.run(stall_worker(sys.argv[2], int(sys.argv[3])))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
        asyncio.run(main(parser.parse_args().smoke))
