"""Fixtures: a simulator and a limiter on one virtual clock (looptime fast-forwards it)."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import httpx
import pytest

from bingx_assets import AssetsClient, RateLimiter
from bingx_assets._cli import main
from bingx_assets._constants import DEFAULT_BASE_URL
from bingx_assets._transports import HttpxTransport, _http_clients
from bingx_assets._uid_cache import _open as _open_uid_caches
from bingx_assets._uid_cache import default_uid_cache_path, open_uid_cache
from bingx_assets.testing import (
    BingXSimulator,
    LocalRedisCluster,
    LoopClock,
    ReceivedRequest,
    SimKey,
    SimulatorServer,
    redis_cluster,
    redis_server,
)

# Loopback only, for the whole suite: this process and every process a test starts
# (through PYTHONPATH) may connect to and resolve loopback only; any other attempt is
# refused before a packet leaves and recorded, and a recorded attempt fails the run
# (`pytest_sessionfinish`), even where the code under test swallowed the error.
_LOOPBACK_ONLY = os.path.join(os.path.dirname(__file__), "loopback_only")
if "LOOPBACK_ONLY_REFUSALS" not in os.environ:
    _descriptor, os.environ["LOOPBACK_ONLY_REFUSALS"] = tempfile.mkstemp(
        prefix="loopback-only-refusals-"
    )
    os.close(_descriptor)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_LOOPBACK_ONLY, *filter(None, [os.environ.get("PYTHONPATH")])]
)
_spec = importlib.util.spec_from_file_location(
    "_loopback_only", os.path.join(_LOOPBACK_ONLY, "sitecustomize.py")
)
assert _spec is not None and _spec.loader is not None
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))

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


def verified_earlier(
    api_key: str, uid: int | str, uid_cache: Any = True, *, base_url: str = DEFAULT_BASE_URL
) -> Path:
    """As if a lookup on this machine had found `uid` for `api_key` before the test: the
    test's own UID cache (`uid_cache`, the test's default one for `base_url` unless
    named) remembers the pair, so a client given that uid sends no lookup. Returns the
    cache's path: a client aimed at the in-process simulator uses no cache unless it is
    named (`uid_cache=`)."""
    path = default_uid_cache_path(base_url) if uid_cache is True else Path(uid_cache)
    cache, canonical = open_uid_cache(path), str(int(str(uid).strip()))
    cache.put(api_key, canonical)
    assert cache.get(api_key) == canonical
    return path


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
        """A `uid` given here counts as verified on this machine before the test (its
        cache says so), so that the requests a test counts are the ones it is about;
        tests of the verification itself build their clients without this."""
        options.setdefault("http_client", http)
        options.setdefault("limiter", limiter)
        if options.get("uid") is not None:
            # Named, not the default: a simulated client keeps no default cache.
            options.setdefault("uid_cache", default_uid_cache_path())
            verified_earlier(key.api_key, options["uid"], options["uid_cache"])
        return AssetsClient(key.api_key, key.secret_key, **options)

    yield make
    await http.aclose()


@pytest.fixture
async def respx_http() -> AsyncIterator[httpx.AsyncClient]:
    """An `httpx.AsyncClient` to hand to clients whose answers respx gives: respx answers
    for httpx only, and a client's own transport is aiohttp."""
    async with httpx.AsyncClient() as http:
        yield http


@contextmanager
def served_in_a_thread(sim: BingXSimulator) -> Iterator[str]:
    """`sim` over real HTTP on loopback, from an event loop of its own in another thread,
    for tests that run one `asyncio.run` after another: its URL."""
    server_loop = asyncio.new_event_loop()
    server = SimulatorServer(sim)
    server_loop.run_until_complete(server.start())
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), server_loop).result(timeout=10)
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join(timeout=10)
        server_loop.close()


def own_transport_on(sim: BingXSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client's own transport talks to `sim`, in this process, in place of the
    aiohttp session it would open: the command line's real (non `--simulate`) path, at
    BingX's own address, with no network."""

    def open_session(limits: httpx.Limits, egress: object = None) -> HttpxTransport:
        return HttpxTransport(httpx.AsyncClient(transport=sim.transport(), limits=limits))

    monkeypatch.setattr(_http_clients, "open_session", open_session)


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
    fault in its place tells the client nothing), as it left the server (no latency: the
    client has it then; a `Fault.slow` answers late)."""
    periods: dict[tuple[int | None, int], list[ReceivedRequest]] = defaultdict(list)
    for r in requests:
        if r.disabled_until is not None:
            periods[(r.uid, r.disabled_until)].append(r)
    for met in periods.values():
        told = [r.answered for r in met if not r.injected and r.answered is not None]
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


# -- secrets in errors -------------------------------------------------------------------

_REQUEST_TYPES = (httpx.Request, httpx.Response, aiohttp.ClientResponse, aiohttp.RequestInfo)


def assert_carries_no_secret(error: BaseException, secrets: list[str]) -> None:
    """Through the whole chain (`__context__`, `__cause__`): no secret in any message,
    repr or attribute, no request or response object among the attributes, and none in
    the frames the tracebacks keep, as a string (a signed URL), bytes (an answer that
    echoes the request), a tuple or list (the secrets to mask), a mapping (headers) or a
    library object: error trackers print frames' locals. (Frames still hold the client
    itself, which must hold its keys to sign, and whose repr masks them.)"""
    stack: list[BaseException | None] = [error]
    seen: set[int] = set()
    while stack:
        exc = stack.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        shown = [str(exc), repr(exc), *(repr(v) for v in vars(exc).values())]
        for value in vars(exc).values():
            assert not isinstance(value, _REQUEST_TYPES), (type(exc), value)
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            for name, value in tb.tb_frame.f_locals.items():
                assert not isinstance(value, _REQUEST_TYPES), (tb.tb_frame, name)
                if isinstance(value, str | bytes | bytearray | tuple | list | Mapping):
                    shown.append(repr(value))
            tb = tb.tb_next
        for text in shown:
            for secret in secrets:
                assert secret not in text, (type(exc).__name__, text[:300])
        stack += [exc.__context__, exc.__cause__]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    refused = Path(os.environ["LOOPBACK_ONLY_REFUSALS"]).read_text(encoding="utf-8")
    if refused:
        sys.stderr.write(f"\nloopback only: the suite tried to reach\n{refused}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
