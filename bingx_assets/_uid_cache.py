"""`UidCache`: the UIDs BingX named for this machine's keys, remembered between processes.

A key's UID comes from `GET /openApi/account/v1/uid`, at 5 lookups/s in all, so 1,000
keys take over 3 minutes in every new process; a `uid` written by hand is only a claim
until such a lookup agrees. The cache remembers what the lookups said, so each key pays
once per machine. Only a lookup's answer is ever written here: an entry is a verified
pair, never a claim.

It is one SQLite table per server (default: `uids.sqlite3` for BingX's own, and
`uids-<hash of the base URL>.sqlite3` for any other, in
`platformdirs.user_cache_dir("bingx-assets")`, which honours `XDG_CACHE_HOME`), in WAL
mode: a put is one short transaction touching one row, so what a write costs barely
grows with the entries (one WAL page at 20,000 as at 10), and readers never wait for
writers. Processes writing at once are
serialised by SQLite itself.

A key id is BLAKE2b-128 of the api key, personalised `bingx-assets-uid`: it cannot be
turned back into the key, and the secret never enters it. The database and its WAL
files are 600 in a directory created 700. A `uids.json` of the previous format beside
the database (same name, `.json`) is read once, into a new database, and left as it
was. The cache is only a saving: a store that cannot be opened, read or written (corrupt,
of a newer version, locked for too long) costs lookups and one log line, never an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path

from ._constants import DEFAULT_BASE_URL
from ._exceptions import AuthenticationError
from ._files import cache_directory, per_server_cache_file
from ._logging import log

__all__ = ["UidCache", "default_uid_cache_path", "key_id", "open_uid_cache"]

FORMAT_VERSION = 2  # 1 was the JSON file
_LEGACY_VERSION = 1
_PERSONALISATION = b"bingx-assets-uid"  # BLAKE2's 16-byte personalisation: ours alone
_BAD_API_KEY = 100413
# Another process's transaction is one row long: waiting longer means something is wrong.
_BUSY_TIMEOUT_SECONDS = 2.0


def key_id(api_key: str) -> str:
    """The cache's name for an api key: a one-way hash, useless as a credential."""
    return hashlib.blake2b(api_key.encode(), digest_size=16, person=_PERSONALISATION).hexdigest()


def default_uid_cache_path(base_url: str = DEFAULT_BASE_URL) -> Path:
    """The cache of the server at `base_url` in the user's cache directory, as the
    environment says now: `uids.sqlite3` for BingX's own, `uids-<hash>.sqlite3` for any
    other (a simulator served on loopback, a test server), as the host store is named.
    A simulator's keys and UIDs are its own: in BingX's cache they would schedule the
    keys of a later simulator, which draws the same keys, by UIDs it never gave them."""
    if base_url == DEFAULT_BASE_URL:
        return cache_directory() / "uids.sqlite3"  # its name from before caches were per server
    return per_server_cache_file("uids", base_url)


