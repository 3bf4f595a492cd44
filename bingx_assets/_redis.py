"""Limiter state in Redis, so that processes and hosts share one budget per UID and per IP.

The same windows and gates as `MemoryBackend`, kept in Redis and checked and updated
by Lua scripts in one step each, on the Redis server's clock (`TIME`): hosts whose
clocks disagree still agree on every window. A window is a sorted set of slots scored
by their anchor; a gate is a key holding the time it opens. Every key is under
`namespace` and expires by itself.

Answers in this process wake its waiters at once; answers in other processes are seen
by polling every `poll_interval` while a slot that blocks us is still in flight.

When Redis cannot be reached, `LimiterUnavailableError` is raised before anything is
sent: never unlimited sending.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ._exceptions import LimiterUnavailableError
from ._limits import BOUNDARY, GateClosed, Permit, Scope

__all__ = ["RedisBackend"]

log = logging.getLogger("bingx_assets")

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: gate, window... ; ARGV: margin, member, boundary, poll, then limit, period per window.
# Numbers go back as strings: Redis would truncate Lua numbers to integers.
_ACQUIRE = (
    _NOW
    + """
local gate = tonumber(redis.call('GET', KEYS[1]) or '0')
if gate > now then return {'gate', tostring(gate - now)} end
local margin, member = tonumber(ARGV[1]), ARGV[2]
local boundary, poll = tonumber(ARGV[3]), tonumber(ARGV[4])
local wait, in_flight = 0, false
for i = 2, #KEYS do
  local limit, period = tonumber(ARGV[3 + 2 * (i - 1)]), tonumber(ARGV[4 + 2 * (i - 1)])
  local expiry = period + boundary
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - expiry)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local freeing = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local anchor = tonumber(freeing[2])
    if anchor + expiry - now > wait then
      wait, in_flight = anchor + expiry - now, anchor > now
    end
  end
end
if wait > 0 then
  if in_flight and poll < wait then wait = poll end
  return {'wait', tostring(wait)}
end
for i = 2, #KEYS do
  local period = tonumber(ARGV[4 + 2 * (i - 1)])
  redis.call('ZADD', KEYS[i], now + margin, member)
  redis.call('PEXPIRE', KEYS[i], math.ceil((period + margin + boundary) * 1000) + 1000)
end
return {'ok', tostring(now)}
"""
)

# KEYS: windows; ARGV: member, 'LT' (answered: no later than now) or 'GT' (not answered).
_SETTLE = (
    _NOW
    + """
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', ARGV[2], now, ARGV[1])
end
return 1
"""
)

# KEYS: gate; ARGV: seconds. A gate only ever moves later.
_CLOSE_GATE = (
    _NOW
    + """
local opens = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if opens > current then
  redis.call('SET', KEYS[1], tostring(opens), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
end
return 1
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
    """

    def __init__(
        self, redis: Redis, *, namespace: str = "bingx-assets", poll_interval: float = 0.05
    ) -> None:
        self.redis = redis
        self._owns_redis = False
        self.namespace = namespace
        self.poll_interval = poll_interval
        self._acquire = redis.register_script(_ACQUIRE)
        self._settle = redis.register_script(_SETTLE)
        self._close_gate = redis.register_script(_CLOSE_GATE)
        self._gate_remaining = redis.register_script(_GATE_REMAINING)
        self._members = (f"{os.getpid()}-{os.urandom(4).hex()}-{n}" for n in itertools.count())

    @classmethod
    def from_url(cls, url: str, *, namespace: str = "bingx-assets") -> RedisBackend:
        """A backend on a new `redis.asyncio.Redis` client for `url`, closed by `aclose`."""
        backend = cls(Redis.from_url(url), namespace=namespace)
        backend._owns_redis = True
        return backend

    async def aclose(self) -> None:
        """Close the Redis client `from_url` opened (one passed in is left open)."""
        if self._owns_redis:
            await self.redis.aclose()

    def __repr__(self) -> str:
        return f"RedisBackend(namespace={self.namespace!r})"

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    async def try_acquire(self, scope: Scope, margin: float) -> Permit | float | GateClosed:
        windows = [self._key(name) for name, _ in scope.windows]
        args: list[str | float] = [margin, next(self._members), BOUNDARY, self.poll_interval]
        for _, rate in scope.windows:
            args += [rate.limit, rate.period]
        kind, value = await self._run(
            self._acquire, [self._key(scope.gate), *windows], args, "take a slot"
        )
        if kind == "gate":
            return GateClosed(float(value))
        if kind == "wait":
            return float(value)
        return _RedisPermit(self, windows, str(args[1]))

    async def close_gate(self, gate: str, seconds: float) -> None:
        await self._run(self._close_gate, [self._key(gate)], [seconds], "close a gate")

    async def gate_remaining(self, gate: str) -> float:
        return float(await self._run(self._gate_remaining, [self._key(gate)], [], "read a gate"))

    async def settle(self, windows: list[str], member: str, answered: bool) -> None:
        mode = "LT" if answered else "GT"
        await self._run(self._settle, windows, [member, mode], "settle a slot")

    async def _run(
        self, script: object, keys: Sequence[str], args: Sequence[str | float], what: str
    ) -> Any:
        try:
            answer = await script(keys=keys, args=args)  # type: ignore[operator]
        except (RedisError, OSError) as exc:
            raise LimiterUnavailableError(
                f"the Redis limiter could not {what} ({type(exc).__name__}); nothing was sent"
            ) from exc
        return _text(answer)


def _text(answer: object) -> object:
    if isinstance(answer, bytes):
        return answer.decode()
    if isinstance(answer, list):
        return [_text(a) for a in answer]
    return answer


class _RedisPermit:
    __slots__ = ("_backend", "_member", "_windows")

    def __init__(self, backend: RedisBackend, windows: list[str], member: str) -> None:
        self._backend, self._windows, self._member = backend, windows, member

    async def settle(self, *, answered: bool) -> None:
        try:
            await self._backend.settle(self._windows, self._member, answered)
        except LimiterUnavailableError as exc:
            # The request is done; its slot keeps counting from send + margin.
            log.warning("%s", str(exc))
