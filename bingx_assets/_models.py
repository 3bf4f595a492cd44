"""What the asset overview returns: account types, balances, and the overview itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import MAX_PREC, Decimal, localcontext
from enum import StrEnum
from typing import TypeVar

import msgspec
from msgspec.structs import force_setattr

from ._exceptions import AccountNotFoundError, ConfigurationError
from ._printable import printable

__all__ = ["AccountType", "AssetOverview", "Balance", "parse_account_type"]

T = TypeVar("T")


# What a balance may be. BingX sends plain decimals of a few dozen digits; an answer
# that passes these bounds is garbage or an attack (`"NaN"`, `"1e999999999"`: 11 bytes
# that would print as a billion digits), and is that key's DecodeError instead.
MAX_DECIMAL_PLACES = 30
"""Trailing zeros count: BingX pads to 8 places, and no asset is divided finer than 18."""
MAX_INTEGER_DIGITS = 19
"""Below 10**19 USDT in either sign: some hundred thousand times all the world's money."""
_REPR_BALANCES = 10  # a repr shows this many balances, then how many more
_REPR_TYPE_CHARS = 40


def check_amount(value: Decimal) -> Decimal:
    """`value` if it is a finite Decimal within the bounds above, so that every sum of
    balances is exact, cheap and short to print; else `ConfigurationError` (a
    ValueError, which msgspec reports as a validation error while decoding)."""
    if not isinstance(value, Decimal):
        raise ConfigurationError(f"a balance must be a Decimal, not {type(value).__name__}")
    if not Decimal.is_finite(value):  # Decimal's own, as below: not a subclass's
        raise ConfigurationError("a balance must be a finite number, not NaN or infinity")
    # The exponent from the text, not `as_tuple()` (a tuple of every digit and a named
    # tuple: most of this check's cost, on every balance decoded): without an "E", the
    # text is the digits, with exactly -exponent of them after the point.
    text = Decimal.__str__(value)
    if "E" in text:
        exponent = int(Decimal.as_tuple(value).exponent)
    else:
        point = text.find(".")
        exponent = 0 if point < 0 else point + 1 - len(text)
    if exponent < -MAX_DECIMAL_PLACES:
        raise ConfigurationError(f"a balance has more than {MAX_DECIMAL_PLACES} decimal places")
    if Decimal.adjusted(value) >= MAX_INTEGER_DIGITS or exponent >= MAX_INTEGER_DIGITS:
        raise ConfigurationError(f"a balance has more than {MAX_INTEGER_DIGITS} integer digits")
    return value


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The sum with every digit kept: the default context would round past 28 digits."""
    with localcontext(prec=MAX_PREC):
        return sum(values, Decimal(0))


class AccountType(StrEnum):
    """The eight account types BingX documents, spelled as they are on the wire.

    BingX answers `sopt` for the spot (fund) account; it is read as `SPOT`.
    Types BingX adds later are kept as plain strings, never rejected.
    """

    SPOT = "spot"
    STANDARD_FUTURES = "stdFutures"
    COIN_M_PERP = "coinMPerp"
    USDT_M_PERP = "USDTMPerp"
    COPY_TRADING = "copyTrading"
    GRID = "grid"
    WEALTH = "eran"
    C2C = "c2c"


# The live API spells the spot account "sopt"; BingX's English docs spell it "spot".
_WIRE_ALIASES = {"sopt": AccountType.SPOT}
_BY_VALUE: dict[str, AccountType] = {t.value: t for t in AccountType} | _WIRE_ALIASES


def parse_account_type(value: AccountType | str) -> AccountType:
    """A user's account type, as the enum; unknown values raise `ConfigurationError`."""
    if isinstance(value, AccountType):
        return value
    if isinstance(value, str) and value in _BY_VALUE:
        return _BY_VALUE[value]
    known = ", ".join(t.value for t in AccountType)
    raise ConfigurationError(f"unknown account type {value!r}; expected one of: {known}")


def account_type_from_wire(value: str) -> AccountType | str:
    return _BY_VALUE.get(value, value)


class Balance(msgspec.Struct, frozen=True):
    """One account's value in USDT, exact.

    `account_type` is an `AccountType` for the documented types (compare it with the
    enum or a plain string: `AccountType` is a `str`), or the raw string BingX sent for
    a type it added later.
    """

    account_type: AccountType | str
    usdt_balance: Decimal
    """Finite, at most 30 decimal places and 19 integer digits (`check_amount`)."""

    def __post_init__(self) -> None:
        check_amount(self.usdt_balance)


