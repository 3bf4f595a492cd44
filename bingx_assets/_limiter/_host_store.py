"""`HostBackend`: the windows, gates and error budgets of every process on this machine,
in one SQLite database per BingX server: the default.

Why SQLite: it ships with Python, its write lock is the operating system's, and in WAL
mode a committed transaction survives the process that wrote it (SIGTERM, SIGKILL, a
crash), so a restart or a second process sees every slot the first one took. Each
acquire, settle, gate and fill is one short `BEGIN IMMEDIATE` transaction (tens of
microseconds), so processes take turns rather than share a snapshot that goes stale.

Which clock: every process must count on the same one, so not the event loop's (a test
loop's is virtual and per process), and not the wall clock (NTP can step it, and a step
forward would free slots early). Times are kept on `time.monotonic()`, which on Linux,
macOS and Windows is one system-wide clock that never steps; it restarts at a reboot, so
the store also records the boot (Linux's `boot_id`, and that the clock never runs
backwards) and the wall clock's offset from it, and after a reboot moves every stored
time by the difference of the two offsets: a gate set for a disabled period before the
reboot still opens when BingX said.

Never blocking the event loop on another process: the connection has no busy timeout,
and a transaction that finds the database locked sleeps on the loop (0.5 ms, doubling
to 10 ms) and tries again, for at most `LOCKED_FOR_TOO_LONG` before giving up with
`LimiterUnavailableError` (nothing was sent).

A store that cannot be opened (a read-only or missing directory, a file that is not a
database, locked for too long): the default one, in the user's cache directory, gives
one warning and keeps this process's limits in memory (`MemoryBackend`): the command
line and a bot keep running, as safely as a single process; one named by a path raises
`LimiterUnavailableError`, since whoever chose it meant it to be shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .._clock import Clock
from .._constants import DEFAULT_BASE_URL
from .._exceptions import LimiterUnavailableError
from .._files import per_server_cache_file
from ._backend import BOUNDARY, Blocked, Closure, GateClosed, Permit, Rate, Scope
from ._memory import MemoryBackend

__all__ = ["HostBackend", "HostClock", "default_host_store_path"]

log = logging.getLogger("bingx_assets")

T = TypeVar("T")

LOCKED_FOR_TOO_LONG = 5.0
"""Seconds a transaction may wait for other processes' before the store counts as
unavailable: thousands of their transactions."""

# Rows, expired or not, that a window under its limit may hold before its expired ones
# are deleted.
_ROWS_KEPT = 64

# The nanosecond forgives float error in `anchor + period`, nothing more (as in memory).
_EPSILON = 1e-9

# One b-tree per table, ordered as a window is read (oldest slot first): a permit knows
# its windows and anchor, so it finds its rows without a second index. `windows` counts
# each window's rows (`alive`) and the slots ever taken in it (`taken`), so that no call
# counts rows: a call costs the same in a window of 5 slots and in one of 2,000.
# `closures` is a table of its own, not columns of `gates`: a store made by an older
# version gains it as it is opened, and that version's processes, which write `gates`
# as they always did, go on sharing the store.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS slots (
    name TEXT NOT NULL, period REAL NOT NULL, anchor REAL NOT NULL, permit INTEGER NOT NULL,
    PRIMARY KEY (name, period, anchor, permit)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (
    name TEXT NOT NULL, period REAL NOT NULL, taken INTEGER NOT NULL, alive INTEGER NOT NULL,
    PRIMARY KEY (name, period)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gates (name TEXT PRIMARY KEY, opens REAL NOT NULL);
CREATE TABLE IF NOT EXISTS closures (
    name TEXT PRIMARY KEY, seconds REAL NOT NULL, code INTEGER, forgotten REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS clock (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def default_host_store_path(base_url: str = DEFAULT_BASE_URL) -> Path:
    """The store of `base_url` in the user's cache directory, as the environment says
    now: one per server, since a simulator's windows on loopback are not BingX's."""
    return per_server_cache_file("limits", base_url)


class HostClock:
    """The machine's clocks: `time.monotonic()` (system-wide) and the wall clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def __repr__(self) -> str:
        return "HostClock()"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""  # not Linux: a clock running backwards is what tells of a reboot


