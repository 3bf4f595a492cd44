"""`AssetsClient`: one API key, every call signed, limited and retried."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar, Unpack

import httpx
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt, wait_exponential_jitter

from ._constants import (
    API_KEY_ENV,
    API_KEY_HEADER,
    ASSET_OVERVIEW_PATH,
    FIREWALL_BAN_SECONDS,
    GATE_SLACK_SECONDS,
    LONGEST_SERVER_PAUSE_SECONDS,
    RATE_EXPIRE_HEADER,
    RATE_REMAIN_HEADER,
    SECRET_KEY_ENV,
    SERVER_TIME_PATH,
    UID_PATH,
    USER_AGENT,
)
from ._credentials import check_credential, check_uid, mask
from ._exceptions import (
    APIConnectionError,
    APIError,
    BingXError,
    ConfigurationError,
    ErrorBudgetError,
    LimiterUnavailableError,
    RateLimitError,
    TimestampError,
)
from ._limiter import Closure, ErrorBudgetFull, GateTooLong, RateLimiter, Scope, Ticket
from ._logging import install_redaction, log
from ._models import AccountType, AssetOverview, parse_account_type
from ._observer import observing_attempt
from ._options import ClientOptionArgs, ClientOptions, resolve_options
from ._printable import printable
from ._refusals import KeyBackoff, key_gate, key_not_sent, refusal_of
from ._signing import signed_query
from ._simulated import resolve_storage
from ._transports._http_clients import OwnsHttpClient
from ._uid_cache import open_uid_cache
from ._wire import (
    BALANCES,
    SERVER_TIME,
    UID,
    DataDecoder,
    decode_envelope_data,
    envelope_timestamp,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AssetsClient"]

T = TypeVar("T")

# Lost requests remembered per key and path, to be forgiven by its next success: more
# would mean a link so bad that keeping the oldest ones counted costs nothing.
_UNANSWERED_KEPT = 16

# Busy servers and lost connections: back off, with jitter so many clients spread out.
_busy_backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)


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
    `RateLimiter.default(base_url)` unless given a `limiter`, so two clients holding keys
    of one UID share its 5/s, in one process or in several on this machine. The key's UID
    is looked up once per machine (the UID cache remembers it); a `uid` given here is
    checked the same way before anything counts on it. `label` names the key in metrics
    (`PrometheusMetrics`) and in warnings; never put the api key in it.

    An injected `http_client` (an `httpx.AsyncClient`, or an `aiohttp.ClientSession`
    with the `aiohttp` extra) is used as it is and never closed here. The client's own
    verifies TLS. Plain `http://` is refused except on loopback, unless
    `allow_insecure_http` says otherwise.

    The settings are `ClientOptions`' fields, given as keywords
    (`AssetsClient(timeout=5, max_retries=2)`) or as one `options=ClientOptions(...)`
    (keywords given with it override its fields).
    """

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        *,
        uid: int | str | None = None,
        http_client: httpx.AsyncClient | aiohttp.ClientSession | None = None,
        limiter: RateLimiter | None = None,
        label: str = "default",
        options: ClientOptions | None = None,
        **option_args: Unpack[ClientOptionArgs],
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        secret_key = secret_key if secret_key is not None else os.environ.get(SECRET_KEY_ENV)
        self.api_key = check_credential(api_key, "api_key", API_KEY_ENV)
        self._secret = check_credential(secret_key, "secret_key", SECRET_KEY_ENV).encode()
        self._claimed_uid = check_uid(uid)
        options, self.limiter = resolve_storage(
            http_client, resolve_options(options, option_args), limiter
        )
        self.options = options
        self.base_url = options.base_url
        self.timeout = httpx.Timeout(options.timeout)  # already one; typed as one here
        self.max_retries = options.max_retries
        self.max_wait = options.max_wait
        self.recv_window = options.recv_window
        # As BingX says, once known (or as given, when told to trust it).
        self._uid = None if options.verify_uids else self._claimed_uid
        self._uid_cache = open_uid_cache(options.uid_cache, options.base_url)
        if not isinstance(label, str) or not label:
            raise ConfigurationError(f"label must be a non-empty string, not {label!r}")
        self.label = label
        self._key_gate = key_gate(self.api_key, self._secret)
        self._backoff = KeyBackoff(self.limiter.limits.error_budget.period)
        self._scopes: dict[tuple[str, bool], Scope] = {}
        self._unanswered: dict[str, collections.deque[Ticket]] = {}
        """Per path, this key's last requests settled with no answer (`_forgive_unanswered`)."""
        self._retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1), wait=_wait_before_retry, reraise=True
        )
        super().__init__(http_client)
        self._headers = {API_KEY_HEADER: self.api_key, "User-Agent": USER_AGENT}
        # What a server echoing our request could print back at us, masked in errors
        # (the secret is never sent: no echo can hold it).
        self._echoable = (self.api_key,)
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
        try:
            uid = self._uid if self._uid is not None else await self.uid()
            overview = await self._request(ASSET_OVERVIEW_PATH, BALANCES, uid)
        except Exception as exc:
            await self._uid_cache.forget_if_refused(self.api_key, exc)
            for observer in self.limiter.observers:
                observer.read(self.label, None)
            raise
        for observer in self.limiter.observers:
            observer.read(self.label, overview)
        if wanted is None:
            return overview
        found = [b for b in overview if b.account_type == wanted]
        return AssetOverview(found, server_time_ms=overview.server_time_ms)

    async def uid(self) -> str:
        """The UID this key belongs to, as BingX says: remembered in the UID cache
        (`uid_cache`) from a lookup on this machine, or looked up once (and then
        remembered there). A `uid` given to the constructor is a claim, not a fact: it is
        checked the same way, and where BingX names another UID, that one is used and a
        warning names the key's label (unless `verify_uids=False` trusts it)."""
        if self._uid is not None:
            return self._uid
        async with self.limiter.lock(f"uid-lookup:{self.api_key}"):
            if self._uid is None:
                cached = self._uid_cache.get(self.api_key)
                uid = cached or await self._look_up_uid()
                claimed = self._claimed_uid
                if claimed is not None and claimed != uid:
                    said = "this machine's UID cache says" if cached else "BingX says"
                    log.warning(
                        "key %r was given uid %s, but %s it belongs to UID %s: using %s "
                        "(fix the uid where it is written; `bingx-assets keys resolve` "
                        "corrects a keys file)",
                        self.label, claimed, said, uid, uid,
                    )  # fmt: skip
                self._uid = uid
        return self._uid

    async def _look_up_uid(self) -> str:
        # Every lookup shares one window of the UID rate, whatever UID its key claims
        # (`_new_scope` for None): the keys' real UIDs are unknown until the answers,
        # so together they put at most 5 lookups a second on any one of them.
        found: int = await self._request(UID_PATH, UID, None)
        # A database write: off the event loop, which other calls share.
        await asyncio.to_thread(self._uid_cache.put, self.api_key, str(found))
        return str(found)

    async def _request(self, path: str, data: DataDecoder[T], uid: str | None) -> T:
        """One call to `path` for `uid` (None: the UID lookup), attempts and retries."""
        if not self.limiter.server_clock.attempted:
            await self._sync_clock()
        # Our own loop over the client's tenacity policy: iterating an AsyncRetrying
        # costs ~30 us a call, more than the limiter, signing and decoding together.
        # Its state is made by the first failure: most calls have none.
        retry_state: RetryCallState | None = None
        call = _Call()
        observers = self.limiter.observers
        while True:
            try:
                if not observers:  # the usual: no context manager to enter and leave
                    return await self._attempt(path, data, uid, call)
                with observing_attempt(observers):
                    return await self._attempt(path, data, uid, call)
            except BingXError as exc:
                if retry_state is None:
                    retry_state = RetryCallState(self._retrying, None, (), {})
                retry_state.set_exception((type(exc), exc, exc.__traceback__))
                if not self._retryable(exc, call) or self._retrying.stop(retry_state):
                    raise
                # A timestamp error is retried once, after measuring the clocks again.
                call.timestamp_retried = call.timestamp_retried or isinstance(exc, TimestampError)
                self._log_retry(retry_state)
                await asyncio.sleep(self._retrying.wait(retry_state))
                retry_state.prepare_for_next_attempt()

    def _retryable(self, exc: BingXError, call: _Call) -> bool:
        retry = refusal_of(exc).retry
        if retry == "within max_wait" and isinstance(exc, RateLimitError):
            return self._seconds_until(exc) <= self.max_wait
        if retry == "once":
            # Twice means measuring again won't help; a held probe, that it failed.
            return not call.timestamp_retried and not self.limiter.server_clock.probe_held()
        return retry == "with back-off"

    def retry_at(self, exc: BaseException) -> datetime.datetime | None:
        """When a call that failed with `exc` is next sent, if it has to wait: the end of
        this key's back-off, or of the pause a refusal for rate set; None for at once."""
        server_clock = self.limiter.server_clock
        if self._backoff.held(self.limiter.clock.monotonic()):
            return server_clock.local_datetime(self._backoff.retry_at_ms)
        if isinstance(exc, RateLimitError) and exc.unblock_at_ms is not None:
            return server_clock.local_datetime(exc.unblock_at_ms)
        return None

    async def _attempt(self, path: str, data: DataDecoder[T], uid: str | None, call: _Call) -> T:
        if self._backoff.held(self.limiter.clock.monotonic()):
            raise self._key_not_sent()
        server_clock = self.limiter.server_clock
        if server_clock.needs_probe:
            # The offset is unknown (the server-time endpoint failed): one request goes
            # alone and the clock is learnt from its answer, so a skewed clock costs
            # one timestamp error, not one per key in flight.
            async with self.limiter.lock("clock-probe"):
                if server_clock.needs_probe:
                    if server_clock.probe_held():
                        raise self._clock_not_sent()
                    if server_clock.refused_at_ms is not None:
                        # The last probe was refused: the time endpoint, which costs no
                        # error budget, may answer by now.
                        await self._sync_clock(stale_before=self.limiter.clock.monotonic())
                    if server_clock.needs_probe:
                        return await self._send(path, data, uid, call)
        return await self._send(path, data, uid, call)

    def _clock_not_sent(self) -> TimestampError:
        server_clock = self.limiter.server_clock
        seconds = server_clock.probe_held()
        # No offset is known, so the server's time and the local wall clock read alike.
        refused_at = server_clock.local_time(server_clock.refused_at_ms or server_clock.now_ms())
        next_at = server_clock.local_time(server_clock.now_ms() + int(seconds * 1000))
        return TimestampError(
            None,
            f"not sent: BingX refused a timestamp of this machine's clock at {refused_at}, "
            "and BingX's clock could not be measured since (its server-time endpoint "
            "fails and no answer carried its time), so every request would be refused: "
            f"the next request is sent at {next_at} ({seconds:.1f} s from now); check "
            f"this machine's clock (it is off by more than recvWindow, {self.recv_window} ms)",
            status_code=None,
        )

    def _scope(self, path: str, uid: str | None) -> Scope:
        # A lookup (uid None) uses its scope's whole error budget: every key looked up is
        # new, so a smaller share would keep nothing for a key known to be good.
        suspect = uid is not None and not self._known_good()
        found = self._scopes.get((path, suspect))
        if found is None:
            found = self._scopes[(path, suspect)] = self._new_scope(path, uid, suspect)
        return found

    def _new_scope(self, path: str, uid: str | None, suspect: bool) -> Scope:
        if uid is not None:
            shared = self.limiter.scope(uid, path, suspect=suspect)
            return dataclasses.replace(shared, gates=(*shared.gates, self._key_gate))
        # A lookup: the key's real UID is unknown until the answer. Every lookup counts in
        # one window of the UID rate, so that keys which turn out to share a UID put at
        # most 5 a second on it, whatever they claim. Its gate and error budget are those
        # of the UID the key claims (unclaimed keys share "lookup"), so that failing
        # lookups of one claimed UID never hold another's: BingX counts a lookup's error
        # against the key's real UID, which a wrong claim misnames.
        claimed = self.limiter.scope(self._claimed_uid or "lookup", path)
        window = self.limiter.scope("lookup", path).uid_window
        return dataclasses.replace(
            claimed,
            gates=(*claimed.gates, self._key_gate),
            windows=(window, *claimed.ip_windows),
        )

    def _known_good(self) -> bool:
        """Whether this key may use its UID's whole error budget: its last answer here was
        a success, or, before any answer, this machine's UID cache holds a UID for its
        api key (a signed lookup of it succeeded here; the cache keys by api key alone,
        so a secret changed since is not seen until its first answer)."""
        known = self._backoff.known_good
        if known is None:
            known = self._backoff.known_good = self._uid_cache.get(self.api_key) is not None
        return known

    async def _send(self, path: str, data: DataDecoder[T], uid: str | None, call: _Call) -> T:
        # Once a slot is taken the request is as good as sent, and only its answer says
        # whether it spent the UID's error budget: a caller that gives up then (its own
        # timeout, Ctrl-C, SIGTERM) leaves the exchange to finish, bounded by `timeout`,
        # so that its slot settles as answered instead of counting as a possible error
        # for the whole error window. Closing the client waits for such exchanges.
        # Giving up before that cancels the wait for a slot, and nothing was sent.
        # The exchange hands its outcome to `outcome` itself, rather than through
        # `asyncio.shield`: the caller wakes one loop iteration sooner, a tenth of a
        # call's CPU one at a time.
        attempt = _Attempt()
        outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self._exchange_into(outcome, path, data, uid, call, attempt))
        try:
            return await outcome
        except asyncio.CancelledError:
            if attempt.slot_taken:
                self._http_clients.finish_in_background(task)
            else:
                task.cancel()
            raise

    async def _exchange_into(
        self,
        outcome: asyncio.Future[T],
        path: str,
        data: DataDecoder[T],
        uid: str | None,
        call: _Call,
        attempt: _Attempt,
    ) -> None:
        """`_exchange`, its result or error set on `outcome` unless the caller gave up."""
        try:
            result = await self._exchange(path, data, uid, call, attempt)
        except asyncio.CancelledError:
            outcome.cancel()
            raise
        except Exception as exc:
            if not outcome.done():
                outcome.set_exception(exc)
            return
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: the loop's too
            if not outcome.done():
                outcome.set_exception(exc)
            raise
        if not outcome.done():
            outcome.set_result(result)

    async def _exchange(
        self, path: str, data: DataDecoder[T], uid: str | None, call: _Call, attempt: _Attempt
    ) -> T:
        """One signed request in a slot of the limiter, its answer decoded, the slot
        settled and what the answer teaches learnt."""
        limiter = self.limiter
        scope = self._scope(path, uid)
        try:
            ticket = await limiter.acquire(
                scope, max_wait=self.max_wait, recv_window_ms=self.recv_window
            )
        except GateTooLong as closed:
            if closed.gate == self._key_gate:
                raise await self._key_held(closed.seconds) from None
            raise self._not_sent(scope, closed) from None
        except ErrorBudgetFull as full:
            raise self._budget_full(scope, full) from None
        attempt.slot_taken = True
        server_clock, clock = limiter.server_clock, limiter.clock
        params = {"timestamp": ticket.timestamp_ms, "recvWindow": self.recv_window}
        sent_ms, sent_at = clock.wall_ms(), clock.monotonic()
        try:
            # The signed URL is no local of this frame: a traceback keeps frames.
            answer = await self._transport.get(
                f"{self.base_url}{path}?{signed_query(params, self._secret)}",
                self._headers,
                self.timeout,
            )
        except APIConnectionError as exc:
            await ticket.settle(answered=False)
            lost = self._unanswered.get(path)
            if lost is None:
                lost = self._unanswered[path] = collections.deque(maxlen=_UNANSWERED_KEPT)
            lost.append(ticket)
            raise _transport_error(exc, path) from None
        except BaseException:
            await ticket.settle(answered=False)
            raise
        received_ms = clock.wall_ms()  # before any limiter round trip: it is not network
        remaining, expires_ms = _server_window(answer.headers)
        # Settled once, after decoding: only a success gives its error-budget slot back.
        try:
            result = decode_envelope_data(
                answer.content,
                status_code=answer.status,
                headers=answer.headers,
                data=data,
                secrets=self._echoable,
            )
        except BingXError as exc:
            refusal = refusal_of(exc)
            await ticket.settle(
                answered=True, succeeded=not refusal.counts, server_remaining=remaining
            )
            await self._hold_if_server_window_full(scope, remaining, expires_ms)
            if refusal.marks_key:
                self._backoff.errored()
            if not isinstance(exc, TimestampError) and not server_clock.measured:
                server_clock.observe_answer(
                    envelope_timestamp(answer.content), answer.headers, sent_ms, received_ms
                )
            await self._learn(exc, scope, call, sent_at)
            if isinstance(exc, TimestampError) and not server_clock.measured:
                # Measuring again failed: the refusal's own answer is the clock left.
                server_clock.observe_answer(
                    envelope_timestamp(answer.content), answer.headers, sent_ms, received_ms
                )
                if not server_clock.measured:
                    server_clock.probe_refused()
            del answer  # the traceback keeps this frame: not the body an echo fills
            raise
        except BaseException:
            await ticket.settle(answered=True, server_remaining=remaining)
            raise
        await ticket.settle(answered=True, succeeded=True, server_remaining=remaining)
        if self._unanswered:
            await self._forgive_unanswered(path)
        if remaining == 0:
            await self._hold_if_server_window_full(scope, remaining, expires_ms)
        self._backoff.succeeded()
        if isinstance(result, AssetOverview) and result.server_time_ms is not None:
            server_clock.observe(result.server_time_ms, sent_ms, received_ms)
        if not server_clock.measured:
            server_clock.observe_date(answer.headers, sent_ms, received_ms)
            server_clock.vouched = True  # its timestamp was accepted, offset or not
        return result

    async def _forgive_unanswered(self, path: str) -> None:
        """This key's requests to `path` that got no answer (a timeout, a dropped
        connection) each hold an error-budget slot, as the error they may have been:
        this success says they were none. The key, its secret, whitelist and permission
        were good, and the limiter kept it inside the windows, so a lost request was a
        success too, or server trouble, which the budget never counts. Without this, a
        link that drops one request in ten would hold a UID's whole budget in minutes
        with no error on BingX's side. Their rate slots still count until their horizon."""
        for ticket in self._unanswered.pop(path, ()):
            await ticket.forgive()

    async def _learn(self, exc: BingXError, scope: Scope, call: _Call, sent_at: float) -> None:
        """What the answer `exc` teaches, by the table in `_refusals`."""
        refusal = refusal_of(exc)
        if isinstance(exc, RateLimitError):
            self.limiter.stats.rejections += 1
            call.refusals += 1
            await self._after_refusal(scope, exc, call.refusals)
        elif isinstance(exc, TimestampError):
            await self._sync_clock(stale_before=sent_at, proven_wrong=True)
        elif refusal.key_backs_off and isinstance(exc, APIError):
            await self._back_off(exc)

    async def _back_off(self, exc: APIError) -> None:
        """The answer says this key can never succeed as it is: hold it (in every process
        sharing the backend), one minute at first, doubling up to the error window, so
        that a key that can only fail never spends its UID's error budget. The code and
        the hold's length go with the key's gate, and are remembered an error window
        after it opens: another process reports the same error, and the next refusal in
        any of them doubles this hold."""
        limiter, server_clock = self.limiter, self.limiter.server_clock
        seconds = self._backoff.next_hold(await limiter.closure(self._key_gate))
        await limiter.close_gate(
            self._key_gate,
            seconds,
            because=f"this key was refused with code {exc.code}",
            code=exc.code,
            remember=limiter.limits.error_budget.period,
        )
        now, server_now = limiter.clock.monotonic(), server_clock.now_ms()
        self._backoff.hold(now, server_now, seconds, Closure(seconds, exc.code))
        log.warning(
            "key %s refused with code %s: not sent again until %s",
            printable(self.label),
            exc.code,
            server_clock.local_time(self._backoff.retry_at_ms),
        )

    async def _key_held(self, seconds: float) -> APIError:
        """The key's gate is closed `seconds` more, by this process or another sharing the
        backend: hold the key here too, so that the next calls fail without asking the
        backend, and say why as the process that closed it would."""
        limiter = self.limiter
        closure = await limiter.closure(self._key_gate)
        now, server_now = limiter.clock.monotonic(), limiter.server_clock.now_ms()
        self._backoff.hold(now, server_now, seconds, closure)
        return self._key_not_sent()

    def _key_not_sent(self) -> APIError:
        """The error for a call while this key backs off: the type of the answer that
        made it back off, saying what it was and when the key is sent again."""
        backoff, server_clock = self._backoff, self.limiter.server_clock
        seconds = max(0.0, backoff.holds_until - self.limiter.clock.monotonic())
        retrying = (
            f"retrying it at {server_clock.local_time(backoff.retry_at_ms)} "
            f"({seconds:.1f} s from now)"
        )
        if backoff.code is None:
            what = (
                "BingX refused this key as it is (its key, secret, whitelist or permission) "
                "in another process sharing this limiter"
            )
        else:
            refused_at = server_clock.local_time(backoff.refused_at_ms)
            what = f"this key was refused with code {backoff.code} at {refused_at}"
        return key_not_sent(backoff.code, f"not sent: {what}; {retrying}")

    async def _hold_if_server_window_full(
        self, scope: Scope, remaining: int | None, expires_ms: int | None
    ) -> None:
        if remaining != 0 or expires_ms is None:
            return
        try:
            await self._hold_until_server_window_expires(scope, expires_ms)
        except LimiterUnavailableError as exc:
            # The answer is here and must not be lost: holding back is only a saving.
            log.warning("could not hold UID %s after BingX's rate header (%s)", scope.uid, exc)

    async def _hold_until_server_window_expires(self, scope: Scope, expires_ms: int) -> None:
        """BingX says the UID's window is full until `expires_ms`: when that is later than
        our own window can know of, hold the UID until then, but never longer than BingX's
        restrictions last: the header's format is undocumented, and one garbled value
        must not stall a UID (in Redis: everywhere) for years."""
        server_clock = self.limiter.server_clock
        seconds = server_clock.seconds_until(expires_ms)
        if seconds <= self.limiter.limits.per_uid.period:
            return
        held = min(seconds + GATE_SLACK_SECONDS, FIREWALL_BAN_SECONDS)
        await self.limiter.close_gate(
            scope.uid_gate,
            held,
            because=f"BingX's rate header {RATE_EXPIRE_HEADER} held UID {scope.uid}",
        )
        bound = "" if held > seconds else ", as long as BingX's restrictions last"
        log.warning(
            "BingX's rate headers say the window of UID %s is full until %s (%s: %d, %.1f s "
            "from now): holding UID %s until %s (%.1f s)%s",
            scope.uid,
            server_clock.local_time(expires_ms),
            RATE_EXPIRE_HEADER,
            expires_ms,
            seconds,
            scope.uid,
            server_clock.local_time(server_clock.now_ms() + int(held * 1000)),
            held,
            bound,
        )

    async def _after_refusal(self, scope: Scope, exc: RateLimitError, refusals: int) -> None:
        """Pause what BingX refused (the UID or this IP) exactly as long as it said, or,
        when it gave no time, as long as the window that was full can last.

        A time it gives is believed up to a day (`LONGEST_SERVER_PAUSE_SECONDS`): beyond
        that it is garbled, and honouring it would stall a UID or IP for good. A
        `Retry-After` shorter than `GATE_SLACK_SECONDS` (0 included) still pauses that
        long: the 429 said the IP's window was full now."""
        limiter, server_clock = self.limiter, self.limiter.server_clock
        limits = limiter.limits
        pauses = refusal_of(exc).pauses
        # The rows are read from these fields, so each test below also narrows the type.
        if pauses == "uid until its time" and exc.unblock_at_ms is not None:
            seconds = await self._hold_disabled_uid(scope, exc.unblock_at_ms)
            what = f"BingX disabled UID {scope.uid}"
        elif pauses == "ip as asked" and exc.retry_after is not None:
            seconds = min(max(exc.retry_after, GATE_SLACK_SECONDS), LONGEST_SERVER_PAUSE_SECONDS)
            what = f"BingX asked this IP ({scope.ip}) to wait {exc.retry_after:g} s"
            await limiter.close_gate(scope.ip_gate, seconds)
        elif pauses == "ip windows":
            seconds = limits.per_ip_endpoint.period
            what = f"BingX found the window of this IP ({scope.ip}) full"
            for window in scope.ip_windows:
                await limiter.fill_window(window)
        elif pauses == "ip for a ban":
            seconds = FIREWALL_BAN_SECONDS
            what = f"BingX blocked this IP ({scope.ip})"
            await limiter.close_gate(scope.ip_gate, seconds)
        else:  # a bare 100410: the UID's window was full, with requests not ours
            what = f"BingX found the window of UID {scope.uid} full of requests not sent here"
            seconds = limits.per_uid.period
            if refusals == 1:
                await limiter.fill_window(scope.uid_window)
            else:
                # Refused again: back off, so that refusals do not add up to a disabled UID.
                seconds *= min(2 ** (refusals - 1), 64)
                await limiter.close_gate(scope.uid_gate, seconds)
        seconds = max(seconds, GATE_SLACK_SECONDS)
        paused_until_ms = server_clock.now_ms() + int(seconds * 1000)
        if (exc.retry_after or 0) > LONGEST_SERVER_PAUSE_SECONDS or (
            exc.unblock_at_ms is not None and exc.unblock_at_ms > paused_until_ms
        ):
            what += ", believed for a day at most"
        if exc.unblock_at_ms is None or exc.unblock_at_ms > paused_until_ms:
            exc.unblock_at_ms = paused_until_ms  # none given, or more than a day
        said = f"code {exc.code}" if exc.code is not None else f"HTTP {exc.status_code}"
        if seconds - GATE_SLACK_SECONDS > self.max_wait:
            next_step = f"longer than max_wait ({self.max_wait:g} s), so calls fail until then"
        else:
            next_step = "its requests wait until then"
        exc.explain(
            f"{what} ({said}) until {server_clock.local_time(exc.unblock_at_ms)} "
            f"({seconds:.1f} s from now): {next_step}"
        )
        # Log text, not the exception: a handler that keeps records would keep its frames.
        log.warning("%s", str(exc))

    async def _hold_disabled_uid(self, scope: Scope, unblock_at_ms: int) -> float:
        """Close the UID's gate until BingX's `unblock_at_ms`, read on a clock measured
        since this answer came; returns the seconds from now it holds.

        A step of either clock since the last measurement (the server's back, ours
        forward) would open the gate early, and nothing else need have said so: a
        timestamp error would come from a request sent into the disabled period. So the
        gate closes at once on the clock as it stands, this process holds the UID's keys
        while the clock is measured (a gate cannot be shortened once the measurement says
        the period is over), and the gate is lengthened if the new offset says so.
        Answers that come while it is measured share the measurement."""
        limiter, server_clock = self.limiter, self.limiter.server_clock

        def seconds_left() -> float:
            seconds = server_clock.seconds_until(unblock_at_ms)
            return min(seconds, LONGEST_SERVER_PAUSE_SECONDS) + GATE_SLACK_SECONDS

        answered = limiter.clock.monotonic()
        held = seconds_left()
        async with limiter.holding(scope.uid_gate):
            await limiter.close_gate(scope.uid_gate, held)
            await self._sync_clock(stale_before=answered)
            seconds = seconds_left()
            left = held - (limiter.clock.monotonic() - answered)
            if seconds > left:
                await limiter.close_gate(scope.uid_gate, seconds)
        return max(seconds, left)

    def _seconds_until(self, exc: RateLimitError) -> float:
        if exc.unblock_at_ms is None:
            return 0.0
        return self.limiter.server_clock.seconds_until(exc.unblock_at_ms)

    def _not_sent(self, scope: Scope, closed: GateTooLong) -> APIError:
        server_clock = self.limiter.server_clock
        unblock_at_ms = server_clock.now_ms() + int(closed.seconds * 1000)
        because = self.limiter.closed_because(closed.gate, closed.seconds)
        if not because:
            ip = closed.gate == scope.ip_gate
            because = (
                f"BingX paused this IP ({scope.ip})" if ip else f"BingX paused UID {scope.uid}"
            )
        return RateLimitError(
            None,
            f"not sent: {because} until {server_clock.local_time(unblock_at_ms)} "
            f"({closed.seconds:.1f} s from now), longer than max_wait ({self.max_wait:g} s)",
            status_code=None,
            unblock_at_ms=unblock_at_ms,
        )

    def _budget_full(self, scope: Scope, full: ErrorBudgetFull) -> ErrorBudgetError:
        server_clock = self.limiter.server_clock
        unblock_at_ms = server_clock.now_ms() + int(full.seconds * 1000)
        until = f"{server_clock.local_time(unblock_at_ms)} ({full.seconds:.1f} s from now)"
        limit, period = full.rate.limit, full.rate.period
        if full.suspect:
            whole = self.limiter.limits.error_budget.limit
            budget = (
                "this key is not known to be good (new here, or its last answer was an "
                f"error), and its share of the error budget of {self._budget_owner(scope)} "
                f"({limit} of {whole} error replies in {period:g} s)"
            )
        else:
            budget = (
                f"the error budget of {self._budget_owner(scope)} ({limit} error replies in "
                f"{period:g} s, kept well under BingX's penalty for more than 20 in 480 s)"
            )
        if full.pending:
            what = (
                f"{budget} is held by requests still in flight, not answered within "
                f"max_wait ({self.max_wait:g} s)"
            )
            next_step = (
                "this call fails; the budget frees as they are answered (a success gives "
                f"its slot back), at the latest at {until}"
            )
        else:
            what = (
                f"{budget} is full of error replies (or of requests never answered, each "
                f"maybe one) until {until}"
            )
            next_step = (
                "keys known to be good go on with the rest; this one fails at once until then"
                if full.suspect
                else "its calls fail at once until then, none sent: fix the keys that fail"
            )
        return ErrorBudgetError(
            None, f"not sent: {what}: {next_step}", status_code=None, unblock_at_ms=unblock_at_ms
        )

    def _budget_owner(self, scope: Scope) -> str:
        """Whose error budget `scope` counts in, in words: a UID's, or its lookups'."""
        if scope.uid_window != self.limiter.scope("lookup", UID_PATH).uid_window:
            return f"UID {scope.uid}"
        if self._claimed_uid is None:
            return "the UID lookups of keys given no uid"
        return f"the UID lookups of keys claiming UID {self._claimed_uid}"

    async def _sync_clock(
        self, *, stale_before: float | None = None, proven_wrong: bool = False
    ) -> None:
        """Measure the offset to BingX's clock, once for everyone waiting on it.

        Without `stale_before` (monotonic), only if nobody has tried yet (before the first
        call); with it, only if the last measurement is older (every request in flight
        gets the same refusal, and one measurement answers them all). Concurrent calls
        going ahead on a wrong offset would each earn an error, and errors add up to a
        disabled period. `proven_wrong` (a timestamp error): the old offset is dropped even
        if measuring fails, so that the answers' own times stand in; otherwise a failed
        measurement leaves it in place.
        """
        server_clock = self.limiter.server_clock
        async with self.limiter.lock("server-time"):
            if stale_before is None and server_clock.attempted:
                return
            if stale_before is not None and server_clock.measured_at > stale_before:
                return
            if proven_wrong:
                server_clock.forget()  # the clocks jumped: the old offset is no guide
            await self._measure_server_time()
            # Not in a `finally`: a call cancelled while measuring leaves the clock
            # unmeasured, and the next call measures it, instead of trusting no offset.
            server_clock.attempted = True

    async def _measure_server_time(self) -> None:
        """Measure the offset to BingX's clock; failures leave the old offset in place."""
        server_clock, clock = self.limiter.server_clock, self.limiter.clock
        sent_ms = clock.wall_ms()
        answer = None
        try:
            answer = await self._transport.get(
                f"{self.base_url}{SERVER_TIME_PATH}", {}, self.timeout
            )
            server_ms = decode_envelope_data(
                answer.content, status_code=answer.status, headers=answer.headers, data=SERVER_TIME
            )
        except (httpx.HTTPError, BingXError) as exc:
            log.debug("could not read BingX's server time: %s", type(exc).__name__)
            if answer is not None and not server_clock.measured:
                # A failing endpoint's answer still has a `Date`, as any HTTP server's:
                # without it, each new process paid a timestamp error to learn the clock.
                server_clock.observe_date(answer.headers, sent_ms, clock.wall_ms())
            return
        # Measured because the last offset may be stale: the new sample replaces it, even
        # if its round trip was longer (the smallest uncertainty wins only among samples
        # taken since).
        server_clock.forget()
        server_clock.observe(server_ms, sent_ms, clock.wall_ms())
        log.debug("clock offset to %s: %+d ms", self.base_url, server_clock.offset_ms)

    def _log_retry(self, retry_state: RetryCallState) -> None:
        self.limiter.stats.retries += 1
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        log.info(
            "retrying (attempt %d) after %s", retry_state.attempt_number + 1, type(exc).__name__
        )


