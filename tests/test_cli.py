"""`bingx-assets balances` for one key: the table, JSON, one account type, errors, exit codes.

`test_command_line.py` covers fan-out, `watch` and `simulate`; these tests pin what a
user with one key in the environment sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest

from bingx_assets._cli import main
from bingx_assets.testing import BingXSimulator, Fault, SimKey
from bingx_assets.testing._simulator import DEFAULT_BALANCES

EXPECTED_TOTAL = sum((Decimal(v) for v in DEFAULT_BALANCES.values()), Decimal(0))
# What the CLI shows for each wire name: the live API spells the spot account "sopt".
SHOWN = {("spot" if name == "sopt" else name): value for name, value in DEFAULT_BALANCES.items()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> BingXSimulator:
    """A simulator behind every `httpx.AsyncClient` the CLI makes: the real (non
    `--simulate`) path, with no network."""
    simulator = BingXSimulator()
    real = httpx.AsyncClient

    class Simulated(real):  # type: ignore[misc, valid-type]
        def __init__(self, **kwargs: object) -> None:
            kwargs.pop("transport", None)
            super().__init__(transport=simulator.transport(), **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", Simulated)
    return simulator


@pytest.fixture
def env_key(wired: BingXSimulator, monkeypatch: pytest.MonkeyPatch) -> SimKey:
    """A simulated key, given to the CLI the way a user does: in the environment."""
    _clear_key_env(monkeypatch)
    key = wired.add_key(uid=4242)
    monkeypatch.setenv("BINGX_API_KEY", key.api_key)
    monkeypatch.setenv("BINGX_SECRET_KEY", key.secret_key)
    return key


def _clear_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("BINGX_API_KEY", "BINGX_SECRET_KEY")):
            monkeypatch.delenv(name)


def _table(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()]


def test_simulated_table_has_every_account_type_and_the_exact_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "balances", "--simulate")
    assert code == 0, err
    rows = _table(out)
    assert rows[0] == ["key", "account", "type", "USDT"]
    body = {row[-2]: row[-1] for row in rows[1:-1]}
    assert body == SHOWN  # every account type, each balance exactly as BingX sent it
    assert rows[-1] == ["TOTAL", f"{EXPECTED_TOTAL:f}"]
    # Aligned: every row's amount starts in the same column.
    lines = out.splitlines()
    starts = {line.rindex(line.split()[-1]) for line in lines}
    assert len(starts) == 1


def test_simulated_json_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "balances", "--simulate", "--json")
    assert code == 0
    document = json.loads(out)
    [key] = document["keys"]
    assert key["ok"] is True
    # Strings, digit for digit: "0.00000000" stays "0.00000000".
    assert key["account_types"] == SHOWN
    assert key["total"] == f"{EXPECTED_TOTAL:f}"
    assert isinstance(document["total"], str)
    assert Decimal(document["total"]) == EXPECTED_TOTAL


def test_one_account_type_shows_only_spot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "balances", "--simulate", "--account-type", "spot")
    assert code == 0
    rows = _table(out)
    assert [row[-2:] for row in rows[1:]] == [
        ["spot", DEFAULT_BALANCES["sopt"]],
        ["TOTAL", DEFAULT_BALANCES["sopt"]],
    ]


def test_environment_key_reads_balances(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    code, out, err = run(capsys, "balances", "--json", "--account-type", "spot")
    assert code == 0, err
    assert json.loads(out)["total"] == DEFAULT_BALANCES["sopt"]
    paths = [r.path for r in wired.requests]
    assert paths[-1] == "/openApi/account/v1/allAccountBalance"
    assert "/openApi/account/v1/uid" in paths  # no uid in the environment: looked up
    assert env_key.secret_key not in out + err


def test_missing_credentials_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_key_env(monkeypatch)
    code, out, err = run(capsys, "balances")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("error: ConfigurationError: ")
    assert "BINGX_API_KEY" in err
    assert "Traceback" not in err


def test_wrong_secret_exits_1_on_one_line_and_never_shows_the_secret(
    capsys: pytest.CaptureFixture[str],
    wired: BingXSimulator,
    env_key: SimKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "wrong-secret-" + "Q" * 40
    monkeypatch.setenv("BINGX_SECRET_KEY", wrong)
    code, out, err = run(capsys, "balances")
    assert code == 1
    [error_row] = [line for line in out.splitlines() if "Error" in line]
    assert "AuthenticationError: BingX code 100001" in error_row
    assert "Traceback" not in err
    for secret in (wrong, env_key.secret_key):
        assert secret not in out + err


def test_an_error_with_line_breaks_stays_on_one_line(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    wired.inject(Fault.answer(100004, "permission denied:\nthis key\r\ncannot read\x1b[31m"))
    code, out, _ = run(capsys, "balances")
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 3  # header, the error, TOTAL
    assert "PermissionDeniedError: BingX code 100004: permission denied: this key" in lines[1]
    assert "\x1b" not in out


@pytest.mark.parametrize(
    "argv",
    [
        ["balances", "--simulate", "--account-type", "futures"],
        ["balances", "--simulate", "--timeout", "0"],
        ["balances", "--simulate", "--max-wait", "-1"],
        ["balances", "--simulate", "--base-url", "http://example.com"],
        ["balances", "--simulate", "--timeout", "soon"],
        [],
    ],
)
def test_bad_input_exits_2_without_a_traceback(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "error" in err
    assert "Traceback" not in err


def test_interrupted_exits_130(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    async def interrupted(request: httpx.Request, *route: object) -> httpx.Response:
        raise KeyboardInterrupt

    wired._deliver = interrupted  # type: ignore[method-assign]
    code, _, err = run(capsys, "balances")
    assert code == 130
    assert "Traceback" not in err


def test_module_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bingx_assets._cli", "balances", "--simulate", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Decimal(json.loads(done.stdout)["total"]) == EXPECTED_TOTAL
