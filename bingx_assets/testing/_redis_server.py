"""Throw-away Redis for tests and benchmarks of the Redis backend: one server on a unix
socket, or a three-master Redis Cluster on loopback ports."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["LocalRedisCluster", "redis_cluster", "redis_server"]

# A cluster node also listens on its port + 10000 for the other nodes (the cluster bus).
_BUS_OFFSET = 10000


def _executable(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: apt-get install -y redis-server")
    return found


@contextlib.contextmanager
def redis_server(timeout: float = 20.0) -> Iterator[str]:
    """Start `redis-server` (no TCP port, no persistence) and yield its `unix://` URL.

    Raises `RuntimeError` when redis-server is not installed or does not start.
    """
    executable = _executable("redis-server")
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


class LocalRedisCluster:
    """A Redis Cluster of masters on 127.0.0.1, without replicas or persistence.

    `url` is the `?cluster=true` URL that `RedisBackend.from_url` takes. `kill(port)`
    ends one master's process at once (SIGKILL), as a crashed node; `restart(port)`
    starts it again on its port and node configuration, so it serves its slots again
    (empty: nothing was persisted).
    """

    def __init__(self, folder: Path, ports: list[int], timeout: float) -> None:
        self.folder = folder
        self.ports = ports
        self.timeout = timeout
        self._executable = _executable("redis-server")
        self._cli = _executable("redis-cli")
        self._nodes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/?cluster=true"

    def _start(self, port: int) -> None:
        self._nodes[port] = subprocess.Popen(
            [self._executable, "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--dir", str(self.folder), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def _ask(self, port: int, *command: str) -> str | None:
        """`redis-cli` on one node; None while it does not answer."""
        done = subprocess.run(
            [self._cli, "-h", "127.0.0.1", "-p", str(port), *command],
            capture_output=True,
            text=True,
            check=False,
            timeout=self.timeout,
        )
        answer = done.stdout.strip()
        return answer if done.returncode == 0 and "Could not connect" not in answer else None

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.timeout
        while not ready():
            for port, node in self._nodes.items():
                if node.poll() is not None:
                    raise RuntimeError(f"redis-server on port {port} exited ({node.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster did not {what} in {self.timeout} s")
            time.sleep(0.02)

    def _all_ok(self) -> bool:
        return all(
            "cluster_state:ok" in (self._ask(p, "CLUSTER", "INFO") or "") for p in self.ports
        )

    def start(self) -> None:
        for port in self.ports:
            self._start(port)
        self._wait("start", lambda: all(self._ask(p, "PING") == "PONG" for p in self.ports))
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        created = subprocess.run(
            [self._cli, "--cluster", "create", *nodes, "--cluster-replicas", "0",
             "--cluster-yes"],
            capture_output=True, text=True, check=False, timeout=self.timeout,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
        self._wait("become ok", self._all_ok)

    def kill(self, port: int) -> None:
        node = self._nodes[port]
        node.kill()
        node.wait(timeout=10)

    def restart(self, port: int) -> None:
        self._start(port)
        self._wait("take the node back", self._all_ok)

    def stop(self) -> None:
        for node in self._nodes.values():
            if node.poll() is None:
                node.terminate()
        for node in self._nodes.values():
            try:
                node.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


def _free_cluster_ports(count: int) -> list[int]:
    """Ports free on loopback whose cluster bus port (+10000) is free too."""
    ports: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(ports) < count:
            probe = socket.socket()
            held.append(probe)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port + _BUS_OFFSET > 65535:
                continue
            bus = socket.socket()
            held.append(bus)
            try:
                bus.bind(("127.0.0.1", port + _BUS_OFFSET))
            except OSError:
                continue
            ports.append(port)
    finally:
        for held_socket in held:
            held_socket.close()
    return ports


@contextlib.contextmanager
def redis_cluster(masters: int = 3, timeout: float = 20.0) -> Iterator[LocalRedisCluster]:
    """Start a Redis Cluster of `masters` nodes on free loopback ports (no replicas, no
    persistence) and yield it once `CLUSTER INFO` says `cluster_state:ok` on every node.

    Raises `RuntimeError` when redis-server or redis-cli is not installed, or the cluster
    does not form.
    """
    with tempfile.TemporaryDirectory(prefix="bingx-assets-cluster-") as folder:
        ports = _free_cluster_ports(masters)
        cluster = LocalRedisCluster(Path(folder), ports, timeout)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()
