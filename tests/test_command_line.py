"""The `bingx-assets` command: tables, JSON, fan-out, watch, errors, secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bingx_assets import AssetsPool, Snapshot
from bingx_assets.testing import BingXSimulator
from bingx_assets.testing._simulator import DEFAULT_BALANCES

from .conftest import cli_table, own_transport_on, run_cli

EXPECTED_TOTAL = sum(Decimal(v) for v in DEFAULT_BALANCES.values())

pytestmark = pytest.mark.usefixtures("wide_output")


def test_many_keys_one_row_each_a_column_per_account_type_and_a_total_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "balances", "--simulate", "--simulated-keys", "3")
    assert code == 0
    header, *rows, total, _caption = cli_table(out)
    assert header == ["key", "spot", "USDTMPerp", "eran", "total"]
    assert [row[0] for row in rows] == ["sim-1", "sim-2", "sim-3"]
    assert all(Decimal(row[-1]) == EXPECTED_TOTAL for row in rows)
    assert total[0] == "TOTAL"
    assert Decimal(total[-1]) == 3 * EXPECTED_TOTAL
    assert Decimal(total[1]) == 3 * Decimal(DEFAULT_BALANCES["sopt"])  # per-type totals too
    # Right-aligned at one precision: every amount of a column ends in the same place.
    lines = [line for line in out.splitlines() if line.startswith((" sim-", " TOTAL"))]
    assert len({line.rstrip().rindex(".") for line in lines}) == 1
    assert len({len(line.rstrip()) for line in lines}) == 1


def test_json_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "balances", "--simulate", "--json")
    document = json.loads(out)
    assert code == 0
    [key] = document["keys"]
    assert Decimal(key["account_types"]["spot"]) == Decimal(DEFAULT_BALANCES["sopt"])
    assert Decimal(document["total"]) == EXPECTED_TOTAL


def test_one_account_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "balances", "--simulate", "--account-type", "spot", "--json")
    assert code == 0
    assert json.loads(out)["keys"][0]["account_types"] == {"spot": DEFAULT_BALANCES["sopt"]}


def test_simulated_fan_out_over_several_uids(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["balances", "--simulate", "--simulated-keys", "12", "--simulated-uids", "3"]
    code, out, _ = run_cli(capsys, *argv, "--json")
    document = json.loads(out)
    assert code == 0
    assert [k["label"] for k in document["keys"]] == [f"sim-{n}" for n in range(1, 13)]
    assert Decimal(document["total"]) == 12 * EXPECTED_TOTAL


def _keys_file(tmp_path: Path, sim: BingXSimulator, good: int, bad: int) -> Path:
    entries = []
    for n in range(good + bad):
        key = sim.add_key(uid=1 + n % 2)
        secret = key.secret_key if n < good else "wrong-" + "x" * 30
        entries.append(
            f'[[keys]]\nlabel = "k{n}"\napi_key = "{key.api_key}"\nsecret_key = "{secret}"\n'
        )
    keys = tmp_path / "keys.toml"
    keys.write_text("".join(entries))
    keys.chmod(0o600)
    return keys


def test_a_partial_total_says_so_in_the_table_and_in_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = BingXSimulator()
    keys = _keys_file(tmp_path, sim, good=3, bad=3)
    own_transport_on(sim, monkeypatch)
    code, out, err = run_cli(capsys, "balances", "--keys", str(keys))
    assert code == 1
    rows = cli_table(out)
    failed = [row for row in rows if row[0] in {"k3", "k4", "k5"}]
    assert all(
        " ".join(row[1:]).endswith("AuthenticationError: BingX code 100001: "
                                   "Signature verification failed")
        for row in failed
    )  # fmt: skip
    total = next(row for row in rows if row[0] == "TOTAL")
    assert " ".join(total[5:]) == "partial: 3 of 6 keys (3 failed)"
    assert Decimal(total[4]) == 3 * EXPECTED_TOTAL
    assert "secret" not in out + err

    code, out, _ = run_cli(capsys, "balances", "--keys", str(keys), "--json")
    document = json.loads(out)
    assert (document["complete"], document["failed"]) == (False, 3)
    assert Decimal(document["total"]) == 3 * EXPECTED_TOTAL


def test_all_keys_failed_shows_no_total_at_all(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = BingXSimulator()
    keys = _keys_file(tmp_path, sim, good=0, bad=2)
    own_transport_on(sim, monkeypatch)
    code, out, _ = run_cli(capsys, "balances", "--keys", str(keys))
    assert code == 1
    total = next(row for row in cli_table(out) if row[0] == "TOTAL")
    assert total == ["TOTAL", "—", "no", "key", "was", "read"]  # no misleading 0
    code, out, _ = run_cli(capsys, "balances", "--keys", str(keys), "--json")
    document = json.loads(out)
    assert (document["total"], document["complete"], document["failed"]) == (None, False, 2)


def test_missing_credentials_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BINGX_API_KEY", "BINGX_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run_cli(capsys, "balances")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "BINGX_API_KEY" in err
    assert "Traceback" not in err


def test_environment_key_with_a_wrong_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=1)
    monkeypatch.setenv("BINGX_API_KEY", key.api_key)
    monkeypatch.setenv("BINGX_SECRET_KEY", "not-the-secret-" + "z" * 40)
    own_transport_on(sim, monkeypatch)
    code, out, err = run_cli(capsys, "balances", "--json")
    assert code == 1
    [result] = json.loads(out)["keys"]
    assert result["error"] == {
        "type": "AuthenticationError",
        "message": "BingX code 100001: Signature verification failed",
        "code": 100001,
    }
    assert "not-the-secret" not in out + err


@pytest.mark.parametrize(
    "argv",
    [["balances", "--account-type", "futures"], ["nonsense"], ["balances", "--timeout", "x"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err


def test_watch_prints_each_round(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["watch", "--simulate", "--interval", "0.01", "--rounds", "3", "--json"]
    code, out, _ = run_cli(capsys, *argv)
    documents = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [d["round"] for d in documents] == [1, 2, 3]
    assert all(Decimal(d["total"]) == EXPECTED_TOTAL for d in documents)
    assert documents[0]["changed"] == ["sim-1"]  # the first round: everything is new
    assert documents[1]["changed"] == []


def test_watch_rounds_count_rounds_even_when_nothing_changes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["watch", "--simulate", "--interval", "0.01", "--rounds", "3", "--changes-only"]
    code, out, _ = run_cli(capsys, *argv, "--json")
    assert code == 0
    # Balances never change here: round 1 is shown, 2 and 3 are not, and it stops.
    assert [json.loads(line)["round"] for line in out.splitlines()] == [1]


def test_watch_off_a_terminal_prints_one_table_per_round(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "watch", "--simulate", "--interval", "0.01", "--rounds", "2")
    assert code == 0
    titles = [row[:2] for row in cli_table(out) if row[0] == "round"]
    assert titles == [["round", "1"], ["round", "2"]]
    assert out.count("sim-1") == 2


@pytest.mark.parametrize("rounds", ["0", "-3", "two"])
def test_watch_rounds_below_one_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], rounds: str
) -> None:
    code, out, err = run_cli(capsys, "watch", "--simulate", "--rounds", rounds)
    assert (code, out) == (2, "")
    assert err.startswith("bingx-assets watch: error: argument --rounds: ")


def test_simulate_writes_private_keys_and_serves_them(tmp_path: Path) -> None:
    keys = tmp_path / "sim-keys.toml"
    keys.write_text("old, and readable by everyone")
    keys.chmod(0o644)
    server = subprocess.Popen(
        [sys.executable, "-m", "bingx_assets", "simulate", "--simulated-keys", "3",
         "--write-keys", str(keys)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        # An existing file gets the new keys and loses its old mode: only we may read it.
        assert keys.stat().st_mode & 0o777 == 0o600
        done = subprocess.run(
            [sys.executable, "-m", "bingx_assets", "balances", "--keys", str(keys),
             "--base-url", url, "--json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert len(document["keys"]) == 3
    assert Decimal(document["total"]) == 3 * EXPECTED_TOTAL


@pytest.mark.looptime(False)
def test_redis_limits_from_the_command_line(
    capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    argv = ["balances", "--simulate", "--simulated-keys", "3", "--redis", redis_url, "--json"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    assert Decimal(json.loads(out)["total"]) == 3 * EXPECTED_TOTAL


def test_redis_option_without_redis_installed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "bingx_assets._limiter._redis", None)  # as if not installed
    code, _, err = run_cli(capsys, "balances", "--simulate", "--redis", "redis://localhost")
    assert code == 2
    assert "pip install 'bingx-assets[redis]'" in err


def test_the_simulator_logs_each_refusal_and_each_disabled_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What `simulate` prints, so that a user whose separate runs overrun a UID sees why."""

    async def overrun() -> list[int]:
        sim = BingXSimulator(rejections_before_disable=2)
        key = sim.add_key(uid=77)
        async with sim.http_client() as http:
            # No limiter, as ten fresh processes would be: 10 calls in one second.
            for _ in range(10):
                await http.get("https://open-api.bingx.com/openApi/account/v1/allAccountBalance",
                               headers={"X-BX-APIKEY": key.api_key})  # fmt: skip
        return [r.code or 0 for r in sim.requests]

    with caplog.at_level(logging.INFO, logger="bingx_assets.testing"):
        codes = asyncio.run(overrun())
    messages = [r.getMessage() for r in caplog.records if r.name == "bingx_assets.testing"]
    refused = [m for m in messages if m.startswith("UID 77: refused ")]
    disabled = [m for m in messages if m.startswith("UID 77: disabled ")]
    assert len(refused) == codes.count(100410) > 0
    assert len(disabled) == 1
    assert any(m.endswith("(100410, over the limit)") for m in refused)
    assert refused[-1].endswith("(100410, disabled period)")


