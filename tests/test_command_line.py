"""The `bingx-assets` command: tables, JSON, fan-out, watch, errors, secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bingx_assets._cli import main
from bingx_assets.testing import BingXSimulator
from bingx_assets.testing._simulator import DEFAULT_BALANCES

EXPECTED_TOTAL = sum(Decimal(v) for v in DEFAULT_BALANCES.values())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_balances_on_the_simulator_prints_every_account_and_the_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "balances", "--simulate")
    assert code == 0
    for name, value in DEFAULT_BALANCES.items():
        shown = "spot" if name == "sopt" else name
        assert any(line.split()[1:] == [shown, value] for line in out.splitlines())
    assert out.splitlines()[-1].split() == ["TOTAL", f"{EXPECTED_TOTAL:f}"]


def test_json_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "balances", "--simulate", "--json")
    document = json.loads(out)
    assert code == 0
    [key] = document["keys"]
    assert Decimal(key["account_types"]["spot"]) == Decimal(DEFAULT_BALANCES["sopt"])
    assert Decimal(document["total"]) == EXPECTED_TOTAL


def test_one_account_type(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "balances", "--simulate", "--account-type", "spot", "--json")
    assert code == 0
    assert json.loads(out)["keys"][0]["account_types"] == {"spot": DEFAULT_BALANCES["sopt"]}


def test_simulated_fan_out_over_several_uids(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["balances", "--simulate", "--simulated-keys", "12", "--simulated-uids", "3"]
    code, out, _ = run(capsys, *argv, "--json")
    document = json.loads(out)
    assert code == 0
    assert [k["label"] for k in document["keys"]] == [f"sim-{n}" for n in range(1, 13)]
    assert Decimal(document["total"]) == 12 * EXPECTED_TOTAL


def test_keys_file_with_a_bad_key_reports_it_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = BingXSimulator()
    good, also_good = sim.add_key(uid=1), sim.add_key(uid=2)
    keys = tmp_path / "keys.toml"
    keys.write_text(
        f'[[keys]]\nlabel = "good"\napi_key = "{good.api_key}"\nsecret_key = "{good.secret_key}"\n'
        f'[[keys]]\nlabel = "bad"\napi_key = "{also_good.api_key}"\nsecret_key = "wrong"\n'
    )
    keys.chmod(0o600)
    monkeypatch.setattr(httpx, "AsyncClient", _simulated(sim))
    code, out, err = run(capsys, "balances", "--keys", str(keys))
    assert code == 1
    rows = [line.split(maxsplit=2) for line in out.splitlines()]
    assert [
        "bad",
        "error",
        "AuthenticationError: BingX code 100001: Signature verification failed",
    ] in rows
    assert ["good", "total", f"{EXPECTED_TOTAL:f}"] in rows
    assert good.secret_key not in out + err
    assert also_good.api_key not in out + err


def test_missing_credentials_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BINGX_API_KEY", "BINGX_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run(capsys, "balances")
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
    monkeypatch.setattr(httpx, "AsyncClient", _simulated(sim))
    code, out, err = run(capsys, "balances", "--json")
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
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "Traceback" not in err


def test_watch_prints_each_round(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["watch", "--simulate", "--interval", "0.01", "--rounds", "3", "--json"]
    code, out, _ = run(capsys, *argv)
    lines = out.splitlines()
    assert code == 0
    assert len(lines) == 3
    assert all(Decimal(json.loads(line)["total"]) == EXPECTED_TOTAL for line in lines)


def test_simulate_writes_private_keys_and_serves_them(tmp_path: Path) -> None:
    keys = tmp_path / "sim-keys.toml"
    server = subprocess.Popen(
        [sys.executable, "-m", "bingx_assets", "simulate", "--simulated-keys", "3",
         "--write-keys", str(keys)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:")
        assert keys.stat().st_mode & 0o077 == 0
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


def _simulated(sim: BingXSimulator) -> type[httpx.AsyncClient]:
    """httpx.AsyncClient, with every instance talking to `sim`."""
    real = httpx.AsyncClient

    class Simulated(real):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs: object) -> None:
            super().__init__(transport=sim.transport(), **kwargs)

    return Simulated


@pytest.mark.looptime(False)
def test_redis_limits_from_the_command_line(
    capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    argv = ["balances", "--simulate", "--simulated-keys", "3", "--redis", redis_url, "--json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert Decimal(json.loads(out)["total"]) == 3 * EXPECTED_TOTAL


def test_redis_option_without_redis_installed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "bingx_assets._redis", None)  # as if not installed
    code, _, err = run(capsys, "balances", "--simulate", "--redis", "redis://localhost")
    assert code == 2
    assert "pip install 'bingx-assets[redis]'" in err
