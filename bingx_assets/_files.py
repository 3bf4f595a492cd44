"""Files that hold secrets or shared state: written whole and private, locked for merges."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["locked", "write_private"]


if sys.platform == "win32":  # no flock: concurrent writers may each lose the other's entry

    @contextlib.contextmanager
    def locked(lock_path: Path) -> Iterator[None]:
        yield

else:
    import fcntl

    @contextlib.contextmanager
    def locked(lock_path: Path) -> Iterator[None]:
        # Never through a symlink: in a shared directory one could point anywhere.
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock


def write_private(path: Path, content: bytes, *, mode: int = 0o600) -> None:
    """`content` at `path` all at once, with `mode` (never more than the owner's), and on
    the disk before it replaces the old file: readers see the old file or the new."""
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
