"""AssetsClient against the simulator: credentials, signing on the wire, results, errors."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import httpx
import pytest
import respx

from bingx_assets import (
    AccountType,
    APIConnectionError,
    APITimeoutError,
    AssetsClient,
    AuthenticationError,
    ConfigurationError,
    PermissionDeniedError,
    RateLimiter,
    ServerBusyError,
)
from bingx_assets._constants import ASSET_OVERVIEW_PATH, SERVER_TIME_PATH, UID_PATH
from bingx_assets.testing import BingXSimulator, SimKey

from .conftest import MakeClient, served_in_a_thread, verified_earlier

HOST = "https://open-api.bingx.com"
KEY = "k" * 64
SECRET = "s3cr3t-" + "x" * 57


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINGX_API_KEY", KEY)
    monkeypatch.setenv("BINGX_SECRET_KEY", SECRET)
    client = AssetsClient()
    assert client.api_key == KEY


@pytest.mark.parametrize(
    ("api_key", "secret_key", "complaint"),
    [
        (None, SECRET, "no api_key"),
        (KEY, None, "no secret_key"),
        ("", SECRET, "no api_key"),
        (KEY, "", "no secret_key"),
        ("has space", SECRET, "api_key has spaces"),
        (KEY, "line\nbreak", "secret_key has spaces"),
        (123, SECRET, "api_key must be a str"),
    ],
)
def test_missing_or_malformed_credentials_fail_at_construction(
    monkeypatch: pytest.MonkeyPatch, api_key: object, secret_key: object, complaint: str
) -> None:
    monkeypatch.delenv("BINGX_API_KEY", raising=False)
    monkeypatch.delenv("BINGX_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        AssetsClient(api_key, secret_key)  # type: ignore[arg-type]
    assert "line\nbreak" not in str(caught.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_retries", -1),
        ("timeout", 0),
        ("timeout", -3.0),
        ("timeout", "10"),
        ("max_wait", -0.5),
        ("recv_window", 0),
        ("recv_window", 60_001),
        ("recv_window", 5.5),
        ("uid", "12ab"),
        ("uid", True),
        ("base_url", "ftp://open-api.bingx.com"),
        ("base_url", "http://open-api.bingx.com"),
        ("base_url", "not a url"),
    ],
)
def test_bad_options_raise_configuration_error(option: str, value: object) -> None:
    with pytest.raises(ConfigurationError):
        AssetsClient(KEY, SECRET, **{option: value})  # type: ignore[arg-type]


def test_plain_http_is_allowed_on_loopback() -> None:
    assert AssetsClient(KEY, SECRET, base_url="http://127.0.0.1:8080/").base_url == (
        "http://127.0.0.1:8080"
    )


def test_repr_hides_the_secret_and_most_of_the_key() -> None:
    text = repr(AssetsClient(KEY, SECRET))
    assert SECRET not in text
    assert KEY not in text
    assert KEY[-4:] in text


async def test_overview_returns_every_account_exactly(make_client: MakeClient, key: SimKey) -> None:
    overview = await make_client(key).asset_overview()
    assert overview.as_dict() == {
        ("spot" if name == "sopt" else name): Decimal(value) for name, value in key.balances.items()
    }
    assert overview.total == sum(Decimal(v) for v in key.balances.values())
    assert overview.get(AccountType.SPOT) == overview.get("sopt")
    assert overview.server_time_ms is not None


@pytest.mark.parametrize("page_envelope", [False, True])
@pytest.mark.parametrize("string_codes", [False, True])
async def test_every_envelope_shape_decodes(
    sim: BingXSimulator,
    make_client: MakeClient,
    key: SimKey,
    page_envelope: bool,
    string_codes: bool,
) -> None:
    sim.page_envelope, sim.string_codes = page_envelope, string_codes
    overview = await make_client(key).asset_overview()
    assert len(overview) == len(key.balances)


@pytest.mark.parametrize("account_type", [AccountType.SPOT, "spot", "sopt", "USDTMPerp"])
async def test_filter_by_account_type(
    make_client: MakeClient, key: SimKey, account_type: str
) -> None:
    overview = await make_client(key).asset_overview(account_type)
    assert [b.account_type for b in overview] == [
        account_type if account_type != "sopt" else "spot"
    ]


async def test_invalid_account_type_raises_before_sending(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    with pytest.raises(ConfigurationError, match="unknown account type 'futures'"):
        await make_client(key).asset_overview("futures")
    assert sim.requests == []


async def test_query_is_sent_as_signed_with_the_key_header(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    await make_client(key, uid=key.uid).asset_overview()
    [received] = [r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]
    assert received.code == 0  # the simulator checked key header and signature
    assert received.api_key == key.api_key
    names = [part.split("=")[0] for part in received.query.split("&")]
    assert names == ["timestamp", "recvWindow", "signature"]


async def test_uid_is_looked_up_once_and_cached(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    client = make_client(key)
    assert await client.uid() == str(key.uid)
    await client.asset_overview()
    await client.asset_overview()
    assert [r.path for r in sim.requests if r.path != SERVER_TIME_PATH] == [
        UID_PATH,
        ASSET_OVERVIEW_PATH,
        ASSET_OVERVIEW_PATH,
    ]


async def test_a_given_uid_this_machine_verified_skips_the_lookup(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    await make_client(key, uid=key.uid).asset_overview()  # verified before: in the cache
    assert UID_PATH not in {r.path for r in sim.requests}


async def test_wrong_secret_is_an_authentication_error_and_not_retried(
    sim: BingXSimulator, make_client: MakeClient, key: SimKey
) -> None:
    wrong = SimKey(key.api_key, "wrong" + key.secret_key[5:], key.uid, {})
    with pytest.raises(AuthenticationError) as caught:
        await make_client(wrong, uid=key.uid).asset_overview()
    assert caught.value.code == 100001
    assert len([r for r in sim.requests if r.path == ASSET_OVERVIEW_PATH]) == 1


async def test_unknown_key_is_an_authentication_error(make_client: MakeClient, key: SimKey) -> None:
    stranger = SimKey("unknown" + key.api_key[7:], key.secret_key, key.uid, {})
    with pytest.raises(AuthenticationError) as caught:
        await make_client(stranger, uid=1).asset_overview()
    assert caught.value.code == 100413


async def test_whitelist_and_permission_errors(
    sim: BingXSimulator, make_client: MakeClient
) -> None:
    fenced = sim.add_key(uid=7, ip_whitelist=("127.0.0.11",))
    no_read = sim.add_key(uid=8, can_read=False)
    with pytest.raises(PermissionDeniedError) as whitelist:
        await make_client(fenced, uid=7).asset_overview()
    with pytest.raises(PermissionDeniedError) as permission:
        await make_client(no_read, uid=8).asset_overview()
    assert (whitelist.value.code, permission.value.code) == (100419, 100004)


async def test_owned_http_client_is_closed_and_injected_one_is_not(sim: BingXSimulator) -> None:
    injected = sim.http_client()
    async with AssetsClient(KEY, SECRET, http_client=injected) as client:
        pass
    assert not injected.is_closed
    await injected.aclose()
    async with AssetsClient(KEY, SECRET) as client:
        owned = client._transport.session  # type: ignore[attr-defined]
    assert owned.closed


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ConnectError("refused"), APIConnectionError),
        (httpx.ReadTimeout("slow"), APITimeoutError),
        (httpx.Response(503, text="<html>busy</html>"), ServerBusyError),
    ],
)
async def test_transient_failures_are_retried_then_raised(
    respx_mock: respx.MockRouter,
    respx_http: httpx.AsyncClient,
    limiter: RateLimiter,
    failure: object,
    error: type[Exception],
) -> None:
    respx_mock.get(HOST + SERVER_TIME_PATH).respond(json={"code": 0, "data": {"serverTime": 0}})
    route = respx_mock.get(HOST + ASSET_OVERVIEW_PATH).mock(side_effect=[failure] * 3)
    verified_earlier(KEY, 1)
    client = AssetsClient(
        KEY, SECRET, uid=1, max_retries=2, limiter=limiter, http_client=respx_http
    )
    with pytest.raises(error) as caught:
        await client.asset_overview()
    assert route.call_count == 3
    assert "signature" not in str(caught.value)
    assert limiter.stats.retries == 2
    await client.aclose()


async def test_a_busy_server_is_retried_until_it_answers(
    respx_mock: respx.MockRouter, respx_http: httpx.AsyncClient, limiter: RateLimiter
) -> None:
    respx_mock.get(HOST + SERVER_TIME_PATH).respond(json={"code": 0, "data": {"serverTime": 0}})
    busy = httpx.Response(200, json={"code": 100500, "msg": "Internal error"})
    ok = httpx.Response(
        200, json={"code": 0, "data": [{"accountType": "grid", "usdtBalance": "1"}]}
    )
    route = respx_mock.get(HOST + ASSET_OVERVIEW_PATH).mock(side_effect=[busy, busy, ok])
    verified_earlier(KEY, 1)
    async with AssetsClient(KEY, SECRET, uid=1, limiter=limiter, http_client=respx_http) as client:
        overview = await client.asset_overview()
    assert overview.total == Decimal(1)
    assert route.call_count == 3


async def test_logs_never_show_secret_or_signature(
    make_client: MakeClient, key: SimKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await make_client(key).asset_overview()
    wrong = SimKey(key.api_key, "x" * 64, key.uid, {})
    with pytest.raises(AuthenticationError):
        await make_client(wrong).asset_overview()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "signature=***" in text  # httpx's request lines were there, redacted
    assert key.secret_key not in text
    assert all(len(part) < 64 for part in text.split("signature=")[1:] if not part.startswith("*"))


def test_a_client_serves_one_asyncio_run_after_another() -> None:
    sim = BingXSimulator()
    key = sim.add_key(uid=1)
    with served_in_a_thread(sim) as url:
        verified_earlier(key.api_key, 1)
        client = AssetsClient(key.api_key, key.secret_key, uid=1, base_url=url)

        async def read_once() -> Decimal:
            async with client:  # closes this loop's connections, and the client stays usable
                return (await client.asset_overview()).total

        totals = [asyncio.run(read_once()) for _ in range(3)]
    assert totals == [sum(Decimal(v) for v in key.balances.values())] * 3
