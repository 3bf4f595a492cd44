"""One UID, one budget: every spelling of a UID is one string, so one limiter window."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from bingx_assets import AssetsClient, AssetsPool, ConfigurationError, Credentials, RateLimiter
from bingx_assets._constants import ASSET_OVERVIEW_PATH, UID_PATH
from bingx_assets.testing import BingXSimulator, LoopClock

from .conftest import MakeClient

KEY, SECRET = "k" * 64, "s" * 64


def full_width(digits: str) -> str:
    """Digits as an East Asian keyboard may type them (3 as U+FF13)."""
    return "".join(chr(0xFF10 + int(d)) for d in digits)


ARABIC_INDIC = "\u0663\u0660\u0660\u0660\u0660\u0660\u0661"  # 3000001
SPELLINGS = [3000001, "3000001", "03000001", " 3000001 ", "\t3000001\n", full_width("3000001"),
             ARABIC_INDIC]  # fmt: skip
REFUSED = [True, False, 0, "0", "000", -3000001, "-3000001", "+3000001", "3000001.0", 3000001.0,
           "3 000 001", "3_000_001", "", "  ", "abc", "0x2dc6c1", "²", b"3000001", 10**19,
           "1" * 20, "9" * 5000, [3000001]]  # fmt: skip


@pytest.mark.parametrize("uid", SPELLINGS, ids=repr)
async def test_every_spelling_of_a_uid_is_its_decimal_string(
    sim: BingXSimulator, limiter: RateLimiter, caplog: pytest.LogCaptureFixture, uid: int | str
) -> None:
    assert Credentials(KEY, SECRET, uid=uid).uid == "3000001"
    # Given to the client, it is a claim: checked against BingX, and found to agree.
    key = sim.add_key(uid=3000001)
    async with (
        sim.http_client() as http,
        AssetsClient(key.api_key, key.secret_key, uid=uid, http_client=http, limiter=limiter)
        as client,
    ):  # fmt: skip
        assert await client.uid() == "3000001"
    assert [r.path for r in sim.requests if r.path == UID_PATH] == [UID_PATH]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Told to trust it, the client sends nothing for it.
    trusting = AssetsClient(KEY, SECRET, uid=uid, verify_uids=False, base_url="http://127.0.0.1:1")
    assert await trusting.uid() == "3000001"


@pytest.mark.parametrize("uid", REFUSED, ids=lambda v: repr(v)[:20])
def test_anything_else_is_refused_as_a_uid(uid: object) -> None:
    with pytest.raises(ConfigurationError, match="uid"):
        Credentials(KEY, SECRET, uid=uid)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="uid"):
        AssetsClient(KEY, SECRET, uid=uid)  # type: ignore[arg-type]


def test_credentials_built_again_keep_the_canonical_uid() -> None:
    creds = Credentials(KEY, SECRET, "main", uid=" 042 ")
    assert dataclasses.replace(creds, label="other").uid == "42"
    assert creds == Credentials(KEY, SECRET, "main", uid=42)


async def test_two_spellings_of_one_uid_share_one_window(
    sim: BingXSimulator, make_client: MakeClient, clock: LoopClock
) -> None:
    key, other = sim.add_key(uid=3000001), sim.add_key(uid=3000001)
    clients = [make_client(key, uid="03000001"), make_client(other, uid=full_width("3000001"))]
    start = clock.monotonic()
    await asyncio.gather(*(c.asset_overview() for c in clients for _ in range(5)))
    # Ten requests of one UID at 5/s: two windows, never a sixth request in one second.
    assert sim.peak(uid=3000001) == 5
    assert sim.rejections == []
    assert clock.monotonic() - start >= 1.0
    assert len([r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]) == 10


async def test_a_pool_schedules_two_spellings_as_one_uid(
    sim: BingXSimulator, limiter: RateLimiter
) -> None:
    keys = [sim.add_key(uid=7) for _ in range(10)]
    spellings = [7, "7", "07", " 7", full_width("7")]
    creds = [
        Credentials(k.api_key, k.secret_key, f"k{n}", spellings[n % 5]) for n, k in enumerate(keys)
    ]
    assert {c.uid for c in creds} == {"7"}
    async with sim.http_client() as http:
        results = await AssetsPool(creds, http_client=http, limiter=limiter).gather()
    assert all(r.ok for r in results)
    assert sim.peak(uid=7) == 5
    assert sim.rejections == []
