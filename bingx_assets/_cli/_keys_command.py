"""`bingx-assets keys resolve FILE`: the keys' UIDs, as BingX says, pinned in the file.

A `uid` in a keys file is a claim until a lookup on this machine agrees (the UID cache
remembers the lookups). This command checks every key the cache cannot vouch for:
keys without a `uid` are looked up and get `uid = N` after their key's last line; a
`uid` BingX contradicts is corrected in place and named on one line. Lookups go
through the limiter of this machine's store (5/s in all, shared with every other
command of this machine). Comments, order and layout stay as they were
(tomlkit). The new file replaces the old one in one `os.replace` and is never readable
by others. A key that fails is named on one line and the others are still written; the
exit code is then 1.

A uid this command wrote counts as verified on this machine, because its lookup is in
this machine's cache; on another machine it is checked once more, on first use.
"""

from __future__ import annotations

import argparse
import asyncio
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import InlineTable, Table

from .._client import AssetsClient
from .._credentials import MAX_KEYS_FILE_BYTES, Credentials
from .._exceptions import ConfigurationError
from .._files import read_regular_file, write_private
from .._limiter import HostBackend, RateLimiter
from .._options import ClientOptionArgs, ClientOptions
from .._printable import printable
from .._transports._http_clients import HttpClients
from .._uid_cache import open_uid_cache
from ._render import error_text

__all__ = ["resolve_keys_file"]

EXIT_OK, EXIT_SOME_FAILED = 0, 1
_LOOKUPS_PER_SECOND = 5


async def resolve_keys_file(args: argparse.Namespace) -> int:
    """The `keys resolve` command: `args.file`, `args.base_url`, `args.timeout`."""
    file, credentials, original, document = _read(args.file)
    shown = printable(str(file))  # a path, like a label, is anyone's text
    tables = document["keys"]
    settings: ClientOptionArgs = {"timeout": args.timeout}
    if args.base_url is not None:  # else BINGX_BASE_URL or BingX's own
        settings["base_url"] = args.base_url
    options = ClientOptions(**settings)
    cache = open_uid_cache(options.uid_cache, options.base_url)
    unchecked = [
        n for n, c in enumerate(credentials) if c.uid is None or cache.get(c.api_key) != c.uid
    ]
    if not unchecked:
        print(f"{shown}: every key's uid is one this machine verified", flush=True)
        return EXIT_OK
    print(
        f"{shown}: checking {len(unchecked)} UIDs "
        f"(up to {len(unchecked) / _LOOKUPS_PER_SECOND:.0f} s at {_LOOKUPS_PER_SECOND} "
        "lookups/s)",
        flush=True,
    )
    found = await _look_up([credentials[n] for n in unchecked], options)
    failed = written = corrected = 0
    for n, outcome in zip(unchecked, found, strict=True):
        claimed = credentials[n].uid
        if isinstance(outcome, Exception):
            failed += 1
            print(
                f"bingx-assets: error: {printable(credentials[n].label)}: {error_text(outcome)}",
                file=sys.stderr,
            )
        elif claimed is None:
            _pin_uid(tables[n], int(outcome))
            written += 1
        elif claimed != outcome:
            tables[n]["uid"] = int(outcome)  # in place, where the wrong one stood
            written += 1
            corrected += 1
            print(f"{printable(credentials[n].label)}: uid {claimed} is not its UID; BingX "
                  f"says {outcome}: corrected", flush=True)  # fmt: skip
    if written:
        _replace(file, original, document.as_string().encode())
    summary = f"wrote {written} UIDs" + (f" ({corrected} corrected)" if corrected else "")
    if not written and not failed:
        summary = "every uid agrees with BingX; nothing to write"
    print(f"{shown}: {summary}" + (f", {failed} keys failed" if failed else ""), flush=True)
    return EXIT_SOME_FAILED if failed else EXIT_OK


async def _look_up(credentials: list[Credentials], options: ClientOptions) -> list[str | Exception]:
    """Each key's UID as BingX says (remembered by this machine, or looked up), or what
    stopped it; every lookup shares one limiter: this machine's store, as every other
    command's, so that a resolve beside `balances` or another resolve never puts more
    than 5 lookups a second on a UID. The uids written in the file are left out: they
    are what is being checked."""
    limiter = RateLimiter(backend=HostBackend.for_base_url(options.base_url))
    http = HttpClients(None)  # the default session, one for every lookup, as a pool's
    clients = [
        AssetsClient(c.api_key, c.secret_key, label=c.label, limiter=limiter, options=options)
        for c in credentials
    ]
    for client in clients:
        client._http_clients = http
    try:
        lookups = [asyncio.ensure_future(c.uid()) for c in clients]
        if sys.stderr.isatty():
            _show_progress(lookups)
        outcomes = await asyncio.gather(*lookups, return_exceptions=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)
    finally:
        await http.aclose()
    await limiter.aclose()
    for outcome in outcomes:
        if not isinstance(outcome, str | Exception):
            raise outcome  # KeyboardInterrupt and the like: not a key's outcome
    return outcomes  # type: ignore[return-value]


def _show_progress(lookups: Sequence[asyncio.Future[str]]) -> None:
    """`resolved N/M` on the terminal, kept up to date as lookups end."""
    done = 0

    def one_more(_: object) -> None:
        nonlocal done
        done += 1
        print(f"\rresolved {done}/{len(lookups)}", end="", file=sys.stderr, flush=True)

    for lookup in lookups:
        lookup.add_done_callback(one_more)


def _read(
    path: Path,
) -> tuple[Path, list[Credentials], bytes, tomlkit.TOMLDocument]:
    """The file (through any symlink), its keys checked as `balances` would, its bytes,
    and its document to edit."""
    file = Path(path).resolve()
    credentials = Credentials.from_file(file)
    original = _read_bytes(file)
    try:
        document = tomlkit.parse(original.decode("utf-8"))
    except (tomlkit.exceptions.ParseError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file} is not valid TOML: {exc}") from None
    return file, credentials, original, document


def _read_bytes(file: Path) -> bytes:
    try:
        return read_regular_file(file, limit=MAX_KEYS_FILE_BYTES)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {file}: {exc.strerror}") from None


def _pin_uid(table: Any, uid: int) -> None:
    """`uid = N` as the table's last key, ahead of any comments and blank lines after it
    (they belong to what follows; tomlkit would append after them)."""
    if isinstance(table, Table):
        body = table.value.body
        after = max(n for n, (key, _) in enumerate(body) if key is not None) + 1
        if after < len(body):
            # tomlkit has no public insert; `_insert_at` is in every version we allow
            # (`_insert_after` is gone from 0.15).
            table.value._insert_at(after, "uid", uid)
            return
    elif not isinstance(table, InlineTable):
        # Credentials.from_file accepted it: a table of one kind or the other.
        raise AssertionError(f"unexpected TOML item {type(table).__name__}")
    table["uid"] = uid  # nothing follows its last key: appended


def _replace(file: Path, original: bytes, content: bytes) -> None:
    """`content` at `file` in one step, unless `file` no longer holds `original`; with
    the old file's mode, minus anything for others."""
    if _read_bytes(file) != original:
        raise ConfigurationError(f"{file} changed while its UIDs were looked up: run again")
    mode = stat.S_IMODE(file.stat().st_mode)
    try:
        write_private(file, content, mode=mode)  # the keys file is the only copy of the secrets
    except OSError as exc:
        raise ConfigurationError(f"cannot write {file}: {exc.strerror}") from None
