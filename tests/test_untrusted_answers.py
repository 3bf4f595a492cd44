"""Every answer is untrusted: whatever a hostile server sends one key, on either
transport, that key ends with a typed error (or a correct result) in bounded time and
memory, nothing secret reaches an error, a repr or a log, and the pool's other keys
are read as usual.

Real HTTP on loopback (`HostileServer`), in virtual time: a body trickled at a byte a
second for two minutes costs the suite milliseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import aiohttp
import httpx
import pytest

from bingx_assets import (
    AnswerTooLargeError,
    APIError,
    APITimeoutError,
    AssetOverview,
    AssetsPool,
    AuthenticationError,
    Balance,
    BingXError,
    ConfigurationError,
    Credentials,
    DecodeError,
    KeyFailed,
    RateLimiter,
    ServerBusyError,
)
from bingx_assets._transports._base import attempt_deadline
from bingx_assets.testing import HEALTHY_BALANCE, HostileAnswer, HostileServer

from .conftest import assert_carries_no_secret

VICTIM = Credentials("VICTIMKEY" + "v" * 55, "VICTIMSECRET" + "s" * 52, "victim", uid=1)
HEALTHY = Credentials("HEALTHYKEY" + "h" * 54, "HEALTHYSECRET" + "t" * 51, "healthy", uid=2)
UIDS = {VICTIM.api_key: 1, HEALTHY.api_key: 2}  # what the lookups find
TIMEOUT = httpx.Timeout(2.0, connect=1.0)
DEADLINE = attempt_deadline(TIMEOUT)  # 3 s: connect, then one read timeout more
MAX_RETRIES = 1
LONGEST_BACKOFF = 8.5  # the client's busy back-off: 8 s at most, plus jitter
# The cap is 1 MiB, read once and copied once: about 2 MiB measured at the peak, the
# libraries' buffers and the in-process server's 64 KiB blocks included, and 4 MiB for
# a gzip bomb inflated by aiohttp's own (bounded) decompressor. 50 MB bodies, endless
# ones and a bomb of 50 MB must stay under twice that.
PEAK_MEMORY_GROWTH = 8 << 20
SIGNATURE = re.compile(r"signature=([0-9a-fA-F]{64})")
ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The client's own session (aiohttp), and a caller's client of each library: the
# caller's httpx.AsyncClient is the only way onto the httpx transport.
TRANSPORTS = ["own", "httpx", "aiohttp"]

RETRIED = MAX_RETRIES + 1
GOOD_BODY = b'{"code":0,"data":[{"accountType":"sopt","usdtBalance":"3.25"}]}'


def encoded(coding: str) -> HostileAnswer:
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[coding]
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    header = "deflate" if coding == "raw-deflate" else coding
    answer = HostileAnswer.raw(
        200, (("Content-Encoding", header),), packer.compress(GOOD_BODY) + packer.flush()
    )
    return dataclasses.replace(answer, name=f"{coding}-answer")


ANSWERS: list[tuple[HostileAnswer, type[BingXError] | None, int]] = [
    # (what the server sends the victim, what the victim ends with, attempts it costs)
    (HostileAnswer.trickled(b'{"code":0,"data":[]}' * 6), APITimeoutError, RETRIED),
    (HostileAnswer.endless_chunks(per_chunk=1.0, chunk=b"x"), APITimeoutError, RETRIED),
    (HostileAnswer.endless_chunks(), AnswerTooLargeError, RETRIED),
    (HostileAnswer.huge(50_000_000), AnswerTooLargeError, RETRIED),
    (HostileAnswer.huge(50_000_000, declared=False), AnswerTooLargeError, RETRIED),
    (HostileAnswer.gzip_bomb(50_000_000), AnswerTooLargeError, RETRIED),
    (HostileAnswer.nested(200_000), DecodeError, RETRIED),
    *[
        (HostileAnswer.balance(wire), DecodeError, RETRIED)
        for wire in ["NaN", "sNaN", "Infinity", "-Infinity", "1e999999999", "1e-999999999"]
    ],
    (HostileAnswer.balance("1e999999999", as_number=True), DecodeError, RETRIED),
    (HostileAnswer.account_type("\x1b[2J\x1b[31mEVIL\u202e"), None, 1),
    # Compressed answers a server may well send: read as usual.
    *[(encoded(coding), None, 1) for coding in ("gzip", "deflate", "raw-deflate")],
    (
        HostileAnswer.message(100500, "\x1b[2J\x1b]0;pwned\x07busy\r\nreally"),
        ServerBusyError,
        RETRIED,
    ),
    (HostileAnswer.echoed(in_json=True), AuthenticationError, 1),
    (HostileAnswer.echoed(in_json=False), APIError, 1),
]


@pytest.fixture
def memory() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@pytest.fixture(params=TRANSPORTS)
async def session(
    request: pytest.FixtureRequest,
) -> AsyncIterator[httpx.AsyncClient | aiohttp.ClientSession | None]:
    """None for the client's own session; a caller's httpx client or aiohttp session."""
    if request.param == "own":
        yield None
    elif request.param == "httpx":
        async with httpx.AsyncClient() as client:
            yield client
    else:
        async with aiohttp.ClientSession() as caller:
            yield caller


def secrets_of(server: HostileServer) -> list[str]:
    signatures = [m.group(1) for r in server.received for m in SIGNATURE.finditer(r.target)]
    keys = [c.api_key for c in (VICTIM, HEALTHY)] + [c.secret_key for c in (VICTIM, HEALTHY)]
    assert signatures  # what is looked for was there to be leaked
    return keys + signatures


@pytest.mark.parametrize(
    ("answer", "expected", "attempts"), ANSWERS, ids=[a.name for a, _, _ in ANSWERS]
)
async def test_a_hostile_answer_stays_the_one_key_s_and_ends_typed_small_and_in_time(
    answer: HostileAnswer,
    expected: type[BingXError] | None,
    attempts: int,
    session: httpx.AsyncClient | aiohttp.ClientSession | None,
    memory: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    loop = asyncio.get_running_loop()
    async with HostileServer(answer, victim=VICTIM.api_key, uids=UIDS) as server:
        pool = AssetsPool(
            [VICTIM, HEALTHY], base_url=server.url, http_client=session, limiter=RateLimiter(),
            timeout=TIMEOUT, max_retries=MAX_RETRIES, uid_cache=False,
        )  # fmt: skip
        async with pool:
            tracemalloc.reset_peak()
            baseline, _ = tracemalloc.get_traced_memory()
            started = loop.time()
            victim, healthy = await pool.gather()
            elapsed = loop.time() - started
            _, peak = tracemalloc.get_traced_memory()

    assert healthy.overview is not None, healthy.error
    assert healthy.overview.total == Decimal(HEALTHY_BALANCE)
    if expected is None:
        assert victim.overview is not None, victim.error
        assert victim.overview.total in (Decimal(2), Decimal("3.25"))
        shown = repr(victim.overview) + str(victim.overview.total)
    else:
        assert isinstance(victim, KeyFailed)
        assert type(victim.error) is expected, victim.error
        assert_carries_no_secret(victim.error, secrets_of(server))
        shown = str(victim.error) + repr(victim.error)
    assert not ESCAPES.search(shown) and "\u202e" not in shown, shown
    assert len(shown) < 2_000
    assert len(server.hostile_requests()) == attempts
    assert elapsed <= attempts * DEADLINE + (attempts - 1) * LONGEST_BACKOFF + 1.0
    assert peak - baseline < PEAK_MEMORY_GROWTH, f"{(peak - baseline) / 2**20:.1f} MiB"
    logged = caplog.text
    for secret in secrets_of(server):
        assert secret not in logged


@pytest.mark.parametrize("wire", ["NaN", "sNaN", "Infinity", "1e999999999"])
async def test_a_key_with_garbage_balances_does_not_stop_a_watch(wire: str) -> None:
    async with (
        HostileServer(HostileAnswer.balance(wire), victim=VICTIM.api_key, uids=UIDS) as server,
        AssetsPool(
            [VICTIM, HEALTHY], base_url=server.url, limiter=RateLimiter(), timeout=TIMEOUT,
            max_retries=0, uid_cache=False,
        ) as pool,
    ):  # fmt: skip
        rounds = []
        async for snapshot in pool.watch(1.0):
            rounds.append(snapshot)
            if len(rounds) == 3:
                break
    for snapshot in rounds:
        victim, healthy = snapshot.results
        assert isinstance(victim.error, DecodeError)
        assert healthy.overview is not None
        assert healthy.overview.total == Decimal(HEALTHY_BALANCE)
    assert rounds[0].changed == {"healthy"} and not rounds[2].changed


# -- what a balance may be ------------------------------------------------------------------


@pytest.mark.parametrize(
    "wire", ["NaN", "sNaN", "-Infinity", "1e999999999", "1e19", "0E+99", "1e-31", "0.1" + "0" * 30]
)
def test_a_balance_out_of_bounds_is_refused_where_it_is_built(wire: str) -> None:
    with pytest.raises(ConfigurationError, match="a balance"):
        Balance("spot", Decimal(wire))


def test_the_largest_balances_sum_exactly_and_print_short() -> None:
    largest = Decimal("9" * 19 + "." + "9" * 30)
    overview = AssetOverview(
        [
            Balance("\x1b[2J" + "x" * 60, largest.copy_negate() if n % 2 else largest)
            for n in range(1001)
        ]
    )
    assert overview.total == largest  # 501 up, 500 down: every digit kept
    shown = repr(overview)
    assert len(shown) < 1_200 and "991 more" in shown and "\x1b" not in shown