class UidCache:
    """Verified UIDs by key id, in one database shared by every process that names it.

    `path` names the database; a path ending in `.json` (the previous format's name)
    means the database beside it, `.sqlite3`, which starts from that file's entries.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.with_suffix(".sqlite3") if path.suffix == ".json" else path
        # Reads come from the event loop, writes from worker threads: a connection each,
        # so that a write waiting for another process's transaction never holds a read.
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._read_lock, self._write_lock = threading.Lock(), threading.Lock()
        self._unusable = False
        self._complained = False

    def __repr__(self) -> str:
        return f"UidCache({str(self.path)!r})"

    def get(self, api_key: str) -> str | None:
        """The UID a lookup on this machine found for `api_key`, if any."""
        with self._read_lock:
            if self._reader is None and not self._unusable and self._exists():
                self._reader = self._connect()
            if self._reader is None:
                return None
            try:
                row = self._reader.execute(
                    "SELECT uid FROM uids WHERE key_id = ?", (key_id(api_key),)
                ).fetchone()
            except sqlite3.Error as exc:
                self._complain("read", exc)
                return None
        uid = row[0] if row else None
        # Anything else was written by someone else's mistake: a miss, which costs a lookup.
        return uid if isinstance(uid, str) and _is_uid(uid) else None

    def put(self, api_key: str, uid: str) -> None:
        """Remember that a lookup found `uid` for `api_key`, replacing another UID."""
        ident = key_id(api_key)
        with self._write_lock:
            if self._writer is None and not self._unusable:
                self._writer = self._connect()
            connection = self._writer
            if connection is None:
                return
            try:
                with connection:  # one transaction: read the row, then change it
                    connection.execute("BEGIN IMMEDIATE")
                    row = connection.execute(
                        "SELECT uid FROM uids WHERE key_id = ?", (ident,)
                    ).fetchone()
                    if row is not None and row[0] == uid:
                        return
                    if row is not None:
                        log.info("the UID cache named another UID for a key: replaced")
                    connection.execute(
                        "INSERT OR REPLACE INTO uids (key_id, uid) VALUES (?, ?)", (ident, uid)
                    )
            except sqlite3.Error as exc:
                self._complain("write", exc)

    def drop(self, api_key: str) -> None:
        """Forget `api_key`'s UID."""
        with self._write_lock:
            if self._writer is None and not self._unusable and self._exists():
                self._writer = self._connect()
            connection = self._writer
            if connection is None:
                return
            try:
                with connection:
                    connection.execute("DELETE FROM uids WHERE key_id = ?", (key_id(api_key),))
            except sqlite3.Error as exc:
                self._complain("write", exc)

    async def forget_if_refused(self, api_key: str, error: BaseException) -> None:
        """BingX does not know `api_key` (100413): whatever UID it had is not to be trusted.
        (A write: off the event loop.)"""
        if isinstance(error, AuthenticationError) and error.code == _BAD_API_KEY:
            await asyncio.to_thread(self.drop, api_key)

    def close(self) -> None:
        with self._read_lock, self._write_lock:
            for connection in (self._reader, self._writer):
                if connection is not None:
                    connection.close()
            self._reader = self._writer = None

    def __del__(self) -> None:  # a cache forgotten by `_open`, in tests
        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()

    # -- the database ---------------------------------------------------------------

    def _exists(self) -> bool:
        """Whether there is a database, or an old file to make one from: a process that
        only reads leaves no file behind."""
        return any(map(os.path.exists, (self.path, self.path.with_suffix(".json"))))

    def _connect(self) -> sqlite3.Connection | None:
        """A connection to the database, created (and migrated) if need be; None when the
        store cannot be used, which is said once and not tried again."""
        connection = None
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Created 600 before SQLite opens it: its WAL files take the database's mode.
            # Never through a symlink: in a shared directory one could point anywhere.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
            connection = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # transactions are begun here, explicitly
                check_same_thread=False,
            )
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > FORMAT_VERSION:
                raise _NewerStore(f"it is version {version}; this is {FORMAT_VERSION}")
            if version < FORMAT_VERSION:
                self._create(connection)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent
        except _NewerStore as exc:
            # A newer bingx-assets may share the directory: its store is left alone.
            self._give_up(connection, "use", exc)
            return None
        except (OSError, sqlite3.Error) as exc:
            self._give_up(connection, "open", exc)
            return None
        return connection

    def _create(self, connection: sqlite3.Connection) -> None:
        """The table, and the old JSON file's entries, in one transaction: a second
        process doing the same waits, then finds the version set and does nothing."""
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            if connection.execute("PRAGMA user_version").fetchone()[0] == FORMAT_VERSION:
                return
            connection.execute(
                "CREATE TABLE IF NOT EXISTS uids (key_id TEXT PRIMARY KEY, uid TEXT NOT NULL)"
                " WITHOUT ROWID"
            )
            connection.executemany(
                "INSERT OR IGNORE INTO uids (key_id, uid) VALUES (?, ?)", self._legacy_entries()
            )
            connection.execute(f"PRAGMA user_version = {FORMAT_VERSION}")

    def _legacy_entries(self) -> list[tuple[str, str]]:
        """The entries of `uids.json` (the previous format) beside the database, if any;
        a file that does not read as one is passed over with the one log line."""
        legacy = self.path.with_suffix(".json")
        try:
            document = json.loads(legacy.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            self._complain("migrate", exc, legacy)
            return []
        version = document.get("version") if isinstance(document, dict) else None
        uids = document.get("uids") if version == _LEGACY_VERSION else None
        if not isinstance(uids, dict):
            self._complain("migrate", ValueError("not a version 1 UID cache"), legacy)
            return []
        # Entries of any other shape are someone's mistake: leave them out, keep the rest.
        return [
            (k, v)
            for k, v in uids.items()
            if isinstance(k, str) and len(k) == 32 and isinstance(v, str) and _is_uid(v)
        ]

    def _give_up(
        self, connection: sqlite3.Connection | None, what: str, exc: BaseException
    ) -> None:
        self._unusable = True
        if connection is not None:
            connection.close()
        self._complain(what, exc)

    def _complain(self, what: str, exc: BaseException, path: Path | None = None) -> None:
        """One log line per cache, whatever the trouble: lookups go on without it."""
        if not self._complained:
            self._complained = True
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning("cannot %s the UID cache %s (%s): going on without it", what,
                        path or self.path, reason)  # fmt: skip


class _NewerStore(Exception):
    pass


def _is_uid(text: str) -> bool:
    return text.isascii() and text.isdecimal()


class _NoUidCache(UidCache):
    """`uid_cache=False`: remembers nothing and never touches the disk."""

    def get(self, api_key: str) -> str | None:
        return None

    def put(self, api_key: str, uid: str) -> None:
        pass

    def drop(self, api_key: str) -> None:
        pass


_NO_CACHE = _NoUidCache(Path(os.devnull))
_open: dict[Path, UidCache] = {}


def open_uid_cache(
    option: bool | str | os.PathLike[str], base_url: str = DEFAULT_BASE_URL
) -> UidCache:
    """The cache `ClientOptions.uid_cache` names for the server at `base_url`: one per
    database in a process."""
    if option is False:
        return _NO_CACHE
    path = default_uid_cache_path(base_url) if option is True else option
    cache = UidCache(Path(os.path.abspath(path)))
    return _open.setdefault(cache.path, cache)
