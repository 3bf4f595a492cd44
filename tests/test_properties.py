"""Properties over any input: the decoder and the error parser never fail untyped."""

from __future__ import annotations

import asyncio
import ssl
from decimal import Decimal

import aiohttp
import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bingx_assets import (
    AccountType,
    AssetOverview,
    AssetsClient,
    Balance,
    BingXError,
    ConfigurationError,
    RateLimiter,
    RateLimitError,
)
from bingx_assets._exceptions import error_from_answer, parse_unblock_time
from bingx_assets._models import (
    MAX_DECIMAL_PLACES,
    MAX_INTEGER_DIGITS,
    check_amount,
    checked_balances,
)
from bingx_assets._wire import BALANCES, decode_envelope_data
from bingx_assets.testing import HostileAnswer, HostileServer
from bingx_assets.testing._messages import MSG_DISABLED, MSG_TOO_MANY_ERRORS

from .conftest import assert_carries_no_secret

API_KEY, SECRET_KEY = "PROPERTYKEY" + "k" * 53, "PROPERTYSECRET" + "s" * 50
TRANSPORTS = ["httpx", "aiohttp"]
VERIFIED = ssl.create_default_context()

STATUSES = st.sampled_from([200, 200, 200, 400, 403, 404, 418, 429, 500, 502, 503, 504])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def outcome(body: bytes, status: int = 200) -> AssetOverview | BingXError:
    try:
        return decode_envelope_data(body, status_code=status, headers={}, data=BALANCES)
    except BingXError as exc:
        return exc


@given(st.binary(max_size=300), STATUSES)
def test_any_bytes_give_a_result_or_a_typed_error(body: bytes, status: int) -> None:
    assert isinstance(outcome(body, status), AssetOverview | BingXError)


@given(json_values, STATUSES)
def test_any_json_gives_a_result_or_a_typed_error(value: object, status: int) -> None:
    assert isinstance(outcome(msgspec.json.encode(value), status), AssetOverview | BingXError)


@given(
    st.one_of(st.integers(), st.text(max_size=12)),
    st.one_of(st.none(), st.text(max_size=40)),
    json_values,
)
def test_any_envelope_gives_a_result_or_a_typed_error(
    code: object, msg: object, data: object
) -> None:
    body = msgspec.json.encode({"code": code, "msg": msg, "data": data})
    assert isinstance(outcome(body), AssetOverview | BingXError)


# The largest balance accepted (`check_amount`): 19 integer digits, 8 places here.
LARGEST = Decimal("9999999999999999999.99999999")


@given(
    st.text(min_size=1, max_size=30),
    st.decimals(min_value=-LARGEST, max_value=LARGEST, places=8),
)
def test_any_account_type_and_amount_round_trip(account_type: str, amount: Decimal) -> None:
    body = msgspec.json.encode(
        {"code": 0, "data": [{"accountType": account_type, "usdtBalance": str(amount)}]}
    )
    [balance] = decode_envelope_data(body, status_code=200, headers={}, data=BALANCES)
    assert balance.usdt_balance == amount
    if account_type == "sopt":
        assert balance.account_type is AccountType.SPOT
    else:
        assert balance.account_type == account_type


@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.builds(
        lambda digits, exponent, negative: Decimal((negative, digits, exponent)),
        st.lists(st.integers(0, 9), min_size=1, max_size=45).map(tuple),
        st.integers(-50, 30),
        st.integers(0, 1),
    )
)
def test_check_amount_bounds_the_exponent_and_digits_as_the_decimal_says(
    amount: Decimal,
) -> None:
    # The bounds as the Decimal's own tuple states them; the check reads the exponent
    # from the text instead, and must agree whatever the notation.
    exponent = amount.as_tuple().exponent
    within = isinstance(exponent, int) and (
        exponent >= -MAX_DECIMAL_PLACES
        and amount.adjusted() < MAX_INTEGER_DIGITS
        and exponent < MAX_INTEGER_DIGITS
    )
    if within:
        assert check_amount(amount) is amount
        assert [Balance("grid", amount)] == checked_balances([("grid", amount)])
    else:
        with pytest.raises(ConfigurationError):
            check_amount(amount)


