"""Text from outside made safe to print: a server's strings, a file's, a user's URL.

A proxy, a captive portal or an attacker on the path can put anything in an answer:
terminal escapes that clear the screen or rewrite the lines above, bidi overrides that
reverse what a person reads, an echo of our own request with its signature and api key.
Whatever such text reaches (a table, a log line, an exception message) goes through
`printable` first, and a URL a person typed through `masked_url`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["has_user_part", "masked_url", "printable"]

# `signature=<hex>` anywhere (a query echoed back); the api key header in any echo of
# the request's head, whatever the case and separator.
_ECHOED = re.compile(
    r"(signature=)[0-9a-fA-F]+|(x-bx-apikey[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]+", re.IGNORECASE
)
# An HMAC-SHA256 signature is 64 hex digits: any such run is masked, whatever form the
# echo gave it (a JSON field, a percent-encoded query, a bare word).
# (After a percent-encoded "=", `%3D`, whose D is a hex digit too.)
_SIGNATURE_DIGITS = re.compile(r"(?:(?<=%3[dD])|(?<![0-9a-fA-F]))[0-9a-fA-F]{64}(?![0-9a-fA-F])")
# scheme://user:password@ : the password, in any URL inside a message.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/@:]*:)[^\s/@]*(@)", re.IGNORECASE)


def printable(text: str, *, secrets: Iterable[str] = (), limit: int | None = None) -> str:
    """`text` on one line with no control or format characters, echoed signatures,
    api key headers, URL passwords and each of `secrets` replaced by `***`, and, with
    `limit`, at most that many characters (then ending in `…`)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _ECHOED.sub(lambda m: f"{m.group(1) or m.group(2)}***", text)
    text = _SIGNATURE_DIGITS.sub("***", text)
    text = _URL_PASSWORD.sub(r"\1***\2", text)
    # str.isprintable is False for C0/C1 controls (ESC, CR, BEL), bidi overrides,
    # zero-width characters and unassigned code points alike.
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def masked_url(url: str) -> str:
    """`url` with its password (`redis://:pw@host`, `https://user:pw@host`) as `***`,
    for messages; the rest as written, so that a person recognises it.

    The user part is taken to end at the last `@`, not where a URL parser ends it: a
    password with an unencoded `/`, `?` or `#` ends the parser's host early, and would
    otherwise be printed whole. With no `:` in it, the user part may be a password
    alone (`redis://pw@host`), and all of it is masked."""
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest:
        user_part, _, host_part = rest.rpartition("@")
        user, colon, _ = user_part.partition(":")
        masked = f"{user}:***" if colon else "***"
        return _URL_PASSWORD.sub(r"\1***\2", f"{scheme}://{masked}@{host_part}")
    return _URL_PASSWORD.sub(r"\1***\2", url)


def has_user_part(url: str) -> bool:
    """Whether `url` carries a user or password (`scheme://...@`): a parser's words on
    such a URL may quote pieces of the password, so they are not repeated."""
    _, separator, rest = url.partition("://")
    return bool(separator) and "@" in rest
