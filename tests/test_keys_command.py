"""`bingx-assets keys resolve FILE`: UIDs pinned in a keys file, nothing else changed."""

from __future__ import annotations

import asyncio
import difflib
import os
import stat
import sys
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path

import pytest
import tomlkit

from bingx_assets._cli import main
from bingx_assets._cli._keys_command import _pin_uid
from bingx_assets._constants import UID_PATH
from bingx_assets.testing import BingXSimulator, SimKey, SimulatorServer

ROOT = Path(__file__).resolve().parent.parent


def keys_file(
    keys: list[SimKey], *, pinned: Collection[int] = (), claims: Mapping[int, int] | None = None
) -> str:
    """A file as `simulate --write-keys` writes it, without the uids (but for `pinned`,
    and `claims`: uids written by hand, by key index), with the comments and quirks of a
    file people edit."""
    claims = claims or {}
    parts = ["# Fleet keys: do not commit.\n\n"]
    for n, k in enumerate(keys):
        parts.append("[[keys]]   # sub-account\n" if n % 2 else "[[keys]]\n")
        parts.append(f'label = "sim-{n + 1}"  # who holds it\n')
        parts.append(f"api_key = '{k.api_key}'\n")
        parts.append(f'secret_key = "{k.secret_key}"\n')
        if n in pinned or n in claims:
            parts.append(f"uid = {claims.get(n, k.uid)}\n")
        parts.append("# rotated 2026-01\n\n" if n % 3 == 0 else "\n")
    return "".join(parts)