# Up to the year 33658 (10**15 ms) a time is read exactly; past it, as that year.
@given(st.integers(min_value=10**12, max_value=10**400), st.booleans(), st.text(max_size=20))
def test_any_unblock_time_is_read_exactly_in_either_form(
    until: int, too_many_errors: bool, prefix: str
) -> None:
    if too_many_errors:
        msg = MSG_TOO_MANY_ERRORS.format(limit=20, code=100202, period_ms=480000, until=until)
    else:
        msg = MSG_DISABLED.format(until=until)
    read = min(until, 10**15)
    assert parse_unblock_time(prefix + msg) == read
    error = error_from_answer(100410, msg, status_code=200)
    assert isinstance(error, RateLimitError)
    assert error.unblock_at_ms == read


@given(st.integers(), st.text(max_size=60), STATUSES, st.one_of(st.none(), st.text(max_size=10)))
def test_error_from_answer_is_always_typed(
    code: int, msg: str, status: int, retry: str | None
) -> None:
    error = error_from_answer(code, msg, status_code=status, retry_after=retry)
    assert isinstance(error, BingXError)
    assert error.code == code


# -- the whole client, on both transports: any answer at all ---------------------------

# The headers the client reads, and any other; the server frames the answer itself
# (Content-Length, Connection), since a wrong length is a hang by design, not a fault.
FRAMING = {"content-length", "transfer-encoding", "connection"}
HEADER_NAMES = st.one_of(
    st.sampled_from(
        ["Retry-After", "X-RateLimit-Requests-Remain", "X-RateLimit-Requests-Expire",
         "Content-Type", "Content-Encoding", "Location"]
    ),
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(
        lambda name: name.lower() not in FRAMING
    ),
)  # fmt: skip
HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=24)
BODIES = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda code, msg, data: f'{{"code":{code},"msg":{msg},"data":{data}}}'.encode(
            "utf-8", "surrogatepass"
        ),
        st.sampled_from(["0", '"0"', "100410", "100421", "100500", "-1", '"x"', "1e400"]),
        st.sampled_from(['"busy"', "null", '"unblocked after 9999999999999"', "[]"]),
        st.sampled_from(
            [
                "null",
                "[]",
                "{}",
                '[{"accountType":"sopt","usdtBalance":"1"}]',
                '{"result":[{"accountType":"x","usdtBalance":"NaN"}]}',
                '{"uid":1}',
                '[{"accountType":"sopt","usdtBalance":1e99}]',
                "[" * 3000 + "]" * 3000,
            ]
        ),
    ),
)


def any_answer_outcome(
    transport: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> object:
    async def run() -> object:
        answer = HostileAnswer.raw(status, tuple(headers), body)
        async with HostileServer(answer) as server:
            own: httpx.AsyncClient | aiohttp.ClientSession = (
                aiohttp.ClientSession()
                if transport == "aiohttp"
                else httpx.AsyncClient(verify=VERIFIED)  # the CA store loaded once, not per run
            )
            client = AssetsClient(
                API_KEY, SECRET_KEY, uid=1, base_url=server.url, http_client=own,
                limiter=RateLimiter(), timeout=httpx.Timeout(1.0), max_retries=0,
                max_wait=0, uid_cache=False,
            )  # fmt: skip
            try:
                return await client.asset_overview()
            except BingXError as exc:
                assert_carries_no_secret(exc, [API_KEY, SECRET_KEY])
                return exc
            finally:
                await client.aclose()
                await (own.close() if isinstance(own, aiohttp.ClientSession) else own.aclose())

    return asyncio.run(run())  # a loop of its own, in real time: each answer is quick


@pytest.mark.parametrize("transport", TRANSPORTS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.integers(200, 599),
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=3),
    body=BODIES,
)
def test_any_status_headers_and_body_give_a_result_or_a_typed_error(
    transport: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    outcome = any_answer_outcome(transport, status, headers, body)
    assert isinstance(outcome, AssetOverview | BingXError), outcome