class HostBackend:
    """Limiter state shared by every process of this machine, in one SQLite file.

    `HostBackend()` is the store of BingX's server in the user's cache directory (what
    `RateLimiter.default()` and the command line use); `HostBackend.for_base_url(url)`
    that of another server; `HostBackend(path)` one file of your choosing. Share one per
    process between limiters, or open one per limiter: both count in the same tables.

    Answers in this process wake its waiters at once; answers in other processes are
    seen by looking again every `poll_interval` while a slot that blocks us is in flight.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        clock: Clock | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        self._falls_back = path is None
        self.poll_interval = poll_interval
        self.path = Path(path) if path is not None else default_host_store_path()
        self._clock: Clock = clock if clock is not None else HostClock()
        self._connection: sqlite3.Connection | None = None
        self._pid = -1
        self._fallback: MemoryBackend | None = None
        self._opening_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._unsettled: list[Callable[[sqlite3.Connection], object]] = []
        """Settles that found the store locked, applied by the next transaction."""
        self._permits = itertools.count(1)
        self._process = int.from_bytes(os.urandom(4)) >> 1 << 32  # a permit per process

    @classmethod
    def for_base_url(cls, base_url: str) -> HostBackend:
        """The default store of the server at `base_url` (with the same fallback)."""
        backend = cls()
        backend.path = default_host_store_path(base_url)
        return backend

    def __repr__(self) -> str:
        return f"HostBackend(path={str(self.path)!r})"

    # -- opening ------------------------------------------------------------------------

    async def _open(self) -> sqlite3.Connection | None:
        """The connection, opened on first use (and again in a forked child); None when
        the default store could not be opened and memory stands in for it."""
        if self._fallback is not None:
            return None
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        # One opening at a time: callers that found the store locked each made a memory
        # of their own, and keys of one UID counted in several (7 a second, 2 refused).
        async with self._opening():
            if self._fallback is None and (self._connection is None or self._pid != os.getpid()):
                await self._open_or_fall_back()
        return None if self._fallback is not None else self._connection

    def _opening(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._opening_lock is None or self._opening_lock[0] is not loop:
            self._opening_lock = (loop, asyncio.Lock())
        return self._opening_lock[1]

    async def _open_or_fall_back(self) -> None:
        connection = None
        try:
            connection = self._connect()
            await self._retry_while_locked(connection, self._prepare, "open the store")
        # ValueError: a stored time that is no number (the file was written by hand).
        except (OSError, ValueError, sqlite3.Error, LimiterUnavailableError) as exc:
            if connection is not None:
                connection.close()
            why = exc if isinstance(exc, LimiterUnavailableError) else _describe(exc)
            if not self._falls_back:
                raise LimiterUnavailableError(
                    f"the limiter's store {self.path} cannot be opened ({why}); nothing was sent"
                ) from exc
            # A damaged file stays damaged: say how to end the fallback of every run.
            damaged = type(exc) in (sqlite3.DatabaseError, ValueError)
            log.warning(
                "the limiter's store %s cannot be opened (%s): this process keeps its "
                "limits in memory and shares none with other processes%s",
                self.path,
                why,
                "; the file is damaged: delete it once no bingx-assets process runs "
                "(a new one is made; it held only the last minutes' limits)"
                if damaged
                else "",
            )
            self._fallback = MemoryBackend(self._clock)
            return
        self._connection, self._pid = connection, os.getpid()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created private before SQLite opens it: its -wal and -shm files take its mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        connection = sqlite3.connect(
            self.path, timeout=0, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA busy_timeout = 0")
        return connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        # WAL: writers never wait for readers; NORMAL: a commit survives the process
        # (only a power cut may lose the last ones, and a restart after one is slow).
        # Small pages, for a new store (an existing one keeps its own): a commit writes
        # each page it touched whole into the WAL, and a call touches a few rows of two
        # tables twice. 1 KiB pages cut that write, and a call's cost, by a quarter.
        connection.execute("PRAGMA page_size = 1024")
        if connection.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise sqlite3.OperationalError("the file system does not support WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.executescript(_SCHEMA)
        connection.execute("BEGIN IMMEDIATE")
        try:
            self._survive_a_reboot(connection)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def _survive_a_reboot(self, connection: sqlite3.Connection) -> None:
        """Move every stored time onto this boot's monotonic clock, through the wall
        clock, if the machine rebooted since the store last saw it."""
        now = self._clock.monotonic()
        offset = self._clock.wall_ms() / 1000 - now
        stored = dict(connection.execute("SELECT name, value FROM clock").fetchall())
        boot = _boot_id()
        if stored:
            rebooted = stored.get("boot", "") != boot or now < float(stored["seen"])
            if rebooted:
                moved = float(stored["offset"]) - offset
                connection.execute("UPDATE slots SET anchor = anchor + ?", (moved,))
                connection.execute("UPDATE gates SET opens = opens + ?", (moved,))
                connection.execute("UPDATE closures SET forgotten = forgotten + ?", (moved,))
        # Long-expired state (windows no one checks any more, open gates) goes.
        connection.execute("DELETE FROM slots WHERE anchor + period + ? < ?", (BOUNDARY, now))
        connection.execute("DELETE FROM gates WHERE opens < ?", (now,))
        connection.execute("DELETE FROM closures WHERE forgotten < ?", (now,))
        connection.execute(
            "UPDATE windows SET alive = (SELECT count(*) FROM slots AS s "
            "WHERE s.name = windows.name AND s.period = windows.period)"
        )
        connection.executemany(
            "INSERT OR REPLACE INTO clock VALUES (?, ?)",
            [("boot", boot), ("offset", repr(offset)), ("seen", repr(now))],
        )

    async def _retry_while_locked(
        self,
        connection: sqlite3.Connection,
        step: Callable[[sqlite3.Connection], T],
        what: str,
    ) -> T:
        """`step` (one transaction), tried again after a pause on the event loop while
        another process holds the write lock."""
        deadline = time.monotonic() + LOCKED_FOR_TOO_LONG
        pause = 0.0005
        while True:
            try:
                return step(connection)
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc):
                    raise
                if time.monotonic() > deadline:
                    raise LimiterUnavailableError(
                        f"the limiter's store {self.path} stayed locked by another process "
                        f"for {LOCKED_FOR_TOO_LONG:g} s: could not {what}"
                    ) from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.01)

    async def _transaction(self, step: Callable[[sqlite3.Connection], T], what: str) -> T:
        connection = await self._open()
        assert connection is not None  # callers check the fallback first

        def in_a_transaction(connection: sqlite3.Connection) -> T:
            connection.execute("BEGIN IMMEDIATE")
            # Tried once the lock is ours, then dropped whatever happens: a settle that
            # failed for another reason must not fail every transaction after it.
            late, self._unsettled = self._unsettled, []
            try:
                for settle in late:
                    settle(connection)
                result = step(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

        try:
            return await self._retry_while_locked(connection, in_a_transaction, what)
        except sqlite3.Error as exc:
            raise LimiterUnavailableError(
                f"the limiter's store {self.path} failed ({_describe(exc)}): could not {what}"
            ) from exc

    # -- the contract -------------------------------------------------------------------

    async def try_acquire(
        self, scope: Scope, in_flight: float, horizon: float
    ) -> Permit | Blocked | GateClosed:
        if await self._open() is None:
            assert self._fallback is not None
            return await self._fallback.try_acquire(scope, in_flight, horizon)
        permit = self._new_permit()
        checked = scope.checked
        # The gates and the windows' counts in one statement, each row found by its key:
        # `name IN (...)` would build a temporary b-tree for the list on every call.
        read_state = " UNION ALL ".join(
            [_GATE_ROW] * len(scope.gates) + [_WINDOW_ROW] * len(checked)
        )
        keys = (*scope.gates, *(part for name, rate in checked for part in (name, rate.period)))

        def acquire(db: sqlite3.Connection) -> Blocked | GateClosed | _HostPermit:
            now = self._clock.monotonic()
            opens: dict[str, float] = {}
            counts: dict[tuple[str, float], tuple[int, int]] = {}
            for name, value, taken, alive_rows in db.execute(read_state, keys):
                if taken is None:
                    opens[name] = value
                else:
                    counts[name, value] = (taken, alive_rows)
            for gate in scope.gates:
                if opens.get(gate, now) - now > 0:
                    return GateClosed(opens[gate] - now, gate)
            longest = 0.0
            blocking: tuple[str, Rate] | None = None  # the window waited for, and its rate
            alive = [counts.get((name, rate.period), (0, 0))[1] for name, rate in checked]
            dropped = [0] * len(checked)
            for n, (name, rate) in enumerate(checked):
                # Rows counted may have expired: fewer than the limit admits all the same.
                # The UID window is always counted exactly (a server's count is read
                # against it), the others once they might be full or hold more than a
                # few rows: with raised limits, a window under its limit would otherwise
                # keep every row it ever took.
                if n == 0 or alive[n] >= min(rate.limit, _ROWS_KEPT):
                    dropped[n] = _drop_expired(db, name, rate, now)
                    alive[n] -= dropped[n]
                if alive[n] >= rate.limit:
                    wait = _wait(db, name, rate, now)
                    if wait > longest:
                        longest, blocking = wait, (name, rate)
            if blocking is not None:
                db.executemany(
                    _RECOUNT,
                    [
                        (-d, name, rate.period)
                        for d, (name, rate) in zip(dropped, checked, strict=True)
                        if d
                    ],
                )
                # A slot still in flight frees when its answer arrives, maybe in another
                # process, which cannot wake this one: look again soon.
                pending = _awaits_answers(db, *blocking, now)
                if pending:
                    longest = min(longest, self.poll_interval)
                return Blocked(longest, blocking[0], pending)
            anchor = now + in_flight
            db.executemany(
                "INSERT INTO slots VALUES (?, ?, ?, ?)",
                [(name, rate.period, anchor, permit) for name, rate in checked],
            )
            db.executemany(
                _COUNT,
                [
                    (name, rate.period, 1, 1 - d)
                    for d, (name, rate) in zip(dropped, checked, strict=True)
                ],
            )
            uid_window, uid_rate = scope.windows[0]
            taken = counts.get((uid_window, uid_rate.period), (0, 0))[0] + 1
            return _HostPermit(
                self, permit, scope, anchor, now + horizon, in_flight < horizon, alive[0] + 1, taken
            )

        # Permits are made inside: a blocked try leaves nothing to settle.
        return await self._transaction(acquire, "take a slot; nothing was sent")

    def _new_permit(self) -> int:
        return self._process | next(self._permits)

    async def occupy(self, window: str, rate: Rate, count: int) -> int:
        if await self._open() is None:
            assert self._fallback is not None
            return await self._fallback.occupy(window, rate, count)

        def occupy(db: sqlite3.Connection) -> int:
            now = self._clock.monotonic()
            return self._fill(db, window, rate, count - _alive(db, window, rate, now), now)

        return await self._transaction(occupy, "fill a window")

    def _fill(
        self, db: sqlite3.Connection, window: str, rate: Rate, missing: int, now: float
    ) -> int:
        """`missing` slots of someone else's requests, counting from `now`."""
        if missing <= 0:
            return 0
        db.executemany(
            "INSERT INTO slots VALUES (?, ?, ?, ?)",
            [(window, rate.period, now, self._new_permit()) for _ in range(missing)],
        )
        _count(db, window, rate.period, missing)
        return missing

    async def close_gate(
        self, gate: str, seconds: float, *, code: int | None = None, remember: float = 0.0
    ) -> None:
        if await self._open() is None:
            assert self._fallback is not None
            await self._fallback.close_gate(gate, seconds, code=code, remember=remember)
            return

        def close(db: sqlite3.Connection) -> None:
            opens = self._clock.monotonic() + seconds
            row = db.execute(_GATES.format("?"), (gate,)).fetchone()
            if row is not None and row[1] >= opens:
                return  # never shortened
            db.execute("INSERT OR REPLACE INTO gates VALUES (?, ?)", (gate, opens))
            db.execute(
                "INSERT OR REPLACE INTO closures VALUES (?, ?, ?, ?)",
                (gate, seconds, code, opens + remember),
            )

        await self._transaction(close, "close a gate")

    async def closure(self, gate: str) -> Closure | None:
        if await self._open() is None:
            assert self._fallback is not None
            return await self._fallback.closure(gate)

        def read(db: sqlite3.Connection) -> Closure | None:
            row = db.execute(
                "SELECT seconds, code FROM closures WHERE name = ? AND forgotten > ?",
                (gate, self._clock.monotonic()),
            ).fetchone()
            return None if row is None else Closure(row[0], row[1])

        return await self._transaction(read, "read a gate; nothing was sent")

    async def gate_remaining(self, gate: str) -> float:
        if await self._open() is None:
            assert self._fallback is not None
            return await self._fallback.gate_remaining(gate)

        def remaining(db: sqlite3.Connection) -> float:
            row = db.execute(_GATES.format("?"), (gate,)).fetchone()
            return 0.0 if row is None else max(0.0, row[1] - self._clock.monotonic())

        return await self._transaction(remaining, "read a gate; nothing was sent")

    async def aclose(self) -> None:
        """Close the connection; every slot is already on disk, but for settles that
        found the store locked, applied now if it is free."""
        if self._connection is not None and self._pid == os.getpid():
            if self._unsettled:
                with contextlib.suppress(LimiterUnavailableError):
                    await self._transaction(lambda _: None, "settle slots")
            self._connection.close()
        self._connection = None

    async def settle_permit(
        self, permit: _HostPermit, answered: bool, succeeded: bool, server_count: int | None
    ) -> bool:
        if not answered and not permit.bet and not succeeded:
            return False  # the slot already counts until its horizon

        def settle(db: sqlite3.Connection) -> bool:
            now = self._clock.monotonic()
            was = permit.anchor
            kept = permit.windows
            errors = permit.scope.errors
            if succeeded and errors is not None and permit.windows[-1][0] == errors[0]:
                kept = permit.windows[:-1]  # a success was no error: given back
                if db.execute(_DELETE_SLOT, (*permit.windows[-1], was, permit.permit)).rowcount:
                    _count(db, *permit.windows[-1], -1, taken=0)
            moved = min(was, now) if answered else max(was, permit.horizon_at)
            if moved != was:
                db.executemany(
                    _MOVE_SLOT, [(moved, name, period, was, permit.permit) for name, period in kept]
                )
            permit.anchor, permit.windows = moved, kept
            if not answered or server_count is None:
                return False
            window, rate = permit.scope.windows[0]
            taken = db.execute(_TAKEN, (window, rate.period)).fetchone()[0]
            ours = permit.alive + taken - permit.taken
            return self._fill(db, window, rate, server_count - ours, now) > 0

        try:
            return await self._transaction(settle, "settle a slot")
        except LimiterUnavailableError as exc:
            # Until then its slot counts until its horizon (later than its answer), and a
            # success's error-budget slot as an error: left so for the error window, a
            # lock held over a round in flight filled a UID's budget with errors BingX
            # never saw. The next transaction of this process applies it first.
            log.warning("%s; the request's slot is settled once the store is free", exc)
            self._unsettled.append(settle)
            return False


