"""Fixtures: a simulator and a limiter on one virtual clock (looptime fast-forwards it)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from bingx_assets import AssetsClient, RateLimiter
from bingx_assets.testing import BingXSimulator, LoopClock, SimKey

MakeClient = Callable[..., AssetsClient]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    # looptime's hook asks the loop policy for a loop even in sync tests, which makes
    # one that nobody closes; with warnings as errors that fails a later test. Give
    # sync tests a loop of their own and close it.
    if pyfuncitem.get_closest_marker("asyncio") is not None:
        return (yield)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return (yield)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def clock() -> LoopClock:
    return LoopClock()


@pytest.fixture
def sim(clock: LoopClock) -> BingXSimulator:
    return BingXSimulator(clock=clock)


@pytest.fixture
def limiter(clock: LoopClock) -> RateLimiter:
    return RateLimiter(clock=clock)


@pytest.fixture
def key(sim: BingXSimulator) -> SimKey:
    return sim.add_key(uid=1001)


@pytest.fixture
async def make_client(sim: BingXSimulator, limiter: RateLimiter) -> AsyncIterator[MakeClient]:
    """Clients on the simulator, sharing the test's limiter; all closed at the end."""
    http = sim.http_client()

    def make(key: SimKey, **options: Any) -> AssetsClient:
        options.setdefault("http_client", http)
        options.setdefault("limiter", limiter)
        return AssetsClient(key.api_key, key.secret_key, **options)

    yield make
    await http.aclose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a unix socket of its own, for the whole session."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server")
    folder = tmp_path_factory.mktemp("redis")
    socket = folder / "redis.sock"
    server = subprocess.Popen(
        [executable, "--port", "0", "--unixsocket", str(socket), "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not socket.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"redis-server did not start (exit code {server.poll()})")
        time.sleep(0.02)
    yield f"unix://{socket}"
    server.terminate()
    server.wait(timeout=10)
