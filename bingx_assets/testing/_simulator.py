"""An in-process BingX for the asset overview, strict the way the real one is."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import string
from collections import defaultdict, deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import msgspec

from .._clock import Clock, SystemClock
from .._constants import (
    API_KEY_HEADER,
    ASSET_OVERVIEW_PATH,
    MAX_RECV_WINDOW_MS,
    RATE_EXPIRE_HEADER,
    RATE_REMAIN_HEADER,
    SERVER_TIME_PATH,
    UID_PATH,
)
from .._limiter import Rate, RateLimits
from .._signing import sign
from .._simulated import simulated_transport
from ._faults import Fault
from ._messages import (
    MSG_BAD_KEY,
    MSG_BAD_SIGNATURE,
    MSG_DISABLED,
    MSG_NULL_SIGNATURE,
    MSG_PERMISSION,
    MSG_RATE_LIMITED,
    MSG_TIMESTAMP,
    MSG_TIMESTAMP_INVALID,
    MSG_TOO_MANY_ERRORS,
    MSG_WHITELIST,
)

__all__ = ["BingXSimulator", "LoopClock", "ReceivedRequest", "SimKey"]

GROUP_2_PATHS = frozenset({ASSET_OVERVIEW_PATH, UID_PATH})
ACCOUNT_TYPES = frozenset(
    {"spot", "sopt", "stdFutures", "coinMPerp", "USDTMPerp", "copyTrading", "grid", "eran", "c2c"}
)
# The live capture of 2025-03, with made-up amounts.
DEFAULT_BALANCES: Mapping[str, str] = {
    "sopt": "80.00",
    "stdFutures": "0.00000000",
    "coinMPerp": "0",
    "USDTMPerp": "1523.44710000",
    "copyTrading": "0.00",
    "grid": "0",
    "eran": "12.5",
}
_ALPHABET = string.ascii_letters + string.digits
# `bingx-assets simulate` shows these: its user sees the server's refusals nowhere else.
log = logging.getLogger("bingx_assets.testing")


class LoopClock:
    """A clock that reads the event loop's time, wall clock included.

    Under a fast-forwarding loop (`looptime` in tests) sleeps cost no real time and the
    client, the simulator and the wall clock all move together.
    """

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:
        self.start_ms = start_ms

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    def wall_ms(self) -> int:
        return self.start_ms + round(self.monotonic() * 1000)


@dataclass
class SimKey:
    """One API key the simulator knows."""

    api_key: str
    secret_key: str = field(repr=False)
    uid: int
    balances: dict[str, str]
    can_read: bool = True
    ip_whitelist: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the server saw it."""

    arrived: float
    """Server monotonic seconds at arrival (after network jitter)."""
    server_ms: int
    path: str
    api_key: str | None
    uid: int | None
    query: str
    status: int
    code: int | None
    msg: str
    disabled_until: int | None
    """The end (server ms) of the disabled period it arrived in, if its UID was in one."""
    sent: float = 0.0
    """Server monotonic seconds when the client handed it over (before network delay)."""
    injected: bool = False
    """Answered by a scripted `Fault`, not by the simulator's own rules."""
    client_ip: str = "127.0.0.1"
    """The address it came from: the connection's peer when served by `SimulatorServer`."""
    answered: float | None = None
    """Server monotonic seconds when its answer left (later than `arrived` for a
    `Fault.slow`); None when it got none (a reset, a timeout)."""

    @property
    def while_disabled(self) -> bool:
        """It arrived while its UID was disabled: a client should do this only until it
        has heard of the period."""
        return self.disabled_until is not None


class _Envelope(msgspec.Struct, omit_defaults=True):
    code: int | str
    msg: str = ""
    timestamp: int | None = None
    data: object = None


