"""The host store beyond the contract: processes share it, a crash loses nothing, a
reboot moves its times, and a store that cannot be opened says so (the contract itself
is `test_backend_contract.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import platformdirs
import pytest

from bingx_assets import AssetsClient, HostBackend, LimiterUnavailableError, RateLimiter
from bingx_assets._limiter import (
    Blocked,
    Closure,
    GateClosed,
    MemoryBackend,
    Rate,
    Scope,
    _host_store,
)
from bingx_assets._limiter._host_store import HostClock, default_host_store_path
from bingx_assets.testing import BingXSimulator

from .test_backend_contract import BUDGETED, HORIZON, SCOPE, HandClock, blocked, exactly, take
from .test_command_line import simulate_command

pytestmark = pytest.mark.looptime(False)


async def test_two_stores_on_one_file_share_windows_and_gates(tmp_path: Path) -> None:
    clock = HandClock()
    first = HostBackend(tmp_path / "limits.sqlite3", clock=clock)
    second = HostBackend(tmp_path / "limits.sqlite3", clock=clock)
    for backend in (first, second, first):
        await take(backend)
    assert (await blocked(second)).seconds == exactly(1.001)
    await second.close_gate("gate:u:/x", 60.0)
    closed = await first.try_acquire(SCOPE, 0.0, HORIZON)
    assert isinstance(closed, GateClosed)
    assert closed.seconds == exactly(60.0)
    # The first never closed (a crash): a third, opened after it, sees it all.
    third = HostBackend(tmp_path / "limits.sqlite3", clock=clock)
    assert await third.gate_remaining("gate:u:/x") == exactly(60.0)
    behind_other_gates = replace(SCOPE, gates=("gate:v:/x", "gate:ip:j"))
    assert (await blocked(third, behind_other_gates)).seconds == exactly(1.001)
    await second.aclose()
    await third.aclose()


async def test_the_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "limits.sqlite3"
    backend = HostBackend(path)
    await backend.close_gate("gate:u:/x", 1.0)
    await backend.aclose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


class RebootedClock(HandClock):
    """The same wall clock as `before`, `later` seconds on; a monotonic clock that
    restarted at the reboot."""

    def __init__(self, before: HandClock, later: float) -> None:
        super().__init__()
        self._wall_ms = before.wall_ms() + round(later * 1000)
        self.now = 20.0

    def wall_ms(self) -> int:
        return self._wall_ms + round((self.now - 20.0) * 1000)


async def test_a_gate_survives_a_reboot_through_the_wall_clock(tmp_path: Path) -> None:
    before = HandClock()
    first = HostBackend(tmp_path / "limits.sqlite3", clock=before)
    await first.close_gate("gate:u:/x", 300.0)  # a disabled period BingX announced
    await first.close_gate("gate:key:k", 60.0, code=100419, remember=480.0)
    await first.aclose()
    after = RebootedClock(before, later=100.0)  # back 100 s later, its clock near 0
    second = HostBackend(tmp_path / "limits.sqlite3", clock=after)
    assert await second.gate_remaining("gate:u:/x") == pytest.approx(200.0, abs=0.002)
    # A key's closure is remembered 480 s after its gate opened, reboot or not.
    after.advance(439.99)
    assert await second.closure("gate:key:k") == Closure(60.0, 100419)
    after.advance(0.02)
    assert await second.closure("gate:key:k") is None
    await second.aclose()


async def test_a_store_an_older_version_made_gains_closures_and_still_shares_its_gates(
    tmp_path: Path,
) -> None:
    path = tmp_path / "limits.sqlite3"
    clock = HandClock()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("CREATE TABLE gates (name TEXT PRIMARY KEY, opens REAL NOT NULL)")
        db.execute("INSERT INTO gates VALUES ('gate:u:/x', ?)", (clock.now + 30.0,))
    backend = HostBackend(path, clock=clock)
    assert await backend.gate_remaining("gate:u:/x") == exactly(30.0)
    assert await backend.closure("gate:u:/x") is None  # closed before closures were kept
    await backend.close_gate("gate:key:k", 60.0, code=100001, remember=480.0)
    assert await backend.closure("gate:key:k") == Closure(60.0, 100001)
    # A process of the older version closes gates as it always did, in the same table.
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(
            "INSERT INTO gates VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET opens = max(opens, excluded.opens)",
            ("gate:key:k", clock.now + 90.0),
        )
    assert await backend.gate_remaining("gate:key:k") == exactly(90.0)
    await backend.aclose()


async def test_a_slot_in_flight_in_another_process_is_looked_at_again_every_poll_interval(
    tmp_path: Path,
) -> None:
    clock = HandClock()
    ours = HostBackend(tmp_path / "limits.sqlite3", clock=clock, poll_interval=0.05)
    theirs = HostBackend(tmp_path / "limits.sqlite3", clock=clock)
    for _ in range(3):
        await take(theirs, in_flight=HORIZON)  # answers only they will see
    assert (await blocked(ours)).seconds == exactly(0.05)
    elsewhere = replace(SCOPE, windows=(("uid:v", Rate(1, 1.0)),))
    await (await take(ours, elsewhere)).settle(answered=True)
    assert (await blocked(ours, elsewhere)).seconds == exactly(1.001)  # answered: exact


async def test_a_budget_a_request_in_flight_elsewhere_may_free_is_looked_at_again_soon(
    tmp_path: Path,
) -> None:
    """The slot a full error budget waits for is an answered error, 480 s from freeing,
    but a request of another process still holds one more: its success frees the
    budget at once, so it is looked at again every poll interval."""
    clock = HandClock()
    ours = HostBackend(tmp_path / "limits.sqlite3", clock=clock, poll_interval=0.05)
    theirs = HostBackend(tmp_path / "limits.sqlite3", clock=clock)
    budgeted = replace(SCOPE, errors=("errors:u:/x", Rate(2, 480.0)))
    await (await take(theirs, budgeted)).settle(answered=True)  # an error reply
    in_flight = await take(theirs, budgeted, in_flight=HORIZON)
    full = await blocked(ours, budgeted)
    assert (full.window, full.pending, full.seconds) == ("errors:u:/x", True, exactly(0.05))
    await in_flight.settle(answered=True, succeeded=True)
    await take(ours, budgeted)


async def test_an_explicit_store_that_cannot_be_opened_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite3"
    path.write_bytes(b"this is not a database, it is a photo of a cat" * 100)
    backend = HostBackend(path)
    with pytest.raises(LimiterUnavailableError, match=r"cannot be opened.*nothing was sent"):
        await backend.try_acquire(SCOPE, 0.0, HORIZON)
    blocked_dir = tmp_path / "a-file"
    blocked_dir.write_text("")
    with pytest.raises(LimiterUnavailableError, match="cannot be opened"):
        await HostBackend(blocked_dir / "limits.sqlite3").gate_remaining("gate:u:/x")


async def test_a_store_whose_clock_holds_no_number_is_unusable_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by mutation testing: float() of a stored time escaped as a bare ValueError.
    for path in (tmp_path / "limits.sqlite3", default_host_store_path()):
        await HostBackend(path).gate_remaining("gate:u:/x")
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE clock SET value = 'garbage' WHERE name = 'seen'")
    with pytest.raises(LimiterUnavailableError, match=r"cannot be opened.*garbage"):
        await HostBackend(tmp_path / "limits.sqlite3").gate_remaining("gate:u:/x")
    assert await HostBackend().gate_remaining("gate:u:/x") == 0.0  # in memory, with a warning
    (warning,) = [r.getMessage() for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert "the file is damaged: delete it" in warning


async def test_the_default_store_that_cannot_be_opened_warns_once_and_limits_in_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = default_host_store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00garbage" * 200)
    backend = HostBackend()
    for _ in range(3):
        await take(backend)
    assert isinstance(await backend.try_acquire(SCOPE, 0.0, HORIZON), Blocked)
    warnings = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert len(warnings) == 1
    assert "keeps its limits in memory" in warnings[0].getMessage()
    assert "the file is damaged: delete it once no bingx-assets process runs" in (
        warnings[0].getMessage()
    )
    await backend.aclose()


async def test_callers_that_find_the_default_store_locked_share_one_fallback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found in review: scopes opening the store at once each waited out the lock, then
    # each made a memory of its own (one warning each), so keys of one real UID in
    # different scopes (lookups claiming different uids) counted in different memories:
    # 7 lookups in one second on one UID, 2 refused (review18/s7b_fallback_race.py).
    path = default_host_store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    HostBackend(path)._connect().close()
    other = sqlite3.connect(path, isolation_level=None)  # another process, holding the lock
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(_host_store, "LOCKED_FOR_TOO_LONG", 0.05)
    backend = HostBackend()
    await asyncio.gather(*(take(backend) for _ in range(3)))  # UID's limit: 3
    assert isinstance(await backend.try_acquire(SCOPE, 0.0, HORIZON), Blocked)
    warnings = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert len(warnings) == 1
    assert "damaged" not in warnings[0].getMessage()  # a lock ends by itself
    other.execute("COMMIT")
    other.close()
    await backend.aclose()


async def test_a_store_locked_for_too_long_is_a_typed_error_and_a_short_lock_is_waited_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "limits.sqlite3"
    backend = HostBackend(path)
    await backend.gate_remaining("gate:u:/x")  # opened
    other = sqlite3.connect(path, isolation_level=None)  # another process, holding the lock
    other.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(_host_store, "LOCKED_FOR_TOO_LONG", 0.05)
    with pytest.raises(LimiterUnavailableError, match=r"stayed locked.*nothing was sent"):
        await backend.try_acquire(SCOPE, 0.0, HORIZON)
    monkeypatch.setattr(_host_store, "LOCKED_FOR_TOO_LONG", 5.0)
    asyncio.get_running_loop().call_later(0.05, other.execute, "COMMIT")
    started = time.monotonic()
    await take(backend)  # waits on the loop, not in SQLite, until the lock is released
    assert time.monotonic() - started >= 0.04
    other.close()
    await backend.aclose()


async def test_a_settle_that_found_the_store_locked_is_applied_once_it_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Found in review: a success settled while another process held the lock past 5 s
    # kept its error-budget slot for the whole error window: two 8 s locks with requests
    # in flight filled a UID's budget with errors BingX never saw, and 65 good reads were
    # not sent (review18/s7c_lock_mid_run.py 8 5000 0.5 4,10).
    path = tmp_path / "limits.sqlite3"
    backend = HostBackend(path, clock=HandClock())
    answered = await take(backend, BUDGETED, in_flight=HORIZON)
    other = sqlite3.connect(path, isolation_level=None)  # another process, holding the lock
    other.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(_host_store, "LOCKED_FOR_TOO_LONG", 0.05)
    await answered.settle(answered=True, succeeded=True)
    assert "settled once the store is free" in caplog.text
    other.execute("COMMIT")
    other.close()
    # The budget (2) holds the two requests now in flight, not the success.
    await take(backend, BUDGETED, in_flight=HORIZON)
    await take(backend, BUDGETED, in_flight=HORIZON)
    assert isinstance(await backend.try_acquire(BUDGETED, 0.0, HORIZON), Blocked)
    await backend.aclose()


async def test_a_slot_taken_after_a_long_wait_for_the_lock_is_signed_with_a_fresh_timestamp(
    tmp_path: Path,
) -> None:
    # Found in review: the timestamp was read before the store's transaction, which may
    # wait up to 5 s for another process's lock; with recv_window=3000, a lock held 3.5 s
    # cost each UID a timestamp error (review18/s7c_lock_mid_run.py 3.5 3000).
    path = tmp_path / "limits.sqlite3"
    sim = BingXSimulator()
    key = sim.add_key(uid=1001)
    limiter = RateLimiter(backend=HostBackend(path))
    async with sim.http_client() as http:
        client = AssetsClient(
            key.api_key, key.secret_key, uid=1001, http_client=http, limiter=limiter,
            recv_window=400, verify_uids=False,
        )  # fmt: skip
        await client.asset_overview()  # the clock measured, the store opened
        other = sqlite3.connect(path, isolation_level=None)  # another process's lock
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
        await client.asset_overview()
        other.close()
    assert [r.code for r in sim.requests if r.path.endswith("allAccountBalance")] == [0, 0]
    await limiter.aclose()


async def test_clients_of_the_in_process_simulator_never_open_the_host_store() -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=1001)
    async with sim.http_client() as http:
        client = AssetsClient(key.api_key, key.secret_key, uid=1001, http_client=http)
        await client.asset_overview()
    assert isinstance(client.limiter.backend, MemoryBackend)
    assert client.limiter is RateLimiter.default(None)
    assert not default_host_store_path().exists()
    assert not default_host_store_path().parent.exists() or not any(
        default_host_store_path().parent.glob("limits-*")
    )


async def test_processes_share_one_window_through_the_store(tmp_path: Path) -> None:
    """Another process takes a slot; this one sees it (real processes, real clock)."""
    path = tmp_path / "limits.sqlite3"
    one = Scope("u", "i", ("gate:u", "gate:i"), (("uid:u", Rate(1, 30.0)), ("ip:i", Rate(9, 30.0))))
    program = textwrap.dedent(f"""
        import asyncio
        from bingx_assets import HostBackend
        from bingx_assets._limiter import Rate, Scope
        scope = Scope("u", "i", ("gate:u", "gate:i"),
                      (("uid:u", Rate(1, 30.0)), ("ip:i", Rate(9, 30.0))))
        async def main():
            backend = HostBackend({str(path)!r})
            permit = await backend.try_acquire(scope, 5.0, 5.0)
            await permit.settle(answered=True)
        asyncio.run(main())
    """)
    other = await asyncio.create_subprocess_exec(sys.executable, "-c", program)
    assert await other.wait() == 0
    backend = HostBackend(path)
    full = await backend.try_acquire(one, 0.0, HORIZON)
    assert isinstance(full, Blocked)
    assert 25.0 < full.seconds <= 30.001
    await backend.aclose()


# -- whole runs of the command line against a `simulate` process ---------------------------


def _balances(url: str, keys: Path) -> list[str]:
    return [sys.executable, "-m", "bingx_assets", "balances", "--keys", str(keys),
            "--base-url", url, "--json"]  # fmt: skip


def _possible_errors(url: str) -> int:
    """Slots held in the store's error budgets: answered errors, and requests whose
    answer never came (each may have been an error)."""
    path = default_host_store_path(url)
    if not path.exists():
        return 0
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(path)) as db:
        held = db.execute("SELECT count(*) FROM slots WHERE name LIKE 'errors:%'").fetchone()
        return int(held[0])
    return 0  # not made yet


def _slots_taken(url: str) -> int:
    """Slots ever taken in the store's UID windows (expired ones are deleted)."""
    path = default_host_store_path(url)
    if not path.exists():
        return 0
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(path)) as db:
        taken = db.execute("SELECT sum(taken) FROM windows WHERE name LIKE 'uid:%'").fetchone()
        return int(taken[0] or 0)
    return 0


