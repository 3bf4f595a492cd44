"""The command line as careless users and hostile servers meet it: keys files that are
not files, passwords in URLs, output piped to a file at any width, and a server whose
answers try to write on the terminal or print our secrets back."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console
from tenacity import wait_fixed

from bingx_assets import (
    AssetOverview,
    AuthenticationError,
    Balance,
    ConfigurationError,
    Credentials,
    KeyFailed,
    KeyOk,
    KeyResult,
    RateLimitError,
    ServerBusyError,
    _client,
)
from bingx_assets._cli._render import results_table
from bingx_assets._printable import masked_url, printable
from bingx_assets.testing import HEALTHY_BALANCE, HostileAnswer, HostileServer

from .conftest import run_cli

VICTIM = Credentials("VICTIMKEY" + "v" * 55, "VICTIMSECRET" + "s" * 52, "victim", uid=1)
HEALTHY = Credentials("HEALTHYKEY" + "h" * 54, "HEALTHYSECRET" + "t" * 51, "healthy", uid=2)
UIDS = {VICTIM.api_key: 1, HEALTHY.api_key: 2}  # what the lookups find
ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")
SIGNATURE = re.compile(r"signature=([0-9a-fA-F]{64})")
WIDTHS = [40, 80, 250]


def run_cli_within(
    seconds: float, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """`run_cli` in a thread: a hang fails the test after `seconds` instead of stalling it."""
    outcome: list[tuple[int, str, str]] = []
    thread = threading.Thread(target=lambda: outcome.append(run_cli(capsys, *argv)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"bingx-assets {' '.join(argv)} still running after {seconds} s"
    return outcome[0]


def assert_one_line_exit_2(code: int, out: str, err: str, *expected: str) -> None:
    assert (code, out) == (2, ""), err
    assert err.count("\n") == 1 and err.startswith("bingx-assets: error: "), err
    for text in expected:
        assert text in err, err


# -- keys files that are not files ----------------------------------------------------


def not_files(tmp_path: Path) -> Iterator[tuple[str, str]]:
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)
    yield str(fifo), "a FIFO (named pipe), not a file"
    yield "/dev/zero", "a device, not a file"
    yield str(tmp_path), "a directory, not a file"
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as file:
        file.truncate(11 << 20)  # sparse: 11 MiB that cost no disk
    yield str(huge), "larger than 10 MiB"


def test_a_keys_file_that_is_not_a_file_is_one_line_and_exit_2_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for path, expected in not_files(tmp_path):
        started = time.monotonic()
        for argv in (["balances", "--keys", path], ["keys", "resolve", path]):
            assert_one_line_exit_2(*run_cli_within(10, capsys, *argv), expected)
        # At once: no read of an endless device, no wait for a FIFO's writer. (A bound
        # far above the milliseconds it takes, only so that a regression shows.)
        assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "nesting", ["[" * 100_000 + "]" * 100_000, "{a=" * 100_000 + "1" + "}" * 100_000]
)
def test_a_keys_file_nested_past_the_parser_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, nesting: str
) -> None:
    """Found in the #19 re-review: "unexpected RecursionError", exit 1 (from_file raised it)."""
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[keys]]\napi_key = "a"\nsecret_key = "b"\nx = {nesting}\n')
    keys.chmod(0o600)
    for argv in (["balances", "--keys", str(keys)], ["keys", "resolve", str(keys)]):
        assert_one_line_exit_2(*run_cli_within(10, capsys, *argv), "nested too deeply")
    with pytest.raises(ConfigurationError, match="nested too deeply"):
        Credentials.from_file(keys)


