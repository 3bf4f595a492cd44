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

from bingx_assets.testing import BingXSimulator, Fault, SimKey
from bingx_assets.testing._simulator import DEFAULT_BALANCES

from .conftest import cli_table, own_transport_on, run_cli

EXPECTED_TOTAL = sum((Decimal(v) for v in DEFAULT_BALANCES.values()), Decimal(0))
# What the CLI shows for each wire name: the live API spells the spot account "sopt".
SHOWN = {("spot" if name == "sopt" else name): value for name, value in DEFAULT_BALANCES.items()}

pytestmark = pytest.mark.usefixtures("wide_output")


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> BingXSimulator:
    """A simulator behind every client the CLI opens: the real (non `--simulate`) path,
    with no network."""
    simulator = BingXSimulator()
    own_transport_on(simulator, monkeypatch)
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


NONZERO = {name: value for name, value in SHOWN.items() if Decimal(value)}


def test_simulated_table_is_one_row_per_key_with_a_column_per_account_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "balances", "--simulate")
    assert code == 0, err
    header, row, caption = cli_table(out)
    assert header == ["key", *NONZERO, "total"]
    assert row[0] == "sim-1"
    # Every balance exactly as BingX sent it, and all at one precision (the most decimals).
    assert dict(zip(header[1:-1], map(Decimal, row[1:-1]), strict=True)) == {
        k: Decimal(v) for k, v in NONZERO.items()
    }
    assert Decimal(row[-1]) == EXPECTED_TOTAL
    # 1523.44710000 has four digits after the point that count: every amount gets four.
    assert {len(cell.partition(".")[2]) for cell in row[1:]} == {4}
    # The account types that are zero everywhere are named, not dropped silently.
    zero = [name for name in SHOWN if name not in NONZERO]
    assert " ".join(caption) == "zero in every key: " + ", ".join(zero)
    # One key: its row is the total, so no TOTAL row repeats it.
    assert "TOTAL" not in out


def test_simulated_json_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "balances", "--simulate", "--json")
    assert code == 0
    document = json.loads(out)
    [key] = document["keys"]
    assert key["ok"] is True
    # Strings, digit for digit: "0.00000000" stays "0.00000000".
    assert key["account_types"] == SHOWN
    assert key["total"] == f"{EXPECTED_TOTAL:f}"
    assert isinstance(document["total"], str)
    assert Decimal(document["total"]) == EXPECTED_TOTAL
    assert (document["complete"], document["failed"]) == (True, 0)


def test_one_account_type_shows_only_spot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "balances", "--simulate", "--account-type", "spot")
    assert code == 0
    # "80.00" as 80: the padding zeros are dropped, never a digit that counts.
    assert cli_table(out) == [["key", "spot", "total"], ["sim-1", "80", "80"]]


