"""One garbled rate header must neither stall a UID for years nor crash a call.

`X-RateLimit-Requests-Expire`'s format is undocumented; `Retry-After` is whatever a
proxy sends. A hold from a header lasts at most as long as BingX's restrictions do
(5 minutes); any pause an answer asks for is believed up to a day; and a time no
calendar holds is still a typed error with a readable message.
"""

from __future__ import annotations

import logging
import uuid

import httpx
import msgspec
import pytest
import respx
from redis.asyncio import Redis

from bingx_assets import (
    APIConnectionError,
    AssetsClient,
    BingXError,
    ConfigurationError,
    LimiterUnavailableError,
    MemoryBackend,
    RateLimiter,
    RateLimitError,
    RedisBackend,
)
from bingx_assets._clock import ServerClock
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH
from bingx_assets.testing import BingXSimulator, Fault, LoopClock

from .conftest import verified_earlier

# BingX says its restrictions "recover after 5 minutes": the longest hold anything
# in an ordinary answer can justify.
LONGEST_PLAUSIBLE_HOLD = 300.0
A_DAY = 86_400.0


def full_window_until(expire: str) -> Fault:
    body = msgspec.json.encode({"code": 0, "data": [{"accountType": "sopt", "usdtBalance": "1"}]})
    return Fault(
        content=body,
        headers=(
            ("X-RateLimit-Requests-Remain", "0"),
            ("X-RateLimit-Requests-Expire", expire),
        ),
    )


@pytest.mark.parametrize("expire", ["9999999999999", "1999999999999"])
async def test_one_answer_with_a_far_expire_does_not_stall_the_uid_for_years(
    clock: LoopClock, expire: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim = BingXSimulator(clock=clock, rate_limit_headers=False)
    key = sim.add_key(uid=1)
    verified_earlier(key.api_key, key.uid)
    limiter = RateLimiter(clock=clock)
    sim.inject(full_window_until(expire))
    async with AssetsClient(
        key.api_key, key.secret_key, uid=1, http_client=sim.http_client(), limiter=limiter,
        max_wait=LONGEST_PLAUSIBLE_HOLD,
    ) as client:  # fmt: skip
        await client.asset_overview()
        held = await limiter.gate_remaining(limiter.scope("1", ASSET_OVERVIEW_PATH).uid_gate)
        await client.asset_overview()
    assert 299 <= held <= LONGEST_PLAUSIBLE_HOLD
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert expire in warning  # what the header said
    assert "holding UID 1 until" in warning  # what the client does
    assert "(300.0 s), as long as BingX's restrictions last" in warning


async def test_a_hold_from_a_header_past_max_wait_names_the_header(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock, rate_limit_headers=False)
    key = sim.add_key(uid=1)
    verified_earlier(key.api_key, key.uid)
    limiter = RateLimiter(clock=clock)
    sim.inject(full_window_until("9999999999999"))
    async with AssetsClient(
        key.api_key, key.secret_key, uid=1, http_client=sim.http_client(), limiter=limiter,
        max_wait=10,
    ) as client:  # fmt: skip
        await client.asset_overview()
        with pytest.raises(RateLimitError) as caught:
            await client.asset_overview()
    message = str(caught.value)
    assert "not sent: BingX's rate header X-RateLimit-Requests-Expire held UID 1" in message
    assert "BingX paused" not in message
    assert caught.value.status_code is None and caught.value.code is None


@pytest.mark.parametrize("retry_after", ["1e12", "1e300"])
async def test_a_huge_retry_after_is_a_typed_error(clock: LoopClock, retry_after: str) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=1)
    verified_earlier(key.api_key, key.uid)
    limiter = RateLimiter(clock=clock)
    sim.inject(Fault.http(429, retry_after=float(retry_after)))
    async with AssetsClient(
        key.api_key, key.secret_key, uid=1, http_client=sim.http_client(),
        limiter=limiter, max_retries=0,
    ) as client:  # fmt: skip
        with pytest.raises(BingXError, match="believed for a day at most"):
            await client.asset_overview()
    paused = await limiter.gate_remaining(limiter.scope("1", "/").ip_gate)
    assert A_DAY - 1 <= paused <= A_DAY  # closed, for a day: not for ever


