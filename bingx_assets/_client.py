"""`AssetsClient`: one API key, every call signed, limited and retried."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_exponential_jitter

from ._constants import (
    API_KEY_ENV,
    API_KEY_HEADER,
    ASSET_OVERVIEW_PATH,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_WAIT,
    DEFAULT_RECV_WINDOW_MS,
    DEFAULT_TIMEOUT,
    FIREWALL_BAN_SECONDS,
    GATE_SLACK_SECONDS,
    MAX_RECV_WINDOW_MS,
    SECRET_KEY_ENV,
    SERVER_TIME_PATH,
    UID_PATH,
    USER_AGENT,
)
from ._credentials import check_credential, check_uid, mask
from ._exceptions import (
    APIConnectionError,
    BingXError,
    ConfigurationError,
    RateLimitError,
    ServerBusyError,
    TimestampError,
)
from ._http import OwnsHttpClient
from ._limits import GateTooLong, RateLimiter, Scope
from ._logging import install_redaction, log
from ._models import AccountType, AssetOverview, parse_account_type
from ._signing import signed_query
from ._wire import BALANCES, SERVER_TIME, UID, DataDecoder, decode_envelope_data

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AssetsClient"]

T = TypeVar("T")

# Busy servers and lost connections: back off, with jitter so many clients spread out.
_busy_backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)
# Rate-limited with no time given (someone else used the UID's budget): start at a full
# window and double, so the UID's own window has certainly moved on.
_rate_backoff = wait_exponential_jitter(multiplier=1.0, max=60.0, jitter=1.0)


class AssetsClient(OwnsHttpClient):
    """Reads BingX's asset overview for one API key, inside BingX's rate limits.

    ```python
    async with AssetsClient() as client:  # keys from BINGX_API_KEY / BINGX_SECRET_KEY
        overview = await client.asset_overview()
        print(overview.total)
    ```

    Every attempt is signed afresh, waits for its UID's and IP's windows, and honours
    a UID's disabled period (100410) up to `max_wait` seconds; longer ones raise
    `RateLimitError` with the unblock time instead of sleeping. Clients share
    `RateLimiter.default()` unless given a `limiter`, so two clients holding keys of one
    UID share its 5/s. Pass `uid` to skip the one-time UID lookup.

    An injected `http_client` (an `httpx.AsyncClient`, or an `aiohttp.ClientSession`
    with the `aiohttp` extra) is used as it is and never closed here. The client's own
    verifies TLS. Plain `http://` is refused except on loopback, unless
    `allow_insecure_http` says otherwise.
    """

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        *,
        uid: int | str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_wait: float = DEFAULT_MAX_WAIT,
        recv_window: int = DEFAULT_RECV_WINDOW_MS,
        http_client: httpx.AsyncClient | aiohttp.ClientSession | None = None,
        limiter: RateLimiter | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        secret_key = secret_key if secret_key is not None else os.environ.get(SECRET_KEY_ENV)
        self.api_key = check_credential(api_key, "api_key", API_KEY_ENV)
        self._secret = check_credential(secret_key, "secret_key", SECRET_KEY_ENV).encode()
        self._uid = check_uid(uid)
        self.base_url = _check_base_url(base_url, allow_insecure_http)
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, not {max_retries!r}")
        if not max_wait >= 0:
            raise ConfigurationError(f"max_wait must be >= 0 seconds, not {max_wait!r}")
        if not isinstance(recv_window, int) or not 0 < recv_window <= MAX_RECV_WINDOW_MS:
            raise ConfigurationError(
                f"recv_window is in milliseconds, 1 to {MAX_RECV_WINDOW_MS}; got {recv_window!r}"
            )
        if not isinstance(timeout, httpx.Timeout) and not (
            isinstance(timeout, int | float) and timeout > 0
        ):
            raise ConfigurationError(
                f"timeout must be seconds > 0 or an httpx.Timeout, not {timeout!r}"
            )
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.max_retries = max_retries
        self.max_wait = float(max_wait)
        self.recv_window = recv_window
        self.limiter = limiter if limiter is not None else RateLimiter.default()
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(max_retries + 1), wait=_wait_before_retry, reraise=True
        )
        super().__init__(http_client)
        self._headers = {API_KEY_HEADER: self.api_key, "User-Agent": USER_AGENT}
        install_redaction()

    def __repr__(self) -> str:
        return (
            f"AssetsClient(api_key={mask(self.api_key)!r}, uid={self._uid!r}, "
            f"base_url={self.base_url!r})"
        )

    async def asset_overview(self, account_type: AccountType | str | None = None) -> AssetOverview:
        """Every account's USDT value, or only `account_type`'s.

        `account_type` is an `AccountType` or its string (`"spot"`, `"USDTMPerp"`, ...);
        an unknown one raises `ConfigurationError` before anything is sent. The filter
        is applied here, not sent: BingX's docs disagree on how the spot filter is
        spelled (`spot` or `sopt`), and the unfiltered call costs the same.
        """
        wanted = parse_account_type(account_type) if account_type is not None else None
        uid = await self.uid()
        scope = self.limiter.scope(uid, ASSET_OVERVIEW_PATH)
        overview = await self._request(ASSET_OVERVIEW_PATH, BALANCES, scope)
        if wanted is None:
            return overview
        found = overview.get(wanted)
        return AssetOverview([found] if found else [], server_time_ms=overview.server_time_ms)

    async def uid(self) -> str:
        """The UID this key belongs to: given to the constructor, or looked up once."""
        if self._uid is not None:
            return self._uid
        async with self.limiter.lock(f"uid-lookup:{self.api_key}"):
            if self._uid is None:
                # Before the UID is known, every lookup shares one window of the UID
                # rate, so keys that turn out to share a UID stay inside it.
                scope = self.limiter.scope("lookup", UID_PATH)
                uid: int = await self._request(UID_PATH, UID, scope)
                self._uid = str(uid)
        return self._uid

    async def _request(self, path: str, data: DataDecoder[T], scope: Scope) -> T:
        if not self.limiter.server_clock.attempted:
            await self._sync_clock()
        # Our own loop over the client's tenacity policy: iterating an AsyncRetrying
        # costs ~30 us a call, more than the limiter, signing and decoding together.
        retry_state = RetryCallState(self._retrying, None, (), {})
        timestamp_retried = False
        while True:
            try:
                return await self._attempt(path, data, scope, retry_state)
            except BingXError as exc:
                retry_state.set_exception((type(exc), exc, exc.__traceback__))
                if not self._retryable(exc, timestamp_retried) or self._retrying.stop(retry_state):
                    raise
                # A timestamp error is retried once, after measuring the clocks again.
                timestamp_retried = timestamp_retried or isinstance(exc, TimestampError)
                self._log_retry(retry_state)
                await asyncio.sleep(self._retrying.wait(retry_state))
                retry_state.prepare_for_next_attempt()

    def _retryable(self, exc: BingXError, timestamp_retried: bool) -> bool:
        if isinstance(exc, RateLimitError):
            return self._seconds_until(exc) <= self.max_wait
        if isinstance(exc, TimestampError):
            return not timestamp_retried  # twice means measuring again won't help
        return isinstance(exc, ServerBusyError | APIConnectionError)

    async def _attempt(
        self, path: str, data: DataDecoder[T], scope: Scope, retry_state: RetryCallState
    ) -> T:
        limiter = self.limiter
        try:
            permit = await limiter.acquire(scope, max_wait=self.max_wait)
        except GateTooLong as closed:
            raise self._refusal(closed.seconds) from None
        server_clock, clock = limiter.server_clock, limiter.clock
        params = {"timestamp": server_clock.now_ms(), "recvWindow": self.recv_window}
        url = f"{self.base_url}{path}?{signed_query(params, self._secret)}"
        sent_ms = clock.wall_ms()
        try:
            answer = await self._transport.get(url, self._headers, self.timeout)
        except APIConnectionError as exc:
            await permit.settle(answered=False)
            raise _transport_error(exc, path) from None
        except BaseException:
            await permit.settle(answered=False)
            raise
        await permit.settle(answered=True)
        received_ms = clock.wall_ms()
        try:
            result = decode_envelope_data(
                answer.content, status_code=answer.status, headers=answer.headers, data=data
            )
        except RateLimitError as exc:
            limiter.stats.rejections += 1
            await self._close_gate(scope, exc, retry_state)
            raise
        except TimestampError:
            await self._sync_clock(stale_before_ms=sent_ms)
            raise
        if isinstance(result, AssetOverview) and result.server_time_ms is not None:
            server_clock.observe(result.server_time_ms, sent_ms, received_ms)
        return result

    async def _close_gate(
        self, scope: Scope, exc: RateLimitError, retry_state: RetryCallState
    ) -> None:
        """Stop every request of this UID until BingX lets it through again."""
        server_clock = self.limiter.server_clock
        if exc.unblock_at_ms is not None:
            if not server_clock.measured:
                await self._sync_clock(stale_before_ms=self.limiter.clock.wall_ms())
            seconds = server_clock.seconds_until(exc.unblock_at_ms) + GATE_SLACK_SECONDS
        elif exc.retry_after is not None:
            seconds = exc.retry_after
        elif exc.status_code in (418, 403):
            seconds = FIREWALL_BAN_SECONDS
        else:
            seconds = _rate_backoff(retry_state)
        seconds = max(seconds, GATE_SLACK_SECONDS)
        if exc.unblock_at_ms is None:
            exc.unblock_at_ms = server_clock.now_ms() + int(seconds * 1000)
        # Log text, not the exception: a handler that keeps records would keep its frames.
        log.warning("BingX rate-limited %s (%s); pausing it %.2f s", scope.gate, str(exc), seconds)
        await self.limiter.close_gate(scope, seconds)

    def _seconds_until(self, exc: RateLimitError) -> float:
        if exc.unblock_at_ms is None:
            return 0.0
        return self.limiter.server_clock.seconds_until(exc.unblock_at_ms)

    def _refusal(self, seconds: float) -> RateLimitError:
        unblock_at_ms = self.limiter.server_clock.now_ms() + int(seconds * 1000)
        return RateLimitError(
            None,
            f"not sent: BingX disabled this UID for {seconds:.1f} s more, "
            f"beyond max_wait={self.max_wait:g} s",
            status_code=None,
            unblock_at_ms=unblock_at_ms,
        )

    async def _sync_clock(self, *, stale_before_ms: int | None = None) -> None:
        """Measure the offset to BingX's clock, once for everyone waiting on it.

        Without `stale_before_ms`, only if nobody has tried yet (before the first call);
        with it, only if the last measurement is older (after a timestamp error, every
        request in flight gets one, and one measurement answers them all). Concurrent
        calls going ahead on a wrong offset would each earn an error, and errors add up
        to a disabled period.
        """
        server_clock = self.limiter.server_clock
        async with self.limiter.lock("server-time"):
            if stale_before_ms is None and server_clock.attempted:
                return
            if stale_before_ms is not None and server_clock.measured_at_ms > stale_before_ms:
                return
            if stale_before_ms is not None:
                server_clock.forget()  # the clocks jumped: the old offset is no guide
            try:
                await self._measure_server_time()
            finally:
                server_clock.attempted = True

    async def _measure_server_time(self) -> None:
        """Measure the offset to BingX's clock; failures leave the old offset in place."""
        server_clock, clock = self.limiter.server_clock, self.limiter.clock
        sent_ms = clock.wall_ms()
        try:
            answer = await self._transport.get(
                f"{self.base_url}{SERVER_TIME_PATH}", {}, self.timeout
            )
            server_ms = decode_envelope_data(
                answer.content, status_code=answer.status, headers=answer.headers, data=SERVER_TIME
            )
        except (httpx.HTTPError, BingXError) as exc:
            log.debug("could not read BingX's server time: %s", type(exc).__name__)
            return
        server_clock.observe(server_ms, sent_ms, clock.wall_ms())
        log.debug("clock offset to BingX: %+d ms", server_clock.offset_ms)

    def _log_retry(self, retry_state: RetryCallState) -> None:
        self.limiter.stats.retries += 1
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        log.info(
            "retrying (attempt %d) after %s", retry_state.attempt_number + 1, type(exc).__name__
        )


def _wait_before_retry(retry_state: RetryCallState) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, RateLimitError | TimestampError):
        return 0.0  # the gate, or the corrected clock, is the whole remedy
    return float(_busy_backoff(retry_state))


def _transport_error(exc: APIConnectionError, path: str) -> APIConnectionError:
    # The transport's message names the error type only (its URL carries a signature).
    return type(exc)(f"GET {path}: {exc}")


def _check_base_url(base_url: Any, allow_insecure_http: bool) -> str:
    try:
        url = httpx.URL(base_url)
    except (TypeError, httpx.InvalidURL) as exc:
        raise ConfigurationError(f"base_url is not a URL: {base_url!r}") from exc
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(f"base_url must be an https:// URL, not {base_url!r}")
    if url.scheme == "http" and not _is_loopback(url.host) and not allow_insecure_http:
        raise ConfigurationError(
            f"plain http to {url.host!r} would send the API key in clear: use https, "
            "or pass allow_insecure_http=True"
        )
    return str(base_url).rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
