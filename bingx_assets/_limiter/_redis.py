"""Limiter state in Redis, so that processes and hosts share one budget per UID and per IP.

The same windows, error budgets and gates as `MemoryBackend`, kept in Redis and checked and updated
by Lua scripts in one step each, on the Redis server's clock (`TIME`): hosts whose
clocks disagree still agree on every window. A window is a sorted set of slots scored
by their anchor; a gate is a key holding the time it opens, and beside it its latest
closure (`<gate>:closure`: when it is forgotten, its length and code). Every key is under
`namespace` and expires by itself.

Answers in this process wake its waiters at once; answers in other processes are seen
by polling every `poll_interval` while a slot that blocks us is still in flight. An
answer that only frees is recorded by the next acquire's script, in its round trip (a
round trip is most of a call's cost in Redis), or alone 5 ms later if none comes: until
then its slots count longer, never shorter.

When Redis cannot be reached, `LimiterUnavailableError` is raised before anything is
sent: never unlimited sending.

On a Redis Cluster a script may only touch keys of one hash slot, and acquiring takes a
slot in the UID's and the IP's windows in one script. The UID's windows are shared
across IPs, so no tag narrower than the namespace keeps them all together: every key is
`{namespace}:...`, one slot, one master. That master carries the whole limiter, which
BingX's own limits keep small (at most 200 acquires a second per egress IP).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterCrossSlotError,
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._exceptions import ConfigurationError, LimiterUnavailableError
from .._printable import has_user_part, printable
from ._backend import BOUNDARY, Blocked, Closure, GateClosed, Permit, Rate, Scope

__all__ = ["RedisBackend", "RedisClient"]

RedisClient: TypeAlias = Redis | RedisCluster

log = logging.getLogger("bingx_assets")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: gates..., windows... (the UID's first, the error budget last), the UID window's
# counter of slots taken.
# ARGV: gate count, in_flight, horizon, member, then one string of numbers: boundary,
# poll, and limit, period per window (one argument, not 2 + 2 per window: the client's
# encoding of each argument was a tenth of its CPU for the call).
# Numbers go back as strings: Redis would truncate Lua numbers to integers.
_ACQUIRE_BODY = """
local gates = tonumber(ARGV[1])
for g = 1, gates do
  local opens = tonumber(redis.call('GET', KEYS[g]) or '0')
  if opens > now then return {'gate', tostring(opens - now), tostring(g)} end
end
local in_flight, horizon, member = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local fixed = {}
for number in string.gmatch(ARGV[5], '%S+') do fixed[#fixed + 1] = tonumber(number) end
local boundary, poll = fixed[1], fixed[2]
local first, last = gates + 1, #KEYS - 1
local wait, blocking, full, full_limit = 0, 0, 0, 0
for i = first, last do
  local n = i - gates
  local limit, period = fixed[1 + 2 * n], fixed[2 + 2 * n]
  local expiry = period + boundary
  -- The nanosecond forgives float error in `anchor + period`, as in memory.
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - expiry + 1e-9)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local freeing = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local anchor = tonumber(freeing[2])
    if anchor + expiry - now > wait then
      wait, blocking, full, full_limit = anchor + expiry - now, n, i, limit
    end
  end
end
if wait > 0 then
  -- Fewer than the limit answered (an answered slot is anchored at its answer, one in
  -- flight after now): an answer, maybe in another process, may free it: look again soon.
  local oldest = redis.call('ZRANGE', KEYS[full], full_limit - 1, full_limit - 1, 'WITHSCORES')
  local pending = tonumber(oldest[2]) > now + 1e-9
  if pending and poll < wait then wait = poll end
  return {'wait', tostring(wait), tostring(blocking), pending and '1' or '0'}
end
for i = first, last do
  local n = i - gates
  local period = fixed[2 + 2 * n]
  redis.call('ZADD', KEYS[i], now + in_flight, member)
  redis.call('PEXPIRE', KEYS[i], math.ceil((period + horizon + boundary) * 1000) + 1000)
