"""The client's behaviours on both transports, httpx and a caller's aiohttp session, over
real HTTP on loopback (`SimulatorServer`), in real time: each test takes milliseconds."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from tenacity import wait_fixed

from bingx_assets import (
    APIConnectionError,
    APITimeoutError,
    AssetsClient,
    AssetsPool,
    AuthenticationError,
    ConfigurationError,
    Credentials,
    DecodeError,
    Rate,
    RateLimiter,
    RateLimits,
    ServerBusyError,
    _client,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH
from bingx_assets._transports import AiohttpTransport, transport_for
from bingx_assets.testing import BingXSimulator, Fault, SimKey, SimulatorServer

from .conftest import served_in_a_thread

pytestmark = pytest.mark.looptime(False)  # real sockets want the real clock

UNLIMITED = RateLimits(Rate(10**9, 1.0), Rate(10**9, 10.0), Rate(10**9, 10.0))
SIGNATURE = re.compile(r"signature=([0-9a-f]{64})")
HttpClient = httpx.AsyncClient | aiohttp.ClientSession
MakeClient = Callable[..., AssetsClient]


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Busy-server backoff is half a second and more: too long for real time. A few ms
    still, so that each attempt's timestamp (and so its signature) differs."""
    monkeypatch.setattr(_client, "_busy_backoff", wait_fixed(0.003))


@pytest.fixture
async def server() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(BingXSimulator(limits=UNLIMITED)) as server:
        yield server


@pytest.fixture
def sim(server: SimulatorServer) -> BingXSimulator:
    return server.simulator


@pytest.fixture
def key(sim: BingXSimulator) -> SimKey:
    return sim.add_key(uid=1001)


