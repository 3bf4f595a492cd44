"""Fixtures: a simulator and a limiter on one virtual clock (looptime fast-forwards it)."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bingx_assets import AssetsClient, RateLimiter
from bingx_assets._cli import main
from bingx_assets._uid_cache import _open as _open_uid_caches
from bingx_assets.testing import (
    BingXSimulator,
    LocalRedisCluster,
    LoopClock,
    ReceivedRequest,
    SimKey,
    redis_cluster,
    redis_server,
)

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


@pytest.fixture(scope="session", autouse=True)
def _user_cache_in_a_temporary_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """Clients remember UIDs in the user's cache directory by default: never the real
    one during tests (subprocesses inherit this too)."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("xdg-cache")
        patch.setenv("XDG_CACHE_HOME", str(root))
        yield root


_tests = itertools.count()


@pytest.fixture(autouse=True)
def _a_user_cache_for_each_test(_user_cache_in_a_temporary_directory: Path) -> Iterator[None]:
    """Seeded simulators make the same keys in every test, with other UIDs: one test's
    remembered UIDs must not be another's. (Created only if a test writes to it.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "XDG_CACHE_HOME", str(_user_cache_in_a_temporary_directory / str(next(_tests)))
        )
        # A BINGX_BASE_URL in the shell running the tests must not aim them anywhere.
        patch.delenv("BINGX_BASE_URL", raising=False)
        _open_uid_caches.clear()
        yield


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
def redis_url() -> Iterator[str]:
    """A real redis-server for the whole session. Missing, it fails the tests: never a skip."""
    try:
        with redis_server() as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalRedisCluster]:
    """A real three-master Redis Cluster for the whole session (about 2 s to form).
    Missing redis-server or redis-cli fails the tests: never a skip."""
    try:
        with redis_cluster() as started:
            yield started
    except RuntimeError as exc:
        pytest.fail(str(exc))


def assert_nothing_sent_into_a_known_disabled_period(requests: list[ReceivedRequest]) -> None:
    """A request may meet a disabled period only if it left before the client learnt of
    it: from the first 100410 of that period the simulator itself answered (an injected
    fault in its place tells the client nothing)."""
    periods: dict[tuple[int | None, int], list[ReceivedRequest]] = defaultdict(list)
    for r in requests:
        if r.disabled_until is not None:
            periods[(r.uid, r.disabled_until)].append(r)
    for met in periods.values():
        told = [r.arrived for r in met if not r.injected]  # no latency: answered on arrival
        if told:
            assert all(r.sent <= min(told) for r in met), met


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are as wide as `COLUMNS` (80 when unset): wide enough here that a row is
    one line (`test_a_table_fits_80_columns` covers narrow)."""
    monkeypatch.setenv("COLUMNS", "300")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`bingx-assets ARGV` in this process: its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_table(out: str) -> list[list[str]]:
    """A printed table's rows as words, without the rules around the body."""
    return [
        line.split() for line in out.splitlines() if line.strip() and set(line.strip()) != {"─"}
    ]
