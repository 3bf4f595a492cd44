"""Signing and decoding, against vectors computed here with the standard library."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import msgspec
import pytest

from bingx_assets import (
    AccountType,
    APIError,
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    InvalidArgumentError,
    PermissionDeniedError,
    RateLimitError,
    ServerBusyError,
    TimestampError,
)
from bingx_assets._models import AssetOverview, Balance, parse_account_type
from bingx_assets._signing import sign, signed_query
from bingx_assets._wire import BALANCES, SERVER_TIME, UID, decode_envelope_data, envelope_timestamp

# -- signing ------------------------------------------------------------------------


def test_signature_is_lowercase_hex_hmac_sha256() -> None:
    secret, query = b"mysecret", "timestamp=1700000000000&recvWindow=5000"
    expected = hmac.new(secret, query.encode(), hashlib.sha256).hexdigest()
    assert sign(secret, query) == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def test_signed_query_signs_exactly_what_it_sends() -> None:
    secret = b"another-secret"
    sent = signed_query({"timestamp": 1700000000123, "recvWindow": 5000, "note": "a b/c"}, secret)
    signed, _, signature = sent.rpartition("&signature=")
    assert signed == "timestamp=1700000000123&recvWindow=5000&note=a%20b%2Fc"
    assert signature == hmac.new(secret, signed.encode(), hashlib.sha256).hexdigest()
    assert sent.endswith(signature)


def test_different_secrets_sign_differently() -> None:
    params = {"timestamp": 1}
    assert signed_query(params, b"a") != signed_query(params, b"b")


# -- decoding successes ---------------------------------------------------------------


def decode(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> AssetOverview:
    return decode_envelope_data(body, status_code=status, headers=headers or {}, data=BALANCES)


ROWS = b'[{"accountType":"sopt","usdtBalance":"80.00"},{"accountType":"eran","usdtBalance":"0.5"}]'


@pytest.mark.parametrize(
    "body",
    [
        b'{"code":0,"msg":"","data":' + ROWS + b"}",
        b'{"code":"0","data":' + ROWS + b"}",
        b'{"code":0,"timestamp":1743354559752,"data":' + ROWS + b',"extra":{"x":1}}',
        b'{"code":0,"msg":"","data":{"result":' + ROWS + b',"pageId":1,"total":2}}',
        b'{"data":' + ROWS + b',"code":0,"success":true}',
    ],
    ids=["plain", "string-code", "timestamp-and-extra", "paged", "reordered"],
)
def test_every_success_shape(body: bytes) -> None:
    overview = decode(body)
    assert [(b.account_type, b.usdt_balance) for b in overview] == [
        (AccountType.SPOT, Decimal("80.00")),
        (AccountType.WEALTH, Decimal("0.5")),
    ]


def test_the_real_capture_of_2025_03() -> None:
    body = (
        b'{"code":0,"timestamp":1743354559752,"data":[{"accountType":"sopt","usdtBalance":"80.00"},'
        b'{"accountType":"stdFutures","usdtBalance":"0.00000000"},{"accountType":"coinMPerp",'
        b'"usdtBalance":"0"},{"accountType":"USDTMPerp","usdtBalance":"12.3456789"},'
        b'{"accountType":"copyTrading","usdtBalance":"0.00"},{"accountType":"grid",'
        b'"usdtBalance":"0"},{"accountType":"eran","usdtBalance":"0"}]}'
    )
    overview = decode(body)
    assert overview.total == Decimal("92.3456789")
    assert overview.server_time_ms == 1743354559752
    assert overview.get("spot") == overview.get("sopt") == Decimal("80")
    assert overview.get("c2c") is None


def test_unknown_account_types_and_extra_fields_are_kept_or_ignored() -> None:
    body = b'{"code":0,"data":[{"accountType":"futuresX","usdtBalance":"1","new":true}]}'
    [balance] = decode(body)
    assert balance.account_type == "futuresX"
    assert not isinstance(balance.account_type, AccountType)


def test_decimals_stay_exact() -> None:
    body = (
        b'{"code":0,"data":[{"accountType":"grid","usdtBalance":"0.1"},'
        b'{"accountType":"eran","usdtBalance":"0.2"}]}'
    )
    assert decode(body).total == Decimal("0.3")


def test_uid_and_server_time() -> None:
    ok: dict[str, str] = {}
    uid = b'{"code":0,"data":{"uid":16844999}}'
    now = b'{"code":0,"msg":"","data":{"serverTime":1675319535362}}'
    assert decode_envelope_data(uid, status_code=200, headers=ok, data=UID) == 16844999
    assert decode_envelope_data(now, status_code=200, headers=ok, data=SERVER_TIME) == 1675319535362


# -- decoding errors ------------------------------------------------------------------

UNBLOCKED = (
    "code:100410:The endpoint trigger frequency limit rule is currently in the disabled "
    "period and will be unblocked after 1727193814249"
)
RETRY_AFTER = (
    "over 20 error code:100202 requests within 480000 ms for this api, please verify and "
    "fix it ,can retry after time: 1727193970155"
)


@pytest.mark.parametrize(
    ("code", "msg", "error"),
    [
        (100410, UNBLOCKED, RateLimitError),
        (100410, RETRY_AFTER, RateLimitError),
        (100410, "rate limited", RateLimitError),
        (100410, "The current system is busy, please try again later", ServerBusyError),
        (100413, "Incorrect apiKey", AuthenticationError),
        (100412, "Null signature", AuthenticationError),
        (100001, "Signature verification failed", AuthenticationError),
        (100419, "IP does not match IP whitelist", PermissionDeniedError),
        (100004, "Permission denied", PermissionDeniedError),
        (80014, "timestamp is invalid", TimestampError),
        (100421, "Null timestamp or timestamp mismatch", TimestampError),
        (100421, "The current system is busy, please try again later", ServerBusyError),
        (100400, "Invalid parameters", InvalidArgumentError),
        (100500, "Internal error", ServerBusyError),
        (100503, "Server busy", ServerBusyError),
        (100414, "account abnormal", APIError),
    ],
)
@pytest.mark.parametrize("as_string", [False, True])
def test_every_error_family(code: int, msg: str, error: type[APIError], as_string: bool) -> None:
    shown = f'"{code}"' if as_string else str(code)
    for data in (b"null", b"{}", b"[]", b'"x"'):
        body = f'{{"code":{shown},"msg":"{msg}","success":false,"data":'.encode() + data + b"}"
        with pytest.raises(APIError) as caught:
            decode(body)
        assert type(caught.value) is error
        assert (caught.value.code, caught.value.msg, caught.value.status_code) == (code, msg, 200)


@pytest.mark.parametrize(
    ("msg", "unblock"),
    [(UNBLOCKED, 1727193814249), (RETRY_AFTER, 1727193970155), ("rate limited", None)],
)
def test_unblock_time_is_read_from_both_forms(msg: str, unblock: int | None) -> None:
    with pytest.raises(RateLimitError) as caught:
        decode(msgspec.json.encode({"code": 100410, "msg": msg}))
    assert caught.value.unblock_at_ms == unblock


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"retry-after": "7"}, RateLimitError, 7.0),
        (429, {}, RateLimitError, None),
        (418, {}, RateLimitError, None),
        (403, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, RateLimitError, None),
        (500, {}, ServerBusyError, None),
        (502, {}, ServerBusyError, None),
        (504, {}, ServerBusyError, None),
        (404, {}, APIError, None),
    ],
)
@pytest.mark.parametrize("body", [b"<html><body>nope</body></html>", b""])
def test_http_errors_with_html_or_empty_bodies(
    status: int,
    headers: dict[str, str],
    error: type[APIError],
    retry_after: float | None,
    body: bytes,
) -> None:
    with pytest.raises(APIError) as caught:
        decode(body, status, headers)
    assert type(caught.value) is error
    assert caught.value.status_code == status
    if isinstance(caught.value, RateLimitError):
        assert caught.value.retry_after == retry_after


@pytest.mark.parametrize(
    "body",
    [
        b"<html>maintenance</html>",
        b"",
        b'{"code":0,"data":[{"accountType":"sopt"',
        b"not json at all",
        b'{"code":0}',
        b'{"code":0,"data":{"uid":1}}',
        b'{"code":0,"data":[{"accountType":"sopt","usdtBalance":"lots"}]}',
        b'{"code":"zero","data":[]}',
        b"[1, 2, 3]",
    ],
)
def test_unreadable_answers_are_decode_errors_with_status_and_excerpt(body: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(body)
    assert caught.value.status_code == 200
    assert caught.value.excerpt == body.decode()[:200]


def test_long_bodies_are_cut_in_the_excerpt() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(b"<html>" + b"x" * 1000)
    assert len(caught.value.excerpt) == 201
    assert caught.value.excerpt.endswith("…")


# -- account types ---------------------------------------------------------------------


def test_account_types_are_the_documented_wire_strings() -> None:
    assert {t.value for t in AccountType} == {
        "spot", "stdFutures", "coinMPerp", "USDTMPerp", "copyTrading", "grid", "eran", "c2c"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("given", "expected"),
    [(AccountType.GRID, AccountType.GRID), ("grid", AccountType.GRID), ("sopt", AccountType.SPOT)],
)
def test_parse_account_type(given: str, expected: AccountType) -> None:
    assert parse_account_type(given) is expected


@pytest.mark.parametrize("given", ["futures", "SPOT", "", 3, None])
def test_parse_account_type_rejects_the_rest(given: object) -> None:
    with pytest.raises(ConfigurationError, match="expected one of: spot, stdFutures"):
        parse_account_type(given)  # type: ignore[arg-type]


def test_overview_iterates_its_balances_in_order() -> None:
    overview = AssetOverview([Balance("grid", Decimal(1)), Balance(AccountType.SPOT, Decimal(2))])
    assert len(overview) == 2
    assert overview.balances[1].usdt_balance == 2
    assert list(overview) == [Balance("grid", Decimal(1)), Balance(AccountType.SPOT, Decimal(2))]
    assert overview.as_dict() == {"grid": Decimal(1), "spot": Decimal(2)}
    assert overview == AssetOverview(list(overview))
    assert "spot=2" in repr(overview)


def test_totals_keep_every_digit_past_the_default_precision() -> None:
    # 29 and 30 significant digits: the default decimal context would round at 28.
    a, b = Decimal("383326811487.08989549696773481"), Decimal("1.000000000000000000000000001")
    overview = AssetOverview([Balance("sopt", a), Balance("grid", b)])
    assert overview.total == Decimal("383326811488.089895496967734810000000001")


@pytest.mark.parametrize(
    ("body", "stamp"),
    [
        (b'{"code":100421,"msg":"timestamp mismatch","timestamp":1767225620000}', 1767225620000),
        (b'{"code":0,"data":[],"timestamp":5}', 5),
        (b'{"code":100421,"msg":"timestamp mismatch"}', None),
        (b'{"code":100421,"timestamp":"1767225620000"}', None),  # a string is no sample
        (b'{"code":100421,"timestamp":1.5}', None),
        (b"<html>captive portal</html>", None),
        (b"", None),
        (b'{"timestamp":' + b"[" * 200_000 + b"]" * 200_000 + b"}", None),
    ],
)
def test_an_envelopes_timestamp_is_read_from_any_answer(body: bytes, stamp: int | None) -> None:
    assert envelope_timestamp(body) == stamp
