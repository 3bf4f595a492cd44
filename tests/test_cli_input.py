"""`bingx-assets` given bad input: one line on stderr and exit 2, never a traceback.

Each family of bad input has a case: option values argparse checks, files that cannot
be read or written, servers that cannot start, URLs the library refuses. Also what
the command says about itself (--version, --help) and where rich is allowed.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import socket
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from bingx_assets import KeyFailed, KeyOk, KeyResult, __version__
from bingx_assets._cli._main import _parser
from bingx_assets._cli._render import live_view, progress, results_table
from bingx_assets._models import AssetOverview, Balance
from bingx_assets.testing import BingXSimulator

from .conftest import own_transport_on, run_cli


def assert_one_line_usage_error(code: int, out: str, err: str, *expected: str) -> None:
    assert (code, out) == (2, "")
    assert err.count("\n") == 1, err
    assert err.startswith("bingx-assets")
    assert ": error: " in err
    for text in expected:
        assert text in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["balances", "--simulate", "--timeout", "0"], "--timeout"),
        (["balances", "--simulate", "--timeout", "-1"], "--timeout"),
        (["balances", "--simulate", "--timeout", "nan"], "--timeout"),
        (["balances", "--simulate", "--timeout", "inf"], "--timeout"),
        (["balances", "--simulate", "--timeout", "1e300"], "--timeout"),
        (["balances", "--simulate", "--max-wait", "-1"], "--max-wait"),
        (["balances", "--simulate", "--max-wait", "nan"], "--max-wait"),
        (["watch", "--simulate", "--interval", "0"], "--interval"),
        (["watch", "--simulate", "--interval", "-5"], "--interval"),
        (["watch", "--simulate", "--interval", "nan"], "--interval"),
        (["watch", "--simulate", "--rounds", "0"], "--rounds"),
        (["balances", "--simulate", "--simulated-keys", "0"], "--simulated-keys"),
        (["balances", "--simulate", "--simulated-keys", "-2"], "--simulated-keys"),
        (["balances", "--simulate", "--simulated-keys", "10" * 20], "--simulated-keys"),
        (["balances", "--simulate", "--simulated-uids", "0"], "--simulated-uids"),
        (["simulate", "--port", "99999"], "--port"),
        (["simulate", "--port", "-1"], "--port"),
        (["simulate", "--port", "http"], "--port"),
        (["simulate", "--host", "0.0.0.0"], "loopback only"),
        (["simulate", "--host", "localhost"], "loopback only"),
        (["balances", "--account-type", "futures"], "--account-type"),
        (["balances", "--simulate", "--keys", "k.toml"], "not allowed with"),
        (["balances", "--simulated-keys", "3"], "need --simulate"),
        (["nonsense"], "COMMAND"),
        ([], "COMMAND"),
    ],
)
def test_bad_option_values(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert_one_line_usage_error(*run_cli(capsys, *argv), expected)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("notaurl", "--base-url must be an https:// URL (or http:// to loopback)"),
        ("ftp://example.com", "--base-url must be an https:// URL (or http:// to loopback)"),
        ("http://example.com", "use https, or pass --allow-insecure-http"),
    ],
)
def test_bad_base_url_is_worded_for_the_command_line(
    capsys: pytest.CaptureFixture[str], url: str, expected: str
) -> None:
    code, out, err = run_cli(capsys, "balances", "--base-url", url)
    assert_one_line_usage_error(code, out, err, expected)
    assert "allow_insecure_http" not in err
    assert "base_url" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--base-url", "https://x"], "--base-url cannot go with --simulate"),
        (["--base-url", "http://127.0.0.1:9"], "--base-url cannot go with --simulate"),
        (
            ["--simulated-keys", "2", "--simulated-uids", "5"],
            "--simulated-uids 5 needs at least as many --simulated-keys (one key per UID at "
            "least), not 2",
        ),
    ],
)
@pytest.mark.parametrize("command", ["balances", "watch"])
def test_simulate_refuses_what_it_would_ignore(
    capsys: pytest.CaptureFixture[str], command: str, argv: list[str], expected: str
) -> None:
    code, out, err = run_cli(capsys, command, "--simulate", *argv)
    assert_one_line_usage_error(code, out, err, expected)


def test_a_bad_bingx_base_url_is_one_line_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINGX_BASE_URL", "ftp://example.com")
    code, out, err = run_cli(capsys, "balances")
    assert_one_line_usage_error(code, out, err, "(from BINGX_BASE_URL)", "http:// to loopback")


def test_verbose_shows_our_logger_only_and_no_bingx_host_while_simulating(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "balances", "--simulate", "-v")
    assert code == 0
    lines = err.splitlines()
    assert lines and all(line.split()[1].startswith("bingx_assets") for line in lines), err
    assert "asyncio" not in err and "bingx.com" not in err


def test_allow_insecure_http_lets_plain_http_through(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=5)
    own_transport_on(sim, monkeypatch)
    monkeypatch.setenv("BINGX_API_KEY", key.api_key)
    monkeypatch.setenv("BINGX_SECRET_KEY", key.secret_key)
    argv = ["balances", "--json", "--base-url", "http://bingx.internal"]
    code, out, err = run_cli(capsys, *argv, "--allow-insecure-http")
    assert code == 0, err
    assert json.loads(out)["complete"] is True
    assert sim.requests[-1].path == "/openApi/account/v1/allAccountBalance"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("keys = [", "is not valid TOML"),
        ('[[keys]]\napi_key = "a"\n', "secret_key"),
        ('[[keys]]\napi_key = "abc"\nsecret_key = "def"\nsecret = 1\n', "unknown field"),
        ("", "expected one or more [[keys]] tables"),
    ],
)
def test_bad_keys_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, expected: str
) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(content)
    keys.chmod(0o644)
    code, out, err = run_cli(capsys, "balances", "--keys", str(keys))
    assert_one_line_usage_error(code, out, err, expected)
    # A file with no keys in it holds no secrets: no "others can read it" warning.
    assert "others can read" not in err


def test_unreadable_keys_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    for path, expected in [
        (tmp_path / "missing.toml", "No such file or directory"),
        (tmp_path, "a directory, not a file"),
        (binary, "is not valid TOML"),
    ]:
        assert_one_line_usage_error(*run_cli(capsys, "balances", "--keys", str(path)), expected)


@pytest.mark.parametrize(
    ("url", "expected"),
    [("notaurl", "--redis 'notaurl'"), ("redis://localhost:port/0", "--redis")],
)
def test_bad_redis_urls(capsys: pytest.CaptureFixture[str], url: str, expected: str) -> None:
    code, out, err = run_cli(capsys, "balances", "--simulate", "--redis", url)
    assert_one_line_usage_error(code, out, err, expected)


def test_simulate_on_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_cli(capsys, "simulate", "--port", str(port))
    assert_one_line_usage_error(code, out, err, f"port {port}", "Address already in use")


@pytest.mark.parametrize("where", ["missing/dir/k.toml", "."])
def test_simulate_cannot_write_keys(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    target = tmp_path / where
    code, out, err = run_cli(capsys, "simulate", "--port", "0", "--write-keys", str(target))
    assert_one_line_usage_error(code, out, err, "--write-keys: cannot write")


def test_simulate_never_replaces_what_is_not_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # As root, replacing /dev/null with a keys file would break every program: a FIFO
    # stands in for it here.
    fifo = tmp_path / "null"
    os.mkfifo(fifo)
    code, out, err = run_cli(capsys, "simulate", "--port", "0", "--write-keys", str(fifo))
    assert_one_line_usage_error(code, out, err, "--write-keys: cannot write", "a FIFO")
    assert "Errno" not in err  # found in the #19 re-review: "[Errno 0] a FIFO ..."
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["null"]  # no temporary file left beside it


def test_a_closed_pipe_ends_quietly() -> None:
    reader = subprocess.Popen(
        [sys.executable, "-m", "bingx_assets", "balances", "--simulate", "--simulated-keys", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None
    reader.stdout.close()  # as `| head -0` does
    _, err = reader.communicate(timeout=60)
    assert b"Traceback" not in err
    assert err == b""


# -- what the command says about itself ------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--version")
    assert (code, out) == (0, f"bingx-assets {__version__}\n")


def test_every_option_of_every_command_has_help() -> None:
    parser = _parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == {"balances", "watch", "simulate", "keys"}
    [keys_actions] = [
        a for a in commands.choices["keys"]._actions if isinstance(a, argparse._SubParsersAction)
    ]
    everything = [("", parser), *commands.choices.items(), *keys_actions.choices.items()]
    for name, command in everything:
        assert command.description and len(command.description) > 20, name
        for action in command._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help and len(action.help) > 10, (name, action.option_strings)


def test_import_does_not_load_rich() -> None:
    # httpx imports rich for its own CLI when click is installed, as it is here but not
    # in a user's environment: hide click, as a user's environment does.
    code = (
        "import sys; sys.modules['click'] = None; import bingx_assets; "
        "print('rich' in sys.modules); import bingx_assets._cli; print('rich' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]  # only the command line loads it


# -- on a terminal ----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_run_on_a_terminal_shows_a_progress_bar() -> None:
    screen = Terminal()
    with progress(40, screen) as advance:
        for _ in range(40):
            advance()
    assert "reading keys" in screen.getvalue()
    assert "40/40" in screen.getvalue()
    quiet = Terminal()
    with progress(3, quiet) as advance:  # short runs need none
        advance()
    assert quiet.getvalue() == ""


async def test_watch_on_a_terminal_updates_one_table_in_place() -> None:
    def results(value: str) -> list[KeyResult]:
        overview = AssetOverview([Balance("spot", Decimal(value))])
        return [KeyOk("a", overview), KeyFailed("b", ValueError("x"))]

    async def tables():  # type: ignore[no-untyped-def]
        yield results_table(results("1.5"), title="round 1")
        yield results_table(results("2.25"), title="round 2")

    screen = Terminal()
    await live_view(tables(), screen)
    shown = screen.getvalue()
    assert "round 2" in shown
    assert "2.25" in shown
    assert "\x1b[2K" in shown  # the first table's lines are erased, not scrolled past


def test_a_bug_is_still_one_line_and_verbose_shows_where(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setattr("bingx_assets._cli._main.BingXSimulator", broken)
    code, out, err = run_cli(capsys, "balances", "--simulate")
    assert (code, out) == (1, "")
    assert err == (
        "bingx-assets: error: unexpected RuntimeError: something unforeseen (-v shows where)\n"
    )
    root = logging.getLogger()  # -v configures logging: leave it as it was after the test
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    code, _, err = run_cli(capsys, "balances", "--simulate", "-v")
    assert code == 1
    assert "Traceback" in err  # asked for


@given(
    st.lists(
        st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
            lambda d: abs(d) < Decimal("1e15") and abs(d.as_tuple().exponent) < 20  # type: ignore[arg-type]
        ),
        min_size=1,
        max_size=6,
    )
)
def test_amounts_share_one_precision_and_keep_every_digit(values: list[Decimal]) -> None:
    overview = AssetOverview([Balance(f"type{n}", v) for n, v in enumerate(values)])
    console = Console(file=io.StringIO(), width=1000)
    console.print(results_table([KeyOk("k", overview)]))
    header, _, row, *_ = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    names, cells = header.split(), row.split()[1:]
    shown = dict(zip(names[1:-1], cells[:-1], strict=True))
    for name, cell in shown.items():
        assert Decimal(cell) == values[int(name.removeprefix("type"))]
    assert len({len(cell.partition(".")[2]) for cell in cells}) == 1
