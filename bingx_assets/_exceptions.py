"""Every error this package raises, in one tree.

```
BingXError                     base of everything raised here
├── ConfigurationError         bad input, caught before any request is sent (also a ValueError)
├── APIConnectionError         no answer: connection refused or reset, DNS, TLS
│   ├── APITimeoutError        no whole answer in time (each attempt's deadline)
│   └── AnswerTooLargeError    an answer past 1 MiB: reading stopped there
├── DecodeError                an answer that is not BingX's JSON envelope (status, excerpt)
├── LimiterUnavailableError    the shared limiter's store (Redis, SQLite) fails; nothing was sent
├── AccountNotFoundError       `overview["grid"]` when the answer lacks it (also a KeyError)
└── APIError                   BingX answered with an error: code, msg, status_code
    ├── RateLimitError         100410, HTTP 429 / 418 / 403; unblock time when BingX gives one
    │   └── ErrorBudgetError   not sent: the UID's error budget is full until unblock time
    ├── AuthenticationError    100413 bad API key, 100412 no signature, 100001 bad signature
    ├── PermissionDeniedError  100419 IP not whitelisted, 100004 permission denied
    ├── TimestampError         80014, 100421 when the message is about time
    ├── InvalidArgumentError   100400
    └── ServerBusyError        100500, 100503, HTTP 5xx, 100410 / 100421 saying "system busy"
```

Only `RateLimitError` (not `ErrorBudgetError`), `ServerBusyError`, `APIConnectionError`,
a `DecodeError` on HTTP 200 (an answer cut off on the way) and (once, after the clock
offset is measured again) `TimestampError` are retried; retrying cannot fix the rest
(the table in `_refusals` says what each pauses).
Messages never contain the secret key or a signature. Every error pickles (it can cross
a `ProcessPoolExecutor`) and compares equal to its copy: same type, message and fields.
"""

from __future__ import annotations

import copyreg
import math
import re
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccountNotFoundError",
    "AnswerTooLargeError",
    "AuthenticationError",
    "BingXError",
    "ConfigurationError",
    "DecodeError",
    "ErrorBudgetError",
    "InvalidArgumentError",
    "LimiterUnavailableError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerBusyError",
    "TimestampError",
    "error_from_answer",
]


class BingXError(Exception):
    """Base class of every error raised by bingx-assets."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own pickling calls __init__ with the message alone, which the
        # keyword-only fields below refuse: rebuild without __init__, fields as they were.
        return (copyreg.__newobj__, (type(self), *self.args), self.__dict__)  # type: ignore[attr-defined]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BingXError):
            return NotImplemented
        return (type(self), self.args, vars(self)) == (type(other), other.args, vars(other))

    def __hash__(self) -> int:
        return hash((type(self), self.args))


class ConfigurationError(BingXError, ValueError):
    """Invalid input (credentials, account type, URL, limits), found before sending anything."""


class APIConnectionError(BingXError):
    """The request got no answer: the connection failed, was reset, or TLS failed."""


class APITimeoutError(APIConnectionError):
    """The request got no whole answer within the client's timeout: none at all, or one
    that kept coming for longer than the attempt's deadline (a trickle, an endless body)."""


class AnswerTooLargeError(APIConnectionError):
    """The answer grew past 1 MiB (BingX's are under 2 KB): reading stopped there, and
    the attempt counts as a lost connection (retried within `max_retries`)."""


class DecodeError(BingXError):
    """The answer is not a BingX envelope: HTML, empty, truncated or malformed JSON."""

    def __init__(self, message: str, *, status_code: int, excerpt: str) -> None:
        super().__init__(f"{message} (HTTP {status_code}): {excerpt!r}")
        self.status_code = status_code
        self.excerpt = excerpt


class LimiterUnavailableError(BingXError):
    """The shared limiter's store (Redis, or a host store you named) cannot be used:
    nothing was sent."""


class AccountNotFoundError(BingXError, KeyError):
    """An overview was indexed by an account type its answer does not hold."""

    def __init__(self, account_type: str, present: list[str]) -> None:
        held = ", ".join(present) if present else "no accounts"
        super().__init__(
            f"no {str(account_type)!r} account in this overview (it holds {held}); "
            f"overview.get({str(account_type)!r}) gives None instead"
        )
        self.account_type = str(account_type)

    def __str__(self) -> str:  # KeyError's would quote the sentence
        return str(self.args[0])


class APIError(BingXError):
    """BingX answered with an error code (or an HTTP error status)."""

    def __init__(self, code: int | None, msg: str, *, status_code: int | None) -> None:
        if code is None and status_code is None:  # the client's own refusal: msg says it all
            super().__init__(msg)
        else:
            shown = f"code {code}" if code is not None else f"HTTP {status_code}"
            super().__init__(f"BingX {shown}: {msg}" if msg else f"BingX {shown}")
        self.code = code
        self.msg = msg
        self.status_code = status_code