end
local uid_period = fixed[4]
local taken = redis.call('INCR', KEYS[#KEYS])
redis.call('PEXPIRE', KEYS[#KEYS], math.ceil((uid_period + horizon) * 1000) + 1000)
local oldest = '(' .. tostring(now - uid_period - boundary)
local alive = redis.call('ZCOUNT', KEYS[first], oldest, '+inf')
return {'ok', tostring(now), tostring(alive), tostring(taken)}
"""
_ACQUIRE = _NOW + _ACQUIRE_BODY

# KEYS: windows... (the error budget last, if any), the UID window's counter.
# ARGV: member, score ('now', or an absolute time for a request given up on), then the
# server's count of the UID window (-1: none), alive and taken when acquired, period,
# and whether the answer succeeded ('1': the error budget's slot is given back).
_SETTLE_BODY = """
local mode, score = 'LT', now
if ARGV[2] ~= 'now' then mode, score = 'GT', tonumber(ARGV[2]) end
for i = 1, #KEYS - 1 do
  redis.call('ZADD', KEYS[i], 'XX', mode, score, ARGV[1])
end
if ARGV[7] == '1' then redis.call('ZREM', KEYS[#KEYS - 1], ARGV[1]) end
local server_count = tonumber(ARGV[3])
if server_count < 0 then return 0 end
local taken = tonumber(redis.call('GET', KEYS[#KEYS]) or ARGV[5])
local missing = server_count - (tonumber(ARGV[4]) + taken - tonumber(ARGV[5]))
for p = 1, missing do
  redis.call('ZADD', KEYS[1], now, ARGV[1] .. ':p' .. p)
end
if missing > 0 then
  redis.call('INCRBY', KEYS[#KEYS], missing)
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[6]) + 1) * 1000) + 1000)
  return missing
end
return 0
"""
_SETTLE = _NOW + _SETTLE_BODY
_SETTLE_ARGS = 7

# Settles not yet recorded, then an acquire: one round trip for both, which is most of
# what a call costs in Redis. KEYS: each settle's keys, then the acquire's. ARGV: how
# many settles, then each one's key count and its arguments, then the acquire's (none:
# the settles alone).
_SETTLE_THEN_ACQUIRE = (
    _NOW
    + "local function settle(KEYS, ARGV)\n"
    + _SETTLE_BODY
    + "end\nlocal function acquire(KEYS, ARGV)\n"
    + _ACQUIRE_BODY
    + """end
local k, a = 0, 1
for _ = 1, tonumber(ARGV[1]) do
  local count, keys, args = tonumber(ARGV[a + 1]), {}, {}
  for i = 1, count do keys[i] = KEYS[k + i] end
  for i = 1, """
    + str(_SETTLE_ARGS)
    + """ do args[i] = ARGV[a + 1 + i] end
  settle(keys, args)
  k, a = k + count, a + 1 + """
    + str(_SETTLE_ARGS)
    + """
end
if a == #ARGV then return 0 end  -- settles only
local keys, args = {}, {}
for i = k + 1, #KEYS do keys[#keys + 1] = KEYS[i] end
for i = a + 1, #ARGV do args[#args + 1] = ARGV[i] end
return acquire(keys, args)
"""
)

# KEYS: window, its counter; ARGV: count, period, boundary, member prefix.
_OCCUPY = (
    _NOW
    + """
local count, period, boundary = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local alive = redis.call('ZCOUNT', KEYS[1], '(' .. tostring(now - period - boundary), '+inf')
local missing = count - alive
for p = 1, missing do
  redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':o' .. p)
end
if missing > 0 then
  redis.call('INCRBY', KEYS[2], missing)
  redis.call('PEXPIRE', KEYS[1], math.ceil((period + boundary) * 1000) + 1000)
  return missing
end
return 0
"""
)

# KEYS: gate, its closure; ARGV: seconds, code ('' for none), remember. A gate only ever
# moves later; a closure that moves it is recorded, read until `remember` after it opens.
_CLOSE_GATE = (
    _NOW
    + """
local seconds, remember = tonumber(ARGV[1]), tonumber(ARGV[3])
local opens = now + seconds
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if opens > current then
  redis.call('SET', KEYS[1], tostring(opens), 'PX', math.ceil(seconds * 1000) + 1000)
  local closure = tostring(opens + remember) .. ' ' .. tostring(seconds) .. ' ' .. ARGV[2]
  redis.call('SET', KEYS[2], closure, 'PX', math.ceil((seconds + remember) * 1000) + 1000)
end
return 1
"""
)

# KEYS: a gate's closure. Its key expires on Redis's clock; the time it is forgotten is
# kept in it too, so that it is read on the same clock as the gates.
_CLOSURE = (
    _NOW
    + """
local closure = redis.call('GET', KEYS[1])
if not closure then return false end
local forgotten, rest = string.match(closure, '^(%S+) (.*)$')
if tonumber(forgotten) <= now then return false end
return rest
"""
)

_GATE_REMAINING = (
    _NOW
    + """
local gate = tonumber(redis.call('GET', KEYS[1]) or '0')
return tostring(math.max(0, gate - now))
"""
)


class RedisBackend:
    """Limiter state in Redis: give it to `RateLimiter(backend=...)` in every process.

    ```python
    backend = RedisBackend.from_url("redis://localhost:6379/0")
    limiter = RateLimiter(backend=backend, ip="egress-1")
    ```

    Processes behind one egress IP must use the same `ip` name (and namespace);
    hosts with different egress IPs sharing one Redis must use different names.
    `redis` is a `redis.asyncio.Redis` or, for a Redis Cluster, a `RedisCluster`.
    """

    def __init__(
        self, redis: RedisClient, *, namespace: str = "bingx-assets", poll_interval: float = 0.05
    ) -> None:
        self.redis = redis
        self._owns_redis = False
        self.namespace = namespace
        if isinstance(redis, RedisCluster):
            if not namespace or "{" in namespace or "}" in namespace:
                raise ConfigurationError(
                    f"a Redis Cluster namespace must be non-empty and without braces, "
                    f"not {namespace!r}: it becomes the hash tag {{namespace}} of every key"
                )
            self._prefix = f"{{{namespace}}}"
        else:
            # Unchanged for a single Redis, so that processes of older versions still
            # share windows with this one during a rolling upgrade.
            self._prefix = namespace
        self.poll_interval = poll_interval
        self._acquire = redis.register_script(_ACQUIRE)
        self._settle = redis.register_script(_SETTLE)
        self._settle_then_acquire = redis.register_script(_SETTLE_THEN_ACQUIRE)
        self._occupy = redis.register_script(_OCCUPY)
        self._close_gate = redis.register_script(_CLOSE_GATE)
        self._closure = redis.register_script(_CLOSURE)
        self._gate_remaining = redis.register_script(_GATE_REMAINING)
        self._members = (f"{os.getpid()}-{os.urandom(4).hex()}-{n}" for n in itertools.count())
        self._unsettled: list[tuple[list[str], list[str | float]]] = []
        """Settles not yet recorded (keys, args): sent with the next acquire, or alone."""
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the timer, the flush and `_at_loop_end` belong to."""
        self._at_loop_end: AsyncGenerator[None, None] | None = None

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "bingx-assets") -> RedisBackend:
        """A backend on a new client for `url`, closed by `aclose`.

        `redis://host:port/0`, `rediss://...` (TLS) or `unix:///path/redis.sock` for one
        Redis; add `?cluster=true` (`redis://host:port/?cluster=true`, any node of the
        cluster) for a Redis Cluster.
        """
        try:
            cluster, bare = _split_cluster_flag(url)
            redis: RedisClient = RedisCluster.from_url(bare) if cluster else Redis.from_url(bare)
        except (ValueError, RedisClusterException) as exc:
            reason = (
                "it does not parse (in a password, percent-encode '/', '?', '#' and '@')"
                if has_user_part(url)  # redis's words may quote pieces of the password
                else printable(str(exc), limit=200)
            )
            raise ConfigurationError(f"unusable Redis URL: {reason}") from None
        backend = cls(redis, namespace=namespace)
        backend._owns_redis = True
        return backend

    async def aclose(self) -> None:
        """Record the settles still waiting for a call to ride on, then close the Redis
        client `from_url` opened (one passed in is left open)."""
        await self._record_what_is_left()
        if self._owns_redis:
            await self.redis.aclose()

    async def _record_what_is_left(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._flush is not None and self._loop is asyncio.get_running_loop():
            await self._flush  # it says itself what it could not record
        if self._unsettled:
            try:
                await self._run_unsettled()
            except LimiterUnavailableError as exc:
                log.warning(
                    "the Redis limiter could not record %d answers before closing (%s): "
                    "each counts as unanswered, a possible error",
                    len(self._unsettled),
                    type(exc.__cause__).__name__,
                )

    def __repr__(self) -> str:
        return f"RedisBackend(namespace={self.namespace!r})"

    def _key(self, name: str) -> str:
        return f"{self._prefix}:{name}"

    async def try_acquire(
        self, scope: Scope, in_flight: float, horizon: float
    ) -> Permit | Blocked | GateClosed:
        gates = [self._key(name) for name in scope.gates]
        checked = scope.checked
        windows = [self._key(name) for name, _ in checked]
        member = next(self._members)
        numbers = " ".join(
            [repr(BOUNDARY), repr(self.poll_interval)]
            + [f"{rate.limit} {rate.period!r}" for _, rate in checked]
        )
        args: list[str | float] = [len(gates), in_flight, horizon, member, numbers]
        keys = [*gates, *windows, _counter(windows[0])]
        if self._unsettled:
            late, self._unsettled = self._unsettled, []
            settle_keys, settle_args = _carried(late)
            keys, args = settle_keys + keys, settle_args + args
            try:
                answer = await self._run(
                    self._settle_then_acquire, keys, args, "take a slot", _NOTHING_SENT
                )
            except BaseException:
                # Maybe not recorded: settling again is harmless. A cancelled caller (a
                # timeout around its call) is a failure too: dropped, the answers it
                # carried would count as errors for the whole error window.
                self._unsettled[:0] = late
                raise
        else:
            answer = await self._run(self._acquire, keys, args, "take a slot", _NOTHING_SENT)
        kind = answer[0]
        if kind == "gate":
            return GateClosed(float(answer[1]), scope.gates[int(answer[2]) - 1])
        if kind == "wait":
            return Blocked(float(answer[1]), checked[int(answer[2]) - 1][0], answer[3] == "1")
        acquired, alive, taken = float(answer[1]), int(answer[2]), int(answer[3])
        return _RedisPermit(
            self,
            windows,
            scope.errors is not None,
            member,
            scope.windows[0][1],
            acquired + horizon,
            in_flight < horizon,
            alive,
            taken,
        )

    async def occupy(self, window: str, rate: Rate, count: int) -> int:
        key = self._key(window)
        args: list[str | float] = [count, rate.period, BOUNDARY, next(self._members)]
        added = await self._run(
            self._occupy, [key, _counter(key)], args, "fill a window", _ANSWERED
        )
        return int(added)

    async def close_gate(
        self, gate: str, seconds: float, *, code: int | None = None, remember: float = 0.0
    ) -> None:
        keys = [self._key(gate), _closure_key(self._key(gate))]
        args: list[str | float] = [seconds, "" if code is None else str(code), remember]
        await self._run(self._close_gate, keys, args, "close a gate", _ANSWERED)

    async def closure(self, gate: str) -> Closure | None:
        key = _closure_key(self._key(gate))
        answer = await self._run(self._closure, [key], [], "read a gate", _NOTHING_SENT)
        if not answer:
            return None
        seconds, _, code = answer.partition(" ")
        return Closure(float(seconds), int(code) if code else None)

    async def gate_remaining(self, gate: str) -> float:
        answer = await self._run(
            self._gate_remaining, [self._key(gate)], [], "read a gate", _NOTHING_SENT
        )
        return float(answer)

    async def _run(
        self,
        script: object,
        keys: Sequence[str],
        args: Sequence[str | float],
        what: str,
        sent: str,
    ) -> Any:
        try:
            await self._send_waiting_settles()
            answer = await script(keys=keys, args=args)  # type: ignore[operator]
        except (RedisError, RedisClusterException, OSError) as exc:
            # Before sending, which step failed changes nothing for the caller: one line
            # per key must stay short. After an answer, a window or gate is not recorded.
            step = "" if sent == _NOTHING_SENT else f": could not {what}"
            raise LimiterUnavailableError(f"{_what_happened(exc)}{step}; {sent}") from exc
        return _text(answer)

    async def _send_waiting_settles(self) -> None:
        """Every settle not yet recorded, in one script (the settle-then-acquire one,
        with no acquire): a fan-out's last answers cost one round trip, not one each."""
        if not self._unsettled:
            return
        late, self._unsettled = self._unsettled, []
        keys, args = _carried(late)
        try:
            await self._settle_then_acquire(keys=keys, args=args)
        except _PASSING_FAILURES:
            self._unsettled[:0] = late  # the next call tries again
            raise

    async def _run_unsettled(self) -> None:
        try:
            await self._send_waiting_settles()
        except (RedisError, RedisClusterException, OSError) as exc:
            raise LimiterUnavailableError(
                f"{_what_happened(exc)}: could not settle a slot; {_ANSWERED}"
            ) from exc

    def _defer(self, keys: list[str], args: list[str | float]) -> None:
        """Record a settle with the next acquire, or alone if none came for a while."""
        self._unsettled.append((keys, args))
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new loop (the first, asyncio.run again): the last one's timer and flush
            # ended with it. A program that ends without `aclose` still records its
            # last answers as its loop shuts down: lost, each would count as an error
            # for the whole error window (a job run 11 times without `aclose` filled its
            # UID's budget of 10, BingX having seen no error).
            self._loop, self._flush_timer, self._flush = loop, None, None
            self._at_loop_end = _recorded_at_loop_end(self)
            with contextlib.suppress(StopIteration):
                # Taking its first step registers it with the loop, which closes it
                # (`loop.shutdown_asyncgens`) at its end.
                self._at_loop_end.asend(None).send(None)
        if self._flush_timer is None:
            self._flush_timer = loop.call_later(_SETTLES_WAIT, self._flush_if_unsettled)

    def _flush_if_unsettled(self) -> None:
        self._flush_timer = None
        if self._unsettled and self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._flush_unsettled())

    async def _flush_unsettled(self) -> None:
        try:
            await self._run_unsettled()
        except LimiterUnavailableError as exc:
            _say_unrecorded(exc)
        except Exception as exc:  # no caller to raise to; the next acquire tries again
            log.warning("the Redis limiter could not record an answer (%s)", type(exc).__name__)
        finally:
            self._flush = None


async def _recorded_at_loop_end(backend: RedisBackend) -> AsyncGenerator[None, None]:
    """Held by the backend; its loop closes it as it shuts down (the end of
    `asyncio.run`, after cancelling the tasks left), recording what is left."""
    try:
        yield
    finally:
        await backend._record_what_is_left()


# Failures a settle is kept through, for the next call: Redis unreachable, out of memory
# (maxmemory), read-only or moving its slots (a failover), or the caller cancelled. Any
# other (an error in the script itself) would fail alike on every call. Dropped after
# an OOM, a deferred success counted as an error for the whole error window.
_PASSING_FAILURES = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    OutOfMemoryError,
    ReadOnlyError,
    ClusterDownError,
    TryAgainError,
    AskError,
    RedisClusterException,
    asyncio.CancelledError,
)


# How long a settle waits to ride on this process's next acquire (one round trip for
# both) before it is sent alone: long enough for a busy caller's next call (its answer's
# body is read and decoded in between), short against `poll_interval`, the time in which
# other processes look again at a slot they wait for. Until it is recorded, the slot
# only counts longer (its horizon, a possible error), never shorter.
_SETTLES_WAIT = 0.005


def _say_unrecorded(exc: LimiterUnavailableError) -> None:
    log.warning(
        "the Redis limiter could not record an answer (%s); it is recorded once "
        "Redis answers again",
        type(exc.__cause__).__name__,
    )


# What the failure means for the request to BingX.
_NOTHING_SENT = "nothing was sent"
_ANSWERED = "the request had been sent and answered"

# The first match describes the failure. Kinds that only newer redis-py versions have
# (CrossSlotTransactionError, 6.1) are RedisClusterExceptions: the last cluster line
# describes them, and their own name follows.
_FAILURES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (
        ClusterCrossSlotError,
        "the script's keys are in several hash slots of a Redis Cluster "
        "(reach a cluster with cluster=true in the URL, or a RedisCluster client)",
    ),
    (ClusterDownError, "the Redis Cluster is down: a hash slot has no master serving it"),
    (SlotNotCoveredError, "no Redis Cluster node serves the limiter's hash slot"),
    (TryAgainError, "the Redis Cluster is moving the limiter's hash slot (TRYAGAIN)"),
    (
        AskError,
        "a Redis Cluster kept redirecting the call (MOVED/ASK): its slots are moving, "
        "or it was reached without cluster=true",
    ),
    (RedisClusterException, "the Redis Cluster client could not route the call"),
    (AuthenticationError, "Redis refused the credentials"),
    ((RedisTimeoutError, TimeoutError), "Redis did not answer in time"),
    ((RedisConnectionError, OSError), "Redis cannot be reached"),
    (ResponseError, "Redis answered with an error"),
)


def _what_happened(exc: BaseException) -> str:
    """Our description, then redis-py's first sentence, which names the node or the slot
    (its type when it says nothing; the error's cause keeps it too): one line, short
    enough to read in a table of keys that all failed alike."""
    if type(exc) is RedisClusterException and exc.__cause__ is not None:
        # "Redis Cluster cannot be connected" wraps why: say that.
        return _what_happened(exc.__cause__)
    description = next(
        (text for kinds, text in _FAILURES if isinstance(exc, kinds)), "the Redis client failed"
    )
    lines = str(exc).strip().splitlines()
    detail = lines[0].split(". ")[0].rstrip(".")[:100] if lines else ""
    return f"{description} ({detail or type(exc).__name__})"


def _split_cluster_flag(url: str) -> tuple[bool, str]:
    """Whether `url` asks for a Redis Cluster (`?cluster=true`), and the URL without
    that flag, which redis-py would pass to its connections as an unknown option."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    flags = [value.lower() for name, value in query if name == "cluster"]
    if not flags:
        return False, url
    if len(flags) > 1 or flags[0] not in ("true", "false"):
        raise ConfigurationError("a Redis URL's cluster option must be cluster=true or false")
    rest = urlencode([(name, value) for name, value in query if name != "cluster"])
    return flags[0] == "true", urlunsplit(parts._replace(query=rest))


def _text(answer: object) -> object:
    if isinstance(answer, bytes):
        return answer.decode()
    if isinstance(answer, list):
        return [_text(a) for a in answer]
    return answer


def _carried(
    late: list[tuple[list[str], list[str | float]]],
) -> tuple[list[str], list[str | float]]:
    """The keys and the leading arguments of `_SETTLE_THEN_ACQUIRE` for `late`."""
    keys = [key for settle_keys, _ in late for key in settle_keys]
    args: list[str | float] = [len(late)]
    for settle_keys, settle_args in late:
        args += (len(settle_keys), *settle_args)
    return keys, args


def _counter(window: str) -> str:
    return f"{window}:taken"


def _closure_key(gate: str) -> str:
    return f"{gate}:closure"


class _RedisPermit:
    __slots__ = (
        "_alive",
        "_backend",
        "_bet",
        "_error_budget",
        "_horizon_at",
        "_member",
        "_rate",
        "_taken",
        "_windows",
    )

    def __init__(
        self,
        backend: RedisBackend,
        windows: list[str],
        error_budget: bool,
        member: str,
        rate: Rate,
        horizon_at: float,
        bet: bool,
        alive: int,
        taken: int,
    ) -> None:
        self._backend, self._windows, self._member, self._rate = backend, windows, member, rate
        self._error_budget = error_budget  # the last of `windows`
        self._horizon_at, self._bet, self._alive, self._taken = horizon_at, bet, alive, taken

    async def settle(
        self, *, answered: bool, succeeded: bool = False, server_count: int | None = None
    ) -> bool:
        if not answered and not self._bet and not succeeded:
            return False  # the slot already counts until its horizon
        score: str | float = "now" if answered else self._horizon_at
        count = -1 if server_count is None else server_count
        give_back = "1" if succeeded and self._error_budget else "0"
        args = [self._member, score, count, self._alive, self._taken, self._rate.period]
        args.append(give_back)
        keys = [*self._windows, _counter(self._windows[0])]
        if (answered or not self._bet) and (server_count is None or server_count <= self._alive):
            # This settle only frees (an answer's anchor, a success's error-budget slot;
            # not a bet's horizon, nor someone else's requests: this client accounts for
            # at least `_alive`), so it may wait to ride on the next acquire's round trip.
            self._backend._defer(keys, args)
            return False
        try:
            added = await self._backend._run(
                self._backend._settle, keys, args, "settle a slot", _ANSWERED
            )
        except LimiterUnavailableError as exc:
            # Until then its slot counts until its horizon (later than its answer), and a
            # success's error-budget slot as an error: left so for the error window, two
            # blips over a round filled a UID's budget with errors BingX never saw. The
            # backend's next call records it first.
            _say_unrecorded(exc)
            self._backend._unsettled.append((keys, args))
            return False
        return int(added) > 0
