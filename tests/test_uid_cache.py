"""The UID cache: lookups remembered between processes, in an SQLite table safe to share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bingx_assets import (
    AssetsPool,
    AuthenticationError,
    Credentials,
    RateLimiter,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH, UID_PATH
from bingx_assets._uid_cache import (
    FORMAT_VERSION,
    UidCache,
    _open,
    default_uid_cache_path,
    key_id,
)
from bingx_assets.testing import BingXSimulator, LoopClock, SimKey

from .conftest import MakeClient

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _as_if_a_new_process() -> Iterator[None]:
    """Each test starts with no cache in memory: what it finds, it reads from the file."""
    _open.clear()
    yield
    _open.clear()


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "uids.sqlite3"


def lookups(sim: BingXSimulator) -> int:
    return sum(r.path == UID_PATH for r in sim.requests)


def read(path: Path) -> bytes:
    return path.read_bytes()


def exists(path: Path) -> bool:
    return path.exists()


def write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def entries(path: Path) -> dict[str, str]:
    """What the database holds, read by a connection of its own (as another process)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (FORMAT_VERSION,)
        return dict(connection.execute("SELECT key_id, uid FROM uids"))


def legacy(uids: dict[str, str]) -> bytes:
    """A `uids.json` as the previous version wrote it."""
    return json.dumps({"version": 1, "uids": uids}, sort_keys=True).encode()


async def test_a_lookup_is_remembered_and_the_next_process_skips_it(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient, cache_file: Path
) -> None:
    await make_client(key, uid_cache=cache_file).asset_overview()
    assert lookups(sim) == 1
    assert entries(cache_file) == {key_id(key.api_key): "1001"}

    _open.clear()  # a new process: only the file remembers
    client = make_client(key, uid_cache=str(cache_file), limiter=RateLimiter(clock=LoopClock()))
    await client.asset_overview()
    assert lookups(sim) == 1  # no second lookup
    assert await client.uid() == "1001"
    assert sum(r.path == ASSET_OVERVIEW_PATH for r in sim.requests) == 2