@contextlib.contextmanager
def _running(argv: list[str]) -> Iterator[subprocess.Popen[str]]:
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield run
    finally:
        if run.poll() is None:
            run.kill()
        run.communicate(timeout=30)


def _stopped_in_the_middle(url: str, keys: Path, how: signal.Signals) -> int:
    """A `balances` run sent `how` once it has taken slots for some of its keys."""
    before = _slots_taken(url)
    with _running(_balances(url, keys)) as run:
        deadline = time.monotonic() + 30
        while _slots_taken(url) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _slots_taken(url) >= before + 2  # in the middle: some keys sent, most not
        run.send_signal(how)
        return run.wait(timeout=30)


def test_runs_stopped_in_the_middle_of_a_fan_out_cost_the_next_run_no_refusal(
    tmp_path: Path,
) -> None:
    """SIGTERM (`docker stop`), then SIGKILL, each followed at once by the next run: the
    store holds every slot each stopped run took, in flight ones until their horizon."""
    keys = tmp_path / "sim.toml"
    with simulate_command(keys, simulated_keys=6) as (url, log):
        assert _stopped_in_the_middle(url, keys, signal.SIGTERM) == 143
        assert _stopped_in_the_middle(url, keys, signal.SIGKILL) == -signal.SIGKILL
        again = subprocess.run(_balances(url, keys), capture_output=True, text=True, timeout=60)
        assert json.loads(again.stdout)["failed"] == 0, again.stderr
    assert not [line for line in log if "refused" in line]