def test_a_uid_past_python_s_digit_limit_is_not_valid_toml_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Found in the #19 re-review: tomllib's int() raised ValueError past 4,300 digits,
    and the command said "unexpected ValueError", exit 1."""
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[keys]]\napi_key = "a"\nsecret_key = "b"\nuid = {"9" * 5000}\n')
    keys.chmod(0o600)
    code, out, err = run_cli_within(10, capsys, "balances", "--keys", str(keys))
    assert_one_line_exit_2(code, out, err, "is not valid TOML")


# -- passwords in URLs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--base-url", "http://user:hunter2@127.0.0.1:1"],
        ["--base-url", "http://user:hunter2@127.0.0.1:notaport"],
        ["--redis", "redis://:hunter2@127.0.0.1:notaport/0"],
        ["--redis", "redis://:hunter2@127.0.0.1:1/0"],  # unreachable: every key fails
        ["--redis", "rediss://admin:hunter2@127.0.0.1:1/0?cluster=true"],
        ["--redis", "redis://hunter2@127.0.0.1:1/0"],  # a password alone, no ':'
        # Unencoded, '/', '?', '#' and '@' end a parser's host early: pieces are secret too.
        ["--redis", "redis://:hunter/2qzx@127.0.0.1:1/0"],
        ["--redis", "redis://:hunter#2qzx@127.0.0.1:1/0"],
        ["--redis", "redis://:hunter?2qzx@127.0.0.1:1/0"],
        ["--redis", "redis://:hunter@2qzx@127.0.0.1:1/0"],
        ["--base-url", "http://user:hunter/2qzx@127.0.0.1:1"],
        ["--base-url", "http://user:hunter#2qzx@127.0.0.1:1"],
    ],
)
def test_a_password_in_a_url_is_never_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    keys = keys_file(tmp_path)
    if "--base-url" not in argv:
        argv = [*argv, "--base-url", "http://127.0.0.1:1"]  # loopback: nothing answers
    code, out, err = run_cli_within(30, capsys, "balances", "--keys", str(keys), *argv)
    assert code in (1, 2)
    for piece in ("hunter", "2qzx"):
        assert piece not in out + err, out + err
    assert err or "Redis" in out  # it said what went wrong


@pytest.mark.parametrize(
    "proxy", ["http://user:hunter/2qzx@127.0.0.1:1", "socks5://user:hunter2qzx@127.0.0.1:1"]
)
def test_an_unusable_proxy_is_one_line_not_a_row_per_key(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    proxy: str,
) -> None:
    """Found in the #19 re-review: a table with the same error for every key, exit 1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy)
    keys = keys_file(tmp_path)
    code, out, err = run_cli_within(
        30, capsys, "balances", "--keys", str(keys), "--base-url", "https://127.0.0.1:1"
    )
    assert_one_line_exit_2(code, out, err, "HTTPS_PROXY")
    assert "hunter" not in err and "2qzx" not in err


# -- output piped at any width -------------------------------------------------------------


def mixed_results() -> list[KeyResult]:
    long_label = "production-market-maker-eu-west-0042"
    return [
        KeyOk(long_label, AssetOverview([
            Balance("sopt", Decimal("123456789012345678.123456789012345678")),
            Balance("USDTMPerp", Decimal("0.000000000000000001")),
            Balance("\x1b[2J\x1b[31mEVIL", Decimal("7")),
        ])),
        KeyFailed("bot-2", RateLimitError(
            100410, "BingX disabled UID 123 until 12:00:00 (30.0 s from now): calls fail "
            "until then", status_code=200,
        )),
        KeyFailed("bot-3", AuthenticationError(100001, "Signature verification failed",
                                               status_code=200)),
        KeyOk("k4", AssetOverview([Balance("grid", Decimal("5.25"))])),
    ]  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS)