class _Answer(Exception):
    """Control flow inside the simulator: the answer to send."""

    def __init__(
        self, code: int, msg: str, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status, self.headers = code, msg, status, headers or {}


class _Windows:
    """Arrival times per key, for strict sliding-window counting."""

    def __init__(self) -> None:
        self._arrivals: dict[str, deque[float]] = {}

    def add(self, key: str, now: float, rate: Rate) -> int:
        """Record an arrival; the count in [now - period, now], this one included."""
        arrivals = self._arrivals.setdefault(key, deque())
        arrivals.append(now)
        while arrivals and arrivals[0] < now - rate.period:
            arrivals.popleft()
        return len(arrivals)

    def oldest(self, key: str) -> float:
        return self._arrivals[key][0]

    def free_in(self, key: str, now: float, rate: Rate) -> float:
        arrivals = self._arrivals.get(key)
        if not arrivals or len(arrivals) < rate.limit:
            return 0.0
        return max(0.0, arrivals[-rate.limit] + rate.period - now)


class BingXSimulator:
    """A fake BingX for the asset overview, usable as an httpx transport.

    It checks what BingX checks (API key header, signature over the exact query string,
    `timestamp` within `recvWindow` of its own clock, parameters) and answers with
    BingX's envelopes and messages. It enforces BingX's limits strictly: sliding
    windows per UID and endpoint and per IP (the request's source address, as
    `SimulatorServer` sees it; `client_ip` in process), counted on arrival after `jitter`;
    too many rejections or errors disable the UID's endpoint for `disable_seconds`,
    answered with the two 100410 message forms. `requests` records every request as
    the server saw it.

    ```python
    sim = BingXSimulator()
    key = sim.add_key(uid=1001)
    async with AssetsClient(key.api_key, key.secret_key, http_client=sim.http_client()) as c:
        print(await c.asset_overview())
    ```
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        limits: RateLimits | None = None,
        skew_ms: int = 0,
        latency: float = 0.0,
        jitter: float = 0.0,
        arrival_delay: float = 0.0,
        client_ip: str = "127.0.0.1",
        rejections_before_disable: int = 5,
        error_limit: int = 20,
        error_period: float = 480.0,
        disable_seconds: float = 300.0,
        page_envelope: bool = False,
        string_codes: bool = False,
        rate_limit_headers: bool = True,
        counts_expired_requests: bool = False,
        date_header: bool = True,
        error_timestamps: bool = False,
        seed: int = 0,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.limits = limits if limits is not None else RateLimits()
        self.skew_ms = skew_ms
        """Server clock minus the client's wall clock, in ms. Change it to make the clock jump."""
        self.latency = latency
        """Seconds each way: before a request arrives, and before its answer does."""
        self.jitter = jitter
        """Up to this many more seconds (uniform, seeded) before each request arrives."""
        self.arrival_delay = arrival_delay
        """Seconds every request takes to arrive, on top of `latency`, with its answer
        back at once: a slow or cold path to the server that the client cannot see."""
        self.rate_limit_headers = rate_limit_headers
        self.counts_expired_requests = counts_expired_requests
        """Count a request for rate even when its `timestamp` is outside `recvWindow`.
        Off by default: the client's bound for a request it got no answer to rests on
        BingX refusing such a request before it counts it; on, that bound can fail."""
        """Send `X-RateLimit-Requests-Remain` / `-Expire` for the UID's window."""
        self.date_header = date_header
        """Send an HTTP `Date` header, as most HTTP servers do (in whole seconds)."""
        self.error_timestamps = error_timestamps
        """Put the envelope's `timestamp` on error answers too, not only on successes:
        BingX's pages show it on successes and say nothing of errors."""
        self.client_ip = client_ip
        """The source address of requests that do not come through `SimulatorServer`,
        which gives each request its connection's peer address instead."""
        self.rejections_before_disable = rejections_before_disable
        self.error_limit = error_limit
        self.error_period = error_period
        self.disable_seconds = disable_seconds
        self.page_envelope = page_envelope
        self.string_codes = string_codes
        self.requests: list[ReceivedRequest] = []
        self._rng = random.Random(seed)
        self._keys: dict[str, SimKey] = {}
        self._windows = _Windows()
        self._rejections = _Windows()
        self._errors = _Windows()
        self._disabled_until: dict[tuple[int, str], tuple[int, str]] = {}
        self._scripted: list[tuple[str, Fault]] = []
        self._late: defaultdict[str, deque[float]] = defaultdict(deque)
        self._in_transit: set[asyncio.Task[object]] = set()
        self._random_faults: tuple[float, tuple[Fault, ...]] = (0.0, ())

    # -- set-up -------------------------------------------------------------------

    def add_key(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        *,
        uid: int,
        balances: Mapping[str, str | Decimal] | None = None,
        can_read: bool = True,
        ip_whitelist: tuple[str, ...] | None = None,
    ) -> SimKey:
        """Register a key of `uid`; keys and secrets are made up when not given."""
        key = SimKey(
            api_key=api_key or self._token(),
            secret_key=secret_key or self._token(),
            uid=uid,
            balances={k: str(v) for k, v in (balances or DEFAULT_BALANCES).items()},
            can_read=can_read,
            ip_whitelist=ip_whitelist,
        )
        self._keys[key.api_key] = key
        return key

    def _token(self) -> str:
        return "".join(self._rng.choices(_ALPHABET, k=64))

    def disable(
        self,
        uid: int,
        seconds: float,
        *,
        path: str = ASSET_OVERVIEW_PATH,
        too_many_errors: bool = False,
    ) -> int:
        """Put `uid`'s `path` into a disabled period now; returns its end (server ms).

        Answers then carry the "unblocked after" message, or with `too_many_errors`
        the "can retry after time" one.
        """
        return self._disable(uid, path, seconds, code=100202 if too_many_errors else 100410)

    def inject(self, *faults: Fault, path: str = ASSET_OVERVIEW_PATH) -> None:
        """Answer the next requests to `path` with `faults`, one each, in order."""
        self._scripted.extend((path, fault) for fault in faults)

    def delay_next(self, count: int, seconds: float, *, path: str = ASSET_OVERVIEW_PATH) -> None:
        """The next `count` requests to `path` arrive `seconds` late, their answers on
        time: the cold handshakes of a fresh client, a queue, a retransmission."""
        self._late[path].extend([seconds] * count)

    def random_faults(self, probability: float, choices: Sequence[Fault]) -> None:
        """From now on, answer each asset-overview request with a random one of `choices`
        with `probability` (seeded: the same run gives the same faults)."""
        self._random_faults = (probability, tuple(choices))

    def _next_fault(self, path: str) -> Fault | None:
        for n, (fault_path, fault) in enumerate(self._scripted):
            if fault_path == path:
                del self._scripted[n]
                return fault
        probability, choices = self._random_faults
        if path == ASSET_OVERVIEW_PATH and choices and self._rng.random() < probability:
            return self._rng.choice(choices)
        return None

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport to this simulator; clients using it keep no files
        (no UID cache, an in-memory limiter: see `bingx_assets._simulated`)."""
        transport = httpx.MockTransport(self._handle_within_timeout)
        simulated_transport(transport)
        return transport

    async def _handle_within_timeout(self, request: httpx.Request) -> httpx.Response:
        """`handle`, bounded by the client's read timeout as a network would be."""
        timeout = request.extensions.get("timeout", {}).get("read")
        if timeout is None:
            return await self.handle(request)
        try:
            async with asyncio.timeout(timeout):
                return await self.handle(request)
        except TimeoutError:
            raise httpx.ReadTimeout("no answer in time", request=request) from None

    def _still_on_its_way(self, arriving: Coroutine[object, object, object]) -> None:
        """A request its client gave up on (a timeout, a cancellation) still arrives."""
        task = asyncio.ensure_future(arriving)
        self._in_transit.add(task)
        task.add_done_callback(self._arrived)

    def _arrived(self, task: asyncio.Task[object]) -> None:
        self._in_transit.discard(task)
        if not task.cancelled():
            task.exception()  # an answer nobody waits for any more

    async def settle(self) -> None:
        """Wait until the requests that clients gave up on have arrived and been served."""
        while self._in_transit:
            await asyncio.gather(*self._in_transit, return_exceptions=True)

    def http_client(self, **kwargs: object) -> httpx.AsyncClient:
        """An `httpx.AsyncClient` whose requests all go to this simulator; clients given
        it without a limiter keep their limits in this process's memory."""
        return httpx.AsyncClient(transport=self.transport(), **kwargs)  # type: ignore[arg-type]

    # -- what tests read ----------------------------------------------------------

    def server_ms(self) -> int:
        return self.clock.wall_ms() + self.skew_ms

    @property
    def rejections(self) -> list[ReceivedRequest]:
        """Requests the simulator's own rules refused for rate: 100410 or HTTP 429."""
        return [
            r for r in self.requests if not r.injected and (r.code == 100410 or r.status == 429)
        ]

    def peak(
        self,
        *,
        path: str = ASSET_OVERVIEW_PATH,
        uid: int | None = None,
        client_ip: str | None = None,
        period: float = 1.0,
    ) -> int:
        """The most requests of `uid` (or of everyone), from `client_ip` (or from anywhere),
        to `path` in any `period` window."""
        times = sorted(
            r.arrived
            for r in self.requests
            if r.path == path
            and (uid is None or r.uid == uid)
            and (client_ip is None or r.client_ip == client_ip)
        )
        best, start = 0, 0
        for end, t in enumerate(times):
            while times[start] < t - period:
                start += 1
            best = max(best, end - start + 1)
        return best

    # -- serving ------------------------------------------------------------------

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one request as BingX would, network delays included."""
        fault, late = self._route(request)
        sent = self.clock.monotonic()
        if fault is not None and fault.raises is httpx.RemoteProtocolError:
            raise fault.raises("connection reset by peer", request=request)
        if late:
            try:
                await asyncio.sleep(late)
            except asyncio.CancelledError:
                left = sent + late - self.clock.monotonic()
                self._still_on_its_way(self._arrive_later(request, fault, sent, left))
                raise
        return await self._arrive(request, fault, sent)

    def _route(self, request: httpx.Request) -> tuple[Fault | None, float]:
        """What happens to `request` on its way: a fault, and how late it arrives."""
        fault = self._next_fault(request.url.path)
        scripted = self._late[request.url.path]
        late = self.latency + self.arrival_delay + (scripted.popleft() if scripted else 0.0)
        if self.jitter:
            late += self._rng.uniform(0, self.jitter)
        return fault, late

    async def _arrive_later(
        self, request: httpx.Request, fault: Fault | None, sent: float, seconds: float
    ) -> None:
        await asyncio.sleep(max(0.0, seconds))
        await self._arrive(request, fault, sent)

    async def _arrive(
        self, request: httpx.Request, fault: Fault | None, sent: float
    ) -> httpx.Response:
        arrived, server_ms = self.clock.monotonic(), self.server_ms()
        path = request.url.path
        query = request.url.query.decode("ascii", "replace")
        key = self._keys.get(request.headers.get(API_KEY_HEADER, ""))
        uid = key.uid if key else None
        client_ip: str = request.extensions.get("client_ip", self.client_ip)
        disabled = self._disabled_now(server_ms).get((uid, path)) if uid is not None else None
        disabled_until = disabled[0] if disabled is not None else None

        def record(
            status: int, code: int | None, msg: str, injected: bool, answered: bool = True
        ) -> None:
            self.requests.append(
                ReceivedRequest(
                    arrived, server_ms, path, key.api_key if key else None, uid, query,
                    status, code, msg, disabled_until, sent, injected, client_ip,
                    self.clock.monotonic() if answered else None,
                )
            )  # fmt: skip

        if fault is not None and not fault.passes_through:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            record(
                fault.status, None, "injected fault", injected=True,
                answered=fault.raises is None,
            )  # fmt: skip
            if fault.raises is not None:
                raise fault.raises("injected fault", request=request)
            return fault.response()
        status, code, msg = 200, 0, ""
        headers: dict[str, str] = {}
        data: object = None
        try:
            data = self._serve(path, query, key, client_ip, arrived, server_ms, headers)
        except _Answer as answer:
            status, code, msg = answer.status, answer.code, answer.msg
            headers.update(answer.headers)
            if uid is not None and status == 200:
                self._count_error(uid, path, code, arrived, server_ms)
        if fault is not None and fault.delay:
            # A slow server: judged and counted as it arrives, answered late. Counted after
            # the delay at its arrival time, it went into its windows behind requests that
            # came later, where it outlived its period and made refusals no server would.
            await asyncio.sleep(fault.delay)
        record(status, code if status == 200 else None, msg, injected=False)
        if code == 100410 or status == 429:
            reason = "disabled period" if disabled_until or "disabled" in msg else "over the limit"
            log.info("UID %s: refused %s (%s, %s)", uid, path, code or f"HTTP {status}", reason)
        # What any HTTP server adds, in whole seconds of the server's clock.
        if self.date_header:
            headers["date"] = email.utils.formatdate(server_ms // 1000, usegmt=True)
        if self.latency:
            await asyncio.sleep(self.latency)
        if status != 200:
            return httpx.Response(status, text=msg, headers=headers)
        body = _Envelope(
            code=str(code) if self.string_codes else code,
            msg=msg,
            timestamp=server_ms if code == 0 or self.error_timestamps else None,
            data=data,
        )
        headers["content-type"] = "application/json"
        return httpx.Response(200, content=msgspec.json.encode(body), headers=headers)

    def _serve(
        self,
        path: str,
        query: str,
        key: SimKey | None,
        client_ip: str,
        now: float,
        server_ms: int,
        headers: dict[str, str],
    ) -> object:
        if path == SERVER_TIME_PATH:
            return {"serverTime": server_ms}
        if path not in GROUP_2_PATHS:
            raise _Answer(0, "<html><body><h1>404 Not Found</h1></body></html>", status=404)
        if not self.counts_expired_requests and self._expired(query, server_ms):
            raise _Answer(100421, MSG_TIMESTAMP)
        self._check_ip_windows(path, client_ip, now)
        if key is None:
            raise _Answer(100413, MSG_BAD_KEY)
        self._check_uid(key.uid, path, now, server_ms, headers)
        params = self._check_signature(query, key)
        self._check_time(params, server_ms)
        if key.ip_whitelist is not None and client_ip not in key.ip_whitelist:
            raise _Answer(100419, MSG_WHITELIST)
        if not key.can_read:
            raise _Answer(100004, MSG_PERMISSION)
        if path == UID_PATH:
            return {"uid": key.uid}
        return self._balances(key, params.get("accountType"))

    @staticmethod
    def _expired(query: str, server_ms: int) -> bool:
        """A well-formed timestamp outside its recvWindow (the rest is checked later)."""
        params = dict(parse_qsl(query.rpartition("&signature=")[0]))
        timestamp, window = params.get("timestamp", ""), params.get("recvWindow", "5000")
        if not (timestamp.isdigit() and window.isdigit()):
            return False
        return abs(server_ms - int(timestamp)) > int(window)

    def _check_ip_windows(self, path: str, client_ip: str, now: float) -> None:
        for name, rate in (
            (f"ip:{client_ip}:{path}", self.limits.per_ip_endpoint),
            (f"ip:{client_ip}:group2", self.limits.per_ip_group),
        ):
            if self._windows.add(name, now, rate) > rate.limit:
                retry_after = self._windows.free_in(name, now, rate)
                raise _Answer(
                    0, "Too Many Requests", status=429,
                    headers={"Retry-After": f"{max(1, round(retry_after))}"},
                )  # fmt: skip

    def _check_uid(
        self, uid: int, path: str, now: float, server_ms: int, headers: dict[str, str]
    ) -> None:
        disabled = self._disabled_now(server_ms).get((uid, path))
        if disabled is not None:
            # Sending during a disabled period counts against the UID again.
            until, message = disabled
            raise _Answer(100410, message)
        rate = self.limits.per_uid
        window = f"uid:{uid}:{path}"
        count = self._windows.add(window, now, rate)
        if self.rate_limit_headers:
            oldest = self._windows.oldest(window)
            headers[RATE_REMAIN_HEADER] = str(max(0, rate.limit - count))
            expires = server_ms + round((oldest + rate.period - now) * 1000)
            headers[RATE_EXPIRE_HEADER] = str(expires)
        if count > rate.limit:
            recent = self._rejections.add(f"{uid}:{path}", now, Rate(1_000_000, 60.0))
            if recent >= self.rejections_before_disable:
                until = self._disable(uid, path, self.disable_seconds, code=100410)
                raise _Answer(100410, MSG_DISABLED.format(until=until))
            raise _Answer(100410, MSG_RATE_LIMITED)

    def _check_signature(self, query: str, key: SimKey) -> dict[str, str]:
        signed, sep, signature = query.rpartition("&signature=")
        if not sep or not signature:
            raise _Answer(100412, MSG_NULL_SIGNATURE)
        if sign(key.secret_key.encode(), signed) != signature:
            raise _Answer(100001, MSG_BAD_SIGNATURE)
        return dict(parse_qsl(signed, keep_blank_values=True))

    def _check_time(self, params: Mapping[str, str], server_ms: int) -> None:
        timestamp = params.get("timestamp")
        if not timestamp:
            raise _Answer(100421, MSG_TIMESTAMP)
        if not timestamp.isdigit():
            raise _Answer(80014, MSG_TIMESTAMP_INVALID)
        recv_window = params.get("recvWindow", "5000")
        if not recv_window.isdigit() or not 0 < int(recv_window) <= MAX_RECV_WINDOW_MS:
            raise _Answer(100400, f"Invalid parameters, recvWindow: {recv_window}")
        if abs(server_ms - int(timestamp)) > int(recv_window):
            raise _Answer(100421, MSG_TIMESTAMP)

    def _balances(self, key: SimKey, account_type: str | None) -> object:
        if account_type is not None and account_type not in ACCOUNT_TYPES:
            raise _Answer(100400, f"Invalid parameters, accountType: {account_type}")
        wanted = {"spot": "sopt"}.get(account_type or "", account_type)
        rows = [
            {"accountType": name, "usdtBalance": value}
            for name, value in key.balances.items()
            if wanted is None or name == wanted
        ]
        if self.page_envelope:
            return {"result": rows, "pageId": 1, "total": len(rows)}
        return rows

    # -- disabled periods ---------------------------------------------------------

    def _disabled_now(self, server_ms: int) -> dict[tuple[int, str], tuple[int, str]]:
        expired = [k for k, (until, _) in self._disabled_until.items() if until <= server_ms]
        for k in expired:
            del self._disabled_until[k]
        return self._disabled_until

    def _disable(self, uid: int, path: str, seconds: float, *, code: int) -> int:
        until = self.server_ms() + round(seconds * 1000)
        if code == 100410:
            message = MSG_DISABLED.format(until=until)
        else:
            message = MSG_TOO_MANY_ERRORS.format(
                limit=self.error_limit, code=code, period_ms=round(self.error_period * 1000),
                until=until,
            )  # fmt: skip
        self._disabled_until[(uid, path)] = (until, message)
        log.info("UID %s: disabled %s for %g s, until server time %d ms", uid, path, seconds, until)
        return until

    def _count_error(self, uid: int, path: str, code: int, now: float, server_ms: int) -> None:
        if (uid, path) in self._disabled_now(server_ms):
            return
        rate = Rate(self.error_limit, self.error_period)
        if self._errors.add(f"{uid}:{path}", now, rate) > rate.limit:
            self._disable(uid, path, self.disable_seconds, code=code)