# A copy of this, made in C (msgspec's stubs leave Struct.__copy__ out), is a Balance
# that skips __post_init__.
_copy_of_a_balance: Callable[[], Balance] = Balance("", Decimal(0)).__copy__  # type: ignore[attr-defined]


def checked_balances(rows: Iterable[tuple[str, Decimal]]) -> list[Balance]:
    """The `Balance`s of (wire account type, amount) pairs whose amounts passed
    `check_amount` already (while decoding): copies of a template, filled in, which
    skips `__post_init__` and its second check. One call per answer, not per row."""
    balances = []
    for wire_type, usdt_balance in rows:
        balance = _copy_of_a_balance()
        force_setattr(balance, "account_type", _BY_VALUE.get(wire_type, wire_type))
        force_setattr(balance, "usdt_balance", usdt_balance)
        balances.append(balance)
    return balances


class AssetOverview:
    """Every account's USDT value for one API key.

    Indexed by account type, it gives that account's amount: `overview["spot"]`,
    `overview[AccountType.SPOT]` and `overview["sopt"]` (BingX's spelling) are one
    `Decimal`. An account the answer does not hold raises `AccountNotFoundError` (a
    `KeyError`, as a mapping's miss is), `overview.get("grid")` gives None instead, and
    `"grid" in overview` asks first. Iterating gives the `Balance`s in the order BingX
    sent them (`balances` holds them as a tuple); `total` adds them up exactly and
    `as_dict()` is `{account_type: amount}`.
    """

    __slots__ = ("balances", "server_time_ms")

    def __init__(self, balances: Iterable[Balance], *, server_time_ms: int | None = None) -> None:
        self.balances: tuple[Balance, ...] = tuple(balances)
        """The balances, in the order BingX sent them."""
        self.server_time_ms = server_time_ms
        """BingX's `timestamp` on the answer (epoch ms, server clock), when it sent one."""

    @property
    def total(self) -> Decimal:
        """The sum of all balances in USDT: exact, and it cannot raise (every
        `Balance` is bounded)."""
        return exact_sum(b.usdt_balance for b in self.balances)

    def _find(self, account_type: object) -> Balance | None:
        if not isinstance(account_type, str):
            return None
        wanted = account_type_from_wire(account_type)
        # A Balance built by hand may still say "sopt": both spellings are one account.
        return next(
            (b for b in self.balances if account_type_from_wire(b.account_type) == wanted), None
        )

    def __getitem__(self, account_type: AccountType | str) -> Decimal:
        found = self._find(account_type)
        if found is None:
            raise AccountNotFoundError(account_type, self._shown_types())
        return found.usdt_balance

    def _shown_types(self) -> list[str]:
        # The server's text, for a message: printable, and a few whatever BingX sent.
        shown = [
            printable(str(b.account_type), limit=_REPR_TYPE_CHARS)
            for b in self.balances[:_REPR_BALANCES]
        ]
        if len(self.balances) > _REPR_BALANCES:
            shown.append(f"… {len(self.balances) - _REPR_BALANCES} more")
        return shown

    def get(self, account_type: AccountType | str, default: T = None) -> Decimal | T:  # type: ignore[assignment]
        """The amount of `account_type` (`"spot"` and `"sopt"` are the same), or `default`."""
        found = self._find(account_type)
        return default if found is None else found.usdt_balance

    def __contains__(self, account_type: object) -> bool:
        return self._find(account_type) is not None

    def as_dict(self) -> dict[str, Decimal]:
        """`{account_type: usdt_balance}`, handy for printing and JSON."""
        return {str(b.account_type): b.usdt_balance for b in self.balances}

    def __len__(self) -> int:
        return len(self.balances)

    def __iter__(self) -> Iterator[Balance]:
        return iter(self.balances)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AssetOverview):
            return self.balances == other.balances
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # Short whatever BingX sent: a type is anyone's text, the balances any number.
        shown = [
            f"{printable(str(b.account_type), limit=_REPR_TYPE_CHARS)}={b.usdt_balance:f}"
            for b in self.balances[:_REPR_BALANCES]
        ]
        if len(self.balances) > _REPR_BALANCES:
            shown.append(f"… {len(self.balances) - _REPR_BALANCES} more")
        return f"AssetOverview({', '.join(shown)})"
