"""AssetsPool: many keys, many UIDs, bad keys among them, cancellation, watching."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from bingx_assets import (
    AssetsPool,
    AuthenticationError,
    ConfigurationError,
    Credentials,
    PermissionDeniedError,
    RateLimiter,
    RateLimitError,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH
from bingx_assets._uid_cache import default_uid_cache_path
from bingx_assets.testing import BingXSimulator, LoopClock, SimKey

from .conftest import verified_earlier

MakePool = Callable[..., AssetsPool]


def creds(key: SimKey, label: str = "", *, uid: bool = True) -> Credentials:
    """`key`'s credentials, with its UID verified on this machine before (the test's
    cache), or without a UID: looked up."""
    if uid:
        verified_earlier(key.api_key, key.uid)
    return Credentials(key.api_key, key.secret_key, label, key.uid if uid else None)


@pytest.fixture
async def make_pool(sim: BingXSimulator, limiter: RateLimiter) -> AsyncIterator[MakePool]:
    http = sim.http_client()

    def make(credentials: list[Credentials], **options: Any) -> AssetsPool:
        # Named: a pool aimed at the in-process simulator keeps no default cache.
        options.setdefault("uid_cache", default_uid_cache_path())
        return AssetsPool(credentials, http_client=http, limiter=limiter, **options)

    yield make
    await http.aclose()


async def test_n_keys_over_m_uids_in_the_time_the_limits_allow(
    sim: BingXSimulator, make_pool: MakePool, clock: LoopClock
) -> None:
    sim.jitter = 0.01
    keys = [sim.add_key(uid=uid) for uid in range(1, 5) for _ in range(12)]  # 12 keys x 4 UIDs
    pool = make_pool([creds(k, f"k{n}") for n, k in enumerate(keys)])
    start = clock.monotonic()
    results = await pool.gather()
    elapsed = clock.monotonic() - start
    assert [r.label for r in results] == [f"k{n}" for n in range(48)]
    assert all(r.ok for r in results)
    assert sim.rejections == []
    assert max(sim.peak(uid=uid) for uid in range(1, 5)) == 5
    assert 2.0 <= elapsed <= 2.0 * 1.05  # 12 keys of a UID at 5/s: three windows


async def test_unknown_uids_are_looked_up_without_breaking_any_limit(
    sim: BingXSimulator, make_pool: MakePool
) -> None:
    keys = [sim.add_key(uid=7) for _ in range(8)]
    results = await make_pool([creds(k, uid=False) for k in keys]).gather()
    assert all(r.ok for r in results)
    assert sim.rejections == []


async def test_every_key_is_accounted_for_when_some_are_bad(
    sim: BingXSimulator, make_pool: MakePool
) -> None:
    good = [sim.add_key(uid=1) for _ in range(5)]
    fenced = sim.add_key(uid=2, ip_whitelist=("127.9.9.9",))
    wrong_secret = Credentials(good[0].api_key[::-1], "x" * 64, "unknown-key", 3)
    sim.disable(4, 600)
    disabled = sim.add_key(uid=4)
    credentials = [
        *(creds(k, f"good{n}") for n, k in enumerate(good)),
        creds(fenced, "fenced"),
        wrong_secret,
        creds(disabled, "disabled"),
    ]
    results = {r.label: r async for r in make_pool(credentials).stream()}
    assert set(results) == {c.label for c in credentials}
    assert all(results[f"good{n}"].ok for n in range(5))
    assert isinstance(results["fenced"].error, PermissionDeniedError)
    assert isinstance(results["unknown-key"].error, AuthenticationError)
    assert isinstance(results["disabled"].error, RateLimitError)
    assert all((r.overview is None) == (r.error is not None) for r in results.values())


async def test_results_stream_as_they_complete(sim: BingXSimulator, make_pool: MakePool) -> None:
    slow = [sim.add_key(uid=1) for _ in range(10)]  # one UID: two windows
    fast = sim.add_key(uid=2)
    pool = make_pool([*(creds(k, f"slow{n}") for n, k in enumerate(slow)), creds(fast, "fast")])
    order = [r.label async for r in pool.stream()]
    assert order.index("fast") < order.index("slow9")


async def test_duplicates_and_bad_input_are_refused_up_front(sim: BingXSimulator) -> None:
    key = sim.add_key(uid=1)
    with pytest.raises(ConfigurationError, match="same API key"):
        AssetsPool([creds(key, "a"), creds(key, "b")])
    with pytest.raises(ConfigurationError, match="label 'a' is used twice"):
        AssetsPool([creds(key, "a"), creds(sim.add_key(uid=1), "a")])
    with pytest.raises(ConfigurationError, match="no credentials"):
        AssetsPool([])
    with pytest.raises(ConfigurationError, match="concurrency"):
        AssetsPool([creds(key)], concurrency=0)
    with pytest.raises(ConfigurationError, match="expected Credentials"):
        AssetsPool([("key", "secret")])  # type: ignore[list-item]


async def test_an_invalid_account_type_is_refused_before_sending(
    sim: BingXSimulator, make_pool: MakePool
) -> None:
    pool = make_pool([creds(sim.add_key(uid=1))])
    with pytest.raises(ConfigurationError):
        await pool.gather("futures")
    assert sim.requests == []


async def test_cancelling_a_fan_out_leaves_nothing_running(
    sim: BingXSimulator, make_pool: MakePool
) -> None:
    sim.latency = 0.3
    pool = make_pool([creds(sim.add_key(uid=1), f"k{n}") for n in range(30)], concurrency=8)
    task = asyncio.create_task(pool.gather())
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Requests already sent finish in the background, so that their answers settle their
    # slots; closing the pool waits for them, and then nothing is left.
    in_flight = {t for t in asyncio.all_tasks() if not t.done()} - {asyncio.current_task()}
    assert 0 < len(in_flight) <= 8
    await pool.aclose()
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
    assert all(r.code == 0 for r in sim.requests)
    assert sim.rejections == []


async def test_leaving_the_stream_early_stops_the_rest(
    sim: BingXSimulator, make_pool: MakePool
) -> None:
    pool = make_pool([creds(sim.add_key(uid=1), f"k{n}") for n in range(20)])
    async with contextlib.aclosing(pool.stream()) as results:
        async for _ in results:
            break
    assert {t for t in asyncio.all_tasks() if not t.done()} == {asyncio.current_task()}
    assert len(sim.requests) < 20


async def test_owned_http_client_is_closed(sim: BingXSimulator) -> None:
    async with AssetsPool([creds(sim.add_key(uid=1))]) as pool:
        http = pool._transport.session  # type: ignore[attr-defined]
    assert http.closed


async def test_watch_keeps_a_steady_beat_and_reports_changes(
    sim: BingXSimulator, make_pool: MakePool, clock: LoopClock
) -> None:
    key = sim.add_key(uid=1, balances={"sopt": "1"})
    pool = make_pool([creds(key, "main")])
    snapshots = []
    async with contextlib.aclosing(pool.watch(2.0)) as watching:
        async for snapshot in watching:
            snapshots.append((clock.monotonic(), snapshot))
            if snapshot.round == 2:
                key.balances["sopt"] = "2.5"
            if snapshot.round == 4:
                break
    assert [s.round for _, s in snapshots] == [1, 2, 3, 4]
    assert [round(t) for t, _ in snapshots] == [0, 2, 4, 6]
    assert [s.changed for _, s in snapshots] == [
        frozenset({"main"}),
        frozenset(),
        frozenset({"main"}),
        frozenset(),
    ]
    assert snapshots[2][1].results[0].overview.total == Decimal("2.5")  # type: ignore[union-attr]


async def test_watch_changes_only_and_survives_a_disabled_period(
    sim: BingXSimulator, make_pool: MakePool
) -> None:
    key = sim.add_key(uid=1, balances={"sopt": "1"})
    pool = make_pool([creds(key, "main")], max_wait=5)
    seen = []
    async with contextlib.aclosing(pool.watch(1.0, changes_only=True)) as watching:
        async for snapshot in watching:
            seen.append(snapshot.round)
            if snapshot.round == 1:
                sim.disable(1, 30)  # longer than max_wait: a few rounds of errors
            if len(seen) == 2:
                break
            key.balances["sopt"] = "3"
    assert seen[0] == 1
    assert seen[1] > 2  # unchanged and failed rounds were not yielded
    during = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH and r.while_disabled]
    assert len(during) == 1  # the one that found out; then the gate held every round