def test_a_run_stopped_by_sigterm_lets_its_requests_in_flight_be_answered(
    tmp_path: Path,
) -> None:
    """SIGTERM (`systemctl restart`) with a dozen requests in flight: the run waits for
    their answers before it exits, so none is left counting as a possible error for the
    error window, and the next run starts with the whole budget."""
    keys = tmp_path / "sim.toml"
    with simulate_command(keys, simulated_keys=12, latency=1.0) as (url, log):
        with _running(_balances(url, keys)) as run:
            deadline = time.monotonic() + 30
            while _possible_errors(url) < 8 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert _possible_errors(url) >= 8  # requests in flight, each a possible error
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=30) == 143
        assert _possible_errors(url) == 0
    assert not [line for line in log if "refused" in line]


def test_four_runs_at_once_share_one_uid_through_the_store(tmp_path: Path) -> None:
    runs = 4
    keys = tmp_path / "sim.toml"
    with simulate_command(keys, simulated_keys=2) as (url, log):
        started = [
            subprocess.Popen(_balances(url, keys), stdout=subprocess.PIPE, text=True)
            for _ in range(runs)
        ]
        documents = [json.loads(run.communicate(timeout=60)[0]) for run in started]
    assert [(d["complete"], d["failed"]) for d in documents] == [(True, 0)] * runs
    assert not [line for line in log if "refused" in line]


