"""What the client learns from each kind of answer that is not a success: one table.

```
answer                               pauses                              retried          the key
100410 with a time                   the UID until then (a day at most)  within max_wait  -
100410 without a time                the UID's window, then the UID      within max_wait  -
HTTP 429 / 418 / 403, Retry-After    this IP as long as asked (a day)    within max_wait  -
HTTP 429                             this IP's windows, one period       within max_wait  -
HTTP 418 / 403                       this IP, five minutes (a ban)       within max_wait  -
not sent: the error budget is full   nothing                             no               -
100001 100412 100413 100419 100004   this key, 60 s doubling to 480 s    no               backs off
80014, 100421 about time             nothing: the clock is re-measured   once             -
not sent: the clock is unmeasurable  nothing (probed 15 s on, doubling)  no               -
100500 100503 HTTP 5xx "busy"        nothing                             with back-off    -
a cut-off or garbled HTTP 200        nothing                             with back-off    -
no answer (connection, timeout)      nothing                             with back-off    -
anything else (100400, other codes)  nothing                             no               suspect
```

"suspect" (and "backs off", which is suspect too): the key is no longer known to be
good, so until its next success it may use only the smaller share of its UID's error
budget (`KeyBackoff.known_good`).

Every answered row but server trouble keeps its slot in the UID's error budget: an
error reply, a refusal for rate, a garbled HTTP 200 (BingX may have counted it as an
error, and nothing says it did not). Server trouble (HTTP 5xx, 100500, 100503, "system
busy") is the server's state, not a reply about the request: counting it would stop
every UID's reads for the whole error window whenever BingX has a bad minute, and the
retry policy already bounds it (at most `max_retries + 1` attempts a call, backing off).
A request with no answer keeps its slot until its horizon, as in the rate windows. The
client's `_after_refusal` carries out the "pauses" column of the rate rows; this module
says which row an error is.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from ._exceptions import (
    _BY_CODE,
    APIConnectionError,
    APIError,
    AuthenticationError,
    BingXError,
    DecodeError,
    ErrorBudgetError,
    PermissionDeniedError,
    RateLimitError,
    ServerBusyError,
    TimestampError,
)
from ._limiter import Closure

__all__ = [
    "KEY_BACKOFF_FIRST",
    "NEVER_AS_IT_IS",
    "KeyBackoff",
    "Refusal",
    "key_gate",
    "key_not_sent",
    "refusal_of",
]

Retry = Literal["no", "once", "within max_wait", "with back-off"]
Pause = Literal[
    "uid until its time", "ip as asked", "ip windows", "ip for a ban", "uid window", "nothing"
]

# The codes that say a key can never succeed as it is: wrong key, secret or signature,
# a whitelist without this IP, a key without the read permission.
NEVER_AS_IT_IS = frozenset({100001, 100412, 100413, 100419, 100004})
KEY_BACKOFF_FIRST = 60.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """One row of the table above. `marks_key`: the answer is about this key, not its
    UID, IP, clock or the server, so the key is no longer known to be good (its error
    share is the smaller one) until its next success."""

    name: str
    retry: Retry
    pauses: Pause = "nothing"
    key_backs_off: bool = False
    marks_key: bool = False
    counts: bool = True
    """Keeps its slot in the UID's error budget (every row but server trouble)."""


UID_DISABLED = Refusal("100410 with a time", "within max_wait", "uid until its time")
UID_FULL = Refusal("100410 without a time", "within max_wait", "uid window")
IP_ASKED = Refusal("HTTP 429 / 418 / 403 with Retry-After", "within max_wait", "ip as asked")
IP_FULL = Refusal("HTTP 429", "within max_wait", "ip windows")
IP_BANNED = Refusal("HTTP 418 / 403", "within max_wait", "ip for a ban")
BUDGET = Refusal("not sent: the UID's error budget is full", "no")
KEY_REFUSED = Refusal(
    "this key can never succeed as it is", "no", key_backs_off=True, marks_key=True
)
TIMESTAMP = Refusal("timestamp outside recvWindow", "once")
CLOCK_HELD = Refusal("not sent: BingX's clock cannot be measured", "no")
BUSY = Refusal("server busy", "with back-off", counts=False)
CUT_OFF = Refusal("cut-off or garbled HTTP 200", "with back-off")
NO_ANSWER = Refusal("no answer", "with back-off")
FINAL = Refusal("refused", "no", marks_key=True)


