"""An overview indexes by account type; every error pickles and compares equal to its copy."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

import bingx_assets
from bingx_assets import (
    AccountNotFoundError,
    AccountType,
    APIError,
    AssetOverview,
    Balance,
    BingXError,
    DecodeError,
    RateLimitError,
)
from bingx_assets._exceptions import error_from_answer

OVERVIEW = AssetOverview(
    [
        Balance(AccountType.SPOT, Decimal("12.5")),
        Balance("newType", Decimal("3")),
        Balance(AccountType.STANDARD_FUTURES, Decimal("0E-8")),
    ]
)


@pytest.mark.parametrize("key", ["spot", "sopt", AccountType.SPOT])
def test_indexing_by_account_type_gives_the_amount(key: str) -> None:
    assert OVERVIEW[key] == Decimal("12.5")
    assert isinstance(OVERVIEW[key], Decimal)
    assert key in OVERVIEW
    assert OVERVIEW.get(key) == Decimal("12.5")


@pytest.mark.parametrize("spelling", ["spot", "sopt"])
@pytest.mark.parametrize("key", ["spot", "sopt", AccountType.SPOT])
def test_a_balance_built_by_hand_indexes_in_either_spelling(spelling: str, key: str) -> None:
    overview = AssetOverview([Balance(spelling, Decimal("7"))])
    assert overview[key] == 7
    assert key in overview


def test_a_type_bingx_added_later_indexes_by_its_string() -> None:
    assert OVERVIEW["newType"] == 3
    assert OVERVIEW["stdFutures"] == 0


@pytest.mark.parametrize("key", ["grid", AccountType.C2C, "nonsense", 0, None])
def test_a_missing_account_is_a_typed_key_error_and_get_gives_the_default(key: object) -> None:
    assert key not in OVERVIEW
    assert OVERVIEW.get(key) is None  # type: ignore[arg-type]
    assert OVERVIEW.get(key, Decimal(0)) == 0  # type: ignore[arg-type]
    with pytest.raises(AccountNotFoundError) as caught:
        OVERVIEW[key]  # type: ignore[index]
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, BingXError)
    message = str(caught.value)
    assert message.startswith(f"no {str(key)!r} account in this overview")
    assert "holds spot, newType, stdFutures" in message and ".get(" in message


def test_a_missing_account_s_message_shows_the_server_s_types_printable_and_few() -> None:
    """Found in the #19 re-review: the message listed every account type raw, terminal
    escapes and bidi overrides included, and all 1,000 a page may hold."""
    hostile = [Balance("\x1b[2J\x1b]0;pwn\x07EVIL\u202e", Decimal(1))]
    many = [Balance(f"type{n}", Decimal(n)) for n in range(1000)]
    with pytest.raises(AccountNotFoundError) as caught:
        AssetOverview(hostile)["grid"]
    assert "holds [2J ]0;pwn EVIL)" in str(caught.value)
    with pytest.raises(AccountNotFoundError) as caught:
        AssetOverview(many)["grid"]
    assert "type9, … 990 more" in str(caught.value) and len(str(caught.value)) < 300


def test_an_empty_overview_says_it_holds_nothing() -> None:
    with pytest.raises(AccountNotFoundError, match="holds no accounts"):
        AssetOverview([])["spot"]


def _error_classes() -> list[type[BingXError]]:
    found = [
        value
        for name in bingx_assets.__all__
        if isinstance(value := getattr(bingx_assets, name, None), type)
        and issubclass(value, BingXError)
    ]
    assert len(found) >= 14  # the whole tree, not a few of it
    return found


def _instance(cls: type[BingXError]) -> BingXError:
    """One instance of `cls`, built with every field its constructor takes set."""
    if cls is DecodeError:
        return DecodeError("not JSON", status_code=502, excerpt="<html>")
    if cls is AccountNotFoundError:
        return AccountNotFoundError("grid", ["spot"])
    if cls is RateLimitError:
        return RateLimitError(
            100410, "disabled", status_code=200, unblock_at_ms=1_700_000_000_000, retry_after=2.5
        )
    if issubclass(cls, APIError):
        return cls(100413, "bad key", status_code=200)  # type: ignore[call-arg]
    return cls("what happened")


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_pickles_to_an_equal_one(cls: type[BingXError]) -> None:
    error = _instance(cls)
    error.add_note("a note travels too")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert copy == error and hash(copy) == hash(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_errors_differing_in_a_field_or_type_are_not_equal() -> None:
    a = RateLimitError(100410, "x", status_code=200, unblock_at_ms=1)
    assert a != RateLimitError(100410, "x", status_code=200, unblock_at_ms=2)
    assert a != RateLimitError(100410, "x", status_code=429, unblock_at_ms=1)
    assert error_from_answer(100413, "m", status_code=200) != error_from_answer(
        100004, "m", status_code=200
    )
    assert BingXError("x") != ValueError("x")


def test_an_explained_rate_limit_error_pickles_with_its_explanation() -> None:
    error = error_from_answer(100410, "disabled, unblocked after 1700000000000", status_code=200)
    assert isinstance(error, RateLimitError)
    error.explain("UID 1001 is disabled until 01:00; nothing is sent until then")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.unblock_at_ms == 1_700_000_000_000