# 10**16 ms is the year 318857; 400 digits are more than a float can hold.
@pytest.mark.parametrize("unblock_at_ms", [10**16, 10**399], ids=["17 digits", "400 digits"])
async def test_an_unblock_time_centuries_away_is_held_for_a_day(
    clock: LoopClock, unblock_at_ms: int
) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=1)
    verified_earlier(key.api_key, key.uid)
    limiter = RateLimiter(clock=clock)
    sim.inject(Fault.rate_limited(unblock_at_ms))
    async with AssetsClient(
        key.api_key, key.secret_key, uid=1, http_client=sim.http_client(), limiter=limiter
    ) as client:
        with pytest.raises(RateLimitError, match="believed for a day at most") as caught:
            await client.asset_overview()
    paused = await limiter.gate_remaining(limiter.scope("1", ASSET_OVERVIEW_PATH).uid_gate)
    assert A_DAY - 1 <= paused <= A_DAY + 1
    assert caught.value.unblock_at_ms is not None
    assert caught.value.unblock_at_ms <= sim.server_ms() + A_DAY * 1000 + 1000


@pytest.mark.looptime(False)  # Redis keeps real time
async def test_a_huge_retry_after_closes_the_gate_in_redis_for_a_day(redis_url: str) -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=1)
    verified_earlier(key.api_key, key.uid)
    redis = Redis.from_url(redis_url)
    limiter = RateLimiter(backend=RedisBackend(redis, namespace=f"t-{uuid.uuid4().hex[:8]}"))
    sim.inject(Fault.http(429, retry_after=1e300))
    try:
        async with AssetsClient(
            key.api_key, key.secret_key, uid=1, http_client=sim.http_client(),
            limiter=limiter, max_retries=0,
        ) as client:  # fmt: skip
            with pytest.raises(RateLimitError):
                await client.asset_overview()
            with pytest.raises(RateLimitError, match="not sent: BingX paused this IP"):
                await client.asset_overview()
        paused = await limiter.gate_remaining(limiter.scope("1", "/").ip_gate)
    finally:
        await limiter.aclose()  # before the Redis client: it records the answers still waiting
        await redis.aclose()
    assert A_DAY - 5 <= paused <= A_DAY


async def test_retry_after_zero_still_pauses_the_ip_a_moment(
    clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=1)
    verified_earlier(key.api_key, key.uid)
    limiter = RateLimiter(clock=clock)
    sim.inject(Fault.http(429, retry_after=0))
    async with AssetsClient(
        key.api_key, key.secret_key, uid=1, http_client=sim.http_client(), limiter=limiter
    ) as client:
        caplog.set_level(logging.DEBUG, logger="bingx_assets")
        await client.asset_overview()  # retried after the pause
    closures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("closing")]
    assert closures == [f"closing gate:ip:{limiter.ip} for 0.010 s"]


@pytest.mark.parametrize("server_ms", [10**17, -(10**17), 10**400])
async def test_a_time_no_calendar_holds_reads_as_seconds_from_now(server_ms: int) -> None:
    server_clock = ServerClock(LoopClock())
    assert server_clock.local_time(server_ms).startswith("in ")


class _NoGates(MemoryBackend):
    """A shared limiter that fails when asked to close a gate (Redis went away)."""

    async def close_gate(self, gate: str, seconds: float, **closure: object) -> None:
        raise LimiterUnavailableError("the Redis limiter could not close a gate")


async def test_an_answer_is_never_lost_to_a_limiter_that_cannot_hold_the_uid(
    clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in review: the header's hold ran before decoding, so a failing limiter
    threw away a good answer."""
    sim = BingXSimulator(clock=clock, rate_limit_headers=False)
    key = sim.add_key(uid=1)
    verified_earlier(key.api_key, key.uid)
    limiter = RateLimiter(clock=clock, backend=_NoGates(clock))
    sim.inject(full_window_until(str(sim.server_ms() + 60_000)))
    async with AssetsClient(
        key.api_key, key.secret_key, uid=1, http_client=sim.http_client(), limiter=limiter
    ) as client:
        overview = await client.asset_overview()
    assert overview.total == 1
    assert "could not hold UID 1" in caplog.text


async def test_a_body_httpx_cannot_decode_is_a_typed_connection_error(
    respx_mock: respx.MockRouter, respx_http: httpx.AsyncClient, clock: LoopClock
) -> None:
    """Found in review: gzip garbage escaped as a raw httpx.DecodingError."""
    host = "https://open-api.bingx.com"
    respx_mock.get(host + SERVER_TIME_PATH).respond(json={"code": 0, "data": {"serverTime": 1}})
    garbled = httpx.Response(
        200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}
    )
    respx_mock.get(host + ASSET_OVERVIEW_PATH).mock(return_value=garbled)
    limiter = RateLimiter(clock=clock)
    verified_earlier("k" * 64, 5)
    async with AssetsClient(
        "k" * 64, "s" * 64, uid=5, limiter=limiter, max_retries=1, http_client=respx_http
    ) as client:
        with pytest.raises(APIConnectionError, match="DecodingError"):
            await client.asset_overview()


def test_a_malformed_redis_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        RedisBackend.from_url("redis://[::1/?cluster=true")