def refusal_of(exc: BingXError) -> Refusal:
    """The row of the table that `exc` falls in."""
    if isinstance(exc, ErrorBudgetError):
        return BUDGET
    if isinstance(exc, RateLimitError):
        if exc.unblock_at_ms is not None:
            return UID_DISABLED
        if exc.code is not None:
            return UID_FULL
        if exc.retry_after is not None:
            return IP_ASKED
        return IP_FULL if exc.status_code == 429 else IP_BANNED
    if isinstance(exc, AuthenticationError | PermissionDeniedError) and exc.code in NEVER_AS_IT_IS:
        return KEY_REFUSED
    if isinstance(exc, TimestampError):
        return TIMESTAMP if exc.status_code is not None else CLOCK_HELD
    if isinstance(exc, ServerBusyError):
        return BUSY
    if isinstance(exc, DecodeError) and exc.status_code == 200:
        return CUT_OFF
    if isinstance(exc, APIConnectionError):
        return NO_ANSWER
    return FINAL


def key_gate(api_key: str, secret: bytes) -> str:
    """The gate of one key as it is (its api key and secret together), named by an HMAC
    under the secret: a backend's names are seen by whoever can read it (`redis-cli
    keys`), so neither the key nor anything that tells of the secret may be among them,
    and a key given a new secret is a new key, sent at once."""
    digest = hmac.new(secret, b"bingx-assets key gate\n" + api_key.encode(), hashlib.sha256)
    return "gate:key:" + digest.hexdigest()[:32]


def key_not_sent(code: int | None, message: str) -> APIError:
    """The error for a call not sent while its key backs off: the type and code of the
    answer that backed it off (`AuthenticationError` 100001, `PermissionDeniedError`
    100419, ...), in every process sharing the backend, since the code travels with the
    key's gate; a plain `APIError` when no code did (a gate an older version closed)."""
    kind = _BY_CODE.get(code, APIError) if code in NEVER_AS_IT_IS else APIError
    error = kind(code, message, status_code=None)
    error.args = (message,)  # the client's own refusal: the message says it all
    return error


class KeyBackoff:
    """One key's standing: whether it is known to be good, and its back-off as this
    process knows it.

    `error_window` is the UID's error-budget period: a back-off doubles from
    `KEY_BACKOFF_FIRST` up to it. The hold itself is the backend's: a gate of the key's
    own whose closure records its length and BingX's code, so that every process sharing
    the backend holds the key, reports that code, and doubles that length at the key's
    next refusal (until an error window after the gate opens). This object keeps what
    this process learnt of it, so that its calls fail without asking the backend.
    """

    __slots__ = (
        "_error_window",
        "_succeeded",
        "code",
        "holds_until",
        "known_good",
        "refused_at_ms",
        "retry_at_ms",
    )

    def __init__(self, error_window: float) -> None:
        self._error_window = error_window
        self.code: int | None = None
        """The code of the answer that backed the key off (None: not known)."""
        self.refused_at_ms = 0
        self.retry_at_ms = 0
        """Server time of that answer, and when the key is sent again."""
        self.holds_until = -float("inf")
        """Monotonic time the back-off ends."""
        self.known_good: bool | None = None
        """Whether the key's last answer about itself was a success: True after one,
        False after an error reply that says something of the key (`Refusal.marks_key`)
        or a hold another process made, None before either in this process (the client
        then asks the UID cache). Only a key known to be good may use its UID's whole
        error budget."""
        self._succeeded = False
        """A success here since the last hold: the next one starts at one minute again."""

    def held(self, now: float) -> bool:
        return now < self.holds_until

    def errored(self) -> None:
        self.known_good = False

    def next_hold(self, last: Closure | None) -> float:
        """Seconds to hold the key that BingX has just refused as it is: its gate's last
        closure (`last`, whichever process made it) doubled, up to the error window; one
        minute if there is none or the key succeeded here since."""
        if last is None or self._succeeded:
            return KEY_BACKOFF_FIRST
        return min(max(KEY_BACKOFF_FIRST, 2 * last.seconds), self._error_window)

    def hold(self, now: float, server_ms: int, remaining: float, closure: Closure | None) -> None:
        """The key's gate stays closed `remaining` seconds more, by `closure` (its length
        and code; None when the backend does not say). That refusal was an error reply
        about the key: it is not known to be good until its next success."""
        length = remaining if closure is None else max(closure.seconds, remaining)
        self.holds_until = now + remaining
        self.retry_at_ms = server_ms + int(remaining * 1000)
        self.refused_at_ms = self.retry_at_ms - int(length * 1000)
        self.code = None if closure is None else closure.code
        self.known_good = False
        self._succeeded = False

    def succeeded(self) -> None:
        self.code = None
        self.holds_until = -float("inf")
        self.known_good = True
        self._succeeded = True
