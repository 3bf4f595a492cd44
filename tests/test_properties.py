"""Properties over any input: the decoder and the error parser never fail untyped."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from bingx_assets import AccountType, AssetOverview, BingXError, RateLimitError
from bingx_assets._exceptions import error_from_answer, parse_unblock_time
from bingx_assets._wire import BALANCES, decode_envelope_data
from bingx_assets.testing._messages import MSG_DISABLED, MSG_TOO_MANY_ERRORS

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


@given(st.integers(min_value=10**12, max_value=10**16), st.booleans(), st.text(max_size=20))
def test_any_unblock_time_is_read_exactly_in_either_form(
    until: int, too_many_errors: bool, prefix: str
) -> None:
    if too_many_errors:
        msg = MSG_TOO_MANY_ERRORS.format(limit=20, code=100202, period_ms=480000, until=until)
    else:
        msg = MSG_DISABLED.format(until=until)
    assert parse_unblock_time(prefix + msg) == until
    error = error_from_answer(100410, msg, status_code=200)
    assert isinstance(error, RateLimitError)
    assert error.unblock_at_ms == until


@given(st.integers(), st.text(max_size=60), STATUSES, st.one_of(st.none(), st.text(max_size=10)))
def test_error_from_answer_is_always_typed(
    code: int, msg: str, status: int, retry: str | None
) -> None:
    error = error_from_answer(code, msg, status_code=status, retry_after=retry)
    assert isinstance(error, BingXError)
    assert error.code == code