class _Attempt:
    """Whether an attempt has taken its slot (and so is on its way to being sent)."""

    __slots__ = ("slot_taken",)

    def __init__(self) -> None:
        self.slot_taken = False


class _Call:
    """What one call's attempts remember of each other."""

    __slots__ = ("refusals", "timestamp_retried")

    def __init__(self) -> None:
        self.refusals = 0
        self.timestamp_retried = False


def _server_window(headers: Mapping[str, str]) -> tuple[int | None, int | None]:
    """BingX's `X-RateLimit-Requests-Remain` and `-Expire`, when readable: a count, and
    epoch milliseconds on the server's clock. Their format is undocumented, so anything
    else reads as absent and changes nothing."""
    remain, expire = headers.get(RATE_REMAIN_HEADER), headers.get(RATE_EXPIRE_HEADER)
    remaining = int(remain) if remain is not None and _digits(remain) else None
    expires_ms = None
    if expire is not None and _digits(expire) and len(expire) == 13:
        expires_ms = int(expire)
    return remaining, expires_ms


def _digits(text: str) -> bool:
    return text.isascii() and text.isdecimal()


def _wait_before_retry(retry_state: RetryCallState) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, RateLimitError | TimestampError):
        return 0.0  # the gate, or the corrected clock, is the whole remedy
    return float(_busy_backoff(retry_state))


def _transport_error(exc: APIConnectionError, path: str) -> APIConnectionError:
    # The transport's message names the error type only (its URL carries a signature).
    return type(exc)(f"GET {path}: {exc}")