def test_environment_key_reads_balances(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    code, out, err = run_cli(capsys, "balances", "--json", "--account-type", "spot")
    assert code == 0, err
    assert json.loads(out)["total"] == DEFAULT_BALANCES["sopt"]
    paths = [r.path for r in wired.requests]
    assert paths[-1] == "/openApi/account/v1/allAccountBalance"
    assert "/openApi/account/v1/uid" in paths  # no uid in the environment: looked up
    assert env_key.secret_key not in out + err


def test_a_negative_zero_balance_prints_as_zero(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # BingX's "-0.00000000" is no debt; "-0.0" in a table reads as one.
    _clear_key_env(monkeypatch)
    for n, spot in enumerate(["-0.00000000", "2.5"], start=1):
        key = wired.add_key(uid=4243, balances={"sopt": spot, "grid": "1"})
        monkeypatch.setenv(f"BINGX_API_KEY_{n}", key.api_key)
        monkeypatch.setenv(f"BINGX_SECRET_KEY_{n}", key.secret_key)
    code, out, err = run_cli(capsys, "balances")
    assert code == 0, err
    rows = cli_table(out)
    assert rows[0] == ["key", "spot", "grid", "total"]
    assert [row[1:] for row in rows[1:]] == [
        ["0.0", "1.0", "1.0"],
        ["2.5", "1.0", "3.5"],
        ["2.5", "2.0", "4.5"],
    ]


def test_missing_credentials_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_key_env(monkeypatch)
    code, out, err = run_cli(capsys, "balances")
    assert code == 2
    assert out == ""
    assert err == "bingx-assets: error: no keys in the environment: set BINGX_API_KEY\n"


def test_wrong_secret_exits_1_on_one_line_and_never_shows_the_secret(
    capsys: pytest.CaptureFixture[str],
    wired: BingXSimulator,
    env_key: SimKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong = "wrong-secret-" + "Q" * 40
    monkeypatch.setenv("BINGX_SECRET_KEY", wrong)
    code, out, err = run_cli(capsys, "balances")
    assert code == 1
    header, row = cli_table(out)
    assert header == ["key", "total", "error"]  # no balances: no account-type columns
    assert " ".join(row[1:]) == "— AuthenticationError: BingX code 100001: " + (
        "Signature verification failed"
    )
    assert "Traceback" not in err
    for secret in (wrong, env_key.secret_key):
        assert secret not in out + err


def test_an_error_with_line_breaks_stays_on_one_line(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    wired.inject(Fault.answer(100004, "permission denied:\nthis key\r\ncannot read\x1b[31m"))
    code, out, _ = run_cli(capsys, "balances")
    assert code == 1
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 3  # header, rule, the key
    assert "PermissionDeniedError: BingX code 100004: permission denied: this key" in lines[2]
    assert "\x1b" not in out


def test_an_unreachable_redis_is_one_line_and_no_table(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    wired: BingXSimulator,
    env_key: SimKey,
) -> None:
    other = wired.add_key(uid=4343)
    monkeypatch.setenv("BINGX_API_KEY_SUB", other.api_key)
    monkeypatch.setenv("BINGX_SECRET_KEY_SUB", other.secret_key)
    monkeypatch.setenv("COLUMNS", "132")  # a common wide terminal
    for json_flag in ([], ["--json"]):
        code, out, err = run_cli(capsys, "balances", "--redis", "redis://127.0.0.1:1/0", *json_flag)
        assert (code, out) == (1, "")  # no table of the same error once per key
        assert err == (
            "bingx-assets: error: LimiterUnavailableError: Redis cannot be reached (Error 111 "
            "connecting to 127.0.0.1:1); nothing was sent\n"
        )
    assert [r for r in wired.requests if r.path.endswith("allAccountBalance")] == []


def test_watch_says_once_that_it_keeps_trying_an_unreachable_redis(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    wired: BingXSimulator,
    env_key: SimKey,
) -> None:
    other = wired.add_key(uid=4343)
    monkeypatch.setenv("BINGX_API_KEY_SUB", other.api_key)
    monkeypatch.setenv("BINGX_SECRET_KEY_SUB", other.secret_key)
    argv = ["watch", "--redis", "redis://127.0.0.1:1/0", "--interval", "0.01", "--rounds", "3"]
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (1, "")
    assert err.count("Redis cannot be reached") == 1
    assert err.strip().endswith("nothing was sent; watch keeps trying every 0.01 s")


def test_a_rate_limited_key_reads_as_a_sentence_and_json_keeps_the_time(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    until = wired.disable(env_key.uid, 600)  # longer than --max-wait: reported, not waited
    code, out, _ = run_cli(capsys, "balances", "--json")
    assert code == 1
    [key] = json.loads(out)["keys"]
    assert key["error"]["type"] == "RateLimitError"
    assert key["error"]["unblock_at_ms"] == until
    assert "UID 4242" in key["error"]["message"]

    # The next run knows of the disabled period from the saved limiter state: it sends
    # nothing, and says so in the error's own sentence, with no type name in front.
    code, out, _ = run_cli(capsys, "balances")
    assert code == 1
    [_, row] = cli_table(out)
    sentence = " ".join(row[2:])
    assert sentence.startswith("not sent:") and "UID 4242" in sentence, sentence
    assert "RateLimitError" not in out
    overview_requests = [r for r in wired.requests if r.path.endswith("allAccountBalance")]
    assert len(overview_requests) == 1


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
def test_bad_input_exits_2_on_one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("bingx-assets")
    assert ": error: " in err
    assert err.count("\n") == 1


def test_interrupted_exits_130(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    async def interrupted(request: httpx.Request) -> httpx.Response:
        raise KeyboardInterrupt

    wired.handle = interrupted  # type: ignore[method-assign]
    code, _, err = run_cli(capsys, "balances")
    assert code == 130
    assert "Traceback" not in err


def test_module_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bingx_assets", "balances", "--simulate", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert Decimal(json.loads(done.stdout)["total"]) == EXPECTED_TOTAL


def test_watch_changes_only_shows_the_rounds_that_changed(
    capsys: pytest.CaptureFixture[str], wired: BingXSimulator, env_key: SimKey
) -> None:
    serve = wired.handle
    reads = 0

    async def changing(request: httpx.Request) -> httpx.Response:
        nonlocal reads
        if request.url.path.endswith("allAccountBalance"):
            reads += 1
            if reads == 3:
                env_key.balances["sopt"] = "81.5"  # seen from round 3 on
        return await serve(request)

    wired.handle = changing  # type: ignore[method-assign]
    argv = ["watch", "--interval", "0.01", "--rounds", "5", "--changes-only", "--json"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    documents = [json.loads(line) for line in out.splitlines()]
    assert [d["round"] for d in documents] == [1, 3]
    assert documents[1]["keys"][0]["account_types"]["spot"] == "81.5"
    assert reads == 5  # rounds 2, 4 and 5 were read, and counted, but not shown
