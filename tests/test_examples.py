"""Every python example in README.md and docs/ runs as written, against the simulator.

Each runs as a subprocess in a directory of its own, with a `keys.toml` there, the
simulator served on loopback and named by BINGX_BASE_URL, keys in BINGX_API_KEY /
BINGX_SECRET_KEY, REDIS_URL at the tests' redis-server, and HOME and the XDG
directories inside that directory. `tests/loopback_only/sitecustomize.py` makes any
connection to a host other than loopback fail, and records it: an example that stops
working, or that reaches for the network, fails here. `no-run` examples are only
type-checked (docs/check_examples.py).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import tomlkit

from bingx_assets.testing import BingXSimulator, SimulatorServer

ROOT = Path(__file__).resolve().parent.parent
GUARD = Path(__file__).resolve().parent / "loopback_only"
_spec = importlib.util.spec_from_file_location(
    "check_examples", ROOT / "docs" / "check_examples.py"
)
assert _spec is not None and _spec.loader is not None
check_examples: Any = importlib.util.module_from_spec(_spec)
sys.modules["check_examples"] = check_examples  # NamedTuple's pickling wants it found
_spec.loader.exec_module(check_examples)

EXAMPLES = check_examples.all_examples()
RUNNABLE = [e for e in EXAMPLES if e.kind != "no-run"]
EXAMPLE_TIMEOUT = 60.0


class Run(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    refused: list[str]  # connections the guard refused: to hosts other than loopback
    requests: int  # requests the example's simulator saw


class _Simulators:
    """One simulator server per example (each its own budget), served from one thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[SimulatorServer] = []

    def serve(self, simulator: BingXSimulator) -> str:
        server = SimulatorServer(simulator, "127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(10)
        self.servers.append(server)
        assert server.url.startswith("http://127.0.0.1:")  # loopback, never anything else
        return server.url

    def close(self) -> None:
        for server in self.servers:
            asyncio.run_coroutine_threadsafe(server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _keys_file(simulator: BingXSimulator, path: Path) -> None:
    """Three keys over two UIDs, the way a user's keys.toml reads."""
    document = tomlkit.document()
    keys = tomlkit.aot()
    for n, uid in enumerate((2001, 2001, 2002)):
        key = simulator.add_key(uid=uid, balances={"sopt": f"{n + 1}.5", "USDTMPerp": "10"})
        keys.append(
            tomlkit.table().add("label", f"bot-{n + 1}").add("api_key", key.api_key)
            .add("secret_key", key.secret_key)
        )  # fmt: skip
    document.add("keys", keys)
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    path.chmod(0o600)


def run_example(code: str, kind: str, workdir: Path, url: str, redis_url: str) -> dict[str, str]:
    """The command and environment an example runs with, in `workdir`."""
    script = workdir / ("test_example.py" if kind == "pytest" else "example.py")
    script.write_text(code, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(GUARD), str(ROOT)]),
        "HOME": str(workdir / "home"),
        "XDG_CACHE_HOME": str(workdir / "home" / ".cache"),
        "XDG_STATE_HOME": str(workdir / "home" / ".local" / "state"),
        "LOOPBACK_ONLY_REFUSALS": str(workdir / "refused.txt"),
        "BINGX_BASE_URL": url,
        "REDIS_URL": redis_url,
        "COLUMNS": "100",
    }
    return env


def _run(example: Any, workdir: Path, redis_url: str, simulators: _Simulators) -> Run:
    workdir.mkdir(parents=True)
    simulator = BingXSimulator()
    key = simulator.add_key(
        uid=1001, balances={"sopt": "12.5", "stdFutures": "0.00000000", "USDTMPerp": "100"}
    )
    _keys_file(simulator, workdir / "keys.toml")
    env = run_example(example.code, example.kind, workdir, simulators.serve(simulator), redis_url)
    env |= {"BINGX_API_KEY": key.api_key, "BINGX_SECRET_KEY": key.secret_key}
    if example.kind == "pytest":
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
                   "test_example.py"]  # fmt: skip
    else:
        command = [sys.executable, "example.py"]
    try:
        done = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True,
            timeout=EXAMPLE_TIMEOUT, check=False,
        )  # fmt: skip
        returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stdout, stderr = -1, str(exc.stdout or ""), f"timed out: {exc}"
    refusals = workdir / "refused.txt"
    refused = refusals.read_text().splitlines() if refusals.exists() else []
    return Run(returncode, stdout, stderr, refused, len(simulator.requests))


@pytest.fixture(scope="module")
def example_runs(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[dict[str, Future[Run]]]:
    """Every runnable example, started at once (two cores: three at a time)."""
    root = tmp_path_factory.mktemp("examples")
    simulators = _Simulators()
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = {
            e.name: pool.submit(_run, e, root / str(n), redis_url, simulators)
            for n, e in enumerate(RUNNABLE)
        }
        yield runs
    simulators.close()


def test_every_example_is_a_complete_program_of_a_known_kind() -> None:
    assert len(EXAMPLES) >= 15
    assert [p for e in EXAMPLES for p in check_examples.problems(e)] == []


@pytest.mark.parametrize("example", RUNNABLE, ids=lambda e: e.name)
def test_the_example_runs_as_written(example: Any, example_runs: dict[str, Future[Run]]) -> None:
    run = example_runs[example.name].result()
    assert run.refused == [], f"{example.name} reached for the network"
    assert run.returncode == 0, f"{example.name} failed:\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr, run.stderr


def test_the_examples_reach_the_simulator(example_runs: dict[str, Future[Run]]) -> None:
    """Not a run that does nothing: most examples talk to their BINGX_BASE_URL."""
    reached = [name for name, run in example_runs.items() if run.result().requests > 0]
    assert len(reached) >= len(example_runs) // 2, reached


def test_the_guard_refuses_any_host_but_loopback(tmp_path: Path) -> None:
    # Targets in 0.0.0.0/8: not loopback, so the guard must refuse them, and numeric, so
    # that a broken guard would still send nothing (no DNS; Linux connects nowhere there).
    code = (
        "import socket, urllib.request\n"
        "for target in (('0.0.0.1', 443), ('0.0.0.2', 53)):\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=1)\n"
        "    except OSError as exc:\n"
        "        print('refused', exc.errno)\n"
        "try:\n"
        "    urllib.request.urlopen('https://0.0.0.3/', timeout=1)\n"
        "except OSError:\n"
        "    print('refused url')\n"
        "socket.create_connection(('127.0.0.1', 1), timeout=1)\n"
    )
    env = run_example(code, "run", tmp_path, "http://127.0.0.1:1", "redis://127.0.0.1:1/0")
    done = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert done.stdout.splitlines() == ["refused 101", "refused 101", "refused url"]
    assert "ConnectionRefusedError" in done.stderr  # loopback goes through (nothing on :1)
    refused = (tmp_path / "refused.txt").read_text().splitlines()
    assert refused == [
        "resolving '0.0.0.1'",
        "resolving '0.0.0.2'",
        "resolving '0.0.0.3'",
    ]