class RateLimitError(APIError):
    """BingX refused the request for rate (100410, HTTP 429, 418 or 403).

    `unblock_at_ms` is the end of the disabled period in epoch milliseconds on the
    *server's* clock, read from either message form of 100410, or None when BingX gave
    no time. `retry_after` is the `Retry-After` header in seconds, when there was one.

    `status_code` is None when the client itself refused to send: a gate closed here
    (the UID's, or this IP's) stays closed longer than the client's `max_wait`.
    """

    def __init__(
        self,
        code: int | None,
        msg: str,
        *,
        status_code: int | None,
        unblock_at_ms: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, msg, status_code=status_code)
        self.unblock_at_ms = unblock_at_ms
        self.retry_after = retry_after

    def explain(self, sentence: str) -> None:
        """Replace BingX's terse message with what the client understood and does next."""
        self.args = (sentence,)


class ErrorBudgetError(RateLimitError):
    """Not sent: the UID's error budget (`RateLimits.error_budget`, or the smaller share
    of a key not known to be good) is full of error replies until `unblock_at_ms`, or
    held by requests in flight past `max_wait`, so sending could push the UID towards
    BingX's error penalty (a disabled period). Not retried; the UID's keys known to be
    good go on with the rest of the budget."""


class AuthenticationError(APIError):
    """The API key is wrong or missing, or the signature does not match (100413/100412/100001)."""


class PermissionDeniedError(APIError):
    """The key may not read assets, or this IP is not on its whitelist (100004/100419)."""


class TimestampError(APIError):
    """`timestamp` was missing or outside `recvWindow` of the server's clock (80014/100421).

    `code` and `status_code` are None when the client itself did not send: a request
    was refused for its timestamp and nothing has measured BingX's clock since, so the
    next one waits (the message says until when)."""


class InvalidArgumentError(APIError):
    """BingX rejected the parameters (100400)."""


class ServerBusyError(APIError):
    """BingX is busy or failed internally (100500/100503, HTTP 5xx, "system busy")."""


_UNBLOCK_TIME = re.compile(r"(?:unblocked after|retry after time)\s*:?\s*(\d{10,})", re.IGNORECASE)
_BUSY = re.compile(r"\bbusy\b", re.IGNORECASE)
_ABOUT_TIME = re.compile(r"timestamp|recvwindow|time window", re.IGNORECASE)

_BY_CODE: dict[int, type[APIError]] = {
    100413: AuthenticationError,
    100412: AuthenticationError,
    100001: AuthenticationError,
    100419: PermissionDeniedError,
    100004: PermissionDeniedError,
    80014: TimestampError,
    100400: InvalidArgumentError,
    100500: ServerBusyError,
    100503: ServerBusyError,
}


# Far past any calendar (the year 33658) and still exact as a float: a longer number is
# read as this, so that arithmetic on it cannot overflow; the client believes a day at most.
_FARTHEST_UNBLOCK_MS = 10**15


def parse_unblock_time(msg: str) -> int | None:
    """The epoch-ms unblock time in a 100410 message, in either of its two forms."""
    match = _UNBLOCK_TIME.search(msg)
    if match is None:
        return None
    digits = match.group(1)
    return int(digits) if len(digits) < 16 else _FARTHEST_UNBLOCK_MS


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds; the HTTP-date form is rare enough on this API to ignore."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def error_from_answer(
    code: int | None, msg: str, *, status_code: int, retry_after: str | None = None
) -> APIError:
    """The typed error for a BingX error `code` or, when `code` is None, an HTTP status."""
    if code == 100410:
        if _BUSY.search(msg):
            return ServerBusyError(code, msg, status_code=status_code)
        return RateLimitError(
            code,
            msg,
            status_code=status_code,
            unblock_at_ms=parse_unblock_time(msg),
            retry_after=parse_retry_after(retry_after),
        )
    if code == 100421:
        # BingX reuses 100421 for "system busy"; only its message tells the two apart.
        if _BUSY.search(msg) and not _ABOUT_TIME.search(msg):
            return ServerBusyError(code, msg, status_code=status_code)
        return TimestampError(code, msg, status_code=status_code)
    if code is not None:
        return _BY_CODE.get(code, APIError)(code, msg, status_code=status_code)
    if status_code in (429, 418, 403):
        return RateLimitError(
            None, msg, status_code=status_code, retry_after=parse_retry_after(retry_after)
        )
    if status_code >= 500:
        return ServerBusyError(None, msg, status_code=status_code)
    return APIError(None, msg, status_code=status_code)