async def test_the_default_file_is_in_xdg_cache_home_with_private_modes(
    sim: BingXSimulator,
    key: SimKey,
    make_client: MakeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    # A transport the simulator did not mark: its own keep nothing on disk.
    async with httpx.AsyncClient(transport=httpx.MockTransport(sim.handle)) as http:
        await make_client(key, http_client=http).asset_overview()
    path = tmp_path / "xdg" / "bingx-assets" / "uids.sqlite3"
    assert default_uid_cache_path() == path
    assert entries(path) == {key_id(key.api_key): "1001"}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # The database and its WAL files, all 600, and nothing else.
    names = ["uids.sqlite3", "uids.sqlite3-shm", "uids.sqlite3-wal"]
    assert sorted(p.name for p in path.parent.iterdir()) == names
    assert {stat.S_IMODE((path.parent / n).stat().st_mode) for n in names} == {0o600}


async def test_the_file_holds_neither_the_key_nor_the_secret(
    sim: BingXSimulator, make_client: MakeClient, cache_file: Path
) -> None:
    keys = [sim.add_key(uid=5000 + n) for n in range(5)]
    await asyncio.gather(*(make_client(k, uid_cache=cache_file).uid() for k in keys))
    content = b"".join(read(p) for p in cache_file.parent.iterdir())
    for k in keys:
        for secret in (k.api_key, k.secret_key):
            for start in range(0, len(secret) - 8, 8):  # not even a piece of one
                assert secret[start : start + 8].encode() not in content
    assert len(entries(cache_file)) == 5


def test_key_ids_are_a_personalised_one_way_hash() -> None:
    ident = key_id("k" * 64)
    assert len(ident) == 32 and int(ident, 16) >= 0
    assert ident != key_id("k" * 63 + "K")
    # Not a plain hash of the key either: a table of plain BLAKE2 hashes does not match.
    import hashlib

    assert ident != hashlib.blake2b(b"k" * 64, digest_size=16).hexdigest()


async def test_uid_cache_false_never_touches_the_disk(
    sim: BingXSimulator,
    make_client: MakeClient,
    limiter: RateLimiter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    keys = [sim.add_key(uid=7000 + n) for n in range(3)]
    await make_client(keys[0], uid_cache=False).asset_overview()
    creds = [Credentials(k.api_key, k.secret_key, f"k{n}") for n, k in enumerate(keys)]
    async with sim.http_client() as http:
        for _ in range(2):  # twice: still a lookup for every key, nothing was remembered
            pool = AssetsPool(creds, uid_cache=False, http_client=http, limiter=limiter)
            assert all(r.ok for r in await pool.gather())
    assert lookups(sim) == 1 + 3 + 3
    assert not exists(tmp_path / "xdg")


async def test_a_key_bingx_does_not_know_drops_its_entry(
    sim: BingXSimulator, make_client: MakeClient, cache_file: Path
) -> None:
    gone = SimKey("g" * 64, "s" * 64, uid=1234, balances={})  # deleted since it was cached
    UidCache(cache_file).put(gone.api_key, "1234")
    kept = sim.add_key(uid=1001)
    UidCache(cache_file).put(kept.api_key, "1001")

    client = make_client(gone, uid_cache=cache_file)
    with pytest.raises(AuthenticationError) as refused:
        await client.asset_overview()
    assert refused.value.code == 100413
    assert lookups(sim) == 0  # the UID came from the cache
    assert entries(cache_file) == {key_id(kept.api_key): "1001"}  # only its entry went


async def test_other_errors_keep_the_entry(
    sim: BingXSimulator, make_client: MakeClient, cache_file: Path
) -> None:
    key = sim.add_key(uid=1001, can_read=False)  # 100004: the key exists, its UID stands
    UidCache(cache_file).put(key.api_key, "1001")
    with pytest.raises(Exception, match="100004"):
        await make_client(key, uid_cache=cache_file).asset_overview()
    assert entries(cache_file) == {key_id(key.api_key): "1001"}


def test_a_lookup_naming_another_uid_replaces_the_entry(
    cache_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    UidCache(cache_file).put("k" * 64, "999")
    ours = UidCache(cache_file)
    assert ours.get("k" * 64) == "999"
    with caplog.at_level(logging.INFO, logger="bingx_assets"):
        ours.put("k" * 64, "1001")
    assert entries(cache_file) == {key_id("k" * 64): "1001"}
    assert UidCache(cache_file).get("k" * 64) == "1001"
    assert "another UID" in caplog.text


async def test_the_old_json_file_is_read_once_into_the_database_and_left_alone(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient, cache_file: Path
) -> None:
    old_file = cache_file.with_suffix(".json")
    content = legacy({key_id(key.api_key): "1001", "not-a-key-id": "5", key_id("x"): "abc"})
    write(old_file, content)
    client = make_client(key, uid_cache=cache_file)
    await client.asset_overview()
    assert lookups(sim) == 0  # the migrated entry
    assert entries(cache_file) == {key_id(key.api_key): "1001"}  # malformed ones left out
    assert read(old_file) == content  # an older bingx-assets may still read it
    # Once: what the old file gains later is not read again.
    write(old_file, legacy({key_id(key.api_key): "1001", key_id("late" * 16): "7"}))
    _open.clear()
    assert UidCache(cache_file).get("late" * 16) is None


def test_a_path_naming_the_old_json_file_means_the_database_beside_it(tmp_path: Path) -> None:
    write(tmp_path / "mine.json", legacy({key_id("k" * 64): "42"}))
    cache = UidCache(tmp_path / "mine.json")
    assert cache.path == tmp_path / "mine.sqlite3"
    assert cache.get("k" * 64) == "42"


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"\xff\xfe", b"[]", b'{"version": 0, "uids": {}}', b'{"version": 1}', b""],
    ids=["bad-json", "not-utf8", "a-list", "unknown-version", "no-uids", "empty"],
)
async def test_a_corrupt_old_file_costs_a_lookup_and_one_log_line(
    sim: BingXSimulator,
    key: SimKey,
    make_client: MakeClient,
    cache_file: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    write(cache_file.with_suffix(".json"), content)
    with caplog.at_level(logging.WARNING, logger="bingx_assets"):
        overview = await make_client(key, uid_cache=cache_file).asset_overview()
        other = sim.add_key(uid=1002)
        await make_client(other, uid_cache=cache_file).asset_overview()
    assert overview.total > 0
    assert lookups(sim) == 2
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "cannot migrate the UID cache" in line.getMessage()
    assert "going on without it" in line.getMessage()
    # The database starts empty and keeps both lookups: the next process finds them.
    assert entries(cache_file) == {key_id(key.api_key): "1001", key_id(other.api_key): "1002"}


@pytest.mark.parametrize(
    "content", [b"garbage " * 100, b"SQLite format 3\0" + b"\xff" * 200], ids=["text", "torn"]
)
async def test_a_corrupt_database_costs_lookups_and_one_log_line_and_is_left_alone(
    sim: BingXSimulator,
    make_client: MakeClient,
    cache_file: Path,
    caplog: pytest.LogCaptureFixture,
    content: bytes,
) -> None:
    write(cache_file, content)
    keys = [sim.add_key(uid=1001), sim.add_key(uid=1002)]
    with caplog.at_level(logging.WARNING, logger="bingx_assets"):
        for k in keys * 2:  # twice each: nothing can be remembered
            _open.clear()
            assert (await make_client(k, uid_cache=cache_file).asset_overview()).total > 0
    assert lookups(sim) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 4  # one per cache opened: here, one per "process"
    assert all("UID cache" in w and "going on without it" in w for w in warnings)
    assert read(cache_file) == content


async def test_a_newer_versions_database_is_used_by_nobody_and_left_alone(
    sim: BingXSimulator,
    key: SimKey,
    make_client: MakeClient,
    cache_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache_file.parent.mkdir()
    with contextlib.closing(sqlite3.connect(cache_file)) as connection:
        connection.execute("CREATE TABLE uids (key_id TEXT PRIMARY KEY, uid TEXT)")
        connection.execute("INSERT INTO uids VALUES (?, '1001')", (key_id(key.api_key),))
        connection.execute(f"PRAGMA user_version = {FORMAT_VERSION + 1}")
        connection.commit()
    newer = read(cache_file)
    with caplog.at_level(logging.WARNING, logger="bingx_assets"):
        await make_client(key, uid_cache=cache_file).asset_overview()
    assert lookups(sim) == 1
    assert read(cache_file) == newer
    [line] = caplog.records
    assert "cannot use the UID cache" in line.getMessage()
    assert f"version {FORMAT_VERSION + 1}" in line.getMessage()


async def test_an_unusable_cache_never_fails_a_read(
    sim: BingXSimulator,
    key: SimKey,
    make_client: MakeClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    client = make_client(key, uid_cache=blocker / "uids.sqlite3")  # its directory is a file
    with caplog.at_level(logging.WARNING, logger="bingx_assets"):
        assert (await client.asset_overview()).total > 0
        assert (await client.asset_overview()).total > 0
    assert lookups(sim) == 1
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


async def test_a_pool_schedules_cached_keys_by_their_uid(
    sim: BingXSimulator, limiter: RateLimiter, cache_file: Path
) -> None:
    keys = [sim.add_key(uid=1) for _ in range(4)] + [sim.add_key(uid=2) for _ in range(4)]
    creds = [Credentials(k.api_key, k.secret_key, f"k{n}") for n, k in enumerate(keys)]
    async with sim.http_client() as http:
        cold = AssetsPool(creds, uid_cache=cache_file, http_client=http, limiter=limiter)
        assert cold._schedule == list(range(8))  # nothing known: in the order given
        assert all(r.ok for r in await cold.gather())
        assert lookups(sim) == 8
        _open.clear()
        warm = AssetsPool(creds, uid_cache=cache_file, http_client=http, limiter=limiter)
        assert warm._schedule == [0, 4, 1, 5, 2, 6, 3, 7]  # one key of each UID in turn
        assert all(r.ok for r in await warm.gather())
    assert lookups(sim) == 8
    assert sim.rejections == []


async def test_a_thousand_keys_in_a_warm_second_process_need_no_lookup(
    clock: LoopClock, cache_file: Path
) -> None:
    """Issue 14: 1,000 keys without uid, each its own UID (sub-accounts). Cold, every
    key waits for a lookup at 5/s; warm, only for the IP's 300 requests per 10 s."""
    sim = BingXSimulator(clock=clock)
    keys = [sim.add_key(uid=100_000 + n) for n in range(1000)]
    creds = [Credentials(k.api_key, k.secret_key, f"k{n}") for n, k in enumerate(keys)]

    async def first_balances() -> float:
        """Virtual seconds until every key has its first balance, in a fresh process."""
        _open.clear()
        limiter = RateLimiter(clock=clock)
        start = clock.monotonic()
        async with sim.http_client() as http:
            pool = AssetsPool(creds, uid_cache=cache_file, http_client=http, limiter=limiter)
            assert all(r.ok for r in await pool.gather())
        await limiter.aclose()
        return clock.monotonic() - start

    cold = await first_balances()
    assert lookups(sim) == 1000
    await asyncio.sleep(11)  # a new limiter knows nothing of the first run: let its windows pass
    warm = await first_balances()
    assert lookups(sim) == 1000  # none more
    assert sim.rejections == []
    assert cold >= 1000 / 5 - 1  # the lookups' 5/s: over 3 minutes
    assert warm <= 1000 / 300 * 10 + 1  # the IP's 300 per 10 s: about half a minute
    print(f"1,000 keys: first balances after {cold:.1f} s cold, {warm:.1f} s warm (virtual)")


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bingx_assets._uid_cache import UidCache

    path, go = Path(sys.argv[1]), Path(sys.argv[2])
    writer, count = int(sys.argv[3]), int(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    cache = UidCache(path)
    for n in range(count):
        cache.put(f"key-{writer}-{n}-" + "x" * 40, str(writer * 1000 + n + 1))
    """
)


@pytest.mark.looptime(False)
def test_processes_writing_at_once_lose_nothing_and_readers_never_wait_or_fail(
    cache_file: Path,
) -> None:
    writers, each = 4, 50
    go = cache_file.with_name("go")
    cache_file.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(cache_file), str(go), str(w), str(each)], env=env
        )
        for w in range(writers)
    ]
    time.sleep(0.3)  # let them all start and wait for the signal
    go.touch()
    reads = 0
    while any(p.poll() is None for p in processes):
        if exists(cache_file):
            with contextlib.suppress(AssertionError):  # a database not yet migrated
                entries(cache_file)  # never an error: WAL readers see a whole transaction
                reads += 1
    assert [p.wait() for p in processes] == [0] * writers
    found = entries(cache_file)
    expected = {
        key_id(f"key-{w}-{n}-" + "x" * 40): str(w * 1000 + n + 1)
        for w in range(writers)
        for n in range(each)
    }
    assert found == expected
    assert reads > 0
    assert [p.name for p in cache_file.parent.iterdir() if p.name.startswith(".")] == []


def wal_frames_of_one_put(cache: UidCache, n: int) -> tuple[int, int]:
    """(pages written to the WAL, rows changed) by one put, with the WAL emptied first."""
    connection = cache._writer
    assert connection is not None
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    changes = connection.total_changes
    cache.put(f"new-{n}-" + "x" * 40, "9")
    frames = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    return frames, connection.total_changes - changes


def test_a_put_writes_the_same_few_pages_at_ten_entries_as_at_twenty_thousand(
    cache_file: Path,
) -> None:
    """Issue 21: the JSON file was rewritten whole on every put (24 ms at 50,000). A put
    is one row in one short transaction now: what it writes does not grow with the
    cache. (Counted in WAL pages and rows, not timed.)"""
    cache = UidCache(cache_file)
    cache.put("first" + "x" * 40, "1")  # creates the database
    small = wal_frames_of_one_put(cache, 0)
    connection = cache._writer
    assert connection is not None
    with connection:
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO uids VALUES (?, ?)",
            ((key_id(f"bulk-{n}"), str(n + 1)) for n in range(20_000)),
        )
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    large = wal_frames_of_one_put(cache, 1)
    assert small[1] == large[1] == 1  # one row touched
    assert pages > 200  # a rewrite would write all of them
    assert large[0] <= small[0] + 2 <= 6, (small, large)  # a deeper B-tree: a page or two
    assert cache.get("new-1-" + "x" * 40) == "9"
    assert len(entries(cache_file)) == 20_003


def test_a_put_of_what_is_already_there_writes_nothing(cache_file: Path) -> None:
    cache = UidCache(cache_file)
    cache.put("k" * 64, "1001")
    connection = cache._writer
    assert connection is not None
    changes = connection.total_changes
    cache.put("k" * 64, "1001")
    assert connection.total_changes == changes


def test_a_cache_that_is_only_read_leaves_no_file_behind(cache_file: Path) -> None:
    assert UidCache(cache_file).get("k" * 64) is None
    UidCache(cache_file).drop("k" * 64)
    assert not exists(cache_file.parent)


async def test_lookups_are_written_off_the_event_loop(
    sim: BingXSimulator, key: SimKey, make_client: MakeClient, cache_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    writers: list[bool] = []
    put = UidCache.put

    def recording_put(self: UidCache, api_key: str, uid: str) -> None:
        writers.append(threading.current_thread() is threading.main_thread())
        put(self, api_key, uid)

    monkeypatch.setattr(UidCache, "put", recording_put)
    await make_client(key, uid_cache=cache_file).asset_overview()
    await make_client(sim.add_key(uid=1002), uid_cache=cache_file).asset_overview()
    assert writers == [False, False]
    assert len(entries(cache_file)) == 2
