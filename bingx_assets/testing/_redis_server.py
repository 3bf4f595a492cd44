"""A throw-away redis-server on a unix socket, for tests and benchmarks of the Redis backend."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["redis_server"]


@contextlib.contextmanager
def redis_server(timeout: float = 20.0) -> Iterator[str]:
    """Start `redis-server` (no TCP port, no persistence) and yield its `unix://` URL.

    Raises `RuntimeError` when redis-server is not installed or does not start.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
    with tempfile.TemporaryDirectory(prefix="bingx-assets-redis-") as folder:
        socket = Path(folder) / "redis.sock"
        server = subprocess.Popen(
            [executable, "--port", "0", "--unixsocket", str(socket), "--save", "",
             "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while not socket.exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start (exit code {server.poll()})")
                time.sleep(0.02)
            yield f"unix://{socket}"
        finally:
            server.terminate()
            server.wait(timeout=10)
