"""`UidCache`: the UIDs this machine has looked up, remembered between processes.

Keys without a `uid` are looked up at 5/s in total, so 1,000 keys take over 3 minutes in
every new process. The cache is one JSON file (default: `uids.json` in
`platformdirs.user_cache_dir("bingx-assets")`, which honours `XDG_CACHE_HOME`):

```json
{"version": 1, "uids": {"<key id>": "16844999"}}
```

A key id is BLAKE2b-128 of the api key, personalised `bingx-assets-uid`: it cannot be
turned back into the key, and the secret never enters it. The file is 600 in a directory
created 700. Writers take an exclusive `flock` on `uids.json.lock`, read the file again,
merge their change and replace the file in one `os.replace`, so processes writing at once
lose nothing and readers never see half a file. The cache is only a saving: a file that
cannot be read or written costs lookups and one log line, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import platformdirs

from ._exceptions import AuthenticationError
from ._files import locked, write_private
from ._logging import log

__all__ = ["UidCache", "default_uid_cache_path", "key_id", "open_uid_cache"]

FORMAT_VERSION = 1
_PERSONALISATION = b"bingx-assets-uid"  # BLAKE2's 16-byte personalisation: ours alone
_BAD_API_KEY = 100413


def key_id(api_key: str) -> str:
    """The cache's name for an api key: a one-way hash, useless as a credential."""
    return hashlib.blake2b(api_key.encode(), digest_size=16, person=_PERSONALISATION).hexdigest()


def default_uid_cache_path() -> Path:
    """`uids.json` in the user's cache directory, as the environment says now."""
    return Path(platformdirs.user_cache_dir("bingx-assets", appauthor=False)) / "uids.json"


class UidCache:
    """UIDs by key id, in one file shared by every process that names it.

    Reads come from memory, loaded again whenever the file has changed on disk; each
    change is merged into the file under its lock at once.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._uids: dict[str, str] = {}
        self._seen: tuple[int, ...] | None = None  # the file's `_signature` when loaded
        self._complained = False

    def __repr__(self) -> str:
        return f"UidCache({str(self.path)!r})"

    def get(self, api_key: str) -> str | None:
        """The UID remembered for `api_key`, if any."""
        self._refresh()
        return self._uids.get(key_id(api_key))

    def put(self, api_key: str, uid: str) -> None:
        """Remember `uid` for `api_key`; a different UID remembered before is replaced."""
        ident = key_id(api_key)
        self._refresh()
        if self._uids.get(ident) == uid:
            return

        def replace(uids: dict[str, str]) -> None:
            if uids.get(ident) not in (None, uid):
                log.info("the UID cache named another UID for a key: replaced")
            uids[ident] = uid

        self._change(replace)

    def drop(self, api_key: str) -> None:
        """Forget `api_key`'s UID."""
        ident = key_id(api_key)
        self._refresh()
        if ident not in self._uids:
            return
        self._change(lambda uids: uids.pop(ident, None))

    def forget_if_refused(self, api_key: str, error: BaseException) -> None:
        """BingX does not know `api_key` (100413): whatever UID it had is not to be trusted."""
        if isinstance(error, AuthenticationError) and error.code == _BAD_API_KEY:
            self.drop(api_key)

    # -- the file -------------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._uids, self._seen = {}, None
            return
        except OSError as exc:
            self._complain("read", exc)
            return
        if _signature(stat) != self._seen:
            loaded = self._load()
            # A file not ours counts as never loaded: nothing may be written over it.
            self._uids, self._seen = loaded or {}, _signature(stat) if loaded is not None else None

    def _load(self) -> dict[str, str] | None:
        """The file's UIDs; None for a file of another version, which is left alone
        (a newer bingx-assets may share the directory)."""
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
            self._complain("read", exc)
            return {}
        version = document.get("version") if isinstance(document, dict) else None
        if isinstance(version, int) and version > FORMAT_VERSION:
            self._complain("use", ValueError(f"it is version {version}; this is {FORMAT_VERSION}"))
            return None
        uids = document.get("uids") if version == FORMAT_VERSION else None
        if not isinstance(uids, dict):
            self._complain("read", ValueError(f"not a version {FORMAT_VERSION} UID cache"))
            return {}
        # Entries of any other shape are someone's mistake: leave them out, keep the rest.
        return {
            k: v
            for k, v in uids.items()
            if isinstance(k, str) and isinstance(v, str) and v.isascii() and v.isdecimal()
        }

    def _change(self, change: Callable[[dict[str, str]], object]) -> None:
        """Apply `change` to the file's UIDs as they are now, under its lock."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with locked(self.path.with_name(self.path.name + ".lock")):
                uids = self._load() if self._written_since_loaded() else dict(self._uids)
                if uids is None:
                    return
                change(uids)
                write_private(self.path, _encode(uids))
                # Still under the lock: the file on disk is exactly these UIDs.
                self._uids, self._seen = uids, _signature(self.path.stat())
        except OSError as exc:
            self._complain("write", exc)

    def _written_since_loaded(self) -> bool:
        try:
            return self._seen is None or _signature(self.path.stat()) != self._seen
        except OSError:
            return True

    def _complain(self, what: str, exc: BaseException) -> None:
        """One log line per cache, whatever the trouble: lookups go on without it."""
        if not self._complained:
            self._complained = True
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            log.warning("cannot %s the UID cache %s (%s): going on without it", what, self.path,
                        reason)  # fmt: skip


def _signature(stat: os.stat_result) -> tuple[int, ...]:
    """What changes whenever the file is replaced or rewritten."""
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _encode(uids: dict[str, str]) -> bytes:
    return json.dumps({"version": FORMAT_VERSION, "uids": uids}, sort_keys=True).encode()


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


def open_uid_cache(option: bool | str | os.PathLike[str]) -> UidCache:
    """The cache `ClientOptions.uid_cache` names: one per file in a process."""
    if option is False:
        return _NO_CACHE
    path = default_uid_cache_path() if option is True else option
    path = Path(os.path.abspath(path))
    cache = _open.get(path)
    if cache is None:
        cache = _open[path] = UidCache(path)
    return cache