@pytest.fixture(params=["httpx", "aiohttp"])
def transport(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def open_client(transport: str) -> HttpClient:
    return httpx.AsyncClient() if transport == "httpx" else aiohttp.ClientSession()


async def close_client(http: HttpClient) -> None:
    await (http.aclose() if isinstance(http, httpx.AsyncClient) else http.close())


def is_closed(http: HttpClient) -> bool:
    return http.is_closed if isinstance(http, httpx.AsyncClient) else http.closed


@pytest.fixture
async def http_client(transport: str) -> AsyncIterator[HttpClient]:
    http = open_client(transport)
    yield http
    await close_client(http)


@pytest.fixture
def make_client(server: SimulatorServer, http_client: HttpClient) -> MakeClient:
    def make(key: SimKey, **options: Any) -> AssetsClient:
        options.setdefault("uid", key.uid)
        options.setdefault("max_retries", 2)
        return AssetsClient(
            key.api_key,
            key.secret_key,
            base_url=server.url,
            http_client=http_client,
            limiter=RateLimiter(UNLIMITED),
            **options,
        )

    return make


def overview_requests(sim: BingXSimulator) -> list[str]:
    return [r.query for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]


@pytest.mark.parametrize("shape", ["list", "page", "string codes"])
async def test_every_envelope_shape_decodes(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient, shape: str
) -> None:
    sim.page_envelope, sim.string_codes = shape == "page", shape == "string codes"
    overview = await make_client(key).asset_overview()
    assert overview.total == sum(Decimal(v) for v in key.balances.values())
    assert overview.server_time_ms is not None
    assert len(overview_requests(sim)) == 1


async def test_answer_headers_are_case_insensitive(
    server: SimulatorServer, http_client: HttpClient
) -> None:
    answer = await transport_for(http_client).get(
        server.url + SERVER_TIME_PATH, {}, httpx.Timeout(5.0)
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == answer.headers["content-type"] == "application/json"
    assert b"serverTime" in answer.content


async def test_a_reset_is_a_connection_error(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient
) -> None:
    sim.inject(Fault.reset())  # one: neither library sends the request again on its own
    with pytest.raises(APIConnectionError) as caught:
        await make_client(key, max_retries=0).asset_overview()
    assert not isinstance(caught.value, APITimeoutError)
    assert str(caught.value).startswith(f"GET {ASSET_OVERVIEW_PATH}: ")
    assert "signature" not in str(caught.value)


async def test_no_answer_in_time_is_a_timeout_error(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient
) -> None:
    sim.inject(Fault.slow(0.15))
    with pytest.raises(APITimeoutError) as caught:
        await make_client(key, max_retries=0, timeout=0.05).asset_overview()
    assert "no answer in time" in str(caught.value)
    assert "signature" not in str(caught.value)


@pytest.mark.parametrize("body", [b'{"code":0,"da', b"<html>maintenance</html>", b""])
async def test_a_malformed_200_is_retried_and_then_a_decode_error(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient, body: bytes
) -> None:
    """A read is safe to repeat: a body cut off or garbled on the way is retried like a
    lost connection, and stays a DecodeError when every attempt gets one."""
    sim.inject(Fault.body(body), Fault.body(body))
    with pytest.raises(DecodeError):
        await make_client(key, max_retries=1).asset_overview()
    assert len(overview_requests(sim)) == 2


async def test_server_errors_are_retried_each_attempt_signed_afresh(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient
) -> None:
    sim.inject(Fault.html(502), Fault.http(503))
    client = make_client(key)
    assert (await client.asset_overview()).total > 0
    queries = overview_requests(sim)
    assert len(queries) == 3
    assert len({SIGNATURE.search(q).group(1) for q in queries}) == 3  # type: ignore[union-attr]
    assert client.limiter.stats.retries == 2


async def test_server_errors_that_persist_raise_server_busy(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient
) -> None:
    sim.inject(*[Fault.http(503)] * 3)
    with pytest.raises(ServerBusyError) as caught:
        await make_client(key).asset_overview()
    assert caught.value.status_code == 503


async def test_429_with_retry_after_pauses_the_uid_for_that_long(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient
) -> None:
    sim.inject(Fault.http(429, retry_after=0.05))
    client = make_client(key)
    assert (await client.asset_overview()).total > 0
    first, second = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert first.status == 429
    assert second.arrived - first.arrived >= 0.05  # Retry-After, read from the answer
    assert client.limiter.stats.rejections == 1


async def test_secrets_and_signatures_stay_out_of_logs_and_errors(
    sim: BingXSimulator,
    key: SimKey,
    make_client: MakeClient,
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level: httpx, httpcore, aiohttp
    await make_client(key).asset_overview()
    errors: list[Exception] = []
    wrong = SimKey(key.api_key, "x" * 64, key.uid, {})
    for faults, client in [
        ([], make_client(wrong)),
        ([Fault.reset()], make_client(key, max_retries=0)),
        ([Fault.slow(0.15)], make_client(key, max_retries=0, timeout=0.05)),
    ]:
        sim.inject(*faults)
        try:
            await client.asset_overview()
        except (AuthenticationError, APIConnectionError) as exc:
            errors.append(exc)
    assert [type(e) for e in errors] == [AuthenticationError, APIConnectionError, APITimeoutError]
    text = caplog.text + "\n".join(map(repr, errors)) + "\n".join(map(str, errors))
    signatures = {SIGNATURE.search(q).group(1) for q in overview_requests(sim)}  # type: ignore[union-attr]
    assert len(signatures) >= 2
    for secret in [key.secret_key, *signatures]:
        assert secret not in text
    if transport == "httpx":
        assert "signature=***" in caplog.text  # httpx logged its request lines, redacted


async def test_an_injected_client_is_used_and_never_closed(
    server: SimulatorServer, key: SimKey, http_client: HttpClient
) -> None:
    limiter = RateLimiter(UNLIMITED)
    options = {"base_url": server.url, "http_client": http_client, "limiter": limiter}
    async with AssetsClient(key.api_key, key.secret_key, uid=key.uid, **options) as client:
        await client.asset_overview()
    credentials = [Credentials(key.api_key, key.secret_key, "k", str(key.uid))]
    async with AssetsPool(credentials, **options) as pool:
        (result,) = await pool.gather()
    assert result.ok
    assert not is_closed(http_client)
    assert len(overview_requests(server.simulator)) == 2


async def test_a_pool_reads_many_keys_through_one_session(
    server: SimulatorServer, http_client: HttpClient
) -> None:
    sim = server.simulator
    keys = [sim.add_key(uid=n % 3) for n in range(6)]
    credentials = [Credentials(k.api_key, k.secret_key, f"k{n}") for n, k in enumerate(keys)]
    async with AssetsPool(
        credentials, base_url=server.url, http_client=http_client, limiter=RateLimiter(UNLIMITED)
    ) as pool:
        results = await pool.gather()
    assert [r.ok for r in results] == [True] * 6


def test_anything_else_as_http_client_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"aiohttp\.ClientSession"):
        AssetsClient("k" * 64, "s" * 64, http_client=object())  # type: ignore[arg-type]


# -- the client's own session ---------------------------------------------------------


async def test_without_a_client_given_one_aiohttp_session_serves_every_call_and_is_closed(
    server: SimulatorServer, key: SimKey
) -> None:
    client = AssetsClient(
        key.api_key, key.secret_key, base_url=server.url, limiter=RateLimiter(UNLIMITED)
    )
    async with client:
        await client.asset_overview()
        transport = client._transport
        assert isinstance(transport, AiohttpTransport)
        await asyncio.gather(*(client.asset_overview() for _ in range(3)))
        assert client._transport is transport  # one session for every call of this loop
        assert transport.session.connector.limit == 100  # as httpx's default pool
    assert transport.session.closed
    assert len(overview_requests(server.simulator)) == 4


def test_each_event_loop_gets_a_session_closed_with_that_loop() -> None:
    """Nobody closes the client: each `asyncio.run` still closes the session it opened,
    as the loop shuts down, so no "Unclosed client session" is left (warnings are
    errors here)."""
    sim = BingXSimulator(limits=UNLIMITED)
    key = sim.add_key(uid=1)
    sessions: list[aiohttp.ClientSession] = []
    with served_in_a_thread(sim) as url:
        client = AssetsClient(
            key.api_key, key.secret_key, base_url=url, limiter=RateLimiter(UNLIMITED)
        )

        async def read_twice() -> None:
            await client.asset_overview()
            await client.asset_overview()
            sessions.append(client._transport.session)  # type: ignore[attr-defined]

        asyncio.run(read_twice())
        asyncio.run(read_twice())
    first, second = sessions
    assert first is not second
    assert first.closed and second.closed
    assert len(overview_requests(sim)) == 4


def test_aiohttp_is_imported_only_when_a_session_is_opened() -> None:
    """Import time is a published figure: `import bingx_assets` and making a client do
    not pay for aiohttp; the first request does."""
    code = (
        "import sys; from bingx_assets import AssetsClient; "
        "AssetsClient('k' * 64, 's' * 64); print(sorted({'aiohttp', 'yarl'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


async def test_the_pools_own_connections_match_its_concurrency() -> None:
    async with AssetsPool([Credentials("k" * 64, "s" * 64, "k", "1")], concurrency=7) as pool:
        assert pool._transport.session.connector.limit == 7  # type: ignore[attr-defined]


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def tls_url(self_signed: tuple[Path, Path]) -> AsyncIterator[str]:
    """An https server with a self-signed certificate, answering BingX's server time."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*self_signed)
    body = b'{"code":0,"msg":"","data":{"serverTime":1}}'
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer % (len(body), body))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # a client that refused the certificate hangs up mid-handshake
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    async with server:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_tls_is_verified_by_default_on_both_transports(
    tls_url: str, transport: str, self_signed: tuple[Path, Path]
) -> None:
    url, timeout = tls_url + SERVER_TIME_PATH, httpx.Timeout(5.0)
    trusting = ssl.create_default_context(cafile=str(self_signed[0]))
    if transport == "httpx":
        by_default: HttpClient = httpx.AsyncClient()
        trusted: HttpClient = httpx.AsyncClient(verify=trusting)
    else:
        by_default = aiohttp.ClientSession()
        trusted = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting))
    try:
        with pytest.raises(APIConnectionError):
            await transport_for(by_default).get(url, {}, timeout)
        assert (await transport_for(trusted).get(url, {}, timeout)).status == 200
    finally:
        await close_client(by_default)
        await close_client(trusted)


async def test_the_clients_own_http_client_verifies_tls(tls_url: str) -> None:
    async with AssetsClient("k" * 64, "s" * 64, uid=1, base_url=tls_url, max_retries=0) as client:
        with pytest.raises(APIConnectionError, match="ClientConnectorCertificateError"):
            await client.asset_overview()
