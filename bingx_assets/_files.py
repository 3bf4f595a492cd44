"""Files that hold secrets or shared state: read only if they are files, written whole
and private, and named per server in the user's cache directory."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

import platformdirs

__all__ = [
    "NotAFileError",
    "cache_directory",
    "per_server_cache_file",
    "read_regular_file",
    "write_private",
]


class NotAFileError(OSError):
    """A path that names no regular file of a sane size: `strerror` says what it is."""


def read_regular_file(path: Path, *, limit: int) -> bytes:
    """The bytes of `path`, if it is a regular file of at most `limit` bytes.

    A FIFO would block the read until a writer comes (for ever, in a cron job), a device
    can be endless (`/dev/zero`), and a directory is no file: each is refused at once,
    from `os.stat` before opening (opening some devices does things), and again from
    the opened file (it may have been swapped in between). Opened non-blocking, so that
    not even a FIFO swapped in can stall the open."""
    _check_regular(os.stat(path), limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    descriptor = os.open(path, flags)
    with os.fdopen(descriptor, "rb") as file:
        _check_regular(os.fstat(descriptor), limit)
        content = file.read(limit + 1)
    if len(content) > limit:  # it grew since fstat
        raise NotAFileError(0, f"larger than {limit // (1 << 20)} MiB")
    return content


def _check_regular(status: os.stat_result, limit: int) -> None:
    _check_a_file(status)
    if status.st_size > limit:
        raise NotAFileError(0, f"larger than {limit // (1 << 20)} MiB ({status.st_size} bytes)")


def _check_a_file(status: os.stat_result) -> None:
    mode = status.st_mode
    if not stat.S_ISREG(mode):
        what = (
            "a directory" if stat.S_ISDIR(mode)
            else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file"
        )  # fmt: skip
        raise NotAFileError(0, f"{what}, not a file")


def write_private(path: Path, content: bytes, *, mode: int = 0o600) -> None:
    """`content` at `path` all at once, with `mode` (never more than the owner's), and on
    the disk before it replaces the old file: readers see the old file or the new.

    Only a file is replaced: `/dev/null`, a FIFO or a directory at `path` is refused, as
    replacing one would put a file where a device was (as root, for every program)."""
    with contextlib.suppress(FileNotFoundError):
        _check_a_file(os.stat(path))
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode & 0o700)
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def cache_directory() -> Path:
    """The user's cache directory for bingx-assets, as the environment says now
    (`XDG_CACHE_HOME` on Linux)."""
    return Path(platformdirs.user_cache_dir("bingx-assets", appauthor=False))


def per_server_cache_file(stem: str, base_url: str) -> Path:
    """`<stem>-<hash of base_url>.sqlite3` in `cache_directory()`: one file per server
    as written, since what a simulator on loopback counts and names is not BingX's."""
    server = hashlib.blake2b(base_url.encode(), digest_size=8).hexdigest()
    return cache_directory() / f"{stem}-{server}.sqlite3"