def test_a_table_fits_80_columns_and_keeps_every_word_of_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = BingXSimulator()
    keys = _keys_file(tmp_path, sim, good=2, bad=1)
    own_transport_on(sim, monkeypatch)
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(capsys, "balances", "--keys", str(keys))
    assert code == 1
    assert max(len(line) for line in out.splitlines()) <= 80
    words = out.split()
    for word in ("AuthenticationError:", "Signature", "verification", "failed"):
        assert word in words
    # Amounts never wrap: each is whole on its line.
    assert words.count(f"{EXPECTED_TOTAL.normalize():f}") == 2


@contextlib.contextmanager
def simulate_command(
    keys: Path, simulated_keys: int = 5, latency: float = 0.0
) -> Iterator[tuple[str, list[str]]]:
    """`bingx-assets simulate` in its own process: its URL, and (once it has stopped) the
    lines it logged."""
    server = subprocess.Popen(
        [sys.executable, "-m", "bingx_assets", "simulate", "--simulated-keys",
         str(simulated_keys), "--write-keys", str(keys), "--latency", str(latency)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log: list[str] = []
    try:
        assert server.stdout is not None
        yield server.stdout.readline().split()[-1], log
    finally:
        server.terminate()
        log += server.communicate(timeout=10)[1].splitlines()


@pytest.mark.looptime(False)
def test_separate_runs_share_one_uid_through_redis(tmp_path: Path, redis_url: str) -> None:
    """Two `balances` processes at once against one simulated UID: with --redis they keep
    to its 5/s together, and the simulator refuses nothing."""
    keys = tmp_path / "sim.toml"
    with simulate_command(keys) as (url, log):
        argv = [sys.executable, "-m", "bingx_assets", "balances", "--keys", str(keys),
                "--base-url", url, "--redis", redis_url, "--json"]  # fmt: skip
        runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
        documents = [json.loads(run.communicate(timeout=60)[0]) for run in runs]
    assert [(d["complete"], d["failed"]) for d in documents] == [(True, 0), (True, 0)]
    assert not [line for line in log if "refused" in line]


@pytest.mark.looptime(False)
def test_runs_one_after_another_share_one_budget_without_redis(tmp_path: Path) -> None:
    """Found in review: a new process knows nothing of the last one's requests, which
    BingX still counts for a period, so a second run within a second of the first was
    refused. Every run now keeps its windows in the machine's store for that server."""
    keys = tmp_path / "sim.toml"
    with simulate_command(keys) as (url, log):
        argv = [sys.executable, "-m", "bingx_assets", "balances", "--keys", str(keys),
                "--base-url", url, "--json"]  # fmt: skip
        for _ in range(2):  # one after the other, never at once
            subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    assert not [line for line in log if "refused" in line]


async def test_docs_testing_changing_balances_and_stopping_a_watch() -> None:
    """What docs/testing.md shows works as written, on virtual time."""
    from bingx_assets import AssetsClient, Credentials, RateLimiter
    from bingx_assets.testing import LoopClock

    clock = LoopClock()
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=1001, balances={"sopt": "12.5"})
    limiter = RateLimiter(clock=clock)
    http = sim.http_client()
    async with AssetsClient(key.api_key, key.secret_key, http_client=http, limiter=limiter) as c:
        assert (await c.asset_overview()).total == Decimal("12.5")
        key.balances["sopt"] = "20"
        key.balances["USDTMPerp"] = "100.25"
        assert (await c.asset_overview()).total == Decimal("120.25")

    credentials = [Credentials(key.api_key, key.secret_key, "k", 1001)]
    loop = asyncio.get_running_loop()
    async with AssetsPool(credentials, http_client=http, limiter=limiter) as pool:
        rounds = [s.round async for s in _until_round(pool, 3)]
        assert rounds == [1, 2, 3]
        started, seen = loop.time(), []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                async for snapshot in pool.watch(5):
                    seen.append(snapshot.round)
        assert loop.time() - started == pytest.approx(60, abs=0.1)
        assert seen == list(range(1, 13))  # rounds at 0, 5, ..., 55 s
    await http.aclose()


async def _until_round(pool: AssetsPool, last: int) -> AsyncIterator[Snapshot]:
    async for snapshot in pool.watch(5):
        yield snapshot
        if snapshot.round == last:
            break


@pytest.mark.looptime(False)
async def test_the_simulator_serves_ipv6_loopback_at_a_usable_url() -> None:
    from bingx_assets import AssetsClient
    from bingx_assets.testing import SimulatorServer

    sim = BingXSimulator()
    key = sim.add_key(uid=6)
    async with SimulatorServer(sim, "::1") as server:
        assert server.url.startswith("http://[::1]:")
        async with AssetsClient(key.api_key, key.secret_key, base_url=server.url) as client:
            assert (await client.asset_overview()).total == EXPECTED_TOTAL