def test_piped_at_any_width_every_label_digit_total_and_error_is_kept(width: int) -> None:
    results = mixed_results()
    console = Console(file=io.StringIO(), width=width)  # what the CLI prints with, piped
    console.print(results_table(results))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in out.splitlines()) <= width
    assert "…" not in out and not ESCAPES.search(out)
    unwrapped = " ".join(out.split())  # wrapped lines joined, as a person reads them
    for label in ("production-market-maker-eu-west-0042", "bot-2", "bot-3", "k4"):
        assert label in out
    amounts = [
        "123456789012345678.123456789012345678",  # every digit, at the shared precision
        "0.000000000000000001",
        "7.000000000000000000",
        "5.250000000000000000",
        "123456789012345690.373456789012345679",  # the TOTAL of the two keys read
    ]
    for amount in amounts:
        assert amount in out.split(), amount  # whole on its line, never cut
    kept = ["TOTAL", "partial: 2 of 4 keys (2 failed)", "AuthenticationError:",
            "Signature verification failed", "calls fail until then", "[2J [31mEVIL"]  # fmt: skip
    for text in kept:
        assert text in unwrapped, text


def test_no_width_cuts_a_long_label_to_make_room_for_an_error() -> None:
    """Found in the #19 re-review: piped at 72 to 90 columns (210 to 224 for the results
    above), the table fitted by narrowing the key column, and a 36-character label was
    printed as "victim-with-a-rather-long-lab…"."""
    label = "victim-with-a-rather-long-label-name"
    busy = ServerBusyError(100500, "busy really, please try again later", status_code=200)
    result_sets = [
        [KeyFailed(label, busy), KeyOk("healthy", AssetOverview([Balance("spot", Decimal(1))]))],
        mixed_results(),
    ]
    cut = []
    for results in result_sets:
        for width in range(20, 251):
            console = Console(file=io.StringIO(), width=width)
            console.print(results_table(results))
            out = console.file.getvalue()  # type: ignore[attr-defined]
            # Narrower than the label itself, the blocks wrap it: whole, over two lines.
            if "…" in out or results[0].label not in "".join(out.split()):
                cut.append((results[0].label, width))
    assert not cut


# -- a hostile server, through the whole command ------------------------------------------


@contextlib.contextmanager
def hostile_server_in_a_thread(answer: HostileAnswer) -> Iterator[HostileServer]:
    """`HostileServer` on a loop of its own, for a command that runs `asyncio.run`."""
    loop = asyncio.new_event_loop()
    server = HostileServer(answer, victim=VICTIM.api_key, uids=UIDS)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(
        "".join(
            f'[[keys]]\nlabel = "{c.label}"\napi_key = "{c.api_key}"\n'
            f'secret_key = "{c.secret_key}"\nuid = {c.uid}\n\n'
            for c in (VICTIM, HEALTHY)
        )
    )
    path.chmod(0o600)
    return path


HOSTILE = [
    HostileAnswer.echoed(in_json=True),
    HostileAnswer.echoed(in_json=False),
    HostileAnswer.balance("NaN"),
    HostileAnswer.balance("1e999999999"),
    HostileAnswer.account_type("\x1b[2J\x1b[31mEVIL\u202e"),
    HostileAnswer.message(100500, "\x1b]0;pwned\x07\x1b[2Jbusy\r\n"),
    HostileAnswer.nested(200_000),
]