# A scope has any number of gates (its UID's, its IP's, its key's).
_GATES = "SELECT name, opens FROM gates WHERE name IN ({})"
# A gate's row reads (name, opens, NULL, NULL), a window's (name, period, taken, alive).
_GATE_ROW = "SELECT name, opens, NULL, NULL FROM gates WHERE name = ?"
_WINDOW_ROW = "SELECT name, period, taken, alive FROM windows WHERE name = ? AND period = ?"
_COUNT = (
    "INSERT INTO windows VALUES (?, ?, ?, ?) ON CONFLICT (name, period) DO UPDATE "
    "SET taken = taken + excluded.taken, alive = alive + excluded.alive"
)
_TAKEN = "SELECT taken FROM windows WHERE name = ? AND period = ?"
_RECOUNT = "UPDATE windows SET alive = alive + ? WHERE name = ? AND period = ?"
_MOVE_SLOT = (
    "UPDATE slots SET anchor = ? WHERE name = ? AND period = ? AND anchor = ? AND permit = ?"
)
_DELETE_SLOT = "DELETE FROM slots WHERE name = ? AND period = ? AND anchor = ? AND permit = ?"


def _drop_expired(db: sqlite3.Connection, name: str, rate: Rate, now: float) -> int:
    """Delete window `name`'s expired slots; returns how many (its count is not moved)."""
    return db.execute(
        "DELETE FROM slots WHERE name = ? AND period = ? AND anchor <= ?",
        (name, rate.period, now + _EPSILON - rate.period - BOUNDARY),
    ).rowcount