def inserted_lines(before: str, after: str) -> list[str]:
    """The lines `after` adds to `before`; any other change fails."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    inserted = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        assert op in ("equal", "insert"), (op, old[i1:i2], new[j1:j2])
        inserted += new[j1:j2] if op == "insert" else []
    return inserted


async def resolve(path: Path, base_url: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bingx_assets", "keys", "resolve", str(path),
        "--base-url", base_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    path.chmod(mode)


def read(path: Path) -> str:
    return path.read_text()


def names_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.looptime(False)
async def test_uids_are_written_in_and_nothing_else_changes(tmp_path: Path) -> None:
    sim = BingXSimulator()
    keys = [sim.add_key(uid=20_000 + n % 3) for n in range(7)]
    path = tmp_path / "keys.toml"
    before = keys_file(keys, pinned={2})
    write(path, before)
    async with SimulatorServer(sim) as server:
        code, out, err = await resolve(path, server.url)
        assert (code, err) == (0, "")
        after = read(path)
        # Every comment, quote style and blank line byte for byte; only uid lines added.
        added = inserted_lines(before, after)
        assert added == [f"uid = {k.uid}\n" for n, k in enumerate(keys) if n != 2]
        tables = tomllib.loads(after)["keys"]
        assert [t["uid"] for t in tables] == [k.uid for k in keys]
        assert [list(t) for t in tables] == [["label", "api_key", "secret_key", "uid"]] * 7
        assert after.count("uid = ") == 7
        assert f'secret_key = "{keys[0].secret_key}"\nuid = 20000\n# rotated' in after
        # Every key was looked up once, at BingX's 5/s: the pinned one too, since this
        # machine had not verified its uid.
        looked_up = [r.api_key or "" for r in sim.requests if r.path == UID_PATH]
        assert sorted(looked_up) == sorted(k.api_key for k in keys)
        assert sim.peak(path=UID_PATH) <= 5
        assert sim.rejections == []
        assert "checking 7 UIDs" in out and "wrote 6 UIDs" in out and "corrected" not in out
        assert mode(path) == 0o600
        assert names_in(tmp_path) == ["keys.toml"]  # no temporary file left
        for k in keys:
            assert k.secret_key not in out + err

        # Again: every uid verified on this machine, nothing sent, the file untouched.
        sent = len(sim.requests)
        code, out, _ = await resolve(path, server.url)
        assert code == 0 and "every key's uid is one this machine verified" in out
        assert len(sim.requests) == sent
        assert read(path) == after


@pytest.mark.looptime(False)
async def test_two_resolves_at_once_share_the_hosts_limits(tmp_path: Path) -> None:
    """Found in review: `keys resolve` limited itself in memory, so two at once (or one
    beside `balances`) put 10 lookups a second on a UID: 10 refused and its lookups
    disabled (review18/s8_keys_resolve.py). It shares this machine's store, as every
    other command does."""
    sim = BingXSimulator()
    keys = [sim.add_key(uid=20_000) for _ in range(10)]
    paths = [tmp_path / "a.toml", tmp_path / "b.toml"]
    for path in paths:
        write(path, keys_file(keys))
    async with SimulatorServer(sim) as server:
        outcomes = await asyncio.gather(*(resolve(path, server.url) for path in paths))
    assert [code for code, _, _ in outcomes] == [0, 0]
    assert sim.rejections == []
    assert sim.peak(path=UID_PATH, period=1.001) <= 5


@pytest.mark.looptime(False)
async def test_wrong_uids_are_corrected_in_place_and_named_by_label(tmp_path: Path) -> None:
    """Issue 18: 2 of 5 keys of one UID labelled with another uid. Checked once on this
    machine: the two lines are corrected, the rest is left as it was."""
    sim = BingXSimulator()
    keys = [sim.add_key(uid=40_000) for _ in range(5)] + [sim.add_key(uid=40_001)]
    path = tmp_path / "keys.toml"
    claims = {n: k.uid for n, k in enumerate(keys)} | {1: 40_001, 3: 40_001}
    before = keys_file(keys, claims=claims)
    write(path, before)
    async with SimulatorServer(sim) as server:
        code, out, err = await resolve(path, server.url)
        assert (code, err) == (0, "")
        after = read(path)
        assert [t["uid"] for t in tomllib.loads(after)["keys"]] == [k.uid for k in keys]
        changed = [
            (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
        ]
        assert changed == [("uid = 40001", "uid = 40000")] * 2
        corrections = [line for line in out.splitlines() if line.endswith("corrected")]
        assert corrections == [
            f"sim-{n}: uid 40001 is not its UID; BingX says 40000: corrected" for n in (2, 4)
        ]
        assert "wrote 2 UIDs (2 corrected)" in out
        assert sim.rejections == []
        for k in keys:
            assert k.api_key not in out and k.secret_key not in out
        # Again: this machine verified them all; nothing is sent.
        sent = len(sim.requests)
        code, out, _ = await resolve(path, server.url)
        assert code == 0 and "every key's uid is one this machine verified" in out
        assert len(sim.requests) == sent


@pytest.mark.looptime(False)
async def test_a_failing_key_is_named_and_the_others_are_still_written(tmp_path: Path) -> None:
    sim = BingXSimulator()
    keys = [sim.add_key(uid=30_000 + n) for n in range(3)]
    unknown = SimKey("u" * 64, "v" * 64, uid=1, balances={})  # BingX has never seen it
    path = tmp_path / "keys.toml"
    before = keys_file([keys[0], unknown, keys[1], keys[2]])
    write(path, before, mode=0o644)
    async with SimulatorServer(sim) as server:
        code, _, err = await resolve(path, server.url)
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("bingx-assets: error")] == [
        "bingx-assets: error: sim-2: AuthenticationError: BingX code 100413: Incorrect apiKey"
    ]
    assert "holds secrets and others can read it" in err  # as `balances` warns
    assert "Traceback" not in err
    tables = tomllib.loads(read(path))["keys"]
    assert [t.get("uid") for t in tables] == [30_000, None, 30_001, 30_002]
    assert inserted_lines(before, read(path)) == ["uid = 30000\n", "uid = 30001\n", "uid = 30002\n"]
    assert mode(path) == 0o600  # a file of secrets is never left readable by others


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("[[keys]\napi_key = 'x'\n", "is not valid TOML"),
        ("[[keys]]\nlabel = 'a'\n", "no api_key"),
        ("[[keys]]\napi_key = 'k'\nsecret_key = 's'\nuid = 'x'\n", "uid must be"),
        ("title = 'no keys'\n", "expected one or more [[keys]] tables"),
    ],
    ids=["missing", "bad-toml", "no-api-key", "bad-uid", "no-keys"],
)
def test_bad_files_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "keys.toml"
    if content is not None:
        write(path, content)
    code = main(["keys", "resolve", str(path)])
    _, err = capsys.readouterr()
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err and err.startswith("bingx-assets: error: ")
    assert "Traceback" not in err
    if content is not None:
        assert read(path) == content  # untouched


def test_keys_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys"]) == 2
    assert "ACTION" in capsys.readouterr().err


def test_inline_tables_get_their_uid_inside_the_braces() -> None:
    document = tomlkit.parse('keys = [{ api_key = "a", secret_key = "b" }]  # one\n')
    _pin_uid(document["keys"][0], 42)
    assert document.as_string() == 'keys = [{ api_key = "a", secret_key = "b", uid = 42}]  # one\n'
    assert tomllib.loads(document.as_string())["keys"] == [
        {"api_key": "a", "secret_key": "b", "uid": 42}
    ]
