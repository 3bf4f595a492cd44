"""A uid given by hand is a claim, not a fact (issue 18, part 4): checked once per key
per machine, never trusted with another UID's budget, a wrong one named by its label."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import textwrap
from pathlib import Path

import pytest

from bingx_assets import AssetsPool, Credentials, KeyResult, RateLimiter
from bingx_assets._constants import ASSET_OVERVIEW_PATH, UID_PATH
from bingx_assets._uid_cache import _open, default_uid_cache_path
from bingx_assets.testing import BingXSimulator, LoopClock, SimKey, SimulatorServer

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


def lookups(sim: BingXSimulator) -> int:
    return sum(r.path == UID_PATH for r in sim.requests)


def keys_file(path: Path, keys: list[SimKey], claims: dict[int, int]) -> Path:
    """`keys` as a keys file, key n labelled `k{n}` with the uid `claims[n]`."""
    path.write_text(
        "".join(
            f'[[keys]]\nlabel = "k{n}"\napi_key = "{k.api_key}"\n'
            f'secret_key = "{k.secret_key}"\nuid = {claims[n]}\n\n'
            for n, k in enumerate(keys)
        )
    )
    path.chmod(0o600)
    return path


def mislabelled(sim: BingXSimulator) -> tuple[list[SimKey], dict[int, int]]:
    """Issue 18's file: 5 keys of UID 1001, 2 of them (k1, k3) labelled 2002, beside a
    key that is 2002's."""
    keys = [sim.add_key(uid=1001) for _ in range(5)] + [sim.add_key(uid=2002)]
    claims = {n: k.uid for n, k in enumerate(keys)} | {1: 2002, 3: 2002}
    return keys, claims


async def watch(pool: AssetsPool, rounds: int, interval: float = 0.2) -> list[KeyResult]:
    """Every result of `rounds` rounds of watching the pool."""
    results: list[KeyResult] = []
    async for snapshot in pool.watch(interval):
        results += snapshot.results
        if snapshot.round == rounds:
            return results
    raise AssertionError("the watch ended")


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def strict(clock: LoopClock) -> BingXSimulator:
    """A simulator without rate headers: the client cannot learn from an answer that
    someone else (a mislabelled key) spends a UID's budget."""
    return BingXSimulator(clock=clock, rate_limit_headers=False)