def _alive(db: sqlite3.Connection, name: str, rate: Rate, now: float) -> int:
    """How many slots window `name` holds at `now`, once its expired ones are dropped."""
    dropped = _drop_expired(db, name, rate, now)
    row = db.execute(_RECOUNT + " RETURNING alive", (-dropped, name, rate.period)).fetchone()
    return 0 if row is None else int(row[0])


def _wait(db: sqlite3.Connection, name: str, rate: Rate, now: float) -> float:
    """Seconds until full window `name` (its expired slots dropped) admits one more
    request, `rate.limit` at most."""
    # Anchors move when requests are settled: the limit-th latest frees the window.
    row = db.execute(
        "SELECT anchor FROM slots WHERE name = ? AND period = ? "
        "ORDER BY anchor DESC LIMIT 1 OFFSET ?",
        (name, rate.period, rate.limit - 1),
    ).fetchone()
    expiry = rate.period + BOUNDARY
    return 0.0 if row is None else max(0.0, row[0] + expiry - now - _EPSILON)


def _awaits_answers(db: sqlite3.Connection, name: str, rate: Rate, now: float) -> bool:
    """Whether fewer than `rate.limit` of full window `name`'s slots (its expired ones
    dropped) are answered: an answered slot is anchored at its answer, one in flight
    after now, so the limit-th oldest tells."""
    row = db.execute(
        "SELECT anchor FROM slots WHERE name = ? AND period = ? ORDER BY anchor LIMIT 1 OFFSET ?",
        (name, rate.period, rate.limit - 1),
    ).fetchone()
    return row is not None and row[0] > now + _EPSILON