def test_the_environment_points_the_store_at_the_tests_cache() -> None:
    cache = os.environ["XDG_CACHE_HOME"]
    assert str(default_host_store_path()).startswith(cache)


async def test_the_default_store_that_cannot_be_opened_keeps_gates_and_windows_in_memory(
    tmp_path: Path,
) -> None:
    clock = HandClock()
    backend = HostBackend(clock=clock)  # the default store, whose fallback is memory
    (tmp_path / "a-file").write_text("")
    backend.path = tmp_path / "a-file" / "limits.sqlite3"
    await backend.close_gate("gate:key:k", 60.0, code=100413, remember=480.0)
    assert await backend.gate_remaining("gate:key:k") == 60.0
    assert await backend.closure("gate:key:k") == Closure(60.0, 100413)
    assert await backend.gate_remaining("gate:other") == 0.0
    uid_window = SCOPE.windows[0]
    assert await backend.occupy(*uid_window, 2) == 2
    assert await backend.occupy(*uid_window, 3) == 1
    assert (await blocked(backend)).window == uid_window[0]  # the window it named
    clock.advance(60.0 + 400.0)  # open, and remembered as asked
    assert await backend.closure("gate:key:k") == Closure(60.0, 100413)
    assert not backend.path.exists()


async def test_a_store_that_fails_in_use_says_what_could_not_be_done(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "limits.sqlite3"
    backend = HostBackend(path, clock=HandClock())
    in_flight = await take(backend, in_flight=1.0)
    with sqlite3.connect(path) as other:
        for table in ("slots", "windows", "gates", "closures"):
            other.execute(f"DROP TABLE {table}")
    failed = rf"^the limiter's store {re.escape(str(path))} failed \(no such table: \w+\): "
    for what, call in [
        ("fill a window", lambda: backend.occupy("uid:u:/x", Rate(3, 1.0), 2)),
        ("close a gate", lambda: backend.close_gate("gate:u:/x", 1.0)),
        ("read a gate; nothing was sent", lambda: backend.closure("gate:u:/x")),
        ("read a gate; nothing was sent", lambda: backend.gate_remaining("gate:u:/x")),
        ("take a slot; nothing was sent", lambda: backend.try_acquire(SCOPE, 0.0, HORIZON)),
    ]:
        with pytest.raises(LimiterUnavailableError, match=f"{failed}could not {what}$"):
            await call()
    # The request is over whatever the store says: its settle waits for the store.
    assert await in_flight.settle(answered=True, server_count=5) is False
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (
        f"the limiter's store {path} failed (no such table: slots): could not settle a slot; "
        "the request's slot is settled once the store is free"
    )
    await backend.aclose()


class SteppedClock(HandClock):
    """`before`'s monotonic clock, on the same boot, and its wall clock stepped `step` s
    (an NTP correction, a user setting the time)."""

    def __init__(self, before: HandClock, step: float) -> None:
        super().__init__()
        self.now, self._step_ms = before.now, round(step * 1000)

    def wall_ms(self) -> int:
        return super().wall_ms() + self._step_ms


@pytest.mark.parametrize("later", [0.0, 100.0])
@pytest.mark.parametrize("step", [-3600.0, 3600.0])
async def test_a_wall_clock_step_on_the_same_boot_moves_no_stored_time(
    tmp_path: Path, later: float, step: float
) -> None:
    # On one boot the monotonic clock is the truth: moving a disabled period's gate by
    # the wall clock's step would open it an hour early (or hold it an hour too long).
    before = HandClock()
    first = HostBackend(tmp_path / "limits.sqlite3", clock=before)
    await first.close_gate("gate:u:/x", 300.0)
    await first.aclose()
    after = SteppedClock(before, step)
    after.advance(later)
    second = HostBackend(tmp_path / "limits.sqlite3", clock=after)
    assert await second.gate_remaining("gate:u:/x") == pytest.approx(300.0 - later)
    await second.aclose()


def test_the_host_clock_reads_the_machine_in_epoch_milliseconds() -> None:
    clock = HostClock()
    wall = clock.wall_ms()
    assert isinstance(wall, int) and abs(wall - time.time() * 1000) < 1000
    assert abs(clock.monotonic() - time.monotonic()) < 1.0
    assert repr(clock) == "HostClock()"


def test_a_store_is_named_by_its_path_and_its_server(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite3"
    assert repr(HostBackend(path)) == f"HostBackend(path={str(path)!r})"
    other = HostBackend.for_base_url("https://bingx.example")
    assert other.path == default_host_store_path("https://bingx.example")
    assert other.path != default_host_store_path() and isinstance(other, HostBackend)


async def test_a_store_without_wal_cannot_be_opened_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # SQLite reads ":memory:" as a database in memory: no WAL
    with pytest.raises(LimiterUnavailableError, match=r"\(the file system does not support WAL\)"):
        await HostBackend(":memory:").gate_remaining("gate:u:/x")


def test_each_server_has_its_own_default_store_named_by_a_hash_of_its_url() -> None:
    assert default_host_store_path().name == "limits-c69b4a69f7c2cdf4.sqlite3"
    user_cache = Path(platformdirs.user_cache_dir())
    assert default_host_store_path().parent == user_cache / "bingx-assets"
    assert default_host_store_path("http://127.0.0.1:1").name != default_host_store_path().name


def test_a_locked_store_is_told_by_its_error_code_or_else_its_words() -> None:
    def error(message: str, code: int | None = None) -> sqlite3.OperationalError:
        exc = sqlite3.OperationalError(message)
        if code is not None:
            exc.sqlite_errorcode = code  # type: ignore[attr-defined]
        return exc

    is_locked = _host_store._is_locked
    busy_snapshot = sqlite3.SQLITE_BUSY | 2 << 8  # an extended code: the low byte tells
    for code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, busy_snapshot):
        assert is_locked(error("whatever it says", code))
    assert not is_locked(error("database is locked", sqlite3.SQLITE_ERROR))  # the code wins
    assert is_locked(error("database is locked")) and is_locked(error("database busy"))
    assert not is_locked(error("no such table: slots"))


def test_a_store_error_is_described_by_its_first_line() -> None:
    describe = _host_store._describe
    assert describe(OSError("")) == "OSError" and describe(ValueError("  ")) == "ValueError"
    assert describe(ValueError(" first\nsecond")) == "first"
    assert describe(ValueError("x" * 150)) == "x" * 100


async def test_the_default_store_that_cannot_be_opened_says_where_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = HostBackend(clock=HandClock())
    (tmp_path / "a-file").write_text("")
    backend.path = tmp_path / "a-file" / ("x" * 80) / "limits.sqlite3"
    await backend.gate_remaining("gate:u:/x")
    why = f"[Errno 20] Not a directory: '{backend.path.parent}'"[:100]
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning == (
        f"the limiter's store {backend.path} cannot be opened ({why}): this process keeps "
        "its limits in memory and shares none with other processes"
    )


async def test_a_store_is_made_with_its_directories_and_reopened_after_aclose(
    tmp_path: Path,
) -> None:
    backend = HostBackend(tmp_path / "a" / "b" / "limits.sqlite3", clock=HandClock())
    await backend.close_gate("gate:u:/x", 30.0)
    connection = backend._connection
    assert connection is not None
    await backend.aclose()
    with pytest.raises(sqlite3.ProgrammingError):  # closed, not left to the collector
        connection.execute("SELECT 1")
    await backend.aclose()  # twice is harmless
    assert await backend.gate_remaining("gate:u:/x") == 30.0  # opened again
    await backend.aclose()


async def test_a_store_is_usable_from_another_threads_loop(tmp_path: Path) -> None:
    backend = HostBackend(tmp_path / "limits.sqlite3", clock=HandClock())
    await backend.close_gate("gate:u:/x", 30.0)
    remaining = await asyncio.to_thread(asyncio.run, backend.gate_remaining("gate:u:/x"))
    assert remaining == 30.0
    await backend.aclose()


async def test_a_slot_in_flight_elsewhere_is_looked_at_again_after_50_ms_by_default(
    tmp_path: Path,
) -> None:
    backend = HostBackend(tmp_path / "limits.sqlite3", clock=HandClock())
    for _ in range(3):
        await take(backend, in_flight=HORIZON)
    full = await blocked(backend)
    assert (full.pending, full.seconds) == (True, 0.05)
    await backend.aclose()


async def test_a_locked_store_is_tried_again_after_pauses_doubling_from_half_a_ms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "limits.sqlite3"
    backend = HostBackend(path, clock=HandClock())
    await backend.gate_remaining("gate:u:/x")  # opened
    other = sqlite3.connect(path, isolation_level=None)  # another process, holding the lock
    other.execute("BEGIN IMMEDIATE")
    pauses: list[float] = []
    sleep = asyncio.sleep

    async def recorded(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 8:
            other.execute("COMMIT")
        await sleep(0)

    monkeypatch.setattr(_host_store.asyncio, "sleep", recorded)
    await backend.close_gate("gate:u:/x", 1.0)
    assert pauses == [0.0005, 0.001, 0.002, 0.004, 0.008, 0.01, 0.01, 0.01]
    other.close()
    await backend.aclose()


def test_the_boot_is_the_kernels_boot_id() -> None:
    boot_id = Path("/proc/sys/kernel/random/boot_id")  # Linux; elsewhere none: ""
    assert _host_store._boot_id() == (boot_id.read_text().strip() if boot_id.exists() else "")


async def test_a_store_locked_while_opening_says_so_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ("x" * 60) / "limits.sqlite3"
    made = HostBackend(path)
    await made.gate_remaining("gate:u:/x")
    await made.aclose()
    other = sqlite3.connect(path, isolation_level=None)  # another process, holding the lock
    other.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(_host_store, "LOCKED_FOR_TOO_LONG", 0.05)
    locked = (
        f"the limiter's store {path} stayed locked by another process for 0.05 s: "
        "could not open the store"
    )
    with pytest.raises(LimiterUnavailableError) as caught:
        await HostBackend(path).gate_remaining("gate:u:/x")
    assert str(caught.value) == (
        f"the limiter's store {path} cannot be opened ({locked}); nothing was sent"
    )
    other.close()


async def test_a_store_that_fails_while_opening_is_rolled_back_and_says_why(
    tmp_path: Path,
) -> None:
    path = tmp_path / "limits.sqlite3"
    made = HostBackend(path, clock=HandClock())
    await made.close_gate("gate:u:/x", 30.0)
    await made.aclose()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON clock "
            "BEGIN SELECT RAISE(ABORT, 'this store refuses its clock'); END"
        )
    with pytest.raises(LimiterUnavailableError) as caught:
        await HostBackend(path, clock=HandClock()).gate_remaining("gate:u:/x")
    assert str(caught.value) == (
        f"the limiter's store {path} cannot be opened (this store refuses its clock); "
        "nothing was sent"
    )


async def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    # SQLite connections must not cross a fork: the child's first call opens another.
    backend = HostBackend(tmp_path / "limits.sqlite3", clock=HandClock())
    await backend.close_gate("gate:u:/x", 30.0)
    parents = backend._connection
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            remaining = asyncio.run(backend.gate_remaining("gate:u:/x"))
            own = backend._connection is not None and backend._connection is not parents
            os.write(write, f"{remaining} {own}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        said = answer.read()
    await asyncio.to_thread(os.waitpid, child, 0)
    assert said == "30.0 True"
    await backend.aclose()


async def test_a_window_under_a_raised_limit_keeps_few_expired_rows(tmp_path: Path) -> None:
    # Found measuring issue 21: a window under its limit deleted none of its rows, so with
    # raised limits the store kept every request it ever saw (1,000 rows here, and the
    # table grew for as long as the process ran).
    clock = HandClock()
    backend = HostBackend(tmp_path / "limits.sqlite3", clock=clock)
    raised = replace(
        SCOPE,
        windows=(("uid:u:/x", Rate(10**9, 1.0)), ("ip:i:/x", Rate(10**9, 1.0))),
        errors=None,
    )
    for _ in range(1000):
        permit = await take(backend, raised)
        await permit.settle(answered=True, succeeded=True)
        clock.advance(0.1)  # ten calls per period: every older row has expired
    raw = sqlite3.connect(tmp_path / "limits.sqlite3")
    rows = dict(raw.execute("SELECT name, count(*) FROM slots GROUP BY name").fetchall())
    counted = dict(raw.execute("SELECT name, alive FROM windows").fetchall())
    raw.close()
    assert rows["uid:u:/x"] <= 11
    assert 11 <= rows["ip:i:/x"] <= _host_store._ROWS_KEPT + 1
    assert counted == rows  # the counts follow the rows deleted
    await backend.aclose()
