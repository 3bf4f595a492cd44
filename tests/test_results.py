"""KeyOk / KeyFailed: `result.ok` tells them apart at run time as it does for type checkers."""

from __future__ import annotations

import dataclasses

from bingx_assets import (
    AssetsPool,
    AuthenticationError,
    Credentials,
    KeyFailed,
    KeyOk,
    KeyResult,
    RateLimiter,
)
from bingx_assets.testing import BingXSimulator


async def test_a_pool_gives_key_ok_for_a_read_and_key_failed_for_an_error(
    sim: BingXSimulator, limiter: RateLimiter
) -> None:
    good = sim.add_key(uid=1, balances={"sopt": "2.5"})
    stranger = Credentials("x" * 64, "y" * 64, "stranger", uid=1)
    creds = [Credentials(good.api_key, good.secret_key, "good", uid=1), stranger]
    async with sim.http_client() as http:
        ok, failed = await AssetsPool(creds, http_client=http, limiter=limiter).gather()
    assert isinstance(ok, KeyOk) and ok.ok is True
    assert (ok.label, str(ok.overview.total), ok.error) == ("good", "2.5", None)
    assert isinstance(failed, KeyFailed) and failed.ok is False
    assert (failed.label, failed.overview) == ("stranger", None)
    assert isinstance(failed.error, AuthenticationError)
    assert all(isinstance(r, KeyResult) for r in (ok, failed))  # the union works at run time


def test_results_are_frozen_and_their_ok_is_not_a_field() -> None:
    failed = KeyFailed("a", ValueError("x"))
    assert [f.name for f in dataclasses.fields(failed)] == [
        "label",
        "error",
        "overview",
        "retry_at",
    ]
    assert dataclasses.replace(failed, label="b").ok is False
