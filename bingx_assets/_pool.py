"""`AssetsPool`: many API keys read at once, as fast as the limits allow, none lost."""

from __future__ import annotations

import asyncio
import datetime
import math
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias, Unpack

import httpx

from ._client import AssetsClient
from ._constants import DEFAULT_CONCURRENCY
from ._credentials import Credentials, check_unique
from ._egress import Egress, check_routes
from ._exceptions import ConfigurationError
from ._limiter import RateLimiter
from ._models import AccountType, AssetOverview, parse_account_type
from ._options import ClientOptionArgs, ClientOptions, check_whole_number, resolve_options
from ._simulated import resolve_storage
from ._transports._http_clients import HttpClients, OwnsHttpClient
from ._uid_cache import open_uid_cache

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AssetsPool", "KeyFailed", "KeyOk", "KeyResult", "Snapshot"]


@dataclass(frozen=True, slots=True)
class KeyOk:
    """A key that was read: its `overview`."""

    label: str
    """The key's `Credentials.label`."""
    overview: AssetOverview
    """Its balances."""
    error: None = None
    """Always None, so that `result.error` reads on any `KeyResult`."""

    @property
    def ok(self) -> Literal[True]:
        return True


@dataclass(frozen=True, slots=True)
class KeyFailed:
    """A key that could not be read: the `error` that stopped it."""

    label: str
    """The key's `Credentials.label`."""
    error: Exception
    """Why: a `BingXError` (see Errors), or whatever else stopped the read."""
    overview: None = None
    """Always None, so that `result.overview` reads on any `KeyResult`."""
    retry_at: datetime.datetime | None = None
    """When the key is next sent, if not in the next round: the end of its back-off
    (a key BingX refused as it is), or of the pause a refusal for rate set."""

    @property
    def ok(self) -> Literal[False]:
        return False


KeyResult: TypeAlias = KeyOk | KeyFailed
"""One key's outcome, `KeyOk` or `KeyFailed`: `if result.ok:` tells them apart, for type
checkers too (`result.overview` is an `AssetOverview` there, and `result.error` one below)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One round of `AssetsPool.watch`: every key's result, in the order given."""

    round: int
    results: tuple[KeyResult, ...]
    changed: frozenset[str]
    """Labels whose balances differ from their last successful read (all, on round 1)."""