async def test_a_keys_file_with_wrong_uids_costs_no_refusal_and_a_warning_per_wrong_label(
    clock: LoopClock, limiter: RateLimiter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim = strict(clock)
    keys, claims = mislabelled(sim)
    credentials = Credentials.from_file(keys_file(tmp_path / "keys.toml", keys, claims))
    async with sim.http_client() as http:
        pool = AssetsPool(credentials, http_client=http, limiter=limiter)
        with caplog.at_level(logging.WARNING, logger="bingx_assets"):
            results = await watch(pool, rounds=30)
    assert len(results) == 180 and all(r.ok for r in results)
    assert sim.rejections == []
    for uid in (1001, 2002):
        assert sim.peak(uid=uid) <= 5
        assert sim.peak(uid=uid, path=UID_PATH) <= 5
    assert lookups(sim) == 6  # once per key, in the first round only
    assert len([r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]) == 180
    # One warning per wrong label, for the whole watch: the label and both UIDs, no key.
    assert warnings_in(caplog) == [
        f"key 'k{n}' was given uid 2002, but BingX says it belongs to UID 1001: using 1001 "
        "(fix the uid where it is written; `bingx-assets keys resolve` corrects a keys file)"
        for n in (1, 3)
    ]
    for k in keys:
        assert k.api_key not in caplog.text and k.secret_key not in caplog.text


async def test_trusting_those_uids_is_what_gets_refused(
    clock: LoopClock, limiter: RateLimiter, tmp_path: Path
) -> None:
    """The bet `verify_uids=False` makes, on the same file: the two keys count against
    2002's window while BingX counts them in 1001's, which then takes more than 5/s.
    (What the default above is measured against: this test fails if the scenario
    stops being one that a trusted claim gets wrong.)"""
    sim = strict(clock)
    keys, claims = mislabelled(sim)
    credentials = Credentials.from_file(keys_file(tmp_path / "keys.toml", keys, claims))
    async with sim.http_client() as http:
        pool = AssetsPool(credentials, http_client=http, limiter=limiter, verify_uids=False)
        await watch(pool, rounds=30)
    assert lookups(sim) == 0
    assert sim.peak(uid=1001) > 5
    assert sim.rejections != []


async def test_keys_claiming_many_uids_still_put_at_most_5_lookups_a_second_on_theirs(
    clock: LoopClock, limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    """20 keys of one UID (BingX's most), each claiming a UID of its own: were lookups
    counted by the claimed UID, all 20 would reach UID 1001's lookup window at once.
    Every unverified key shares one lookup window instead."""
    sim = strict(clock)
    keys = [sim.add_key(uid=1001) for _ in range(20)]
    credentials = [
        Credentials(k.api_key, k.secret_key, f"k{n}", 9000 + n) for n, k in enumerate(keys)
    ]
    async with sim.http_client() as http:
        pool = AssetsPool(credentials, http_client=http, limiter=limiter, concurrency=32)
        with caplog.at_level(logging.WARNING, logger="bingx_assets"):
            assert all(r.ok for r in await pool.gather())
    assert sim.rejections == []
    assert sim.peak(uid=1001, path=UID_PATH) == 5
    assert sim.peak(uid=1001) == 5
    assert lookups(sim) == 20
    assert len(warnings_in(caplog)) == 20


async def test_a_right_uid_is_checked_once_without_a_warning(
    sim: BingXSimulator, clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    keys = [sim.add_key(uid=1001) for _ in range(3)]
    credentials = [Credentials(k.api_key, k.secret_key, f"k{n}", 1001) for n, k in enumerate(keys)]
    with caplog.at_level(logging.WARNING, logger="bingx_assets"):
        for _ in range(2):  # a second process: the cache vouches for all three
            _open.clear()
            limiter = RateLimiter(clock=clock)
            async with sim.http_client() as http:
                pool = AssetsPool(
                    credentials,
                    http_client=http,
                    limiter=limiter,
                    uid_cache=default_uid_cache_path(),
                )
                assert all(r.ok for r in await pool.gather())
            await asyncio.sleep(1)  # the new limiter knows nothing of the last one's window
    assert lookups(sim) == 3
    assert warnings_in(caplog) == []


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from bingx_assets import AssetsPool, Credentials

    async def main() -> None:
        async with AssetsPool(Credentials.from_file(sys.argv[1]), base_url=sys.argv[2]) as pool:
            assert all(r.ok for r in await pool.gather())

    asyncio.run(main())
    """
)


async def one_process(keys: Path, url: str) -> str:
    """A pool reading `keys` once in a process of its own (sharing this test's cache
    directory, `XDG_CACHE_HOME`); its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(keys), url,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return err.decode()


@pytest.mark.looptime(False)
async def test_a_verified_pair_is_not_verified_again_in_another_process(tmp_path: Path) -> None:
    sim = BingXSimulator()
    keys, claims = mislabelled(sim)
    path = keys_file(tmp_path / "keys.toml", keys, claims)
    async with SimulatorServer(sim) as server:
        first = await one_process(path, server.url)
        assert lookups(sim) == 6
        second = await one_process(path, server.url)
        assert lookups(sim) == 6  # every pair, the wrong ones too, came from the cache
    assert sim.rejections == []
    # The file is still wrong: each process says so, once per wrong label.
    for err in (first, second):
        named = [line for line in err.splitlines() if "was given uid" in line]
        assert sorted(line.split("'")[1] for line in named) == ["k1", "k3"]


def test_the_embedded_simulator_never_touches_the_users_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    code, out, _ = run_cli(
        capsys, "balances", "--simulate", "--simulated-keys", "6", "--simulated-uids", "2"
    )
    assert code == 0 and out
    assert not (tmp_path / "xdg").exists()
