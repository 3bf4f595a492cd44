"""Decoding BingX's answers: one reusable msgspec decoder per shape.

The envelope is decoded first with `data` left raw, so an error answer whose `data` has
any shape at all still yields its `code` and `msg`; `data` is decoded only on success.

Nothing in an answer can drive decoding out of bounds: the body is at most 1 MiB (the
transports stop reading there); nesting deeper than msgspec's recursion allows is a
`DecodeError`, not a `RecursionError`; an account type is at most 64 characters, a page
at most 1,000 balances, and each balance a finite decimal within `check_amount`'s
bounds. Text from the answer reaches an error message only through `printable`: one
line, no control characters, an echo of our request masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

import msgspec

from ._exceptions import BingXError, DecodeError, error_from_answer
from ._models import AssetOverview, check_amount, checked_balances
from ._printable import printable

__all__ = [
    "BALANCES",
    "SERVER_TIME",
    "UID",
    "DataDecoder",
    "decode_envelope_data",
    "envelope_timestamp",
]

T = TypeVar("T")
_EXCERPT_CHARS = 200
_SIGNATURE_CHARS = 64  # HMAC-SHA256 in hex
_MSG_CHARS = 500
_MAX_CODE_DIGITS = 12
_MAX_ROWS = 1000  # BingX has eight account types


class _Envelope(msgspec.Struct):
    # BingX has been seen sending "0" as well as 0.
    code: int | str
    msg: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"null")
    timestamp: int | None = None


class _WireBalance(msgspec.Struct, rename="camel"):
    account_type: Annotated[str, msgspec.Meta(max_length=64)]
    usdt_balance: Decimal

    def __post_init__(self) -> None:
        check_amount(self.usdt_balance)  # its ValueError is msgspec's ValidationError


_Rows = Annotated[list[_WireBalance], msgspec.Meta(max_length=_MAX_ROWS)]


class _WirePage(msgspec.Struct, rename="camel"):
    result: _Rows


class _WireUid(msgspec.Struct):
    uid: int


class _WireServerTime(msgspec.Struct, rename="camel"):
    server_time: int


class _TypedEnvelope(msgspec.Struct, Generic[T]):
    code: int | str
    msg: str | None = None
    data: T | None = None
    timestamp: int | None = None


class DataDecoder(Generic[T]):
    """Turns the raw `data` of a successful envelope into `T`, or a whole successful
    answer in one pass (`decode_success`)."""

    def __init__(self, wire_type: Any, convert: Callable[[Any, int | None], T]) -> None:
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(wire_type)
        self._whole: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_TypedEnvelope[wire_type])
        self._convert = convert

    def decode(self, raw: bytes, server_time_ms: int | None) -> T:
        return self._convert(self._decoder.decode(raw), server_time_ms)

    def decode_success(self, body: bytes) -> T | None:
        """`T` if `body` is a success with data of the expected shape, else None."""
        try:
            envelope = self._whole.decode(body)
        except msgspec.DecodeError:
            return None
        if envelope.data is None or envelope.code not in (0, "0"):
            return None
        return self._convert(envelope.data, envelope.timestamp)


def _to_overview(wire: list[_WireBalance] | _WirePage, server_time_ms: int | None) -> AssetOverview:
    rows = wire.result if isinstance(wire, _WirePage) else wire
    balances = checked_balances((r.account_type, r.usdt_balance) for r in rows)
    return AssetOverview(balances, server_time_ms=server_time_ms)


BALANCES: DataDecoder[AssetOverview] = DataDecoder(_Rows | _WirePage, _to_overview)
UID: DataDecoder[int] = DataDecoder(_WireUid, lambda wire, _: wire.uid)
SERVER_TIME: DataDecoder[int] = DataDecoder(_WireServerTime, lambda wire, _: wire.server_time)

_ENVELOPE = msgspec.json.Decoder(_Envelope)


class _Stamp(msgspec.Struct):
    timestamp: int | None = None


_STAMP = msgspec.json.Decoder(_Stamp)


def envelope_timestamp(body: bytes) -> int | None:
    """The server's clock as an envelope gives it (epoch ms), from any answer: BingX's
    pages show `timestamp` on successes and say nothing of errors, so an error answer's
    is read when it is there. None when the body has none, or is no envelope."""
    try:
        return _STAMP.decode(body).timestamp
    except (msgspec.DecodeError, RecursionError):
        return None


def excerpt(body: bytes, secrets: Sequence[str] = ()) -> str:
    """The start of a body, printable, for error messages: masked before it is cut, so
    that a secret across the cut shows none of itself (cut first, the api key's first
    50 characters were shown)."""
    window = 4 * _EXCERPT_CHARS
    text = printable(body[:window].decode("utf-8", "replace"), secrets=secrets)
    if len(body) > window:
        # What the window's end cuts is only partly there, and so not masked: drop as
        # much as a secret or a bare signature's digits could be.
        text = text[: max(0, len(text) - max([_SIGNATURE_CHARS, *map(len, secrets)]))]
    cut = len(body) > window or len(text) > _EXCERPT_CHARS
    return text[:_EXCERPT_CHARS] + ("…" if cut else "")


def decode_envelope_data(
    body: bytes,
    *,
    status_code: int,
    headers: Mapping[str, str],
    data: DataDecoder[T],
    secrets: Sequence[str] = (),
) -> T:
    """The decoded `data` of a successful answer; a typed error for everything else,
    its text masked of `secrets` (the api key: an echo of our request may carry it).

    The error is raised from here, with no context: a traceback keeps its frames' locals
    (error trackers print them), and those of the decoding hold the body, which an echo
    fills with our signed request, and `secrets` themselves."""
    error: BingXError
    try:
        return _decode(body, status_code, headers, data, secrets)
    except RecursionError:  # msgspec decodes recursively, raw values included
        error = DecodeError(
            "answer nested deeper than any BingX answer",
            status_code=status_code,
            excerpt=excerpt(body, secrets),
        )
    except BingXError as exc:
        error = exc
    del body, headers, secrets
    error.__context__ = None
    raise error.with_traceback(None)


def _decode(
    body: bytes,
    status_code: int,
    headers: Mapping[str, str],
    data: DataDecoder[T],
    secrets: Sequence[str],
) -> T:
    if status_code < 400:
        # One pass for the common case; anything else is decoded again, step by step,
        # to say exactly what is wrong with it.
        result = data.decode_success(body)
        if result is not None:
            return result
    try:
        envelope = _ENVELOPE.decode(body)
    except msgspec.DecodeError:
        if status_code >= 400:
            # An HTTP error with an HTML or empty body: the status says what happened.
            raise error_from_answer(
                None,
                excerpt(body, secrets),
                status_code=status_code,
                retry_after=headers.get("retry-after"),
            ) from None
        raise DecodeError(
            "answer is not a BingX JSON envelope",
            status_code=status_code,
            excerpt=excerpt(body, secrets),
        ) from None
    code = _parse_code(envelope.code, status_code, body, secrets)
    msg = printable(envelope.msg or "", secrets=secrets, limit=_MSG_CHARS)
    if code != 0:
        raise error_from_answer(
            code, msg, status_code=status_code, retry_after=headers.get("retry-after")
        )
    if status_code >= 400:
        raise error_from_answer(
            None, msg, status_code=status_code, retry_after=headers.get("retry-after")
        )
    if bytes(envelope.data) == b"null":
        raise DecodeError(
            "success without data", status_code=status_code, excerpt=excerpt(body, secrets)
        )
    try:
        return data.decode(envelope.data, envelope.timestamp)
    except msgspec.DecodeError as exc:
        raise DecodeError(
            f"unexpected data ({printable(str(exc), limit=_MSG_CHARS)})",
            status_code=status_code,
            excerpt=excerpt(body, secrets),
        ) from None


def _parse_code(code: int | str, status_code: int, body: bytes, secrets: Sequence[str]) -> int:
    if isinstance(code, int):
        return code
    if len(code) <= _MAX_CODE_DIGITS:  # int() of a long string costs quadratic time
        try:
            return int(code)
        except ValueError:
            pass
    raise DecodeError(
        f"non-numeric code {printable(code, secrets=secrets, limit=20)!r}",
        status_code=status_code,
        excerpt=excerpt(body, secrets),
    )