class AssetsPool(OwnsHttpClient):
    """Reads many API keys through one connection pool and one limiter.

    ```python
    async with AssetsPool(Credentials.from_file("keys.toml")) as pool:
        async for result in pool.stream():          # as each key completes
            print(result.label, result.overview.total if result.ok else result.error)
    ```

    Keys of one UID share its 5/s and its 100410 gate; different UIDs run side by side.
    At most `concurrency` keys are read at once, their UIDs interleaved so that one
    busy UID does not hold up the others. Every key ends with exactly one `KeyResult`;
    an error on one key never stops the rest. The same key or label twice raises
    `ConfigurationError` at construction.

    The settings every key's client uses are `ClientOptions`' fields, given as keywords
    (`AssetsPool(creds, concurrency=8, max_wait=30)`) or as `options=ClientOptions(...)`.

    `egress=[Egress(...), ...]` spreads the keys over several routes out (source
    addresses or proxies), each with its own connection pool and IP windows: the UIDs
    are shared out by key count, all keys of a UID on one route, and each UID's own
    window and gate still count across every route.
    """

    def __init__(
        self,
        credentials: Iterable[Credentials],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        http_client: httpx.AsyncClient | aiohttp.ClientSession | None = None,
        limiter: RateLimiter | None = None,
        egress: Iterable[Egress] | None = None,
        options: ClientOptions | None = None,
        **option_args: Unpack[ClientOptionArgs],
    ) -> None:
        self.credentials = check_unique(credentials)
        self.egress = check_routes(egress) if egress is not None else ()
        if self.egress and http_client is not None:
            raise ConfigurationError(
                "http_client and egress cannot go together: each egress route opens its own "
                "connections from its address or through its proxy, which a client of yours "
                "would not do; leave out http_client"
            )
        self.concurrency = check_whole_number("concurrency", concurrency, minimum=1)
        self.options, self.limiter = resolve_storage(
            http_client, resolve_options(options, option_args), limiter
        )
        # A request holding a rate slot never queues for a connection of our own pool.
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        super().__init__(http_client, limits)
        # Keys are scheduled by the UID this machine verified, else by the one claimed:
        # an order only. What a request counts against is the verified UID alone.
        uid_cache = open_uid_cache(self.options.uid_cache, self.options.base_url)
        uids = [uid_cache.get(c.api_key) or c.uid for c in self.credentials]
        # One connection pool per route (one in all without egress), and a limiter that
        # names the route's IP windows; UID windows are named alike on every route.
        if self.egress:
            self._routes = [HttpClients(None, limits, route) for route in self.egress]
            limiters = [self.limiter.for_ip(route.ip) for route in self.egress]
        else:
            self._routes, limiters = [self._http_clients], [self.limiter]
        route_of = _spread_over_routes(uids, len(self._routes))
        self._clients = [
            AssetsClient(
                c.api_key,
                c.secret_key,
                uid=c.uid,
                label=c.label,
                limiter=limiters[route],
                options=self.options,
            )
            for c, route in zip(self.credentials, route_of, strict=True)
        ]
        for client, route in zip(self._clients, route_of, strict=True):
            client._http_clients = self._routes[route]
        self._schedule = _round_robin(
            [
                _interleave_by_uid([n for n, r in enumerate(route_of) if r == route], uids)
                for route in range(len(self._routes))
            ]
        )

    def __repr__(self) -> str:
        routes = f", {len(self.egress)} egress routes" if self.egress else ""
        return f"AssetsPool({len(self.credentials)} keys, concurrency={self.concurrency}{routes})"

    async def aclose(self) -> None:
        """Close the HTTP clients opened here (one per egress route); an injected one is
        left open."""
        await asyncio.gather(*(route.aclose() for route in self._routes))

    async def stream(
        self, account_type: AccountType | str | None = None
    ) -> AsyncGenerator[KeyResult, None]:
        """Each key's `KeyResult`, as it completes.

        Leaving the loop early, or cancelling it, cancels the reads still under way.
        Wrap it in `contextlib.aclosing` to have that happen at once rather than when
        the iterator is garbage-collected.
        """
        wanted = parse_account_type(account_type) if account_type is not None else None
        pending: asyncio.Queue[int] = asyncio.Queue()
        for index in self._schedule:
            pending.put_nowait(index)
        done: asyncio.Queue[KeyResult] = asyncio.Queue()

        async def worker() -> None:
            while not pending.empty():
                done.put_nowait(await self._read(pending.get_nowait(), wanted))

        workers = [
            asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(self._clients)))
        ]
        try:
            for _ in self._clients:
                yield await done.get()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def gather(self, account_type: AccountType | str | None = None) -> list[KeyResult]:
        """Every key's `KeyResult`, in the order the credentials were given."""
        position = {c.label: n for n, c in enumerate(self.credentials)}
        results = [r async for r in self.stream(account_type)]
        return sorted(results, key=lambda r: position[r.label])

    async def watch(
        self,
        interval: float,
        *,
        account_type: AccountType | str | None = None,
        changes_only: bool = False,
    ) -> AsyncGenerator[Snapshot, None]:
        """A `Snapshot` of every key every `interval` seconds, for ever.

        Rounds start on a steady beat (a round that overruns skips the beats it
        missed); the limiter still has the last word, so a short interval with many
        keys of one UID makes rounds longer, never rejected. Errors, disabled periods
        included, are reported in the snapshot and the watch goes on. With
        `changes_only`, rounds in which no balance changed are not yielded.
        """
        if not interval > 0:
            raise ConfigurationError(f"interval must be > 0 seconds, not {interval!r}")
        loop = asyncio.get_running_loop()
        start = loop.time()
        last: dict[str, AssetOverview] = {}
        round_number = 0
        while True:
            results = await self.gather(account_type)
            round_number += 1
            changed = frozenset(
                r.label
                for r in results
                if r.overview is not None and last.get(r.label) != r.overview
            )
            last.update((r.label, r.overview) for r in results if r.overview is not None)
            if changed or not changes_only:
                yield Snapshot(round_number, tuple(results), changed)
            beats = math.floor((loop.time() - start) / interval) + 1
            await asyncio.sleep(start + beats * interval - loop.time())

    async def _read(self, index: int, wanted: AccountType | None) -> KeyResult:
        label, client = self.credentials[index].label, self._clients[index]
        try:
            overview = await client.asset_overview(wanted)
        except Exception as exc:  # any failure is this key's outcome, never the pool's
            return KeyFailed(label, exc, retry_at=client.retry_at(exc))
        return KeyOk(label, overview)


def _uid_groups(indexes: Iterable[int], uids: list[str | None]) -> list[list[int]]:
    """`indexes` grouped by their key's UID (a key of unknown UID is a group of its own)."""
    groups: dict[str, list[int]] = {}
    for n in indexes:
        groups.setdefault(uids[n] or f"key:{n}", []).append(n)
    return list(groups.values())


def _round_robin(queues: list[list[int]]) -> list[int]:
    """The first of each queue, then the second of each, and so on."""
    order: list[int] = []
    for depth in range(max((len(q) for q in queues), default=0)):
        order.extend(q[depth] for q in queues if depth < len(q))
    return order


def _interleave_by_uid(indexes: list[int], uids: list[str | None]) -> list[int]:
    """`indexes` taking one key of each UID in turn, so one busy UID holds up no other."""
    return _round_robin(_uid_groups(indexes, uids))


def _spread_over_routes(uids: list[str | None], routes: int) -> list[int]:
    """Each key's route: whole UIDs, biggest first, each to the route with fewest keys so
    far, so that the routes' IP windows fill alike."""
    route_of = [0] * len(uids)
    load = [0] * routes
    for group in sorted(_uid_groups(range(len(uids)), uids), key=len, reverse=True):
        route = load.index(min(load))
        load[route] += len(group)
        for n in group:
            route_of[n] = route
    return route_of
