"""The simulator is strict: what it rejects, the real BingX would reject too."""

from __future__ import annotations

import asyncio

import httpx
import msgspec

from bingx_assets import Rate, RateLimits
from bingx_assets._constants import API_KEY_HEADER, ASSET_OVERVIEW_PATH, SERVER_TIME_PATH
from bingx_assets._signing import signed_query
from bingx_assets.testing import BingXSimulator, LoopClock, SimKey

URL = "https://open-api.bingx.com"


async def raw_call(http: httpx.AsyncClient, sim: BingXSimulator, key: SimKey) -> dict:  # type: ignore[type-arg]
    """One request as a careless client sends it: signed, with no limiter at all."""
    query = signed_query({"timestamp": sim.clock.wall_ms()}, key.secret_key.encode())
    response = await http.get(
        f"{URL}{ASSET_OVERVIEW_PATH}?{query}", headers={API_KEY_HEADER: key.api_key}
    )
    if response.status_code != 200:
        return {"status": response.status_code}
    return msgspec.json.decode(response.content)  # type: ignore[no-any-return]


async def test_requests_exactly_200ms_apart_are_rejected_under_jitter(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock, jitter=0.05, seed=3)
    key = sim.add_key(uid=1)
    async with sim.http_client() as http:
        calls = []
        for _ in range(50):
            calls.append(asyncio.create_task(raw_call(http, sim, key)))
            await asyncio.sleep(0.2)
        await asyncio.gather(*calls)
    assert len(sim.rejections) > 0


async def test_a_burst_of_five_then_steady_200ms_is_rejected(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=1)
    async with sim.http_client() as http:
        burst = [raw_call(http, sim, key) for _ in range(5)]
        answers = await asyncio.gather(*burst)
        await asyncio.sleep(0.2)
        answers.append(await raw_call(http, sim, key))
    assert [a["code"] for a in answers] == [0, 0, 0, 0, 0, 100410]
    assert answers[-1]["msg"] == "rate limited"


async def test_repeated_rejections_disable_the_uid_with_an_unblock_time(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock, rejections_before_disable=3, disable_seconds=300)
    key = sim.add_key(uid=1)
    sibling = sim.add_key(uid=1)
    async with sim.http_client() as http:
        answers = await asyncio.gather(*(raw_call(http, sim, key) for _ in range(8)))
        later = await raw_call(http, sim, sibling)
    messages = [a["msg"] for a in answers if a["code"] == 100410]
    assert messages[:2] == ["rate limited", "rate limited"]
    until = sim.server_ms() + 300_000
    assert messages[2] == (
        "code:100410:The endpoint trigger frequency limit rule is currently in the disabled "
        f"period and will be unblocked after {until}"
    )
    assert later["code"] == 100410  # every key of the UID
    assert sim.requests[-1].while_disabled


async def test_too_many_errors_disable_with_the_retry_after_form(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock, error_limit=3, error_period=480)
    key = sim.add_key(uid=1)
    wrong = SimKey(key.api_key, "x" * 64, 1, {})
    async with sim.http_client() as http:
        for _ in range(4):
            await raw_call(http, sim, wrong)
            await asyncio.sleep(1)
        answer = await raw_call(http, sim, key)
    assert answer["code"] == 100410
    assert answer["msg"].startswith("over 3 error code:100001 requests within 480000 ms")
    assert answer["msg"].endswith(f"can retry after time: {sim.server_ms() - 1000 + 300_000}")


async def test_ip_window_answers_429_with_retry_after(clock: LoopClock) -> None:
    sim = BingXSimulator(clock=clock, limits=RateLimits(per_ip_endpoint=Rate(3, 10.0)))
    keys = [sim.add_key(uid=n) for n in range(4)]
    async with sim.http_client() as http:
        answers = await asyncio.gather(*(raw_call(http, sim, k) for k in keys))
    assert answers[3] == {"status": 429}
    assert sim.requests[-1].status == 429


async def test_stale_timestamps_and_unknown_paths(clock: LoopClock, sim: BingXSimulator) -> None:
    key = sim.add_key(uid=1)
    async with sim.http_client() as http:
        sim.skew_ms = 6_000
        stale = await raw_call(http, sim, key)
        sim.skew_ms = 0
        missing = await http.get(f"{URL}/openApi/nothing/here")
        time = await http.get(f"{URL}{SERVER_TIME_PATH}")
    assert stale["code"] == 100421  # the server clock is 6 s ahead of the client's
    assert missing.status_code == 404
    assert msgspec.json.decode(time.content)["data"]["serverTime"] == sim.server_ms()


async def test_peak_counts_the_busiest_window(clock: LoopClock, sim: BingXSimulator) -> None:
    key = sim.add_key(uid=1)
    async with sim.http_client() as http:
        for pause in (0, 0.5, 0.4, 0.2, 0.5):
            await asyncio.sleep(pause)
            await raw_call(http, sim, key)
    assert sim.peak(uid=1) == 3  # at 0.9, 1.1 and 1.6 s; the first is 1.1 s before the third


async def test_a_slow_answer_leaves_its_request_counted_in_arrival_order(
    clock: LoopClock,
) -> None:
    # Found by a flaky soak (1 run in 5): a `Fault.slow` request was counted after its
    # delay at its arrival time, behind a request that came after it, where it outlived
    # its period: the fifth request of a later second counted as the sixth.
    from bingx_assets.testing import Fault

    sim = BingXSimulator(clock=clock)
    key = sim.add_key(uid=1)
    async with sim.http_client() as http:
        sim.inject(Fault.slow(0.5))
        slow = asyncio.create_task(raw_call(http, sim, key))  # arrives at 0.0
        await asyncio.sleep(0.1)
        answers = [await raw_call(http, sim, key)]  # at 0.1; the slow one answered at 0.5
        await asyncio.sleep(0.95)
        answers += [await raw_call(http, sim, key) for _ in range(4)]  # at 1.05: 5 of 5
        answers.append(await slow)
    assert [answer["code"] for answer in answers] == [0] * 6
    assert sim.rejections == []