@pytest.mark.looptime(False)  # real sockets, and a command with an event loop of its own
@pytest.mark.parametrize("answer", HOSTILE, ids=[a.name for a in HOSTILE])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_command_prints_the_other_keys_and_nothing_unsafe(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: HostileAnswer,
    width: int,
) -> None:
    monkeypatch.setattr(_client, "_busy_backoff", wait_fixed(0.003))  # real time
    monkeypatch.setenv("COLUMNS", str(width))
    keys = keys_file(tmp_path)
    with hostile_server_in_a_thread(answer) as server:
        code, out, err = run_cli_within(
            30, capsys, "balances", "--keys", str(keys), "--base-url", server.url
        )
        received = list(server.received)
    shown = out + err
    assert not ESCAPES.search(shown), shown
    secrets = [c.api_key for c in (VICTIM, HEALTHY)] + [c.secret_key for c in (VICTIM, HEALTHY)]
    secrets += [m.group(1) for r in received for m in SIGNATURE.finditer(r.target)]
    for secret in secrets:
        assert secret not in shown
    words = out.split()
    assert "healthy" in words and "victim" in words and "TOTAL" in words
    assert HEALTHY_BALANCE in " ".join(words) or f"{Decimal(HEALTHY_BALANCE):f}" in out
    if answer.name == "account-type":  # a correct answer, shown printable
        assert code == 0
        assert "[2J [31mEVIL" in " ".join(words)
    else:
        assert code == 1
        assert "partial:" in out


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J\x1b[31mEVIL\x1b[0m", "[2J [31mEVIL [0m"),
        ("left\u202eright\u200b\r\nnext\x07", "left right next"),
        ("GET /x?a=1&signature=" + "ab" * 32 + " HTTP/1.1", "GET /x?a=1&signature=*** HTTP/1.1"),
        ("X-BX-APIKEY: k3y\r\nHost: h", "X-BX-APIKEY: *** Host: h"),
        ('{"X-BX-APIKEY":"k3y"}', '{"X-BX-APIKEY":"***"}'),
        ("the X-BX-APIKEY header is missing", "the X-BX-APIKEY header is missing"),
        ("at redis://:hunter2@127.0.0.1:1/0 now", "at redis://:***@127.0.0.1:1/0 now"),
        # A signature echoed in any other form: a JSON field, percent-encoded, bare.
        ('{"signature": "' + "60f4" * 16 + '"}', '{"signature": "***"}'),
        ("a=1%26signature%3D" + "e14a" * 16 + "%20", "a=1%26signature%3D***%20"),
        ("sig " + "0fcf" * 16 + " refused", "sig *** refused"),
        ("not one: " + "ab" * 33, "not one: " + "ab" * 33),  # 66 hex digits: no signature
    ],
)  # fmt: skip
def test_printable_text_has_no_control_characters_and_no_secrets(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert "k3y" not in printable(text, secrets=["k3y"]) and "EVIL" not in printable(
        text, secrets=["EVIL"]
    )
    assert len(printable(text, limit=8)) == min(8, len(shown))
    assert masked_url("https://user:hunter2@127.0.0.1/x") == "https://user:***@127.0.0.1/x"


@pytest.mark.parametrize(
    "account_type", ["[/x]", "[link=https://127.0.0.1:1/]zz[/link]", "[red on white]RED"]
)
def test_an_account_type_is_never_read_as_markup(account_type: str) -> None:
    results: list[KeyResult] = [
        KeyOk("hostile", AssetOverview([Balance(account_type, Decimal("1"))])),
        KeyOk("healthy", AssetOverview([Balance("sopt", Decimal("2"))])),
    ]
    out = io.StringIO()
    Console(file=out, width=120, force_terminal=True, color_system="truecolor").print(
        results_table(results)
    )
    shown = out.getvalue()
    assert account_type in re.sub(r"\x1b\[[0-9;]*m", "", shown)  # its own text, literally
    assert "\x1b]8;" not in shown  # no hyperlink escape
    assert "healthy" in shown and "hostile" in shown


def test_a_label_from_a_keys_file_reaches_the_log_printable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bingx_assets import AssetsClient
    from bingx_assets.testing import BingXSimulator

    sim = BingXSimulator()
    key = sim.add_key(uid=1)
    label = "\x1b]0;PWNED\x07\x1b[31mevil"

    async def refused() -> None:
        async with sim.http_client() as http:
            client = AssetsClient(key.api_key, "wrong", label=label, http_client=http)
            with contextlib.suppress(AuthenticationError):
                await client.asset_overview()

    with caplog.at_level("WARNING", logger="bingx_assets"):
        asyncio.run(refused())
    messages = [r.getMessage() for r in caplog.records]
    assert any("refused with code 100001" in m for m in messages), messages
    assert not any("\x1b" in m or "\x07" in m for m in messages)