def _count(
    db: sqlite3.Connection, name: str, period: float, more: int, *, taken: int | None = None
) -> tuple[int, int]:
    """Add `more` slots to a window's count of rows, and (unless `taken=0`) to the
    slots ever taken in it, which tells how many of ours a server's count may include;
    returns both counts."""
    added = more if taken is None else taken
    row = db.execute(_COUNT + " RETURNING taken, alive", (name, period, added, more)).fetchone()
    return int(row[0]), int(row[1])


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _describe(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__


class _HostPermit:
    __slots__ = (
        "_backend",
        "alive",
        "anchor",
        "bet",
        "horizon_at",
        "permit",
        "scope",
        "taken",
        "windows",
    )

    def __init__(
        self,
        backend: HostBackend,
        permit: int,
        scope: Scope,
        anchor: float,
        horizon_at: float,
        bet: bool,
        alive: int,
        taken: int,
    ) -> None:
        self._backend, self.permit, self.scope = backend, permit, scope
        self.anchor, self.horizon_at, self.bet = anchor, horizon_at, bet
        checked = scope.checked
        self.windows = tuple((name, rate.period) for name, rate in checked)
        """Where its rows are: (name, period) of each window, all at `anchor`."""
        # What this client can account for in the UID window when the server counts
        # this request: what was alive when it was sent, and whatever was sent since.
        self.alive, self.taken = alive, taken

    async def settle(
        self, *, answered: bool, succeeded: bool = False, server_count: int | None = None
    ) -> bool:
        return await self._backend.settle_permit(self, answered, succeeded, server_count)
